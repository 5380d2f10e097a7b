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

#: clock pins of clocked cells: TRELLIS_FF CLK, MULT18X18D/ALU54B CLK0..3, DP16KD CLKA/B,
#: TRELLIS_RAMW WCK (not DCCA's CLKI, a buffer)
_CLOCK_PIN = re.compile(r"^(CLK\d?|CLK[AB]|WCK)$")
_TOKEN = re.compile(
    r"\(INSTANCE\s*(?P<inst>(?:\\.|[^\s)\\])*)\)"
    r"|\(INTERCONNECT\s+(?P<src>\S+)\s+(?P<dst>\S+)\s+(?P<ic>\([^)]*\)(?:\s*\([^)]*\))?)"
    r"|\(IOPATH\s+(?P<a>\S+)\s+(?P<b>\S+)\s+(?P<io>\([^)]*\)(?:\s*\([^)]*\))?)"
    r"|\(SETUP(?:HOLD)?\s+\((?:posedge|negedge)\s+(?P<pin>[^)\s]+)\)\s+"
    r"\((?:posedge|negedge)\s+[^)\s]+\)\s+(?P<su>\([^)]*\))")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


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


def _max_delay(text: str) -> float:
    """The largest value of ``(min:typ:max)`` triples (ps); empty triples count 0."""
    values = [float(v) for v in _NUMBER.findall(text)]
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
    for tok in _TOKEN.finditer(sdf.read_text()):
        if tok["inst"] is not None:
            instance = tok["inst"].replace("\\", "")
        elif tok["src"] is not None:
            src, dst = ("/".join(_split_pin(t)) for t in (tok["src"], tok["dst"]))
            edges[dst].append((src, _max_delay(tok["ic"])))
        elif tok["a"] is not None:
            delay = _max_delay(tok["io"])
            if _CLOCK_PIN.match(tok["a"]):
                if launch is None or launch(register_of(instance)):
                    node = f"{instance}/{tok['b']}"
                    starts[node] = max(starts.get(node, 0.0), delay)
            else:
                edges[f"{instance}/{tok['b']}"].append((f"{instance}/{tok['a']}", delay))
        else:
            node = f"{instance}/{tok['pin']}"
            setup[node] = max(setup.get(node, 0.0), _max_delay(tok["su"]))

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


def main(argv: list[str] | None = None) -> int:
    """``python -m nanoquote.hw.fpga.sdf_timing timing-s1.sdf --freq 200``: the worst registers."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m nanoquote.hw.fpga.sdf_timing", description=main.__doc__)
    parser.add_argument("sdf", type=Path, help="SDF written by nextpnr (nanoquote build keeps timing-s<seed>.sdf)")
    parser.add_argument("--freq", type=float, default=200.0, metavar="MHZ", help="target clock (default: 200)")
    parser.add_argument("--top", type=int, default=30, metavar="N", help="registers to list (default: 30)")
    parser.add_argument("--static", action="append", default=[], metavar="PREFIX",
                        help="registers named PREFIX... launch no paths and are not listed (repeatable): "
                             "what is left if they were multicycle or false paths")
    args = parser.parse_args(argv)

    def static(register: str) -> bool:
        return any(register.startswith(p) for p in args.static)

    groups = [g for g in endpoint_slacks(args.sdf, 1000.0 / args.freq, launch=lambda r: not static(r))
              if not static(g.register)]
    failing = sum(g.failing_bits for g in groups)
    worst = groups[0].slack_ns if groups else 0.0
    print(f"{failing} flip-flops miss {args.freq:g} MHz; worst path {1000.0 / args.freq - worst:.3f} ns "
          f"({1000.0 / (1000.0 / args.freq - worst):.2f} MHz)")
    for g in groups[: args.top]:
        print(f"{g.slack_ns:+8.3f} {g.failing_bits:5}/{g.bits:<5} {g.register}  <- {g.worst_from}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
