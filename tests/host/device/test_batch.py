"""Batches: the same register effects and results as their operations one by one, on every
in-process backend; a bus error ends a batch where it happened; FaultyBus faults in
batches; a whole quote is one batch."""

from __future__ import annotations

import random

import pytest
from nanoquote.host.device.batch import (
    MAX_BATCH_OPS,
    BatchError,
    Idle,
    Poll,
    Read,
    Write,
    batch_steps,
    check_batch,
    run_batch,
)
from nanoquote.host.device.bus import BusError, BusTimeout, MmapBus, Resp
from nanoquote.host.device.driver import QuoteDriver
from nanoquote.host.device.offload import offloaded_strategy
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.quoting import BookUpdate
from nanoquote.hw.contract.coefficients import PipelineParams
from nanoquote.hw.contract.register_map import Access, register_map
from nanoquote.sim.device.software_device import SoftwareDevice
from nanoquote.sim.faulty_bus import AnswerLost, FaultyBus

RMAP = register_map()
SCRATCH = RMAP["SCRATCH"].address


def _ready_device() -> SoftwareDevice:
    """A configured, armed software device (so submits compute ladders)."""
    device = SoftwareDevice()
    driver = QuoteDriver.open(device)
    driver.configure(MarketMakerConfig())
    driver.arm()
    return device


def random_ops(rng: random.Random, count: int, *, errors: bool) -> list:
    """Reads anywhere mapped, writes of writable registers (and, with ``errors``, of
    read-only ones and holes), book submits, polls and idles."""
    writable = [r for r in RMAP if r.access in (Access.RW, Access.W1C) and not r.staged]
    readable = [a for r in RMAP for a in r.addresses]
    ops: list = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.4:
            ops.append(Read(rng.choice(readable)))
        elif roll < 0.7:
            reg = rng.choice(writable)
            ops.append(Write(reg.addresses[0], rng.getrandbits(32) & reg.word_mask(0), rng.randrange(16)))
        elif roll < 0.8:
            ops.append(Write(RMAP["BOOK_SUBMIT"].address, RMAP["BOOK_SUBMIT"].pack(has_bid=1, has_ask=1)))
        elif roll < 0.9:
            ops.append(Poll(RMAP["LADDER_STATUS"].address, 1, rng.randint(1, 4), rng.randrange(3)))
        elif errors and roll < 0.95:
            ops.append(Write(RMAP["MAGIC"].address, 0))
        else:
            ops.append(Idle(rng.randrange(4)))
    return ops


def one_by_one(device, ops) -> tuple[list, BusError | None]:
    """``ops`` through ``read32``/``write32`` alone, stopping at the first error."""
    results = []
    for op in ops:
        try:
            if isinstance(op, Read):
                results.append(device.read32(op.address))
            elif isinstance(op, Write):
                results.append(device.write32(op.address, op.value, op.strobe))
            elif isinstance(op, Poll):
                for _ in range(op.limit):
                    value = device.read32(op.address)
                    if value & op.mask:
                        break
                results.append(value)
            else:
                results.append(None)
        except BusError as exc:
            return results, exc
    return results, None


def snapshot(device) -> list[int]:
    """Every readable word (read one by one)."""
    return [device.read32(a) for r in RMAP if r.access is not Access.WP for a in r.addresses]


@pytest.mark.parametrize("seed", range(6))
def test_a_batch_equals_its_operations_one_by_one_on_the_software_device(seed):
    rng = random.Random(seed)
    for _ in range(20):
        ops = random_ops(rng, rng.randint(0, 40), errors=seed % 2 == 1)
        alone, batched = _ready_device(), _ready_device()
        expected, error = one_by_one(alone, ops)
        if error is None:
            assert batched.batch(ops) == expected
        else:
            with pytest.raises(BatchError) as err:
                batched.batch(ops)
            assert (err.value.index, err.value.resp, err.value.results) == (len(expected), error.resp, expected)
            assert err.value.operation is ops[len(expected)]
        assert snapshot(batched) == snapshot(alone)


def steps_driven(device, ops, idles: list[int]) -> list:
    """``ops`` performed by driving :func:`batch_steps` (the definition; the async
    testbenches' path), recording the idles it asks for."""
    steps = batch_steps(ops)
    result, error = None, None
    try:
        while True:
            step = steps.send(result) if error is None else steps.throw(error)
            result = error = None
            try:
                if isinstance(step, Read):
                    result = device.read32(step.address)
                elif isinstance(step, Write):
                    device.write32(step.address, step.value, step.strobe)
                else:
                    idles.append(step.cycles)
            except BusError as exc:
                error = exc
    except StopIteration as stop:
        return stop.value


def outcome(run, *args) -> tuple:
    """``run(*args)``'s results, or its batch error's index, response and results before it."""
    try:
        return ("ok", run(*args))
    except BatchError as exc:
        return ("error", exc.index, exc.resp, exc.results)


@pytest.mark.parametrize("seed", range(4))
def test_run_batch_performs_exactly_what_batch_steps_defines(seed):
    """``run_batch`` (the in-process backends' loop) and ``batch_steps`` agree on results,
    errors, idles asked for and register effects, polls that give up included."""
    print(f"seed {seed}")
    rng = random.Random(seed)
    for _ in range(25):
        ops = random_ops(rng, rng.randint(0, 40), errors=True)
        looped, stepped = _ready_device(), _ready_device()
        loop_idles: list[int] = []
        step_idles: list[int] = []
        outcomes = [outcome(run_batch, ops, looped.read32, looped.write32, loop_idles.append),
                    outcome(steps_driven, stepped, ops, step_idles)]
        assert outcomes[0] == outcomes[1]
        assert [c for c in loop_idles if c] == [c for c in step_idles if c]
        assert snapshot(looped) == snapshot(stepped)


def test_a_bus_error_mid_batch_names_the_operation_and_stops_there():
    device = SoftwareDevice()
    ops = [Write(SCRATCH, 1), Read(SCRATCH), Write(RMAP["MAGIC"].address, 0), Write(SCRATCH, 2)]
    with pytest.raises(BatchError, match=r"operation 2 of a batch \(write\): write of address 0x0000 "
                                         "answered SLVERR") as err:
        device.batch(ops)
    assert (err.value.index, err.value.op, err.value.address, err.value.resp) == (2, "write", 0, Resp.SLVERR)
    assert err.value.results == [None, 1]
    assert device.read32(SCRATCH) == 1  # the write before it took effect, the one after it not


@pytest.mark.parametrize("ops, why", [
    ([Read(2)], "operation 0 of the batch: address 0x2 is not a 4-byte aligned"),
    ([Read(0), Write(SCRATCH, 1 << 32)], "operation 1 of the batch: value"),
    ([Write(SCRATCH, 1, 16)], "strobe 16 out of range"),
    ([Poll(SCRATCH, 1, 0)], "limit 0 out of range"),
    ([Poll(SCRATCH, 0, 3)], "mask 0x0"),
    ([Idle(-1)], "-1 idle cycles"),
    ([Idle(60_000), Idle(50_000)], "idles at most 100000 cycles"),
    ([Poll(SCRATCH, 1, 1000, 200)], "idles at most"),
    ([Read(0)] * (MAX_BATCH_OPS + 1), f"at most {MAX_BATCH_OPS} operations"),
    ([Write(SCRATCH, 5), "read"], "is not a bus operation"),
])
def test_a_malformed_batch_is_refused_before_any_access(ops, why):
    device = SoftwareDevice()
    with pytest.raises(ValueError, match=why):
        device.batch(ops)
    assert device.read32(SCRATCH) == 0
    with pytest.raises(ValueError, match=why):
        check_batch(ops)


def test_a_poll_reports_whether_it_succeeded():
    device = _ready_device()
    status = RMAP["LADDER_STATUS"]
    poll = Poll(status.address, status.field("valid").mask, 3)
    before, = device.batch([poll])
    assert not poll.succeeded(before)  # no ladder yet: three reads, no error
    submit = Write(RMAP["BOOK_SUBMIT"].address, RMAP["BOOK_SUBMIT"].pack(has_bid=1, has_ask=1))
    _, after = device.batch([submit, poll])
    assert poll.succeeded(after)


def test_mmap_bus_batches_are_plain_loads_and_stores(tmp_path):
    path = tmp_path / "bar"
    path.write_bytes(bytes(4096))
    bus = MmapBus(path, size=4096)
    try:
        rng = random.Random(3)
        for _ in range(30):
            ops = [Read(4 * rng.randrange(1024)) if rng.random() < 0.5
                   else Write(4 * rng.randrange(1024), rng.getrandbits(32), rng.randrange(16))
                   for _ in range(rng.randint(0, 20))] + [Poll(0, 0xFFFFFFFF, 2), Idle(5)]
            before = bus._map[:]
            batched = bus.batch(ops)
            after = bus._map[:]
            bus._map[:] = before
            expected = run_batch(ops, bus.read32, bus.write32)
            assert batched == expected and bus._map[:] == after
    finally:
        bus.close()


# -- FaultyBus in batches --------------------------------------------------------------------


def test_faulty_bus_times_a_batch_out_midway():
    device = SoftwareDevice()
    bus = FaultyBus(device, FaultyBus.timeout_on(SCRATCH, "write", nth=2))
    with pytest.raises(BusTimeout):
        bus.batch([Write(SCRATCH, 1), Write(SCRATCH, 2), Write(RMAP["BOOK_TS"].address, 9)])
    assert device.read32(SCRATCH) == 1  # performed up to the lost request, nothing after it
    assert device.read32(RMAP["BOOK_TS"].address) == 0


def test_faulty_bus_loses_the_answer_of_a_whole_batch():
    device = SoftwareDevice()

    def rule(kind, address, index):
        return AnswerLost("answer lost") if index == 1 else None

    bus = FaultyBus(device, rule)
    with pytest.raises(AnswerLost):
        bus.batch([Write(SCRATCH, 7), Write(RMAP["BOOK_TS"].address, 9)])
    assert device.read32(SCRATCH) == 7 and device.read32(RMAP["BOOK_TS"].address) == 9  # all performed
    assert bus.faults == 1


def test_faulty_bus_error_answer_ends_the_batch():
    device = SoftwareDevice()

    def rule(kind, address, index):
        return BusError(kind, address, Resp.SLVERR) if index == 2 else None

    bus = FaultyBus(device, rule)
    with pytest.raises(BatchError) as err:
        bus.batch([Write(SCRATCH, 3), Read(SCRATCH), Write(SCRATCH, 4)])
    assert (err.value.index, err.value.results) == (1, [None])
    assert device.read32(SCRATCH) == 3


# -- the quote path: one batch per book update -------------------------------------------------


class Counting:
    """A software device that counts the batches (round trips) it is sent."""

    def __init__(self) -> None:
        self.device = SoftwareDevice()
        self.batches: list[list] = []

    def read32(self, address):
        return self.device.read32(address)

    def write32(self, address, value, strobe=0xF):
        self.device.write32(address, value, strobe)

    def batch(self, ops):
        self.batches.append(list(ops))
        return self.device.batch(ops)

    def close(self):
        pass


def test_a_book_update_is_one_batch_with_its_inventory_and_arming():
    bus = Counting()
    config = MarketMakerConfig(refresh_interval_ns=0)
    strategy = offloaded_strategy(config, bus)
    strategy.arm()
    for i in range(12):
        bus.batches.clear()
        strategy.on_market_data(BookUpdate(i, 50000 + 25 * (i % 3), 50025 + 25 * (i % 3)))
        assert len(bus.batches) == 1, bus.batches


def test_inventory_and_arming_join_the_quote_batch():
    bus = Counting()
    driver = QuoteDriver.open(bus)
    driver.configure(MarketMakerConfig())
    bus.batches.clear()
    result = driver.quote(BookUpdate(5, 50000, 50025), inventory=(3, 1, 0), armed=True)
    assert len(bus.batches) == 1
    writes = [op.address for op in bus.batches[0] if isinstance(op, Write)]
    assert writes[:4] == [RMAP[n].address for n in ("POSITION", "LIVE_BID_QTY", "LIVE_ASK_QTY", "CONTROL")]
    assert writes[4] == RMAP["CONTROL"].address  # the arm pulse, before the book
    assert writes[5] == RMAP["HEARTBEAT"].address  # the heartbeat rides along: no extra round trip
    assert writes[6] == RMAP["BOOK_TS"].address
    assert bus.device.regs.live_fields("inventory") == {"position": 3, "live_bid_qty": 1, "live_ask_qty": 0}
    assert bus.device.armed and result.ladder.bids


def test_a_fault_in_the_quote_batch_rewrites_inventory_and_arming_next_time():
    device = SoftwareDevice()
    bus = FaultyBus(device)
    strategy = offloaded_strategy(MarketMakerConfig(), bus)
    strategy.arm()
    engine = strategy.engine
    bus.rule = FaultyBus.timeout_on(RMAP["LADDER_STATUS"].address)
    with pytest.raises(BusTimeout):
        engine.quote(BookUpdate(1, 50000, 50025), 2, 0, 0, True)
    written: set[int] = set()
    bus.rule = lambda kind, address, _index: written.add(address) if kind == "write" else None
    engine.quote(BookUpdate(2, 50000, 50025), 2, 0, 0, True)
    assert RMAP["POSITION"].address in written and RMAP["CONTROL"].address in written


def test_configure_is_two_round_trips():
    bus = Counting()
    driver = QuoteDriver.open(bus)
    bus.batches.clear()
    driver.configure(MarketMakerConfig())
    assert len(bus.batches) == 2  # stage and commit; read back
    assert PipelineParams.from_config(MarketMakerConfig(), 31).as_dict() == bus.device.regs.live_fields("config")
