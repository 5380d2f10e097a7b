"""The ECP5 build flow: the out-of-context wrapper, constraints, report parsing, the flow.

The tests marked ``build`` run Yosys, nextpnr and ecppack on a 16x16 multiplier; the
full design's timing gate is ``test_timing_gate.py``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from nanoquote.hw.fpga.build_cli import parse_seeds
from nanoquote.hw.fpga.flow import (
    DEFAULT_LPF,
    BuildError,
    BuildOptions,
    run_build,
    summarize_path,
    write_lpf,
)
from nanoquote.hw.fpga.out_of_context import OutOfContext, port_count
from nanoquote.hw.gateware.dsp import RegisteredMultiplier

from nanoquote.cli import main


class SmallDesign(wiring.Component):
    """A 16x16 multiply on the DSP's registers with a valid bit: two cycles from ``a``, ``b`` to ``p``."""

    LATENCY = RegisteredMultiplier.LATENCY

    def __init__(self) -> None:
        super().__init__({"a": In(16), "b": In(16), "valid": In(1), "p": Out(32), "p_valid": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.mult = mult = RegisteredMultiplier(16, 16)
        rv = Signal()
        m.d.comb += [mult.a.eq(self.a), mult.b.eq(self.b), self.p.eq(mult.p),
                     mult.en_in.eq(self.valid), mult.en_out.eq(rv)]  # the DSP's clock enables in use
        m.d.sync += [rv.eq(self.valid), self.p_valid.eq(rv)]
        return m


def test_port_count_and_wrapper_cost():
    design = SmallDesign()
    design._MustUse__silence = True  # only its ports are looked at
    count = port_count(design)
    assert (count.inputs, count.outputs) == (33, 33)
    assert count.wrapper_ffs == 33 + 2 * 33 + 2


def test_wrapper_feeds_every_input_and_observes_every_output():
    """Simulate the wrapper: inputs are the last bits shifted in, ``so`` is the signature."""
    dut = SmallDesign()
    ooc = OutOfContext(dut)
    n_in = n_out = 33
    rng = random.Random(7)
    bits = [rng.getrandbits(1) for _ in range(200)]

    async def clock(ctx):
        while True:
            ctx.set(ooc.clk, 0)
            await ctx.delay(5e-9)
            ctx.set(ooc.clk, 1)
            await ctx.delay(5e-9)

    async def bench(ctx):
        ctx.set(ooc.rst_n, 0)
        for _ in range(3):
            await ctx.posedge(ooc.clk)
        ctx.set(ooc.rst_n, 1)
        history, toggles = [], 0
        out_q = out_sr = outputs = 0  # model of the wrapper's output registers
        for bit in bits:
            ctx.set(ooc.si, bit)
            await ctx.posedge(ooc.clk)
            history.append(bit)
            # in_sr: the newest bit is bit 0 of the concatenated inputs (a, b, valid).
            word = sum(b << i for i, b in enumerate(reversed(history[-n_in:])))
            assert ctx.get(dut.a) | ctx.get(dut.b) << 16 | ctx.get(dut.valid) << 32 == word
            out_sr, out_q = (out_sr >> 1) ^ out_q, outputs
            assert ctx.get(ooc.so) == out_sr & 1
            toggles += ctx.get(ooc.so)
            outputs = ctx.get(dut.p) | ctx.get(dut.p_valid) << 32
            assert outputs >> n_out == 0
        assert toggles, "the signature never toggled"

    sim = Simulator(ooc)
    sim.add_process(clock)
    sim.add_testbench(bench)
    sim.run()


def test_lpf_frequency_is_rewritten(tmp_path):
    out = tmp_path / "x.lpf"
    write_lpf(DEFAULT_LPF, out, 237.5)
    text = out.read_text()
    assert 'FREQUENCY PORT "clk" 237.5 MHZ;' in text
    assert text.replace("237.5 MHZ", "200 MHZ") == DEFAULT_LPF.read_text()


def test_committed_lpf_constrains_every_wrapper_pin():
    text = DEFAULT_LPF.read_text()
    for pin in ("clk", "rst_n", "si", "so"):
        assert f'LOCATE COMP "{pin}"' in text and f'IOBUF PORT "{pin}"' in text
    assert 'FREQUENCY PORT "clk" 200 MHZ;' in text


def test_parse_seeds():
    assert parse_seeds("3") == (3,)
    assert parse_seeds("1-5") == (1, 2, 3, 4, 5)
    assert parse_seeds("1,4-5") == (1, 4, 5)


def test_summarize_path_names_registers_cells_and_sources():
    def seg(kind, delay, src, dst, net=None, sources=()):
        s = {"type": kind, "delay": delay, "from": {"cell": src[0], "port": src[1]},
             "to": {"cell": dst[0], "port": dst[1]}}
        if net:
            s |= {"net": net, "sources": list(sources)}
        return s

    root = Path(__file__).resolve().parents[3]
    path = {"from": "posedge $glbnet$clk$TRELLIS_IO_IN", "to": "posedge $glbnet$clk$TRELLIS_IO_IN", "path": [
        seg("clk-to-q", 0.3, ("dut.s1_TRELLIS_FF_Q_3", "Q"), ("dut.s1_TRELLIS_FF_Q_3", "Q")),
        seg("routing", 1.0, ("dut.s1_TRELLIS_FF_Q_3", "Q"), ("m1", "A0"), "dut.s1[3]",
            [f"{root}/hw/gateware/pipeline.py:10", "/share/mul2dsp.v:1.1"]),
        seg("logic", 2.5, ("m1", "A0"), ("m1", "P3")),
        seg("routing", 0.5, ("m1", "P3"), ("c$CCU2_COMB0", "A"), "n1", [f"{root}/hw/gateware/pipeline.py:12"]),
        seg("logic", 0.3, ("c$CCU2_COMB0", "A"), ("c$CCU2_COMB0", "FCO")),
        seg("logic", 0.05, ("c$CCU2_COMB1", "FCI"), ("c$CCU2_COMB1", "F")),
        seg("routing", 0.4, ("c$CCU2_COMB1", "F"), ("dut.s2_TRELLIS_FF_Q", "DI"), "n2"),
        seg("setup", 0.1, ("dut.s2_TRELLIS_FF_Q", "DI"), ("dut.s2_TRELLIS_FF_Q", "DI")),
    ]}
    out = summarize_path(path, {"m1": "MULT18X18D"})
    assert out["clock"] == "posedge clk -> posedge clk"
    assert (out["from"], out["to"], out["from_net"]) == ("dut.s1", "dut.s2", "dut.s1[3]")
    assert out["delay_ns"] == pytest.approx(5.15) and out["logic_ns"] == pytest.approx(2.85)
    assert out["cells"] == {"MULT18X18D": 1, "CCU2C": 2} and out["carry_hops"] == 1
    assert out["sources"] == ["hw/gateware/pipeline.py:10", "hw/gateware/pipeline.py:12"]


def test_unknown_top_is_a_clear_error(tmp_path, capsys):
    assert main(["build", "--top", "nope", "--build-dir", str(tmp_path), "-q"]) == 2
    assert "unknown top" in capsys.readouterr().err


@pytest.mark.build
def test_flow_on_a_small_design(tmp_path):
    """Yosys, nextpnr and ecppack end to end: the JSON holds every figure."""
    options = BuildOptions(build_dir=tmp_path, seeds=(1,), freq_mhz=50.0)
    result = run_build(options, design=SmallDesign())
    assert json.loads((tmp_path / "build.json").read_text()) == result
    assert result["pass"] and result["fmax_mhz"]["clk"] > 50
    assert result["fmax_by_seed"] == {"1": result["fmax_mhz"]["clk"]}
    assert result["utilisation"]["MULT18X18D"]["used"] >= 1
    assert result["utilisation"]["TRELLIS_FF"]["used"] >= result["wrapper"]["ffs"]
    assert result["latency"]["cycles"] == 2
    assert result["latency"]["ns_at_fmax"] == pytest.approx(2000 / result["fmax_mhz"]["clk"], abs=0.01)
    path = result["critical_path"]
    assert path["delay_ns"] > 0 and path["to"] and path["sources"]
    # the SDF analysis finds nextpnr's worst path (here it starts at the DSP's output register)
    assert 1000 / 50 - result["worst_registers"][0]["slack_ns"] == pytest.approx(path["delay_ns"], abs=0.002)
    assert (tmp_path / "nanoquote.bit").stat().st_size > 0
    assert "nextpnr" in result["tools"]["nextpnr-ecp5"]


@pytest.mark.build
def test_a_failing_tool_names_the_step_and_its_log(tmp_path):
    bad = tmp_path / "bad.lpf"
    bad.write_text(DEFAULT_LPF.read_text().replace('SITE "A10"', 'SITE "Z99"'))
    options = BuildOptions(build_dir=tmp_path / "b", lpf=bad, bitstream=False)
    with pytest.raises(BuildError) as info:
        run_build(options, design=SmallDesign())
    assert info.value.step.startswith("place and route") and info.value.log.exists()
    assert "Z99" in str(info.value) and str(info.value.log) in str(info.value)
