"""The simulated board over its serial link: the whole path from ``SerialBus`` through a
pseudo-terminal, the UART pins (driven bit by bit by the harness), the host link and its
AXI4-Lite master, to the register block and the pipeline.

Differential sessions (the offloaded strategy over the serial link against the golden
strategy, both policies), error answers, corrupted frames (bit flips, truncation,
garbage, a bad length) that must change nothing, a timeout in the middle of a frame, the
host's resynchronisation and retries, and the link's throughput.
"""

from __future__ import annotations

import os
import random
import struct
import time

import pytest
from nanoquote.host.apps.replay import run_replay
from nanoquote.host.device.batch import BatchError, Idle, Poll, Read, Write
from nanoquote.host.device.bus import BusError, LinkError
from nanoquote.host.device.driver import QuoteDriver
from nanoquote.host.device.offload import offloaded_strategy
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.market_maker import MarketMakerStrategy
from nanoquote.host.strategy.quoting import BookUpdate
from nanoquote.hw.contract import link
from nanoquote.hw.contract.register_map import MAGIC, register_map
from nanoquote.hw.gateware.board import BOARD_CLOCK, SIM_CYCLES_PER_BIT
from nanoquote.sim.servers.board_server import SIM_QUIET, start_board_sim
from nanoquote.sim.sessions import session_events

pytestmark = pytest.mark.rtl

RMAP = register_map()
SCRATCH = RMAP["SCRATCH"].address
UPDATES = RMAP["COUNT_UPDATES"].address
SUBMIT = Write(RMAP["BOOK_SUBMIT"].address, RMAP["BOOK_SUBMIT"].pack(has_bid=1, has_ask=1))
SEED = int(os.environ.get("NANOQUOTE_LINK_SEED", "1"))

CONFIGS = [
    MarketMakerConfig(refresh_interval_ns=10**6),
    MarketMakerConfig(quote_policy="legacy", base_spread_ticks=3, inventory_skew_factor=1 / 3,
                      max_inventory=9, order_size=2, num_levels=4, tick_size=7, refresh_interval_ns=0),
]


@pytest.fixture(scope="module")
def board():
    with start_board_sim() as sim:
        yield sim


@pytest.fixture
def bus(board):
    bus = board.connect(timeout=10)
    yield bus
    bus.close()


def _raw_answers(bus, words_if_okay=0, wait=SIM_QUIET + 0.1):
    """Every answer frame the board sends until it has been quiet ``wait`` s (decoded; an
    OKAY answer carries ``words_if_okay`` result words)."""
    port = bus._serial
    port.timeout = wait
    data = b""
    while chunk := port.read(4096):
        data += chunk
    port.timeout = bus.timeout
    answers = []
    while data:
        assert data[0] == link.SYNC_ANSWER, data.hex()
        seq, status, done = link.ANSWER_HEADER.unpack(data[1:5])
        words = words_if_okay if status == 0 else 0
        size = link.answer_size(words)
        assert link.crc16(data[1:size]) == 0, data.hex()
        answers.append((seq, status, done, list(struct.unpack(f"<{words}I", data[5:5 + 4 * words]))))
        data = data[size:]
    return answers


def _state(bus):
    return bus.batch([Read(SCRATCH), Read(UPDATES)])


# -- the differential sessions ------------------------------------------------------------------


def test_offloaded_strategy_over_the_serial_link_matches_golden(board):
    bus = board.connect(timeout=30)
    try:
        for index, config in enumerate(CONFIGS):
            seed = 100 + index
            driver = QuoteDriver.open(bus)
            driver.rearm()
            driver.disarm()
            events = session_events(seed, config, 120)
            golden = list(run_replay(events, lambda c: MarketMakerStrategy("g", 1, c), config, with_state=True))
            frames = bus.frames
            offloaded = list(run_replay(events, lambda c: offloaded_strategy(c, bus), config, with_state=True))
            for g, o in zip(golden, offloaded, strict=False):
                assert g == o, f"seed {seed}: first difference at event {g['event']}"
            assert len(golden) == len(offloaded)
            assert any(r["type"] == "order" for r in golden)
            books = sum(1 for e in events if e.kind == "book")
            print(f"{config.quote_policy.value}: {len(events)} events, {books} book events, "
                  f"{bus.frames - frames} frames")
        assert bus.retried == 0
    finally:
        bus.close()


# -- what the link answers ------------------------------------------------------------------------


def test_reads_writes_and_error_answers(bus):
    assert bus.batch([Read(0), Read(4), Read(8)])[0] == MAGIC
    assert bus.batch([Write(SCRATCH, 0x1234_5678), Write(SCRATCH, 0xAB, 0b0001), Read(SCRATCH)]) == [
        None, None, 0x1234_56AB]
    with pytest.raises(BatchError, match=r"operation 2 of a batch \(write\): write of address 0x0000 "
                                         "answered SLVERR") as err:
        bus.batch([Write(SCRATCH, 1), Read(SCRATCH), Write(0, 5), Write(SCRATCH, 2)])
    assert (err.value.index, err.value.results) == (2, [None, 1])
    assert bus.read32(SCRATCH) == 1  # before the error performed, after it not
    with pytest.raises(BatchError, match="answered DECERR") as err:
        bus.batch([Read(SCRATCH), Read(0x1000)])  # beyond the 12-bit bus: no access
    assert (err.value.index, err.value.results) == (1, [1])
    with pytest.raises(BatchError, match="answered DECERR") as err:
        bus.batch([Write(SCRATCH, 3), Read(0x10000)])  # beyond the link's 16-bit addresses
    assert (err.value.index, err.value.results) == (1, [None])
    with pytest.raises(BusError, match="read of address 0x001c answered DECERR"):
        bus.read32(0x01C)
    assert bus.read32(SCRATCH) == 3 and bus.link_generation == 0


def test_a_long_batch_takes_several_frames(bus):
    rng = random.Random(SEED)
    values = [rng.getrandbits(32) for _ in range(300)]
    ops = []
    for value in values:
        ops += [Write(SCRATCH, value), Read(SCRATCH)]
    ops += [Idle(20_000), Poll(SCRATCH, 1 << 31, 3, 1000)]
    frames = bus.frames
    results = bus.batch(ops)
    assert results[1:600:2] == values
    assert results[-1] == values[-1]
    assert bus.frames - frames > 1


def test_a_quote_update_is_one_frame(bus):
    driver = QuoteDriver.open(bus)
    driver.configure(CONFIGS[0])
    driver.rearm()
    frames = bus.frames
    ladder = driver.quote(BookUpdate(10, 1000, 1004), inventory=(0, 0, 0))
    assert bus.frames == frames + 1 and ladder.ladder.mid == 1002
    driver.disarm()


# -- corrupted frames ---------------------------------------------------------------------------


def _frame_with_side_effects(seq, value):
    return link.encode_frame(seq, [link.write_command(SCRATCH, [value]),
                                   link.write_command(SUBMIT.address, [SUBMIT.value])])


@pytest.mark.parametrize("fault", ["bit flips", "truncation", "garbage", "bad length", "bad command"])
def test_a_corrupted_frame_changes_nothing_and_the_link_resynchronises(bus, fault):
    print(f"seed {SEED} (NANOQUOTE_LINK_SEED=<n> for another)")
    rng = random.Random(SEED)
    bus.write32(SCRATCH, 0x55)
    before = _state(bus)
    port = bus._serial
    good = _frame_with_side_effects(0x21, 0xBAD)
    trials = []
    if fault == "bit flips":
        for _ in range(8):
            bad = bytearray(good)
            position = rng.randrange(1, len(bad))  # after the sync byte
            bad[position] ^= 1 << rng.randrange(8)
            trials.append(bytes(bad))
    elif fault == "truncation":
        trials = [good[:rng.randrange(2, len(good) - 1)] for _ in range(4)]
    elif fault == "garbage":
        trials = [rng.randbytes(rng.randrange(1, 200)) for _ in range(4)]
    elif fault == "bad length":
        trials = [good[:2] + struct.pack("<H", link.MAX_FRAME_BYTES + 1) + good[4:]]
    else:
        trials = [link.encode_frame(0x22, bytes([0x77, 0, 0, 1]))]
    for bad in trials:
        port.write(bad)
        port.flush()
        for _seq, status, done, words in _raw_answers(bus):
            assert status in link.LINK_STATUS and done == 0 and words == [], (bad.hex(), status)
        assert _state(bus) == before, f"{bad.hex()} had a side effect"
    assert bus.read32(SCRATCH) == 0x55 and bus.retried == 0


def test_each_bad_frame_is_answered_with_its_status(bus):
    port = bus._serial
    good = _frame_with_side_effects(0x31, 0xBAD)
    flipped = bytearray(good)
    flipped[-4] ^= 0x01  # in the written value: only the CRC can tell
    cases = [(bytes(flipped), link.STATUS_BAD_CRC), (good[:-3], link.STATUS_TIMEOUT),
             (good[:2] + b"\xff\xff" + good[4:], link.STATUS_BAD_LENGTH),
             (link.encode_frame(0x31, bytes([0x10, 2, 0, 1])), link.STATUS_BAD_COMMAND)]  # misaligned
    before = _state(bus)
    for bad, status in cases:
        port.write(bad)
        port.flush()
        assert _raw_answers(bus) == [(0x31, status, 0, [])]
    assert _state(bus) == before


def test_a_timeout_in_the_middle_of_a_frame_is_recovered(bus):
    port = bus._serial
    good = link.encode_frame(0x41, [link.write_command(SCRATCH, [0x77]), link.read_command(SCRATCH, 1)])
    port.write(good[:5])  # the host stops mid-frame
    port.flush()
    time.sleep(0.2)
    assert _raw_answers(bus) == [(0x41, link.STATUS_TIMEOUT, 0, [])]
    port.write(good)
    port.flush()
    assert _raw_answers(bus, 1) == [(0x41, 0, 2, [0x77])]


def test_the_host_resynchronises_and_retries_only_what_is_safe(bus):
    port = bus._serial
    bus.write32(SCRATCH, 0x99)
    generation = bus.link_generation
    # A stray frame start that swallows the next request: the board answers it (cut short)
    # with another sequence number; the read is safe to repeat, and is.
    port.write(b"\x5a\x07\x00\x01")
    assert bus.read32(SCRATCH) == 0x99
    assert bus.retried == 1 and bus.link_generation > generation
    # The same before a write: the answer is lost, so it is not sent again, and indeed the
    # board never performed it.
    port.write(b"\x5a\x07\x00\x01")
    with pytest.raises(LinkError, match="it holds writes, so it is not sent again"):
        bus.write32(SCRATCH, 0x11)
    assert bus.read32(SCRATCH) == 0x99 and bus.retried == 1


# -- throughput --------------------------------------------------------------------------------


def test_link_throughput(bus):
    """Register accesses per second at the board's baud rate, from the bytes each access
    costs on the wire here, and the quote round trip it implies."""
    driver = QuoteDriver.open(bus)
    driver.configure(CONFIGS[0])
    driver.rearm()
    quotes = 50
    sent, received, frames = bus.bytes_sent, bus.bytes_received, bus.frames
    start = time.perf_counter()
    for k in range(quotes):
        driver.quote(BookUpdate(1000 + k, 2000 + 2 * (k % 7), 2004 + 2 * (k % 5)))
    wall = time.perf_counter() - start
    quote_bytes = (bus.bytes_sent - sent + bus.bytes_received - received) / quotes
    assert bus.frames - frames == quotes
    driver.disarm()
    # the whole captured ladder: two bursts of eight consecutive registers
    burst = [Read(RMAP[f"LADDER_{side}{i}"].address) for side in ("BID", "ASK") for i in range(8)]
    sent, received = bus.bytes_sent, bus.bytes_received
    rounds = 20
    for _ in range(rounds):
        bus.batch(burst)
    burst_bytes = (bus.bytes_sent - sent + bus.bytes_received - received) / rounds
    single_bytes = len(link.encode_frame(0, [link.read_command(0, 1)])) + link.answer_size(1)
    baud = BOARD_CLOCK.baud
    wire = 10 / baud  # seconds per byte, 8N1
    print(f"at {baud} baud: one read a frame {1 / (single_bytes * wire):,.0f} accesses/s "
          f"({single_bytes} bytes); 16 registers in two bursts {16 / (burst_bytes * wire):,.0f} accesses/s "
          f"({burst_bytes:.0f} bytes); a quote update {quote_bytes:.0f} bytes, "
          f"{quote_bytes * wire * 1e6:.0f} us on the wire, {1 / (quote_bytes * wire):,.0f} quotes/s; "
          f"simulated ({SIM_CYCLES_PER_BIT} cycles per bit): {quotes / wall:.0f} quotes/s wall")
