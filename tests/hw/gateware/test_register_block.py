"""The generated register block behind the AXI4-Lite slave, in ``amaranth.sim``.

Every expectation comes from the register map data (``nanoquote.hw.contract.register_map``) through
the register file model ``nanoquote.sim.device.register_file`` (no gateware import), never from
the gateware.
"""

from __future__ import annotations

import random

import pytest
from nanoquote.host.device.bus import Resp
from nanoquote.hw.contract.register_map import Access, register_map
from nanoquote.sim.device.register_file import RegisterFileModel, strobe_mask
from nanoquote.sim.testbenches.amaranth_axil_master import AxiLiteSimMaster
from nanoquote.sim.testbenches.amaranth_support import RegisterBlockHarness, simulate, test_seed

RMAP = register_map(max_levels=8, price_bits=31, latency=7)


def _ro_regs(rmap):
    return [r for r in rmap if r.access is Access.RO and r.group != "id"]


def _set_ro(ctx, dut, ref, reg, value):
    port = getattr(dut.rb, reg.name.lower())
    value &= (1 << reg.width) - 1
    value &= sum(reg.word_mask(i) << (32 * i) for i in range(reg.words))
    ctx.set(port.as_value(), value)
    ref.ro[reg.name] = value


def _unmapped(rmap, count, rng, addr_width=12):
    mapped = {a for r in rmap for a in r.addresses}
    holes = [a for a in range(0, 1 << addr_width, 4) if a not in mapped]
    return rng.sample(holes, count)


def run(rmap, bench, name, stall=0.0, seed=0, processes=()):
    dut = RegisterBlockHarness(rmap)
    ref = RegisterFileModel(rmap, record_pulses=True)

    async def testbench(ctx):
        bus = AxiLiteSimMaster(ctx, dut.axil, rng=random.Random(seed), stall=stall)
        await bench(ctx, dut, bus, ref)

    simulate(dut, [testbench], [p(dut) for p in processes], name=name)
    return ref


def test_reset_values():
    async def bench(ctx, dut, bus, ref):
        for reg in _ro_regs(RMAP):
            _set_ro(ctx, dut, ref, reg, 0)
        for reg in RMAP:
            for i, address in enumerate(reg.addresses):
                resp, data = await bus.read(address)
                assert resp == Resp.OKAY, reg.name
                expect = 0 if reg.access is Access.WP or (reg.access is Access.RO and reg.group != "id") \
                    else (reg.reset >> (32 * i)) & 0xFFFFFFFF
                assert data == expect, f"{reg.name} word {i}: {data:#x} != {expect:#x}"
        # The identity registers carry what the map says.
        assert (await bus.read(RMAP["MAGIC"].address))[1] == 0x4E514F54
        build = RMAP["BUILD"].unpack((await bus.read(RMAP["BUILD"].address))[1])
        assert build == {"max_levels": 8, "price_bits": 31, "latency": 7}

    run(RMAP, bench, "reset_values")


def test_decerr_unmapped_and_no_side_effect():
    rng = random.Random(test_seed(11))

    async def bench(ctx, dut, bus, ref):
        for address in _unmapped(RMAP, 24, rng):
            assert await bus.read(address) == (Resp.DECERR, 0), f"{address:#x}"
            assert await bus.write(address, rng.getrandbits(32)) == Resp.DECERR, f"{address:#x}"
        errors = RMAP["ERRORS"]
        assert errors.unpack((await bus.read(errors.address))[1])["bus_error"] == 1
        # nothing else moved
        for reg in RMAP:
            if reg.access in (Access.RW,):
                for i, address in enumerate(reg.addresses):
                    assert (await bus.read(address))[1] == (reg.reset >> (32 * i)) & 0xFFFFFFFF, reg.name

    run(RMAP, bench, "decerr")


def test_slverr_read_only_and_reserved_bits():
    async def bench(ctx, dut, bus, ref):
        errors = RMAP["ERRORS"]
        for reg in RMAP:
            if reg.access is not Access.RO:
                continue
            for address in reg.addresses:
                assert await bus.write(address, 0) == Resp.SLVERR, reg.name
        assert (await bus.read(errors.address))[1] == errors.field("bus_error").mask
        assert await bus.write(errors.address, errors.field("bus_error").mask) == Resp.OKAY
        assert (await bus.read(errors.address))[1] == 0

        for reg in RMAP:
            if reg.access is Access.RO:
                continue
            for i, address in enumerate(reg.addresses):
                reserved = ~reg.word_mask(i) & 0xFFFFFFFF
                if not reserved:
                    continue
                bit = reserved & -reserved  # lowest reserved bit
                before = await bus.read(address)
                assert await bus.write(address, bit | reg.word_mask(i)) == Resp.SLVERR, reg.name
                assert await bus.read(address) == before, f"{reg.name}: an erroring write changed it"
                # the same reserved bit in a byte that is not strobed is no error
                lane = (bit.bit_length() - 1) // 8
                strobe = 0xF & ~(1 << lane)
                if reg.access is Access.RW and not reg.staged:
                    value = bit | (reg.word_mask(i) & strobe_mask(strobe))
                    assert await bus.write(address, value, strobe) == Resp.OKAY, reg.name
                    assert (await bus.read(address))[1] == before[1] & ~strobe_mask(strobe) | value & ~bit
        assert (await bus.read(errors.address))[1] & errors.field("bus_error").mask

    run(RMAP, bench, "slverr")


def test_byte_strobes_and_staged_commit():
    async def bench(ctx, dut, bus, ref):
        scratch = RMAP["SCRATCH"].address
        assert await bus.write(scratch, 0x11223344) == Resp.OKAY
        for strobe in range(16):
            assert await bus.write(scratch, 0xAABBCCDD, strobe) == Resp.OKAY
            expect = (0x11223344 & ~strobe_mask(strobe)) | (0xAABBCCDD & strobe_mask(strobe))
            assert (await bus.read(scratch))[1] == expect, f"strobe {strobe:#x}"
            assert await bus.write(scratch, 0x11223344) == Resp.OKAY

        # Staged registers: written values are not live (read back) until the commit.
        coef = RMAP["SKEW_COEF"]
        for address, word in zip(coef.addresses, (0x01234567, 0x89ABCDEF, 0xA5), strict=True):
            assert await bus.write(address, word) == Resp.OKAY
        assert [(await bus.read(a))[1] for a in coef.addresses] == [0, 0, 0]
        control = RMAP["CONTROL"]
        # an invalid staged configuration (TICK, SPREAD, ORDER still zero) is refused
        assert await bus.write(control.address, control.pack(commit=1)) == Resp.SLVERR
        errors = RMAP["ERRORS"]
        assert errors.unpack((await bus.read(errors.address))[1]) == {
            "bus_error": 1, "commit_rejected": 1, "out_of_domain": 0, "crossed": 0, "deadman": 0}
        assert [(await bus.read(a))[1] for a in coef.addresses] == [0, 0, 0]
        await bus.write(RMAP["TICK"].address, 25)
        await bus.write(RMAP["SPREAD"].address, RMAP["SPREAD"].pack(base_spread=2, min_edge=1))
        await bus.write(RMAP["ORDER"].address, RMAP["ORDER"].pack(order_size=5, num_levels=9))
        assert await bus.write(control.address, control.pack(commit=1)) == Resp.SLVERR  # 9 > max_levels
        await bus.write(RMAP["ORDER"].address, RMAP["ORDER"].pack(order_size=5, num_levels=8))
        assert await bus.write(control.address, control.pack(commit=1)) == Resp.OKAY
        assert [(await bus.read(a))[1] for a in coef.addresses] == [0x01234567, 0x89ABCDEF, 0xA5]
        assert (await bus.read(RMAP["TICK"].address))[1] == 25
        # the whole wide value changes in one clock: observe the live port every cycle
        assert await bus.write(errors.address, 0xF) == Resp.OKAY
        assert (await bus.read(errors.address))[1] == 0

    run(RMAP, bench, "strobes_commit")


def test_commit_is_atomic():
    """Watch the live port of a wide staged register every cycle across a commit."""
    seen: list[int] = []
    coef = RMAP["SKEW_COEF"]

    def watcher(dut):
        async def process(ctx):
            async for _clk, _rst, value in ctx.tick().sample(dut.rb.skew_coef.as_value()):
                seen.append(value)
        return process

    async def bench(ctx, dut, bus, ref):
        for name, fields in (("TICK", {"tick": 1}), ("SPREAD", {"base_spread": 1}),
                             ("ORDER", {"order_size": 1, "num_levels": 1})):
            await bus.write(RMAP[name].address, RMAP[name].pack(**fields))
        for value in ((1 << 72) - 1, 0x123456789ABCDEF012, 0):
            for i, address in enumerate(coef.addresses):
                await bus.write(address, (value >> (32 * i)) & 0xFFFFFFFF)
            assert await bus.write(RMAP["CONTROL"].address, RMAP["CONTROL"].pack(commit=1)) == Resp.OKAY
            await bus.idle(2)

    run(RMAP, bench, "atomic", processes=[watcher])
    distinct = [v for i, v in enumerate(seen) if i == 0 or v != seen[i - 1]]
    assert distinct == [0, (1 << 72) - 1, 0x123456789ABCDEF012, 0]


def test_w1c_and_sticky_set_input():
    async def bench(ctx, dut, bus, ref):
        errors = RMAP["ERRORS"]
        ctx.set(dut.rb.errors_set.as_value(), errors.field("crossed").mask | errors.field("out_of_domain").mask)
        await ctx.tick()
        ctx.set(dut.rb.errors_set.as_value(), 0)
        assert errors.unpack((await bus.read(errors.address))[1])["crossed"] == 1
        assert await bus.write(errors.address, errors.field("crossed").mask) == Resp.OKAY
        assert errors.unpack((await bus.read(errors.address))[1]) == {
            "bus_error": 0, "commit_rejected": 0, "out_of_domain": 1, "crossed": 0, "deadman": 0}
        # a strobe without the byte clears nothing
        assert await bus.write(errors.address, 0xF, 0b0010) == Resp.OKAY
        assert errors.unpack((await bus.read(errors.address))[1])["out_of_domain"] == 1
        assert await bus.write(errors.address, 0xF, 0b0001) == Resp.OKAY
        assert (await bus.read(errors.address))[1] == 0

    run(RMAP, bench, "w1c")


def test_wide_read_only_snapshot():
    reg = RMAP["LAST_QUOTE_TIME"]

    async def bench(ctx, dut, bus, ref):
        port = dut.rb.last_quote_time.as_value()
        ctx.set(port, 0x1111_1111_2222_2222)
        # before any low-word read, the upper word reads the current value
        assert (await bus.read(reg.addresses[1]))[1] == 0x1111_1111
        assert (await bus.read(reg.addresses[0]))[1] == 0x2222_2222
        ctx.set(port, 0x3333_3333_4444_4444)
        assert (await bus.read(reg.addresses[1]))[1] == 0x1111_1111  # the snapshot
        assert (await bus.read(reg.addresses[0]))[1] == 0x4444_4444
        assert (await bus.read(reg.addresses[1]))[1] == 0x3333_3333

    run(RMAP, bench, "snapshot")


def test_write_pulse_busy_and_reads_zero():
    pulses: list[tuple[int, int]] = []

    def watcher(dut):
        async def process(ctx):
            async for _clk, _rst, stb, value in ctx.tick().sample(dut.rb.book_submit_stb,
                                                                   dut.rb.book_submit.as_value()):
                if stb:
                    pulses.append(value)
        return process

    async def bench(ctx, dut, bus, ref):
        submit = RMAP["BOOK_SUBMIT"]
        assert await bus.write(submit.address, 0b11) == Resp.OKAY
        assert (await bus.read(submit.address)) == (Resp.OKAY, 0)
        ctx.set(dut.rb.book_submit_busy, 1)
        assert await bus.write(submit.address, 0b01) == Resp.SLVERR
        ctx.set(dut.rb.book_submit_busy, 0)
        assert await bus.write(submit.address, 0b10) == Resp.OKAY
        assert await bus.write(submit.address, 0b01, 0) == Resp.OKAY  # no byte strobed: fields 0

    run(RMAP, bench, "wp", processes=[watcher])
    assert pulses == [0b11, 0b10, 0b00]


def _random_access(rng, rmap, ref):
    """One random access: mostly mapped, mostly legal values, some of everything else."""
    regs = list(rmap)
    roll = rng.random()
    if roll < 0.06:
        return ("read" if rng.random() < 0.5 else "write"), _unmapped(rmap, 1, rng)[0], rng.getrandbits(32), 0xF
    reg = rng.choice(regs)
    word = rng.randrange(reg.words)
    address = reg.addresses[word]
    if roll < 0.45:
        return "read", address, 0, 0
    strobe = 0xF if rng.random() < 0.7 else rng.randrange(16)
    mask = reg.word_mask(word)
    if reg.name == "CONTROL":
        value = rng.choice([reg.pack(commit=1), reg.pack(arm=1), reg.pack(commit=1, clear_counters=1),
                            rng.getrandbits(32) & mask])
    elif reg.name in ("TICK", "SPREAD", "ORDER") and rng.random() < 0.6:
        value = {"TICK": lambda: reg.pack(tick=rng.choice([0, 1, 25, 65535])),
                 "SPREAD": lambda: reg.pack(base_spread=rng.choice([0, 1, 2]), min_edge=rng.randrange(256)),
                 "ORDER": lambda: reg.pack(order_size=rng.choice([0, 1, 5]),
                                           num_levels=rng.choice([0, 1, 3, 8, 9]))}[reg.name]()
    elif rng.random() < 0.85:
        value = rng.getrandbits(32) & mask
    else:
        value = rng.getrandbits(32)
    return "write", address, value, strobe


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_accesses_match_reference(seed):
    seed = test_seed(seed)
    rng = random.Random(seed)
    rmap = register_map(max_levels=rng.choice([1, 3, 8, 16]), price_bits=31, latency=5)
    pulse_log: list[tuple[str, int]] = []

    def watcher(dut):
        async def process(ctx):
            wps = [r for r in rmap if r.access is Access.WP]
            ports = [x for r in wps for x in (getattr(dut.rb, r.name.lower() + "_stb"),
                                                getattr(dut.rb, r.name.lower()).as_value())]
            async for _clk, _rst, *values in ctx.tick().sample(*ports):
                for k, reg in enumerate(wps):
                    if values[2 * k]:
                        pulse_log.append((reg.name, values[2 * k + 1]))
        return process

    async def bench(ctx, dut, bus, ref):
        ro = _ro_regs(rmap)
        for reg in ro:
            _set_ro(ctx, dut, ref, reg, rng.getrandbits(reg.width))
        for step in range(700):
            if rng.random() < 0.05:
                reg = rng.choice(ro)
                _set_ro(ctx, dut, ref, reg, rng.getrandbits(reg.width))
            if rng.random() < 0.03:
                busy = rng.random() < 0.5
                ctx.set(dut.rb.book_submit_busy, busy)
                ref.busy["BOOK_SUBMIT"] = busy
            kind, address, value, strobe = _random_access(rng, rmap, ref)
            where = f"seed {seed} step {step}: {kind} {address:#05x} {value:#010x}/{strobe:#x}"
            if kind == "read":
                got, want = await bus.read(address), ref.read32(address)
            else:
                got, want = await bus.write(address, value, strobe), ref.write32(address, value, strobe)
            assert got == want, f"{where}: got {got}, expected {want}"
        # final state: every readable word
        for reg in rmap:
            for address in reg.addresses:
                got, want = await bus.read(address), ref.read32(address)
                assert got == want, f"seed {seed} final {reg.name} {address:#x}: got {got}, expected {want}"

    ref = run(rmap, bench, f"random_{seed}", stall=0.3, seed=seed, processes=[watcher])
    assert pulse_log == ref.pulses, f"seed {seed}: write pulses differ"
