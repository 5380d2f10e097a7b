"""``nanoquote demo``: the strategy on a backend against the market and exchange simulators.

Backends decide alike, so the same seed gives the same session on each; the report's
numbers are recounted here from the session's log by other routes than ``summarize``
takes (the exchange's message log, cash flows, a cost basis instead of an average cost).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from fractions import Fraction

import pytest
from nanoquote.host.apps.demo import demo_market, run_demo
from nanoquote.host.apps.demo_report import PLOTS, series, write_report
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.orders import Side
from nanoquote.sim.market_csv import SAMPLE_PATH
from nanoquote.sim.servers.verilator_server import half_period_ps
from nanoquote.sim.trading_session import SessionLog

from nanoquote.cli import main

LEGACY = MarketMakerConfig(quote_policy="legacy", max_inventory=10)


def _session(backend: str, config: MarketMakerConfig, seed: int, events: int):
    return run_demo(backend, config, demo_market(config, seed, events), seed=seed)


def _recount(log: SessionLog, config: MarketMakerConfig) -> dict[str, object]:
    """The report's numbers from the exchange's messages and the last book."""
    money = Fraction(config.tick_value) / config.tick_size
    fills = [m for m in log.messages if m.direction == "out" and m.kind == "fill"]
    position, cash, basis, realized = 0, Fraction(0), Fraction(0), Fraction(0)
    positions = [0]
    for m in fills:
        signed = m.side.sign * m.qty
        cash -= signed * m.price
        if position == 0 or (position > 0) == (signed > 0):
            basis += signed * m.price
        else:  # closing, maybe through zero: the closed part leaves at its share of the basis
            closed = min(abs(position), m.qty)
            share = basis * closed / abs(position)
            realized += (closed * m.price if position > 0 else -closed * m.price) - share
            basis -= share
            if m.qty > closed:
                basis = Fraction(signed + (closed if signed < 0 else -closed)) * m.price
        position += signed
        positions.append(position)
    last = next(e for e in reversed(log.entries) if e.kind == "book")
    mid = Fraction(last.best_bid + last.best_ask, 2)
    fees = sum((m.fee for m in fills), Fraction(0))
    rebates = sum((m.rebate for m in fills), Fraction(0))
    unrealized = position * mid - basis
    inbound = Counter(m.kind for m in log.messages if m.direction == "in")
    return {
        "total_pnl": (cash + position * mid) * money - fees + rebates,
        "realized_pnl": realized * money,
        "unrealized_pnl": unrealized * money,
        "fees": fees, "rebates": rebates,
        "fills": len(fills), "filled_qty": sum(m.qty for m in fills),
        "final_position": position, "position_min": min(positions), "position_max": max(positions),
        "orders": inbound["new"], "cancels": inbound["cancel"],
        "rejects": dict(Counter(m.reason for m in log.messages if m.direction == "out" and m.kind == "reject")),
    }


def _exposure(log: SessionLog) -> int:
    return max(max(e.true_position + sum(r.remaining for r in e.resting if r.side is Side.BUY),
                   -e.true_position + sum(r.remaining for r in e.resting if r.side is Side.SELL))
               for e in log.entries)


def test_the_same_seed_gives_the_same_session_on_golden_and_model():
    golden = _session("golden", MarketMakerConfig(), 3, 600)
    model = _session("model", MarketMakerConfig(), 3, 600)
    assert golden.log.messages == model.log.messages  # every order, cancel, ack, fill, reject
    assert golden.summary == model.summary and golden.summary["fills"] > 10
    assert golden.counters is None and model.counters["updates"] == 600


def test_the_report_recounts_from_the_log(tmp_path):
    config = MarketMakerConfig()
    run = _session("golden", config, 2, 1500)
    write_report(run, tmp_path)
    data = json.loads((tmp_path / "summary.json").read_text())
    recount = _recount(run.log, config)
    for key, value in recount.items():
        if isinstance(value, Fraction):
            assert Fraction(data["exact"][key]) == value, key
            assert data["summary"][key] == pytest.approx(float(value)), key
        else:
            assert data["summary"][key] == value, key
    assert recount["fills"] > 50 and recount["final_position"] != 0  # a session with something to count
    assert data["summary"]["max_exposure"] == _exposure(run.log)
    assert (data["backend"], data["seed"], data["market"]) == ("golden", 2, "simulator")
    assert data["config"]["quote_policy"] == "exchange" and data["versions"]["nanoquote"]
    # the plotted curves end at the summary's numbers
    s = series(run.log, config.tick_size, config.tick_value)
    assert s.total[-1] == pytest.approx(float(recount["total_pnl"]))
    assert s.realized[-1] == pytest.approx(float(recount["realized_pnl"]))
    assert s.position[-1] == recount["final_position"] and len(s.fills) == recount["fills"]


@pytest.mark.parametrize("seed", [1, 3, 7])
def test_exchange_policy_never_exceeds_the_limit(seed):
    config = MarketMakerConfig(max_inventory=10)
    run = _session("golden", config, seed, 1500)
    assert run.summary["fills"] > 0 and run.summary["rejects"] == {}
    assert _exposure(run.log) <= 10 and run.summary["max_exposure"] <= 10


def test_legacy_overshoots_and_is_rejected_off_grid(tmp_path, capsys):
    toml = tmp_path / "legacy.toml"
    toml.write_text('quote_policy = "exchange"\nmax_inventory = 10\n')
    out = tmp_path / "report"
    assert main(["demo", "--backend", "golden", "--policy", "legacy", "--config", str(toml), "--seed", "3",
                 "--events", "1500", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "OVER THE LIMIT" in text and "off-grid" in text and "legacy policy" in text
    data = json.loads((out / "summary.json").read_text())
    summary = data["summary"]
    assert data["config"]["quote_policy"] == "legacy" and summary["max_inventory"] == 10
    assert summary["max_exposure"] > 10 and max(summary["position_max"], -summary["position_min"]) > 10
    assert summary["rejects"].get("off-grid", 0) > 0
    direct = _session("golden", LEGACY, 3, 1500)
    assert _recount(direct.log, LEGACY)["rejects"] == summary["rejects"]


def test_the_report_files_are_written(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--backend", "model", "--events", "400", "--seed", "5", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "model backend, exchange policy, seed 5" in text and "device counter updates" in text
    html = (out / "report.html").read_text()
    for name in PLOTS:
        assert (out / name).read_bytes().startswith(b"\x89PNG") and f'src="{name}"' in html
    data = json.loads((out / "summary.json").read_text())
    assert data["device_counters"]["updates"] == 400 and data["summary"]["book_events"] == 400
    assert not (out / "simulator.log").read_text()  # the software device prints nothing


def test_recorded_market_data(tmp_path, capsys):
    out = tmp_path / "csv"
    assert main(["demo", "--backend", "golden", "--market", str(SAMPLE_PATH), "--events", "800",
                 "--out", str(out)]) == 0
    assert str(SAMPLE_PATH) in capsys.readouterr().out
    data = json.loads((out / "summary.json").read_text())
    assert data["market"] == str(SAMPLE_PATH) and data["seed"] is None
    assert data["summary"]["book_events"] == 800 and data["summary"]["fills"] > 0


@pytest.mark.parametrize("text, where", [
    ("ts_ns,bid,ask,bid_qty,ask_qty,trade_price,trade_qty,trade_side\n1,500000,500025,3,4,,,\n"
     "2,500025,500000,3,4,,,\n", ":3: "),  # a crossed book
    ("ts_ns,bid,ask,bid_qty\n", ":1: "),  # columns missing
])
def test_a_malformed_market_file_is_one_error_line(tmp_path, capsys, text, where):
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    assert main(["demo", "--backend", "golden", "--market", str(bad), "--out", str(tmp_path / "o")]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1, err
    assert lines[0].startswith("nanoquote demo: error: ") and f"{bad}{where}" in lines[0]


def test_a_bad_config_file_is_one_error_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("max_inventory = -1\n")
    assert main(["demo", "--backend", "golden", "--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nanoquote demo: error: ") and "max_inventory" in lines[0]


@pytest.mark.parametrize("args, why", [
    (["--backend", "golden", "--waves", "w.fst"], "--waves needs --backend verilator"),
    (["--backend", "model", "--waves", "w.vcd"], "--waves needs --backend verilator"),
    (["--waves", "w.txt"], "must end in .fst or .vcd"),
])
def test_waves_a_backend_cannot_write_are_one_error_line(tmp_path, capsys, args, why):
    assert main(["demo", *args, "--out", str(tmp_path / "o")]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1 and lines[0].startswith("nanoquote demo: error: ") and why in lines[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.rtl
def test_verilator_gives_the_golden_session_and_keeps_its_output_out(tmp_path, capfd):
    config = MarketMakerConfig()
    golden = _session("golden", config, 4, 300)
    out = tmp_path / "rtl"
    waves = tmp_path / "session.vcd"
    assert main(["demo", "--events", "300", "--seed", "4", "--out", str(out), "--waves", str(waves)]) == 0
    term_out, term_err = capfd.readouterr()  # verilator: the default backend
    assert "verilator backend" in term_out and f"waves: {waves}" in term_out and term_err == ""
    cycles = re.search(r"(\d+) cycles simulated", (out / "simulator.log").read_text())  # the harness's last line
    assert cycles is not None
    last_edge = (2 * int(cycles.group(1)) - 1) * half_period_ps()
    with waves.open("rb") as f:  # the session's waves run from reset to its last edge
        f.seek(-4096, 2)
        assert re.findall(rb"^#(\d+)$", f.read(), re.M)[-1] == str(last_edge).encode()
    data = json.loads((out / "summary.json").read_text())
    assert data["backend"] == "verilator" and data["device_counters"]["updates"] == 300
    assert data["exact"] == {k: str(v) for k, v in golden.summary.items() if isinstance(v, Fraction)}
    hardware = _session("verilator", config, 4, 300)
    assert hardware.log.messages == golden.log.messages
