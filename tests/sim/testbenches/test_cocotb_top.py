"""``NanoquoteTop`` under Verilator with cocotb and cocotbext-axi (``nanoquote.sim.testbenches.cocotb_top``).

The Verilator build is cached per parameter set in ``build/verilator/`` (the first run
compiles for a minute or so). Registers start from random values
(``+verilator+rand+reset+2``, seeded), so a missing reset shows up.
"""

from __future__ import annotations

import pytest
from nanoquote.sim.testbenches.amaranth_support import test_seed
from nanoquote.sim.verilator_top_build import build_top, run_cocotb


@pytest.fixture(scope="module")
def top_build():
    return build_top(max_levels=8, price_bits=31)


def test_top_under_verilator(top_build):
    seed = test_seed(3)
    print(f"seed {seed}")
    run_cocotb(top_build, "nanoquote.sim.testbenches.cocotb_top", seed=seed,
               plusargs=["+verilator+rand+reset+2", f"+verilator+seed+{seed + 1}"],
               extra_env={"NANOQUOTE_SEED": str(seed)})
