"""QuotePipeline's Verilog under Verilator and cocotb, against the golden model.

The model is compiled once per parameter set (content-addressed directory under
``build/``, reused across runs); each test plays a seeded scenario through the
driver/monitor/scoreboard testbench in ``nanoquote.sim.testbenches.cocotb_pipeline``.
The lint check of the pipeline's Verilog is in ``tests/sim/test_verilator_lint.py``.
"""

from __future__ import annotations

import pytest
from nanoquote.sim.conformance.amaranth_runner import Handshake
from nanoquote.sim.conformance.runs import run_conformance
from nanoquote.sim.verilator import random_reset_plusargs

pytestmark = pytest.mark.rtl


@pytest.mark.parametrize(("policy", "seed"), [("exchange", 101), ("legacy", 102)])
def test_verilator_conformance(policy: str, seed: int) -> None:
    print(f"seed {seed}")
    result = run_conformance("verilator", policy, 20_000, seed,
                             handshake=Handshake(idle=0.1, stall=0.2, seed=seed))
    assert result.vectors == 20_000
    assert result.mismatches == 0, f"seed {seed}: " + " | ".join(result.reports)


@pytest.mark.parametrize("seed", [7, 8])
def test_verilator_random_initial_state(seed: int) -> None:
    """Every register starts random (+verilator+rand+reset+2): reset must cover all state."""
    print(f"seed {seed}")
    result = run_conformance("verilator", "exchange" if seed % 2 else "legacy", 3000, seed,
                             handshake=Handshake(idle=0.1, stall=0.1, seed=seed),
                             plusargs=random_reset_plusargs(seed))
    assert result.mismatches == 0, f"seed {seed}: " + " | ".join(result.reports)

