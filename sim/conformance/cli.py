"""``nanoquote conformance``: play seeded vectors on the pipeline and compare with golden.

The last line of a completed run is ``conformance: <N> vectors, <M> mismatches``; the
exit status is 0 only when ``M`` is 0 (1: mismatches, 2: the run itself failed, which
ends with ``conformance: error, no result (seed S)``).
"""

from __future__ import annotations

import argparse
import secrets
import sys

from nanoquote.sim.conformance.amaranth_runner import Handshake
from nanoquote.sim.conformance.runs import BACKENDS, ENGINES, run_conformance

from nanoquote.cli import count

__all__ = ["configure", "run"]


def _probability(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not in [0, 1)")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default="verilator")
    parser.add_argument("--policy", choices=("legacy", "exchange"), default="exchange")
    parser.add_argument("--vectors", type=count, default=10_000,
                        help="random vectors to play (ignored with --exhaustive)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the vectors and handshake patterns (default: random, printed)")
    parser.add_argument("--exhaustive", action="store_true",
                        help="the exhaustive grid: every position x every residue of bid+ask mod 2T "
                             "for a grid of configurations, plus corner books")
    parser.add_argument("--max-levels", type=count, default=8, help="build-time maximum of levels")
    parser.add_argument("--idle", type=_probability, default=0.05,
                        help="probability the driver idles a cycle (default 0.05)")
    parser.add_argument("--stall", type=_probability, default=0.05,
                        help="probability o.ready is low in a cycle (default 0.05)")
    parser.add_argument("--chunk", type=count, default=None,
                        help="vectors per simulator run, each from reset (default 100000; "
                             "bulk: 1000000, one shard each)")
    parser.add_argument("--random-reset", action="store_true",
                        help="verilator: start every register random (+verilator+rand+reset+2)")
    parser.add_argument("--engine", choices=ENGINES, default="cocotb",
                        help="verilator: cocotb (every vector against golden, Python each clock) "
                             "or bulk (a C++ harness, every vector against the bit-accurate model, "
                             "a sample against golden)")
    parser.add_argument("--golden-share", type=_probability, default=0.001,
                        help="bulk: share of vectors also checked against golden (default 0.001)")
    parser.add_argument("--workers", type=int, default=0,
                        help="bulk: check the shards on a local Dask cluster of this many workers")
    parser.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                        help="bulk: check the shards on this Dask cluster")


def run(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else secrets.randbits(32)
    plusargs: tuple[str, ...] = ()
    if args.random_reset:
        from nanoquote.sim.verilator import random_reset_plusargs

        plusargs = random_reset_plusargs(seed)
    bulk = args.engine == "bulk"
    if bulk and args.backend != "verilator":
        print("conformance: error: --engine bulk needs --backend verilator", file=sys.stderr)
        return 2
    if not bulk and (args.workers or args.scheduler):
        print("conformance: error: --workers and --scheduler need --engine bulk", file=sys.stderr)
        return 2
    if args.workers < 0:
        print(f"conformance: error: --workers must be >= 0, got {args.workers}", file=sys.stderr)
        return 2
    options = dict(golden_share=args.golden_share, workers=args.workers,
                   scheduler=args.scheduler) if bulk else {}
    try:
        result = run_conformance(
            args.backend, args.policy, args.vectors, seed, exhaustive=args.exhaustive,
            max_levels=args.max_levels, handshake=Handshake(args.idle, args.stall, seed),
            chunk_vectors=args.chunk or (1_000_000 if bulk else 100_000), plusargs=plusargs,
            engine=args.engine, **options,
        )
    except BrokenPipeError:  # output into a closed pipe: nanoquote.cli ends quietly
        raise
    except Exception as exc:  # report any failure with the seed, exit non-zero
        print(f"conformance: {type(exc).__name__}: {exc}", file=sys.stderr)
        print(f"conformance: error, no result (seed {seed})")
        return 2
    for line in result.reports:
        print(f"  mismatch: {line}")
    if bulk:
        cpu = (f", {result.vectors / result.cpu_seconds:,.0f} per CPU second"
               if result.cpu_seconds else "")
        print(f"  {result.vectors} vectors in {result.wall_seconds:.1f} s wall, "
              f"{result.vectors / result.wall_seconds if result.wall_seconds else 0:,.0f} "
              f"verified vectors/s end to end{cpu} ({result.cycles} cycles; "
              f"{result.golden_checked} also against golden)")
    else:
        print(f"  {result.vectors} vectors in {result.wall_seconds:.1f} s wall, "
              f"{result.sim_rate:,.0f} vectors/s simulated ({result.cycles} cycles)")
    if result.mismatches:
        print(f"  FAILED with seed {seed} (rerun: --seed {seed})")
    print(f"conformance: {result.vectors} vectors, {result.mismatches} mismatches")
    return 1 if result.mismatches else 0
