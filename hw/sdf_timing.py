"""Slack of every timing endpoint, from the SDF nextpnr writes after routing.

nextpnr's report names only the single worst path of each clock. To see *all* the
logic that misses a target (which registers, how many bits, from where), this module
reads the routed design's SDF (cell arcs and every routed interconnect, in ps, the
``max`` corner nextpnr itself times with), propagates arrival times from every clocked
output, and groups the endpoints by the register they belong to.

The clock is ideal (zero insertion delay and skew, as nextpnr's ECP5 analysis treats
the global network) and single; paths from pads are not timed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["EndpointGroup", "endpoint_slacks", "register_of"]

_CLOCK_PINS = {"CLK", "CLKA", "CLKB", "CLKW", "WCK"}
_TRIPLE = r"\((-?[\d.]*):(-?[\d.]*):(-?[\d.]*)\)"
_INTERCONNECT = re.compile(r"\(INTERCONNECT\s+(\S+)\s+(\S+)\s+" + _TRIPLE + r"\s*(?:" + _TRIPLE + r")?")
_IOPATH = re.compile(r"\(IOPATH\s+(\S+)\s+(\S+)\s+" + _TRIPLE + r"\s*(?:" + _TRIPLE + r")?")
_SETUP = re.compile(r"\(SETUP(?:HOLD)?\s+\((?:posedge|negedge)\s+(\S+)\)\s+\((?:posedge|negedge)\s+\S+\)\s+"
                    + _TRIPLE)
_INSTANCE = re.compile(r"\(INSTANCE\s*(.*?)\)\s*$")


@dataclass(frozen=True)
class EndpointGroup:
    """The flip-flops of one register, how many miss the target, and the worst path's start."""

    register: str
    slack_ns: float
    failing_bits: int
    bits: int
    worst_from: str

    def as_dict(self) -> dict:
        return {"register": self.register, "slack_ns": round(self.slack_ns, 3),
                "failing_bits": self.failing_bits, "bits": self.bits, "worst_from": self.worst_from}


def register_of(cell: str) -> str:
    """The register a flip-flop cell implements (Yosys names FFs after their Q net)."""
    return re.sub(r"_TRELLIS_FF_Q(_\d+)?$", "", cell)


def _max(groups: tuple) -> float:
    values = [float(v) for v in groups if v not in (None, "")]
    return max(values) if values else 0.0


def _split_pin(token: str) -> tuple[str, str]:
    # the last unescaped '/' separates instance and pin
    for i in range(len(token) - 1, -1, -1):
        if token[i] == "/" and (i == 0 or token[i - 1] != "\\"):
            return token[:i].replace("\\", ""), token[i + 1:]
    return "", token


def endpoint_slacks(sdf: Path, period_ns: float,
                    launch: Callable[[str], bool] | None = None) -> list[EndpointGroup]:
    """Endpoint groups of the routed design, worst slack first.

    ``launch(register)`` selects the registers paths may start from (default: all), e.g.
    to leave out registers that are static while the paths of interest are exercised.
    """
    edges: dict[str, list[tuple[str, float]]] = defaultdict(list)  # sink -> [(source, ps)]
    setup: dict[str, float] = {}
    starts: dict[str, float] = {}
    instance = ""
    for line in sdf.read_text().splitlines():
        line = line.strip()
        if line.startswith("(INSTANCE"):
            match = _INSTANCE.match(line)
            instance = match.group(1).replace("\\", "") if match else ""
        elif line.startswith("(INTERCONNECT"):
            match = _INTERCONNECT.match(line)
            if match:
                src, dst = (("/".join(_split_pin(t))) for t in match.group(1, 2))
                edges[dst].append((src, _max(match.groups()[2:])))
        elif line.startswith("(IOPATH"):
            match = _IOPATH.match(line)
            if match:
                a, b = match.group(1, 2)
                delay = _max(match.groups()[2:])
                if a in _CLOCK_PINS:
                    if launch is None or launch(register_of(instance)):
                        node = f"{instance}/{b}"
                        starts[node] = max(starts.get(node, 0.0), delay)
                else:
                    edges[f"{instance}/{b}"].append((f"{instance}/{a}", delay))
        elif line.startswith("(SETUP"):
            match = _SETUP.match(line)
            if match:
                node = f"{instance}/{match.group(1)}"
                setup[node] = max(setup.get(node, 0.0), _max(match.groups()[1:4]))

    arrival: dict[str, tuple[float, str | None]] = {}

    def arrive(node: str) -> tuple[float, str | None]:
        # iterative depth-first evaluation (paths are thousands of arcs long); an arc
        # back into a node being evaluated (a combinational loop) is ignored
        visiting: set[str] = set()
        stack = [node]
        while stack:
            top = stack[-1]
            if top in arrival:
                stack.pop()
                continue
            if top not in visiting:
                visiting.add(top)
                pending = [src for src, _ in edges.get(top, ()) if src not in arrival and src not in visiting]
                if pending:
                    stack.extend(pending)
                    continue
            best: tuple[float, str | None] = (starts[top], None) if top in starts else (float("-inf"), None)
            for src, delay in edges.get(top, ()):
                if src in arrival and arrival[src][0] + delay > best[0]:
                    best = (arrival[src][0] + delay, src)
            arrival[top] = best
            visiting.discard(top)
            stack.pop()
        return arrival[node]

    def start_of(node: str) -> str:
        while True:
            pred = arrival[node][1]
            if pred is None:
                return node.rsplit("/", 1)[0]
            node = pred

    groups: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for node, setup_ps in setup.items():
        t, _ = arrive(node)
        if t == float("-inf"):
            continue
        slack = period_ns - (t + setup_ps) / 1000.0
        groups[register_of(node.rsplit("/", 1)[0])].append((slack, node))
    out = []
    for reg, items in groups.items():
        worst, node = min(items)
        cells = {n.rsplit("/", 1)[0] for _, n in items}
        failing = {n.rsplit("/", 1)[0] for s, n in items if s < 0}
        out.append(EndpointGroup(reg, worst, len(failing), len(cells), register_of(start_of(node))))
    return sorted(out, key=lambda g: g.slack_ns)
