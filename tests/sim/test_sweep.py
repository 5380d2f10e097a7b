"""``nanoquote sweep``: the same results on one worker or two, equal to the sessions run
directly, and every bad grid refused before anything runs."""

from __future__ import annotations

import csv
import json
import logging
from fractions import Fraction

import distributed
import pytest
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.market_maker import MarketMakerStrategy
from nanoquote.sim import sweep
from nanoquote.sim.distributed import ShardError, cluster, run_tasks
from nanoquote.sim.random_walk import play_market
from nanoquote.sim.sweep import (
    METRICS,
    grid_points,
    parse_grid,
    run_session,
    run_sweep,
    session_seed,
)

from nanoquote.cli import main

SEED = 11
EVENTS = 60
#: 10 x 10 = 100 configurations
GRID = ["base_spread_ticks=1:10:1", "inventory_skew_factor=0:0.9:0.1"]


@pytest.fixture(scope="module")
def two_workers():
    with cluster(workers=2) as client:
        yield client


@pytest.fixture(scope="module")
def one_worker():
    with cluster(workers=1) as client:
        yield client


def _points(specs=GRID, **fixed):
    axes = [parse_grid(s) for s in specs]
    return axes, grid_points(axes, lambda values: MarketMakerConfig.from_mapping(fixed, **values))


@pytest.fixture(scope="module")
def rows_by_workers(one_worker, two_workers):
    _, points = _points()
    out = {}
    for n, client in ((1, one_worker), (2, two_workers)):
        seen = []
        out[n] = run_sweep(client, points, seed=SEED, sessions=1, events=EVENTS, backend="golden",
                           progress=lambda done, total, seen=seen: seen.append(done))
        assert seen == list(range(1, len(points) + 1))
    return points, out


def test_a_hundred_point_sweep_is_the_same_on_one_and_two_workers(rows_by_workers):
    points, rows = rows_by_workers
    assert len(points) == 100 and len(rows[1]) == 100
    assert rows[1] == rows[2]
    assert [(r["base_spread_ticks"], r["inventory_skew_factor"]) for r in rows[2][:3]] == [(1, 0.0), (1, 0.1), (1, 0.2)]
    assert rows[2][-1]["inventory_skew_factor"] == 0.9  # exact steps: 0.9, not 0.8999999999999999
    assert len({r["total_pnl"] for r in rows[2]}) > 10  # the grid really varies the outcome


@pytest.mark.parametrize("index", [0, 37, 99])
def test_a_point_equals_its_session_played_directly(rows_by_workers, index):
    points, rows = rows_by_workers
    point = points[index]
    strategy = MarketMakerStrategy("check", 1, point.config)
    result = play_market(strategy, session_seed(SEED, index, 0), EVENTS)
    base = strategy.base
    expected = {"realized_pnl": base.realized_pnl, "unrealized_pnl": base.unrealized_pnl,
                "total_pnl": base.total_pnl, "fees": base.fees, "fills": result.fills,
                "orders": result.orders, "cancels": result.cancels,
                "max_abs_position": result.max_abs_position, "final_position": float(strategy.position)}
    row = rows[2][index]
    assert {m: row[m] for m in METRICS} == expected
    assert point.config.base_spread_ticks == row["base_spread_ticks"]


def test_several_sessions_aggregate_exactly(two_workers):
    _, points = _points(["order_size=1,3"])
    rows = run_sweep(two_workers, points, seed=5, sessions=3, events=EVENTS, backend="golden")
    sessions = [run_session("golden", points[1].config, session_seed(5, 1, j), EVENTS) for j in range(3)]
    assert rows[1]["fills"] == sum(s.fills for s in sessions)
    assert rows[1]["max_abs_position"] == max(s.max_abs_position for s in sessions)
    assert rows[1]["total_pnl"] == float(sum(Fraction(s.total_pnl) for s in sessions) / 3)
    assert len({session_seed(5, i, j) for i in range(2) for j in range(3)}) == 6


def test_the_offloaded_strategy_on_the_model_matches_the_golden_one():
    config = MarketMakerConfig(num_levels=2, inventory_skew_factor=0.3)
    for seed in (1, 2):
        assert run_session("model", config, seed, 200) == run_session("golden", config, seed, 200)


def test_a_failing_session_names_its_point_and_seed(two_workers):
    # every session fails; the one reported is the first in grid order, on every run
    _, points = _points(["order_size=1:8:1"])
    tasks = sweep.sweep_tasks(points, seed=3, sessions=2, events=10, backend="no-such-backend")
    with pytest.raises(ShardError) as info:
        run_tasks(two_workers, sweep._run_task, tasks, describe=sweep.SessionTask.describe)
    message = str(info.value)
    assert message.startswith(f"grid point 0 (order_size=1), session 0, seed {session_seed(3, 0, 0)}: ValueError")
    assert "unknown backend 'no-such-backend'" in message


# -- the command ---------------------------------------------------------------------------

def _sweep(tmp_path, *args):
    return main(["sweep", "--seed", "4", "--events", "40", "--out", str(tmp_path), *args])


def test_the_command_writes_the_same_files_on_one_and_two_workers(tmp_path, one_worker, two_workers, capsys):
    outs = {}
    for n, client in ((1, one_worker), (2, two_workers)):
        out = tmp_path / str(n)
        assert _sweep(out, "--grid", "num_levels=1:3:1", "--grid", "min_edge_ticks=0,2",
                      "--scheduler", client.scheduler.address, "--metric", "fills") == 0
        outs[n] = out
    assert (outs[1] / "sweep.csv").read_bytes() == (outs[2] / "sweep.csv").read_bytes()
    docs = [json.loads((outs[n] / "sweep.json").read_text()) for n in (1, 2)]
    assert docs[0].pop("timing") != docs[1].pop("timing")
    assert docs[0] == docs[1]
    with open(outs[2] / "sweep.csv", newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == ["num_levels", "min_edge_ticks", *METRICS]
    assert [row[:2] for row in table[1:]] == [["1", "0"], ["1", "2"], ["2", "0"], ["2", "2"], ["3", "0"], ["3", "2"]]
    doc = docs[1]
    assert doc["seed"] == 4 and doc["backend"] == "golden" and doc["events"] == 40
    assert doc["points"][5]["config"]["num_levels"] == 3 and doc["points"][5]["seeds"] == [session_seed(4, 5, 0)]
    assert set(doc["versions"]) >= {"nanoquote", "dask", "distributed", "python"}
    assert (outs[2] / "heatmap.png").read_bytes().startswith(b"\x89PNG")
    out = capsys.readouterr().out
    assert "6 point(s) x 1 session(s) x 40 events, backend golden" in out and "seed 4" in out
    assert "distributed." not in out


def test_one_grid_field_draws_a_line(tmp_path, two_workers):
    assert _sweep(tmp_path, "--grid", "quote_policy=legacy,exchange",
                  "--scheduler", two_workers.scheduler.address) == 0
    rows = list(csv.reader(open(tmp_path / "sweep.csv", newline="")))
    assert [r[0] for r in rows[1:]] == ["legacy", "exchange"]
    doc = json.loads((tmp_path / "sweep.json").read_text())
    # the risk limits follow each point's policy (off under legacy)
    assert [p["config"]["collar_ticks"] for p in doc["points"]] == [None, 100]
    assert (tmp_path / "heatmap.png").stat().st_size > 1000


@pytest.mark.parametrize("args, message", [
    (["--grid", "no_such_field=1,2"], "--grid 'no_such_field=1,2': unknown field 'no_such_field'; fields: "),
    (["--grid", "num_levels=1,two"], "--grid 'num_levels=1,two': 'two' is not an integer (num_levels is int)"),
    (["--grid", "inventory_skew_factor=0:1:0"], "STEP must be > 0"),
    (["--grid", "max_levels=2,4", "--grid", "num_levels=3"],
     "grid point 0 (max_levels=2, num_levels=3): config field 'num_levels': 3 is invalid"),
    (["--grid", "num_levels=4:12:2"], "grid point 3 (num_levels=10): config field 'num_levels': 10 is invalid"),
    (["--grid", "order_size=1,2", "--grid", "max_inventory=10,-1"],
     "grid point 1 (order_size=1, max_inventory=-1): config field 'max_inventory': -1 is invalid"),
    (["--grid", "order_size=1,2", "--set", "order_size=3"], "'order_size' both set and on the grid"),
    (["--grid", "quote_policy=legacy,exchange", "--policy", "legacy"], "'quote_policy' both set and on the grid"),
    (["--grid", "order_size=1,2", "--set", "tick_size=0"], "base configuration: config field 'tick_size'"),
    (["--grid", "order_size=1,2", "--config", "/no/such/file.toml"], "cannot read config file '/no/such/file.toml'"),
    (["--grid", "order_size=1,2", "--scheduler", "nowhere"], "scheduler 'nowhere': malformed address"),
])
def test_a_bad_grid_is_one_error_and_nothing_is_written(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert _sweep(out, *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nanoquote sweep: error: ") and message in err[0], err
    assert not out.exists()


def test_a_failing_point_fails_the_command_naming_it(tmp_path, capsys, monkeypatch):
    def failing(strategy, seed, updates):
        if strategy.config.order_size == 2:
            raise RuntimeError("the market broke")
        return play_market(strategy, seed, updates)

    monkeypatch.setattr(sweep, "play_market", failing)
    # workers in this process (threads), so that they see the patched session
    with distributed.LocalCluster(n_workers=1, processes=False, protocol="tcp", dashboard_address=None,
                                  scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                                  silence_logs=logging.CRITICAL) as local:
        code = _sweep(tmp_path / "out", "--grid", "order_size=1,2,3", "--scheduler", local.scheduler_address)
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"nanoquote sweep: error: grid point 1 (order_size=2), session 0, seed {session_seed(4, 1, 0)}: "
                   "RuntimeError: the market broke"]
    assert not (tmp_path / "out").exists()
