"""Endpoint slacks from a routed design's SDF (the analysis behind ``worst_registers``)."""

from __future__ import annotations

import pytest
from nanoquote.hw.fpga.sdf_timing import endpoint_slacks, main, register_of

# Two flip-flops of register r1 and a DSP output register launch; FFs of r2 capture. The
# clock buffer's CLKI -> CLKO arc must not launch anything. Delays in ps.
SDF = r"""(DELAYFILE
  (SDFVERSION "3.0")
  (TIMESCALE 1ps)
  (CELL
    (CELLTYPE "top")
    (INSTANCE )
    (DELAY
      (ABSOLUTE
        (INTERCONNECT \$gbuf/CLKO dut.r1_TRELLIS_FF_Q/CLK (0:0:0) (0:0:0))
        (INTERCONNECT dut.r1_TRELLIS_FF_Q/Q lut/A (100:200:300) (100:200:300))
        (INTERCONNECT dut.r1_TRELLIS_FF_Q_1/Q lut/B (100:200:1300) (100:200:1300))
        (INTERCONNECT lut/F dut.r2_TRELLIS_FF_Q/DI (50:50:100) (50:50:100))
        (INTERCONNECT dut.mul/P0 dut.r2_TRELLIS_FF_Q_1/M (400:400:2000) (400:400:2000))
        (INTERCONNECT \$gbuf/CLKO dut.r2_TRELLIS_FF_Q_2/M (0:0:0) (0:0:0))
      )
    )
  )
  (CELL (CELLTYPE "DCCA") (INSTANCE \$gbuf)
    (DELAY (ABSOLUTE (IOPATH CLKI CLKO (0:0:5000) (0:0:5000)))))
  (CELL (CELLTYPE "TRELLIS_FF") (INSTANCE dut.r1_TRELLIS_FF_Q)
    (DELAY (ABSOLUTE (IOPATH CLK Q (300:300:300) (300:300:300)))))
  (CELL (CELLTYPE "TRELLIS_FF") (INSTANCE dut.r1_TRELLIS_FF_Q_1)
    (DELAY (ABSOLUTE (IOPATH CLK Q (300:300:300) (300:300:300)))))
  (CELL (CELLTYPE "TRELLIS_COMB") (INSTANCE lut)
    (DELAY
      (ABSOLUTE
        (IOPATH A F (141:141:141) (141:141:141))
        (IOPATH B F (141:141:141) (141:141:141))
      )
    )
  )
  (CELL (CELLTYPE "MULT18X18D") (INSTANCE dut.mul)
    (DELAY (ABSOLUTE (IOPATH CLK0 P0 (478:478:478) (478:478:478)))))
  (CELL (CELLTYPE "TRELLIS_FF") (INSTANCE dut.r2_TRELLIS_FF_Q)
    (TIMINGCHECK
      (SETUPHOLD (posedge DI) (posedge CLK) (10:10:10) (0:0:0))
    )
  )
  (CELL (CELLTYPE "TRELLIS_FF") (INSTANCE dut.r2_TRELLIS_FF_Q_1)
    (TIMINGCHECK
      (SETUPHOLD (posedge M) (posedge CLK) (0:0:0) (0:0:0))
    )
  )
  (CELL (CELLTYPE "TRELLIS_FF") (INSTANCE dut.r2_TRELLIS_FF_Q_2)
    (TIMINGCHECK
      (SETUPHOLD (posedge M) (posedge CLK) (0:0:0) (0:0:0))
    )
  )
)
"""


@pytest.fixture
def sdf(tmp_path):
    path = tmp_path / "t.sdf"
    path.write_text(SDF)
    return path


def test_register_names():
    assert register_of("dut.s4_hi_TRELLIS_FF_Q_12") == "dut.s4_hi"
    assert register_of("dut.s4_hi_TRELLIS_FF_Q") == "dut.s4_hi"


def test_worst_path_per_register(sdf):
    (r2,) = endpoint_slacks(sdf, 3.0)
    # via r1 bit 1: 300 + 1300 + 141 + 100 + setup 10 = 1851 ps; via the DSP: 478 + 2000 = 2478 ps
    assert r2.register == "dut.r2" and r2.worst_from == "dut.mul"
    assert r2.slack_ns == pytest.approx(3.0 - 2.478)
    assert (r2.failing_bits, r2.bits) == (0, 2)  # the FF fed by the clock buffer is not timed


def test_failing_bits_and_launch_filter(sdf):
    (r2,) = endpoint_slacks(sdf, 2.0)
    assert r2.failing_bits == 1 and r2.slack_ns == pytest.approx(2.0 - 2.478)
    (r2,) = endpoint_slacks(sdf, 2.0, launch=lambda reg: reg != "dut.mul")
    assert r2.failing_bits == 0 and r2.worst_from == "dut.r1"
    assert r2.slack_ns == pytest.approx(2.0 - 1.851)


def test_command_lists_the_worst_registers(sdf, capsys):
    assert main([str(sdf), "--freq", "500"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1 flip-flops miss 500 MHz; worst path 2.478 ns (403.55 MHz)")
    assert "dut.r2  <- dut.mul" in out
