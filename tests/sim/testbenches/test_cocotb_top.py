"""``NanoquoteTop`` under Verilator with cocotb and cocotbext-axi (``nanoquote.sim.testbenches.cocotb_top``).

The Verilator build is cached in ``build/verilator/`` (``nanoquote.sim.verilator.build``;
the first run compiles for a minute or so). Registers start from random values
(``+verilator+rand+reset+2``, seeded), so a missing reset shows up.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from nanoquote.sim.testbenches.amaranth_support import test_seed
from nanoquote.sim.verilator import build, run_cocotb

pytestmark = pytest.mark.rtl

#: The cocotb tests of the module; each must run and pass (a run that collected none fails).
COCOTB_TESTS = {"reset_values", "error_responses", "quote_round_trip", "stream_with_backpressure",
                "kill_and_deadman"}


@pytest.fixture(scope="module")
def top_build():
    return build("top", max_levels=8, price_bits=31)


def test_top_under_verilator(top_build):
    seed = test_seed(3)
    print(f"seed {seed}")
    results = run_cocotb(top_build, "nanoquote.sim.testbenches.cocotb_top", seed=seed,
                         plusargs=["+verilator+rand+reset+2", f"+verilator+seed+{seed + 1}"],
                         extra_env={"NANOQUOTE_SEED": str(seed)})
    cases = ET.parse(results).getroot().iter("testcase")
    outcome = {case.get("name"): [child.tag for child in case] for case in cases}
    assert set(outcome) == COCOTB_TESTS, f"cocotb ran {sorted(outcome)}"
    failed = {name for name, tags in outcome.items() if {"failure", "error", "skipped"} & set(tags)}
    assert not failed, f"cocotb tests that did not pass: {sorted(failed)}"
