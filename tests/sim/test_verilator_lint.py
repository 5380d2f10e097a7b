"""``verilator --lint-only -Wall`` of both designs' Verilog: clean with explained waivers.

The waivers (``nanoquote.sim.verilator.LINT_WAIVERS``, one table for the pipeline and the
top) are categories that Amaranth's Verilog backend produces by construction; everything
else (combinational loops, multiple drivers, latches, blocking/non-blocking mixes, ...)
must not appear. Every waiver is needed: without it, at least one of the designs reports
its rule. The top's own modules (AXI4-Lite slave, register block, top) must also not
truncate implicitly (Verilator's WIDTHTRUNC on ``!x``, which is how Amaranth writes
``x == 0``, is no truncation and is not counted).
"""

from __future__ import annotations

import re
from functools import cache

import pytest
from nanoquote.sim.verilator import LINT_WAIVERS, LintResult, lint

pytestmark = pytest.mark.rtl

DESIGNS = ("pipeline", "top")


@cache
def unwaived(design: str) -> LintResult:
    return lint(design, waivers={})


@pytest.mark.parametrize("design", DESIGNS)
def test_design_lints_clean_with_explained_waivers(design: str) -> None:
    assert all(len(w.reason) > 30 for w in LINT_WAIVERS.values())
    result = lint(design)
    assert result.returncode == 0 and not result.warnings, result.output[-3000:]
    assert "%Warning" not in result.output and "%Error" not in result.output, result.output[-3000:]


def test_only_waived_rules_are_reported_without_waivers() -> None:
    """Nothing but the waived rules is reported without them; together the designs need all."""
    seen: set[str] = set()
    for design in DESIGNS:
        raw = unwaived(design)
        rules = set(raw.rules)
        assert rules <= set(LINT_WAIVERS), (design, rules - set(LINT_WAIVERS))
        errors = [w for w in raw.warnings if w.startswith("%Error") and "Exiting due to" not in w]
        assert not errors, (design, errors)
        seen |= rules
    assert seen == set(LINT_WAIVERS), seen


@pytest.mark.parametrize("rule", list(LINT_WAIVERS))
def test_every_waiver_is_needed(rule: str) -> None:
    waivers = {k: v for k, v in LINT_WAIVERS.items() if k != rule}
    for design in DESIGNS:  # the pipeline first: it lints in a fraction of the top's time
        if lint(design, waivers=waivers).rules[rule]:
            return
    pytest.fail(f"no design reports {rule} without its waiver: drop the waiver")


def test_top_modules_do_not_truncate_implicitly() -> None:
    waivers = {k: v for k, v in LINT_WAIVERS.items() if k != "WIDTHTRUNC"}
    output = lint("top", waivers=waivers).output
    ours = [w for w in re.split(r"(?=%Warning-)", output)
            if w.startswith("%Warning-WIDTHTRUNC") and "In instance 'nanoquote_top.pipeline" not in w
            and "Logical operator LOGNOT" not in w]
    assert not ours, "\n".join(ours)
