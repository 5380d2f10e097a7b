"""The bulk conformance engine: the C++ harness, its field tables and its comparison.

The harness's ladders are checked against the golden model through the cocotb path's own
expectation (``scenario.expect``, the golden ladder packed by ``PortCodec``), so neither
the harness's packing nor the bulk engine's model arrays vouch for themselves; a flipped
output bit anywhere in the port must be caught at its vector and named by field.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.hdl import unsigned
from amaranth.lib import data
from nanoquote.hw.contract.widths import DatapathWidths
from nanoquote.hw.gateware.layouts import ladder_out_layout, market_update_layout
from nanoquote.sim.conformance.amaranth_runner import Handshake
from nanoquote.sim.conformance.bulk import (
    BulkHarness,
    check_shard,
    golden_sample_check,
    model_expectation,
    plan_shards,
    port_fields,
)
from nanoquote.sim.conformance.runs import run_bulk
from nanoquote.sim.conformance.scenario import expect
from nanoquote.sim.conformance.vectors import random_scenario
from nanoquote.sim.verilator import build_bulk, random_reset_plusargs

from nanoquote.cli import main


@pytest.mark.parametrize(("levels", "price_bits"), [(1, 20), (8, 31), (16, 32)])
def test_port_fields_cover_every_bit_once(levels: int, price_bits: int) -> None:
    for layout in (ladder_out_layout(levels, price_bits), market_update_layout(price_bits)):
        fields = port_fields(layout)
        bits = sorted(b for f in fields for b in range(f.offset, f.offset + f.width))
        assert bits == list(range(layout.size))
    names = [f.name for f in port_fields(ladder_out_layout(levels, price_bits))]
    assert names[:3] == ["ts", "bid_price[0]", "bid_price[1]" if levels > 1 else "ask_price[0]"]


def test_a_field_wider_than_the_harness_moves_is_refused() -> None:
    with pytest.raises(ValueError, match="wider than 64 bits"):
        port_fields(data.StructLayout({"a": unsigned(8), "wide": unsigned(65)}))


def test_golden_sample_catches_a_wrong_model_ladder_and_refresh() -> None:
    seed = 3
    print(f"seed {seed}")
    segments = random_scenario(random.Random(seed), "exchange", 3000, 8, 31, segment_size=(200, 900))
    widths = DatapathWidths(8, 31)
    fields = port_fields(ladder_out_layout(8, 31))
    expected = model_expectation(segments, widths, fields)
    checked, bad, _ = golden_sample_check(segments, expected, fields, widths, random.Random(1), 1.0)
    assert checked == 3000 and bad == []
    col = {f.name: j for j, f in enumerate(fields)}
    broken = expected.copy()
    broken[col["bid_count"], 17] += 1
    broken[col["refresh"], 40] ^= 1
    _, bad, reports = golden_sample_check(segments, broken, fields, widths, random.Random(1), 1.0)
    assert bad == [17, 40] and "bid_count: model" in reports[0] and "refresh: model" in reports[1]


@pytest.mark.rtl
@pytest.mark.parametrize(("policy", "seed"), [("exchange", 11), ("legacy", 12)])
def test_harness_ladders_equal_the_golden_expectation(policy: str, seed: int) -> None:
    """Raw ladders from the harness, rebuilt to port values, equal golden's (every vector)."""
    print(f"seed {seed}")
    segments = random_scenario(random.Random(seed), policy, 6000, 8, 31, segment_size=(50, 800))
    golden = expect(segments, DatapathWidths(8, 31)).golden
    with BulkHarness(build_bulk(8, 31).executable, 8, 31) as harness:
        harness.submit(segments, Handshake(0.2, 0.3, seed))
        outputs, extra, cycles = harness.collect()
        got = [harness.raw(outputs[:, j]) for j in range(outputs.shape[1])]
    assert extra == 0 and cycles > 6000 * 1.3
    assert got == golden


@pytest.mark.rtl
@pytest.mark.parametrize("policy", ["exchange", "legacy"])
def test_bulk_run_finds_no_mismatch(policy: str) -> None:
    seed = 21 if policy == "exchange" else 22
    print(f"seed {seed}")
    result = run_bulk(policy, 300_000, seed, chunk_vectors=100_000, golden_share=0.01,
                      log=lambda _line: None)
    assert (result.vectors, result.mismatches, result.golden_checked) == (300_000, 0, 3000)
    assert result.cycles > 300_000


@pytest.mark.rtl
@pytest.mark.parametrize("field", ["ts", "bid_price[0]", "ask_price[7]", "bid_post", "refresh"])
def test_a_flipped_output_bit_is_caught_at_its_vector(field: str) -> None:
    """The fault injected after the simulation, before the comparison: one bit, one vector."""
    fields = {f.name: f for f in port_fields(ladder_out_layout(8, 31))}
    bit = fields[field].offset + fields[field].width - 1
    seed = 5
    print(f"seed {seed}")
    result = run_bulk("exchange", 50_000, seed, chunk_vectors=20_000, corrupt=(1, 777, bit),
                      log=lambda _line: None)
    assert (result.mismatches, result.rtl_mismatches, result.model_mismatches) == (1, 1, 0)
    assert result.reports[0].startswith("shard 1 ") and "vector #777:" in result.reports[0]
    assert result.reports[0].split("vector #777: ")[1].startswith(field.split("[")[0] + ":")


@pytest.mark.rtl
def test_a_shard_checks_the_same_vectors_alone_as_in_its_run() -> None:
    seed = 8
    print(f"seed {seed}")
    shards = plan_shards("legacy", 25_000, seed, chunk_vectors=10_000, golden_share=0.002)
    assert [s.vectors for s in shards] == [10_000, 10_000, 5_000]
    alone = check_shard(shards[2])
    again = check_shard(shards[2])
    assert (alone.vectors, alone.cycles, alone.golden_checked) == (again.vectors, again.cycles, 5000 * 0.002)
    assert np.array_equal(shards[2].scenario()[0].bid, shards[2].scenario()[0].bid)
    assert alone.rtl_mismatched == [] and alone.model_mismatched == []


@pytest.mark.rtl
def test_bulk_exhaustive_and_random_reset() -> None:
    seed = 9
    print(f"seed {seed}")
    result = run_bulk("exchange", 1, seed, exhaustive=True, plusargs=random_reset_plusargs(seed),
                      handshake=Handshake(0.1, 0.3, seed), log=lambda _line: None)
    assert result.vectors > 500_000 and result.mismatches == 0, result.reports


@pytest.mark.rtl
def test_cli_bulk_engine(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conformance", "--engine", "bulk", "--vectors", "20000", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "verified vectors/s end to end" in out
    assert out.rstrip().endswith("conformance: 20000 vectors, 0 mismatches")


def test_cli_bulk_engine_needs_verilator(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conformance", "--engine", "bulk", "--backend", "amaranth"]) == 2
    assert "--engine bulk needs --backend verilator" in capsys.readouterr().err
    assert main(["conformance", "--workers", "2"]) == 2
    assert "need --engine bulk" in capsys.readouterr().err
