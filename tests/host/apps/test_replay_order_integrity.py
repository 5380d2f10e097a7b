"""Order integrity through ``nanoquote replay``, with the real strategy on every backend."""

from __future__ import annotations

import json

import pytest

from nanoquote.cli import main


def _replay(tmp_path, capsys, events, *args):
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    code = main(["replay", str(path), *args])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


BOOK = {"type": "book", "ts": 0, "bid": 50000, "ask": 50025}


def test_a_reject_after_an_ack_keeps_the_order_and_is_reported(tmp_path, capsys):
    code, records, err = _replay(tmp_path, capsys, [
        {"type": "arm"}, BOOK, {"type": "ack", "id": 1}, {"type": "kill"}, {"type": "reject", "id": 1}],
        "--state")
    assert code == 0
    state = [r for r in records if r["type"] == "state"][-1]
    assert 1 in state["bid_ids"] and state["open_bid_qty"] == 15  # order 1 still counts
    anomalies = [r for r in records if r["type"] == "anomaly"]
    assert anomalies == [{"event": 5, "type": "anomaly", "kind": "reject-of-live-order", "id": 1,
                          "detail": "reject of order 1: reject-of-live-order"}]
    assert "1 anomaly" in err


@pytest.mark.parametrize("backend", ["golden", "model"])
def test_a_fill_past_the_domain_kills_identically_on_every_backend(tmp_path, capsys, backend):
    events = [{"type": "arm"}, BOOK, {"type": "ack", "id": 1},
              {"type": "fill", "id": 1, "side": "buy", "price": 49975, "qty": 40000},
              {"type": "book", "ts": 10**9, "bid": 50000, "ask": 50025}]
    code, records, err = _replay(tmp_path, capsys, events, "--state", "--backend", backend)
    assert code == 0 and "Traceback" not in err
    fill_records = [r for r in records if r["event"] == 4]
    assert [r["type"] for r in fill_records] == ["cancel"] * 5 + ["anomaly", "anomaly", "state"]
    assert [r["kind"] for r in fill_records if r["type"] == "anomaly"] == ["overfill", "position-limit"]
    assert fill_records[-1]["position"] == 40000
    assert [r["type"] for r in records if r["event"] == 5] == ["state"]  # no ladder, no device access


def test_backends_agree_on_the_fill_past_the_domain(tmp_path, capsys):
    events = [{"type": "arm"}, BOOK, {"type": "fill", "id": 2, "side": "buy", "price": 49950, "qty": 40000},
              {"type": "book", "ts": 10**9, "bid": 50100, "ask": 50125}]
    outputs = [_replay(tmp_path, capsys, events, "--state", "--backend", b)[1] for b in ("golden", "model")]
    assert outputs[0] == outputs[1]


def test_strict_fails_on_any_anomaly(tmp_path, capsys):
    code, _, err = _replay(tmp_path, capsys, [{"type": "arm"}, BOOK, {"type": "ack", "id": 99}], "--strict")
    assert code == 1 and "unknown-id" in err
    code, _, _ = _replay(tmp_path, capsys, [{"type": "arm"}, BOOK, {"type": "ack", "id": 1}], "--strict")
    assert code == 0
