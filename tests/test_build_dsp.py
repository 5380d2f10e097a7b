"""RegisteredMultiplier: the same two-cycle product in simulation and as a MULT18X18D."""

from __future__ import annotations

import random

import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator
from nanoquote.hw.build_flow import target_platform
from nanoquote.hw.dsp import RegisteredMultiplier


@pytest.mark.parametrize("signed_", [False, True])
def test_product_of_the_registered_operands(signed_):
    dut = RegisteredMultiplier(18, 13, signed_=signed_)
    rng = random.Random(5)
    lo_a, hi_a = (-(1 << 17), (1 << 17) - 1) if signed_ else (0, (1 << 18) - 1)
    lo_b, hi_b = (-(1 << 12), (1 << 12) - 1) if signed_ else (0, (1 << 13) - 1)

    async def bench(ctx):
        held, p = (0, 0), 0  # model: operand register and output register
        for _ in range(400):
            a, b = rng.randint(lo_a, hi_a), rng.randint(lo_b, hi_b)
            en_in, en_out = rng.random() < 0.7, rng.random() < 0.7
            for port, value in ((dut.a, a), (dut.b, b), (dut.en_in, en_in), (dut.en_out, en_out)):
                ctx.set(port, value)
            await ctx.tick()
            p = held[0] * held[1] if en_out else p
            held = (a, b) if en_in else held
            assert ctx.get(dut.p) == p

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_ecp5_elaboration_uses_the_dsp_registers():
    text = verilog.convert(RegisteredMultiplier(18, 18), platform=target_platform("um5g-85k", "CABGA381", 8))
    assert "MULT18X18D" in text
    for reg in ("REG_INPUTA_CLK", "REG_INPUTB_CLK", "REG_OUTPUT_CLK"):
        assert f'.{reg}("CLK0")' in text
    assert '.REG_INPUTA_CE("CE0")' in text and '.REG_OUTPUT_CE("CE1")' in text
    assert "MULT18X18D" not in verilog.convert(RegisteredMultiplier(18, 18))


def test_operand_width_is_checked():
    with pytest.raises(ValueError):
        RegisteredMultiplier(19, 18)


def test_without_the_output_register_the_product_follows_the_operand_register():
    dut = RegisteredMultiplier(18, 18, output_register=False)
    assert dut.latency == 1
    rng = random.Random(9)

    async def bench(ctx):
        held = (0, 0)
        for _ in range(200):
            a, b, en_in = rng.getrandbits(18), rng.getrandbits(18), rng.random() < 0.7
            ctx.set(dut.a, a)
            ctx.set(dut.b, b)
            ctx.set(dut.en_in, en_in)
            await ctx.tick()
            held = (a, b) if en_in else held
            assert ctx.get(dut.p) == held[0] * held[1]

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    text = verilog.convert(RegisteredMultiplier(18, 18, output_register=False),
                           platform=target_platform("um5g-85k", "CABGA381", 8))
    assert '.REG_OUTPUT_CLK("NONE")' in text and '.REG_INPUTA_CLK("CLK0")' in text


def test_without_the_input_register_the_product_is_registered_once():
    dut = RegisteredMultiplier(18, 17, input_register=False)
    assert dut.latency == 1
    seed = 10
    rng = random.Random(seed)

    async def bench(ctx):
        p = 0
        for _ in range(200):
            a, b, en_out = rng.getrandbits(18), rng.getrandbits(17), rng.random() < 0.7
            ctx.set(dut.a, a)
            ctx.set(dut.b, b)
            ctx.set(dut.en_out, en_out)
            await ctx.tick()
            p = a * b if en_out else p
            assert ctx.get(dut.p) == p, f"seed {seed}"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    text = verilog.convert(RegisteredMultiplier(18, 18, input_register=False, site="X49/Y34/MULT18_0"),
                           platform=target_platform("um5g-85k", "CABGA381", 8))
    assert '.REG_INPUTA_CLK("NONE")' in text and '.REG_INPUTB_CLK("NONE")' in text
    assert '.REG_OUTPUT_CLK("CLK0")' in text and 'BEL = "X49/Y34/MULT18_0"' in text


def test_a_multiplier_needs_one_of_its_registers():
    with pytest.raises(ValueError, match="input or its output register"):
        RegisteredMultiplier(18, 18, input_register=False, output_register=False)


def test_pipeline_multipliers_are_pinned_only_on_parts_with_a_known_grid():
    from nanoquote.hw.floorplan import dsp_site

    sites = [dsp_site(target_platform("um5g-85k", "CABGA381", 8), f"s2_mul{k}") for k in range(4)]
    assert all(sites) and len(set(sites)) == 4
    assert dsp_site(target_platform("um5g-25k", "CABGA381", 8), "s2_mul0") is None
    assert dsp_site(None, "s2_mul0") is None
