"""Where the per-update multipliers sit on parts whose DSP grid is known.

An 85k ECP5 has its 156 MULT18X18D in three rows (Y10, Y34, Y58), 52 per row, in
blocks of four at columns X, X+1, X+4, X+5 for X in 4, 13, 22, 31, 40, 49, 58, 69, ...
Left to itself nextpnr may put one of the pipeline's multipliers a row away from the
adders it feeds (a route of most of a 200 MHz cycle; docs/performance.md). Pinning
the twelve per-update multipliers side by side in the middle row keeps every DSP
crossing of the per-update path short; the adders and registers between them are
placed around them. The coefficient stage's multipliers are left to the placer.

Pins are nextpnr BEL attributes, applied only when elaborating for a listed part (other
parts and the simulators see no difference).
"""

from __future__ import annotations

__all__ = ["DSP_SITES", "dsp_site"]

_ROW = 34
_SITES_85K = {
    # S2: P * m, limb products 0..3
    **{f"s2_mul{k}": f"X{x}/Y{_ROW}/MULT18_{s}"
       for k, (x, s) in enumerate(((49, 0), (50, 1), (53, 4), (54, 5)))},
    # S4: T' * X, one pair per side and group of four levels; the bid pairs left of S2
    # and the ask pairs right of it, so that each side's S5 adders have room around them
    "s4_bid0_mul0": f"X44/Y{_ROW}/MULT18_4",
    "s4_bid0_mul1": f"X45/Y{_ROW}/MULT18_5",
    "s4_bid1_mul0": f"X40/Y{_ROW}/MULT18_0",
    "s4_bid1_mul1": f"X41/Y{_ROW}/MULT18_1",
    "s4_ask0_mul0": f"X58/Y{_ROW}/MULT18_0",
    "s4_ask0_mul1": f"X59/Y{_ROW}/MULT18_1",
    "s4_ask1_mul0": f"X62/Y{_ROW}/MULT18_4",
    "s4_ask1_mul1": f"X63/Y{_ROW}/MULT18_5",
}

#: part name -> pipeline multiplier name -> nextpnr BEL
DSP_SITES: dict[str, dict[str, str]] = {
    part: _SITES_85K for part in ("LFE5UM5G-85F", "LFE5UM-85F", "LFE5U-85F")
}


def dsp_site(platform: object, name: str) -> str | None:
    """The BEL for the pipeline multiplier ``name`` on ``platform``'s part, if pinned."""
    return DSP_SITES.get(getattr(platform, "device", None), {}).get(name)
