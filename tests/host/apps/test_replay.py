"""``nanoquote replay``: the public JSON Lines interface, run as a user would run it."""

import json
import subprocess
import sys

import pytest

from nanoquote.cli import main

SPEC_CASES = [
    ("legacy", 50000, 50025, 0, [49987, 49962, 49937], [50037, 50062, 50087]),
    ("legacy", 50000, 50050, 50, [], [50025, 50050, 50075]),
    ("legacy", 50000, 50050, -50, [50025, 50000, 49975], []),
    ("exchange", 50000, 50025, 0, [49975, 49950, 49925], [50050, 50075, 50100]),
    ("exchange", 50000, 50025, 10, [49975, 49950, 49925], [50050, 50075, 50100]),
    ("exchange", 50000, 50025, 30, [49950, 49925, 49900], [50050, 50075, 50100]),
    ("exchange", 50000, 50025, -30, [49975, 49950, 49925], [50075, 50100, 50125]),
    ("exchange", 50000, 50050, 0, [50000, 49975, 49950], [50050, 50075, 50100]),
]


def write_events(path, events):
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def replay(capsys, *args):
    code = main(["replay", *map(str, args)])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


@pytest.mark.parametrize("policy, bid, ask, position, bids, asks", SPEC_CASES)
def test_spec_cases_round_trip(tmp_path, capsys, policy, bid, ask, position, bids, asks):
    # Reach the position through a fill of an unknown order: the exchange says it happened.
    side = "buy" if position > 0 else "sell"
    events = [{"type": "config", "quote_policy": policy, "max_inventory": 50}]
    if position:
        events.append({"type": "fill", "id": 999, "side": side, "price": 50000,
                       "qty": abs(position), "fee": 0.0, "ts": 0})
    events += [{"type": "arm"}, {"type": "book", "ts": 100_000_000, "bid": bid, "ask": ask}]
    code, records, err = replay(capsys, write_events(tmp_path / "e.jsonl", events), "--state")
    assert code == 0, err
    orders = [r for r in records if r["type"] == "order"]
    assert [r["price"] for r in orders if r["side"] == "buy"] == bids
    assert [r["price"] for r in orders if r["side"] == "sell"] == asks
    assert all(r["event"] == len(events) and r["qty"] == 5 for r in orders)
    assert [r["id"] for r in orders] == list(range(1, len(orders) + 1))
    state = records[-1]
    assert state["type"] == "state" and state["position"] == position
    assert state["bid_ids"] == [r["id"] for r in orders if r["side"] == "buy"]
    assert state["open_bid_qty"] == 5 * len(bids) and state["fair_value"] == (bid + ask) // 2


def test_full_lifecycle_records(tmp_path, capsys):
    events = [
        {"type": "arm"},
        {"type": "book", "ts": 0, "bid": 50000, "ask": 50025},
        {"type": "ack", "id": 1},
        {"type": "fill", "id": 1, "side": "buy", "price": 49975, "qty": 5, "fee": 0.5, "ts": 1},
        {"type": "book", "ts": 100_000_000, "bid": 50000, "ask": 50025},
        {"type": "cancel", "id": 3},
        {"type": "reject", "id": 4},
    ]
    code, records, _ = replay(capsys, write_events(tmp_path / "e.jsonl", events), "--state")
    assert code == 0
    states = [r for r in records if r["type"] == "state"]
    assert [s["event"] for s in states] == [1, 2, 3, 4, 5, 6, 7]
    assert states[3]["position"] == 5 and states[3]["realized_pnl"] == -0.5
    assert states[3]["unrealized_pnl"] == pytest.approx((50012 - 49975) / 25 * 12.5 * 5)
    # Event 5 requotes with position 5: skew 2.5 raw keeps the ladder; 49975 is re-posted.
    event5 = [r for r in records if r["event"] == 5 and r["type"] != "state"]
    assert event5 == [{"event": 5, "type": "order", "id": 7, "side": "buy", "price": 49975, "qty": 5}]
    assert states[-1]["bid_ids"] == [2, 7] and states[-1]["ask_ids"] == [5, 6]


def test_policy_flag_and_toml_config(tmp_path, capsys):
    toml = tmp_path / "c.toml"
    toml.write_text("num_levels = 1\n")
    events = write_events(tmp_path / "e.jsonl", [{"type": "arm"}, {"type": "book", "ts": 100_000_000,
                                                                   "bid": 50000, "ask": 50025}])
    code, records, _ = replay(capsys, events, "--config", toml, "--policy", "legacy")
    assert code == 0 and [r["price"] for r in records] == [49987, 50037]


@pytest.mark.parametrize(
    "lines, message",
    [
        (['{"type":"arm"}', "{not json"], "line 2: invalid JSON"),
        (['{"type":"book","ts":1,"bid":100}'], "line 1: book event needs field 'ask'"),
        (['{"type":"book","ts":1,"bid":0,"ask":5}'], "line 1: book best_bid must be in"),
        (['{"type":"book","ts":-1,"bid":1,"ask":5}'], "line 1: book ts must be in"),
        (['{"type":"fill","id":1,"side":"long","price":5,"qty":1,"fee":0,"ts":0}'], "line 1: fill field 'side'"),
        (['{"type":"fill","id":1,"side":"buy","price":5,"qty":0,"fee":0,"ts":0}'], "line 1: fill qty"),
        (['{"type":"ack"}'], "line 1: ack event needs field 'id'"),
        (['{"type":"ack","id":"7"}'], "line 1: ack field 'id' must be an integer"),
        (['{"type":"teleport"}'], "line 1: unknown event type 'teleport'"),
        (['{"type":"arm"}', '{"type":"config"}'], "line 2: a config event is only allowed on the first line"),
        (['{"type":"config","num_levels":99}'], "line 1: config field 'num_levels'"),
        (['{"type":"config","levels":3}'], "line 1: unknown config field(s) 'levels'"),
        (['[1,2]'], "line 1: each line must be a JSON object"),
        (['{"type":"book","ts":1,"bid":1,"ask":5,"extra":1}'], "line 1: book event has unknown field"),
    ],
)
def test_malformed_lines(tmp_path, capsys, lines, message):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    code, records, err = replay(capsys, path)
    assert code == 2 and records == []
    assert message in err and err.count("\n") == 1


def test_malformed_file_from_the_command_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"type":"arm"}\n{"type":"book","ts":5,"bid":100,"ask":"x"}\n')
    proc = subprocess.run([sys.executable, "-m", "nanoquote.cli", "replay", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "line 2" in proc.stderr and "'ask'" in proc.stderr


def test_missing_file(tmp_path, capsys):
    code, _, err = replay(capsys, tmp_path / "nope.jsonl")
    assert code == 2 and "cannot read" in err


def test_kill_and_rearm_extensions_emit_cancels(tmp_path, capsys):
    events = [{"type": "arm"}, {"type": "book", "ts": 0, "bid": 50000, "ask": 50025},
              {"type": "kill"}, {"type": "arm"}, {"type": "book", "ts": 10**9, "bid": 50000, "ask": 50025},
              {"type": "rearm"}, {"type": "disarm"}, {"type": "book", "ts": 2 * 10**9, "bid": 50000, "ask": 50025}]
    code, records, _ = replay(capsys, write_events(tmp_path / "e.jsonl", events))
    assert code == 0
    assert [r for r in records if r["event"] == 3] == [
        {"event": 3, "type": "cancel", "id": i} for i in (1, 2, 3, 4, 5, 6)]
    assert all(r["event"] <= 3 for r in records)  # "arm" cannot clear the latch; disarm stops


def test_file_config_policy_overrides_toml_risk_defaults(tmp_path, capsys):
    toml = tmp_path / "c.toml"
    toml.write_text('quote_policy = "legacy"\n')
    events = write_events(tmp_path / "e.jsonl", [{"type": "config", "quote_policy": "exchange"}])
    from nanoquote.host.apps.replay import parse_events, resolve_config
    from nanoquote.host.strategy.config import MarketMakerConfig
    config = resolve_config(parse_events(events.read_text().splitlines()), MarketMakerConfig.from_toml(toml))
    assert not config.is_legacy and config.collar_ticks == 100


def test_reads_stdin(monkeypatch, capsys):
    import io
    monkeypatch.setattr("sys.stdin", io.StringIO('{"type":"arm"}\n{"type":"book","ts":0,"bid":50000,"ask":50025}\n'))
    code, records, _ = replay(capsys, "-")
    assert code == 0 and len(records) == 6


@pytest.mark.parametrize("line, message", [
    ('{"type":"cancel","id":0}', "cancel id must be >= 1"),
    ('{"type":"fill","id":1,"side":"buy","price":5,"qty":1,"fee":"x","ts":0}', "'fee' must be a finite"),
])
def test_more_malformed_lines(tmp_path, capsys, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n" + line + "\n")
    code, _, err = replay(capsys, path)
    assert code == 2 and "line 2: " in err and message in err
