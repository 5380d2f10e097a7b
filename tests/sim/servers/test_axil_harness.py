"""The Verilator server's C++ AXI4-Lite harness driven directly (no socket, no request loop):
its error responses are the register block's, exact, and a batch stops at the first one;
its traced builds dump every edge."""

from __future__ import annotations

import re

import pytest
from nanoquote.host.device.batch import Idle, Poll, Read, Write
from nanoquote.host.device.bus import Resp
from nanoquote.hw.contract.register_map import MAGIC, register_map
from nanoquote.sim.servers.verilator_server import Harness, HarnessExited, half_period_ps
from nanoquote.sim.verilator import build_axil, random_reset_plusargs

pytestmark = pytest.mark.rtl

RMAP = register_map()
SCRATCH = RMAP["SCRATCH"].address
#: a word no register occupies
HOLE = min(a for a in range(0, 1 << 12, 4) if a not in {a for r in RMAP for a in r.addresses})


@pytest.fixture(scope="module")
def harness():
    h = Harness(build_axil().executable, 12)
    yield h
    assert h.close() == 0


def test_accesses_and_polls(harness):
    ops = [Write(SCRATCH, 0x11223344), Write(SCRATCH, 0xAABBCCDD, 0b0110), Read(SCRATCH), Idle(5),
           Poll(SCRATCH, 0x00BB0000, 3, 2), Poll(SCRATCH, 1 << 31, 4, 1), Read(RMAP["MAGIC"].address)]
    assert harness.perform(ops) == (Resp.OKAY, [None, None, 0x11BBCC44, None, 0x11BBCC44, 0x11BBCC44, MAGIC])


def test_an_unmapped_address_answers_decerr_and_ends_the_batch(harness):
    assert harness.perform([Write(SCRATCH, 7), Read(HOLE), Write(SCRATCH, 8)]) == (Resp.DECERR, [None])
    assert harness.perform([Read(SCRATCH), Write(HOLE, 0xFFFFFFFF)]) == (Resp.DECERR, [7])
    assert harness.perform([Poll(HOLE, 1, 5)]) == (Resp.DECERR, [])


def test_a_write_to_a_read_only_register_answers_the_register_blocks_slverr(harness):
    magic = RMAP["MAGIC"].address
    assert harness.perform([Write(magic, 0), Read(magic)]) == (Resp.SLVERR, [])
    assert harness.perform([Read(magic)]) == (Resp.OKAY, [MAGIC])
    book_bid = RMAP["BOOK_BID"]
    reserved = ~book_bid.word_mask(0) & 0xFFFFFFFF
    assert harness.perform([Write(book_bid.address, reserved)]) == (Resp.SLVERR, [])
    assert harness.perform([Write(book_bid.address, reserved | 0x1234, 0b0111), Read(book_bid.address)]) == (
        Resp.OKAY, [None, 0x1234])  # the reserved bits were not strobed
    assert RMAP["ERRORS"].unpack(harness.perform([Read(RMAP["ERRORS"].address)])[1][0])["bus_error"] == 1


def test_an_address_beyond_the_bus_answers_decerr_without_an_access(harness):
    harness.perform([Write(RMAP["ERRORS"].address, 0xF)])
    assert harness.perform([Read(SCRATCH), Read(1 << 12), Read(SCRATCH)]) == (Resp.DECERR, [7])
    assert harness.perform([Write(SCRATCH | 1 << 12, 9)]) == (Resp.DECERR, [])
    # no access reached the register block: it flagged no bus error, SCRATCH is unchanged
    assert harness.perform([Read(RMAP["ERRORS"].address), Read(SCRATCH)]) == (Resp.OKAY, [0, 7])


def test_random_reset_start_values_still_identify():
    h = Harness(build_axil().executable, 12, random_reset_plusargs(11))
    try:
        assert h.perform([Read(RMAP["MAGIC"].address)]) == (Resp.OKAY, [MAGIC])
    finally:
        assert h.close() == 0


def _cycles_reported(err: str) -> int:
    """The harness's own count of simulated cycles, from its last line."""
    match = re.search(r"axil_harness: \d+ requests, (\d+) cycles simulated", err)
    assert match, err
    return int(match.group(1))


def test_vcd_waves_hold_every_clock_edge_and_the_bus_values(tmp_path, capfd):
    """A traced harness dumps both edges of every simulated cycle, at the build clock's
    half period, with the values the bus carried."""
    waves = tmp_path / "top.vcd"
    h = Harness(build_axil(waves=".vcd").executable, 12, waves=waves)
    try:
        assert h.perform([Write(SCRATCH, 0x11223344), Idle(7), Read(SCRATCH)]) == (Resp.OKAY, [None, None, 0x11223344])
    finally:
        assert h.close() == 0
    cycles = _cycles_reported(capfd.readouterr().err)
    text = waves.read_text()
    head, body = text.split("$enddefinitions", 1)
    ids: dict[str, set[str]] = {}  # a name may be declared in several scopes
    for code, name in re.findall(r"\$var \w+ \d+ (\S+) (\w+) (?:\[[^\]]*\] )?\$end", head):
        ids.setdefault(name, set()).add(code)
    times = [int(t) for t in re.findall(r"^#(\d+)$", body, re.M)]
    assert times[-1] == (2 * cycles - 1) * half_period_ps()  # the last edge of the last cycle
    for clk in ids["clk"]:
        assert len(re.findall(rf"^1{re.escape(clk)}$", body, re.M)) == cycles  # one rising edge each
    assert any(f"b{0x11223344:032b} {code}\n" in body for code in ids["axil__wdata"])


def test_a_harness_built_without_tracing_refuses_waves(tmp_path):
    with pytest.raises(HarnessExited, match="did not start"):
        Harness(build_axil().executable, 12, waves=tmp_path / "top.vcd")
    assert not (tmp_path / "top.vcd").exists()
