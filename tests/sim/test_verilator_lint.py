"""``verilator --lint-only -Wall`` of the top's Verilog: clean with explained waivers.

The waivers (``nanoquote.sim.verilator_top_build.LINT_WAIVERS``) are categories that
Amaranth's Verilog backend produces by construction; everything else (combinational
loops, multiple drivers, latches, blocking/non-blocking mixes, ...) must not appear.
The top's own modules (AXI4-Lite slave, register block, top) must also not truncate
implicitly (Verilator's WIDTHTRUNC on ``!x``, which is how Amaranth writes ``x == 0``,
is no truncation and is not counted).
"""

from __future__ import annotations

import re

from nanoquote.sim.verilator_top_build import LINT_WAIVERS, lint_top


def test_top_lints_clean_with_explained_waivers():
    assert all(len(reason) > 30 for reason in LINT_WAIVERS.values())
    code, output = lint_top()
    assert code == 0 and "%Warning" not in output and "%Error" not in output, output


def test_top_modules_do_not_truncate_implicitly():
    waivers = {k: v for k, v in LINT_WAIVERS.items() if k != "WIDTHTRUNC"}
    _, output = lint_top(waivers=waivers)
    ours = [w for w in re.split(r"(?=%Warning-)", output)
            if w.startswith("%Warning-WIDTHTRUNC") and "In instance 'nanoquote_top.pipeline" not in w
            and "Logical operator LOGNOT" not in w]
    assert not ours, "\n".join(ours)
