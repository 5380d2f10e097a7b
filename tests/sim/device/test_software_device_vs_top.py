"""The top (``amaranth.sim``) and the software device answer every access alike.

``nanoquote.sim.device.software_device.SoftwareDevice`` is the host-side model of the whole
device (register semantics, control latches, quote path, counters, refresh clock).
A seeded random session of register accesses (configurations, good and bad commits,
inventory, control pulses, book submits, reads anywhere, erroring writes) runs against
both; every response code and every read value must agree. The one documented
difference: ``STATUS.settled`` is low in the hardware for a few cycles after a commit
(the model is always settled), so it is masked.
"""

from __future__ import annotations

import random

import pytest
from nanoquote.host.device.bus import Resp
from nanoquote.host.device.register_access import Read, RegisterPrograms, Write
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.hw.contract.coefficients import PipelineParams
from nanoquote.hw.gateware.top import NanoquoteTop
from nanoquote.sim.device.software_device import SoftwareDevice
from nanoquote.sim.testbenches.amaranth_axil_master import AxiLiteSimMaster
from nanoquote.sim.testbenches.amaranth_support import simulate, test_seed

#: A step that waits for the ladder of the last submit.
POLL = object()


def _random_config(rng: random.Random) -> MarketMakerConfig:
    return MarketMakerConfig(
        quote_policy=rng.choice(["exchange", "legacy"]), base_spread_ticks=rng.randint(1, 6),
        inventory_skew_factor=rng.choice([0, 0.25, 0.5, 1.0]), max_inventory=rng.choice([0, 3, 20, 500]),
        order_size=rng.choice([1, 2, 5]), num_levels=rng.randint(1, 8), min_edge_ticks=rng.randint(0, 3),
        tick_size=rng.choice([1, 5, 25]), refresh_interval_ns=rng.choice([0, 50, 1000]))


def _session(rng: random.Random, rmap):
    """Bus operations (``Read``, ``Write``, or ``POLL``: wait for a ladder), from the host's programs."""
    programs = RegisterPrograms(rmap)

    def words(name, value):
        return list(programs.write(name, value))  # a program of writes needs no answers

    control = rmap["CONTROL"]
    pulses = ["arm"] * 4 + ["rearm"] * 2 + ["disarm", "kill", "clear_counters", "soft_reset"]
    ts = 0
    ops = []
    for _ in range(80):
        kind = rng.random()
        if kind < 0.1:
            ops += list(programs.write_group("config", PipelineParams.from_config(_random_config(rng)).as_dict()))
        elif kind < 0.15:
            reg = rmap[rng.choice(["TICK", "SPREAD", "ORDER"])]
            ops += words(reg.name, rng.getrandbits(32) & reg.word_mask(0))
            ops += words("CONTROL", control.pack(commit=1))  # may be refused
        elif kind < 0.25:
            ops += words("POSITION", rmap["POSITION"].pack(position=rng.randint(-600, 600)))
            ops += words("LIVE_BID_QTY", rng.choice([0, 3, 40]))
            ops += words("LIVE_ASK_QTY", rng.choice([0, 3, 40]))
            ops += words("CONTROL", control.pack(commit=1))
        elif kind < 0.35:
            ops += words("CONTROL", control.pack(**{p: 1 for p in {rng.choice(pulses) for _ in range(rng.randint(1, 2))}}))
        elif kind < 0.7:
            ts += rng.choice([0, 10, 60, 2000, -5])
            ts = max(ts, 0)
            bid = rng.choice([rng.randrange(1, 200), rng.randrange((1 << 31) - 200, 1 << 31),
                              rng.randrange(1, 1 << 31), rng.randrange(1, 1 << 31)])
            ask = min((1 << 31) - 1, max(1, bid + rng.randint(-3, 100)))
            ops += words("BOOK_TS", ts) + words("BOOK_BID", bid) + words("BOOK_ASK", ask)
            ops += words("BOOK_SUBMIT", rng.choice([0b11, 0b11, 0b11, 0b01, 0b10, 0b00]))
            ops.append(POLL)
            ops += [Read(a) for name in ("LADDER_STATUS", "LADDER_MASK", "LAST_QUOTE_TIME", "STATUS",
                                          "ERRORS", "COUNT_REFRESHES", "COUNT_GATED_BID", "COUNT_OUT_OF_DOMAIN")
                    for a in rmap[name].addresses]
            ops += [Read(rmap[f"LADDER_{side}{i}"].address) for side in ("BID", "ASK") for i in range(8)]
        elif kind < 0.85:
            ops.append(Read(rng.randrange(0, 0x200, 4)))
        elif kind < 0.95:
            ops.append(Write(rng.randrange(0, 0x200, 4), rng.getrandbits(32), rng.randrange(16)))
        else:
            ops += words("ERRORS", rng.getrandbits(4))
    ops += [Read(a) for reg in rmap for a in reg.addresses]
    return ops


@pytest.mark.parametrize(("seed", "input_register"), [(1, False), (2, False), (3, True)])
def test_random_session_matches_software_device(seed, input_register):
    seed = test_seed(seed)
    rng = random.Random(seed)
    dut = NanoquoteTop(input_register=input_register)
    model = SoftwareDevice(dut.max_levels, dut.price_bits, dut.LATENCY)
    rmap = dut.rmap
    ops = _session(rng, rmap)
    settled = rmap["STATUS"].field("settled").mask
    status_address = rmap["STATUS"].address

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        bus = AxiLiteSimMaster(ctx, dut.axil)
        for step, op in enumerate(ops):
            where = f"seed {seed} step {step}: {op}"
            if op is POLL:
                for _ in range(20):
                    if (await bus.read(rmap["LADDER_STATUS"].address))[1] & 1:
                        break
                else:
                    raise AssertionError(f"{where}: no ladder")
            elif isinstance(op, Read):
                got = await bus.read(op.address)
                want = model.regs.read32(op.address)
                if op.address == status_address:
                    got, want = (got[0], got[1] & ~settled), (want[0], want[1] & ~settled)
                assert got == (int(want[0]), want[1]), where
            else:
                got = await bus.write(op.address, op.value, op.strobe)
                want = model.regs.write32(op.address, op.value, op.strobe)
                assert got == int(want), f"{where}: {Resp(got).name} != {Resp(want).name}"

    simulate(dut, [bench], name=f"top_vs_model_{seed}")
