"""RegisteredMultiplier: the same two-cycle product in simulation and as a MULT18X18D."""

from __future__ import annotations

import random

import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator
from nanoquote.hw.fpga.flow import target_platform
from nanoquote.hw.gateware.dsp import RegisteredMultiplier


def _check_against_model(dut: RegisteredMultiplier, seed: int, cycles: int = 300) -> None:
    """Random operands and clock enables; ``p`` must follow a cycle model of the registers
    ``dut`` uses (operand registers on ``en_in``, output register on ``en_out``)."""
    rng = random.Random(seed)

    def operand(bits: int) -> int:
        v = rng.getrandbits(bits)
        return v - (1 << bits) if dut.signed and v >> (bits - 1) else v

    async def bench(ctx):
        a_q = b_q = p = 0  # model: operand registers and output register
        for cycle in range(cycles):
            a, b = operand(len(dut.a)), operand(len(dut.b))
            en_in, en_out = rng.random() < 0.7, rng.random() < 0.7
            for port, value in ((dut.a, a), (dut.b, b), (dut.en_in, en_in), (dut.en_out, en_out)):
                ctx.set(port, value)
            await ctx.tick()
            product = (a_q if dut.input_register else a) * (b_q if dut.b_register else b)
            a_q, b_q = (a, b) if en_in else (a_q, b_q)
            if dut.output_register:
                p = product if en_out else p
            else:
                p = (a_q if dut.input_register else a) * (b_q if dut.b_register else b)
            assert ctx.get(dut.p) == p, f"seed {seed}, cycle {cycle}"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("signed_", [False, True])
def test_product_of_the_registered_operands(signed_):
    _check_against_model(RegisteredMultiplier(18, 13, signed_=signed_), seed=5, cycles=400)


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
    _check_against_model(dut, seed=9, cycles=200)
    text = verilog.convert(RegisteredMultiplier(18, 18, output_register=False),
                           platform=target_platform("um5g-85k", "CABGA381", 8))
    assert '.REG_OUTPUT_CLK("NONE")' in text and '.REG_INPUTA_CLK("CLK0")' in text


@pytest.mark.parametrize("b_register", [False, True])
def test_without_the_input_register_the_product_is_registered_once(b_register):
    dut = RegisteredMultiplier(18, 17, input_register=False, b_register=b_register)
    assert dut.latency == 1
    _check_against_model(dut, seed=10, cycles=200)
    text = verilog.convert(RegisteredMultiplier(18, 18, input_register=False, site="X49/Y34/MULT18_0"),
                           platform=target_platform("um5g-85k", "CABGA381", 8))
    assert '.REG_INPUTA_CLK("NONE")' in text and '.REG_INPUTB_CLK("NONE")' in text
    assert '.REG_OUTPUT_CLK("CLK0")' in text and 'BEL = "X49/Y34/MULT18_0"' in text


def test_a_multiplier_needs_one_of_its_registers():
    with pytest.raises(ValueError, match="input or its output register"):
        RegisteredMultiplier(18, 18, input_register=False, output_register=False)


def test_pipeline_multipliers_are_pinned_only_on_parts_with_a_known_grid():
    from nanoquote.hw.gateware.floorplan import dsp_site

    sites = [dsp_site(target_platform("um5g-85k", "CABGA381", 8), f"s2_mul{k}") for k in range(4)]
    assert all(sites) and len(set(sites)) == 4
    assert dsp_site(target_platform("um5g-25k", "CABGA381", 8), "s2_mul0") is None
    assert dsp_site(None, "s2_mul0") is None
