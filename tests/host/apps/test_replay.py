"""``nanoquote replay``: the public JSON Lines interface, run as a user would run it."""

import json
import os
import subprocess
import sys

import pytest
from nanoquote.host.strategy.orders import CancelOrder

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
    # "arm" cannot clear the latch; disarm stops (later records are only anomalies: cancel timeouts)
    assert all(r["event"] <= 3 for r in records if r["type"] != "anomaly")


@pytest.mark.parametrize("toml_policy, file_policy", [("legacy", "exchange"), ("exchange", "legacy")])
def test_file_config_policy_overrides_toml_risk_defaults(tmp_path, toml_policy, file_policy):
    """Every policy-defaulted risk limit (the dead-man timeout included) follows the file's
    policy, not the TOML base's."""
    from nanoquote.host.apps.replay import parse_events, resolve_config
    from nanoquote.host.strategy.config import EXCHANGE_RISK_DEFAULTS, MarketMakerConfig
    toml = tmp_path / "c.toml"
    toml.write_text(f'quote_policy = "{toml_policy}"\n')
    events = write_events(tmp_path / "e.jsonl", [{"type": "config", "quote_policy": file_policy}])
    config = resolve_config(parse_events(events.read_text().splitlines()), MarketMakerConfig.from_toml(toml))
    assert config.is_legacy == (file_policy == "legacy")
    expected = {name: None for name in EXCHANGE_RISK_DEFAULTS} if file_policy == "legacy" else EXCHANGE_RISK_DEFAULTS
    assert {name: getattr(config, name) for name in EXCHANGE_RISK_DEFAULTS} == expected


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


# -- cancel rejects and anomalies ---------------------------------------------------------


class AnomalousStrategy:
    """A golden strategy whose anomalies are known in advance, reported through the
    interface of MarketMakerStrategy: an ack of id >= 100 is an unknown id, a cancel
    reject is an invalid state, and a book with ts 777 a device fault after its actions."""

    def __init__(self, config):
        from nanoquote.host.strategy.market_maker import MarketMakerStrategy

        self._inner = MarketMakerStrategy("fake", 1, config)
        self._pending = []
        self._outbox = []
        self.anomaly_counts = __import__("collections").Counter()
        self.cancel_rejects = []

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def _report(self, kind, order_id, detail):
        from nanoquote.host.strategy.anomalies import Anomaly

        self._pending.append(Anomaly(kind, order_id, detail))
        self.anomaly_counts[kind.value] += 1

    def take_anomalies(self):
        taken, self._pending = self._pending, []
        return taken

    def on_order_ack(self, order_id):
        from nanoquote.host.strategy.anomalies import AnomalyKind

        if order_id >= 100:
            self._report(AnomalyKind.UNKNOWN_ID, order_id, f"ack of order {order_id}, never sent")
            return None
        return self._inner.on_order_ack(order_id)

    def on_cancel_reject(self, order_id, unknown_order=False):
        from nanoquote.host.strategy.anomalies import AnomalyKind

        self.cancel_rejects.append(order_id)
        self._report(AnomalyKind.INVALID_STATE, order_id, "cancel refused")
        self._outbox.append(CancelOrder(order_id))  # sent again, as while killed

    def take_actions(self):
        taken, self._outbox = self._outbox, []
        return self._inner.take_actions() + taken

    def on_market_data(self, book):
        from nanoquote.host.strategy.anomalies import AnomalyKind

        actions = self._inner.on_market_data(book)
        if book.ts == 777:
            self._report(AnomalyKind.DEVICE_FAULT, None, "device timed out")
        return actions


@pytest.fixture
def anomalous(monkeypatch):
    made = []

    def factory(config):
        made.append(AnomalousStrategy(config))
        return made[-1]

    monkeypatch.setattr("nanoquote.host.apps.replay_cli.golden_strategy", factory)
    return made


ANOMALOUS_EVENTS = [
    {"type": "arm"},
    {"type": "ack", "id": 100},
    {"type": "book", "ts": 777, "bid": 50000, "ask": 50025},
    {"type": "cancel_reject", "id": 2},
    {"type": "ack", "id": 101},
]


def test_anomaly_records_follow_actions_and_precede_state(tmp_path, capsys, anomalous):
    code, records, err = replay(capsys, write_events(tmp_path / "e.jsonl", ANOMALOUS_EVENTS), "--state")
    assert code == 0
    assert anomalous[0].cancel_rejects == [2]
    assert records[1] == {"event": 2, "type": "anomaly", "kind": "unknown-id", "id": 100,
                          "detail": "ack of order 100, never sent"}
    assert [r["type"] for r in records if r["event"] == 3] == ["order"] * 6 + ["anomaly", "state"]
    # Actions an exchange event leaves in take_actions() are reported with that event.
    assert [r["type"] for r in records if r["event"] == 4] == ["cancel", "anomaly", "state"]
    assert records[-5] == {"event": 4, "type": "cancel", "id": 2}
    assert [r for r in records if r["type"] == "anomaly"][1:] == [
        {"event": 3, "type": "anomaly", "kind": "device-fault", "id": None, "detail": "device timed out"},
        {"event": 4, "type": "anomaly", "kind": "invalid-state", "id": 2, "detail": "cancel refused"},
        {"event": 5, "type": "anomaly", "kind": "unknown-id", "id": 101, "detail": "ack of order 101, never sent"},
    ]
    assert err == "nanoquote replay: 4 anomalies: device-fault 1, invalid-state 1, unknown-id 2\n"


def test_strict_makes_an_anomaly_an_exit_1_after_all_output(tmp_path, capsys, anomalous):
    path = write_events(tmp_path / "e.jsonl", ANOMALOUS_EVENTS)
    code, records, err = replay(capsys, path, "--strict")
    assert code == 1 and len([r for r in records if r["type"] == "anomaly"]) == 4
    assert records[-1]["event"] == 5 and "4 anomalies" in err
    code, lenient, _ = replay(capsys, path)
    assert code == 0 and lenient == records


def test_no_anomaly_no_summary_and_strict_passes(tmp_path, capsys, anomalous):
    events = [{"type": "arm"}, {"type": "book", "ts": 0, "bid": 50000, "ask": 50025}, {"type": "ack", "id": 1}]
    code, records, err = replay(capsys, write_events(tmp_path / "e.jsonl", events), "--strict")
    assert code == 0 and err == "" and len(records) == 6


def test_one_anomaly_summary_is_singular(tmp_path, capsys, anomalous):
    code, _, err = replay(capsys, write_events(tmp_path / "e.jsonl", ANOMALOUS_EVENTS[:2]))
    assert code == 0 and err == "nanoquote replay: 1 anomaly: unknown-id 1\n"


def test_cancel_reject_event_is_parsed():
    from nanoquote.host.apps.replay import Event, ReplayError, parse_events

    assert parse_events(['{"type":"cancel_reject","id":7}']) == [Event(1, "cancel_reject", (7, False))]
    assert parse_events(['{"type":"cancel_reject","id":7,"unknown_order":true}']) == [
        Event(1, "cancel_reject", (7, True))]
    for bad, message in (('{"type":"cancel_reject"}', "needs field 'id'"),
                         ('{"type":"cancel_reject","id":1,"unknown_order":1}', "true or false"),
                         ('{"type":"cancel_reject","id":0}', "id must be >= 1"),
                         ('{"type":"cancel_reject","id":1,"qty":2}', "unknown field")):
        with pytest.raises(ReplayError, match=message):
            parse_events([bad])


# -- strict JSON ----------------------------------------------------------------------------


class _InfinitePnl:
    """A strategy's P&L book whose realized P&L overflows after the second fill."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    @property
    def realized_pnl(self):
        return float("-inf") if self._inner.fill_count >= 2 else self._inner.realized_pnl


def test_non_finite_output_is_an_error_not_infinity(tmp_path, capsys, monkeypatch):
    # The configuration's bounds keep the golden P&L finite; the check guards the output.
    class Overflowing(AnomalousStrategy):
        @property
        def base(self):
            return _InfinitePnl(self._inner.base)

    monkeypatch.setattr("nanoquote.host.apps.replay_cli.golden_strategy", Overflowing)
    fill = {"type": "fill", "id": 999, "side": "buy", "price": 50000, "qty": 1, "fee": 0.5, "ts": 0}
    path = write_events(tmp_path / "e.jsonl", [{"type": "arm"}, fill, fill, {"type": "disarm"}])
    code = main(["replay", str(path), "--state"])
    out, err = capsys.readouterr()
    assert code == 2 and "Infinity" not in out and "NaN" not in out
    assert [r["event"] for r in map(json.loads, out.splitlines()) if r["type"] == "state"] == [1, 2]
    assert err.count("\n") == 1 and "line 3" in err and "realized_pnl" in err and "-inf" in err


def test_dumps_record_is_strict_json():
    from nanoquote.host.apps.replay import ReplayError, dumps_record

    assert dumps_record({"event": 1, "type": "state", "x": 1.5}) == '{"event":1,"type":"state","x":1.5}'
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ReplayError, match="line 4: state record field 'x'"):
            dumps_record({"event": 4, "type": "state", "x": bad})


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants_are_refused_on_input(tmp_path, capsys, token):
    path = tmp_path / "e.jsonl"
    path.write_text('{"type":"fill","id":1,"side":"buy","price":5,"qty":1,"fee":' + token + ',"ts":0}\n')
    code, records, err = replay(capsys, path)
    assert code == 2 and records == [] and "line 1: invalid JSON" in err and token in err


# -- streaming ------------------------------------------------------------------------------


@pytest.mark.slow
def test_replay_memory_does_not_grow_with_the_file(tmp_path, monkeypatch, capsys):
    import tracemalloc

    path = tmp_path / "big.jsonl"
    with path.open("w") as f:
        f.write('{"type":"disarm"}\n')
        for i in range(40_000):
            f.write(json.dumps({"type": "book", "ts": i, "bid": 50000 + i % 7, "ask": 50025 + i % 7}) + "\n")
    size = path.stat().st_size
    import nanoquote.host.apps.replay_cli  # noqa: F401  (imports are not the replay's memory)

    with open(os.devnull, "w") as sink:
        monkeypatch.setattr("sys.stdout", sink)
        tracemalloc.start()
        try:
            code = main(["replay", str(path), "--state"])
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert code == 0
    assert peak < size / 4, f"peak {peak} bytes for a {size}-byte file"


def test_stdin_is_validated_before_anything_runs(monkeypatch, capsys):
    import io
    monkeypatch.setattr("sys.stdin", io.StringIO('{"type":"arm"}\n{"type":"book","ts":0,"bid":50000,"ask":50025}\n'
                                                 '{"type":"teleport"}\n'))
    code, records, err = replay(capsys, "-")
    assert code == 2 and records == [] and "<stdin>: line 3: unknown event type" in err


def test_errors_name_the_file(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"type":"arm"}\n{"type":"ack"}\n')
    code, _, err = replay(capsys, path)
    assert code == 2 and err == f"nanoquote replay: error: {path}: line 2: ack event needs field 'id'\n"


def test_toml_with_top_level_keys_beside_strategy_is_refused(tmp_path, capsys):
    toml = tmp_path / "c.toml"
    toml.write_text('num_levels = 1\n[strategy]\nbase_spread_ticks = 3\n')
    events = write_events(tmp_path / "e.jsonl", [{"type": "arm"}])
    code, records, err = replay(capsys, events, "--config", toml)
    assert code == 2 and records == [] and str(toml) in err and "'num_levels'" in err
