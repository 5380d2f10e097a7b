"""The timing gate: the full top level places and routes at its clock target.

nextpnr is deterministic for a fixed netlist and seed, so the gate's seed
(``DEFAULT_SEED``) passing checks this netlist. The result goes to the build root's ``ecp5/build.json``, where ``nanoquote
bench`` reads the fmax it reports.
"""

from __future__ import annotations

import pytest
from nanoquote.hw.fpga.flow import DEFAULT_SEED, BuildOptions, default_build_dir, run_build

pytestmark = [pytest.mark.build, pytest.mark.slow]


def test_top_meets_the_clock_target():
    result = run_build(BuildOptions(top="top", build_dir=default_build_dir(), seeds=(DEFAULT_SEED,)))
    print(f"fmax {result['fmax_mhz']} MHz, design {result['design']}")
    assert result["design"]["class"].endswith(".NanoquoteTop")
    assert result["pass"], (f"fmax {result['fmax_mhz']} MHz < {result['target']['freq_mhz']} MHz; "
                            f"critical path {result['critical_path']}")
    assert result["latency"]["ns_at_fmax"] <= result["latency"]["cycles"] * 1000 / result["target"]["freq_mhz"]
