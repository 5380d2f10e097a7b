"""Conformance runs: the pipeline (on a simulator backend) against the golden model.

Vectors are played in chunks (a chunk is one simulator run starting from reset, so the
expected refresh state restarts with it). For every vector the expected output is the
golden ladder and refresh decision (docs/spec.md §6); the bit-accurate model is checked on the same
vectors. A vector counts as a mismatch if the RTL or the model differs from golden.
With Verilator the next chunk's golden expectations are computed while the simulator
process runs the current one.
"""

from __future__ import annotations

import collections
import functools
import random
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from nanoquote.hw.contract.widths import DatapathWidths
from nanoquote.sim.conformance.amaranth_runner import Handshake, run_amaranth
from nanoquote.sim.conformance.scenario import Expectation, Scoreboard, Segment, chunked, expect
from nanoquote.sim.conformance.vectors import exhaustive_scenario, random_scenario
from nanoquote.sim.port_codec import PortCodec

__all__ = ["ConformanceResult", "run_conformance", "BACKENDS", "ENGINES"]

BACKENDS = ("amaranth", "verilator")
#: How the Verilator backend is driven: cocotb (every vector against golden, Python each
#: clock) or bulk (the C++ harness: every vector against the model, a sample against golden).
ENGINES = ("cocotb", "bulk")


@dataclass
class ConformanceResult:
    vectors: int = 0
    mismatches: int = 0
    rtl_mismatches: int = 0
    model_mismatches: int = 0
    reports: list[str] = field(default_factory=list)
    sim_seconds: float = 0.0
    wall_seconds: float = 0.0
    cycles: int = 0
    #: bulk engine: vectors the model was also checked on against golden, and the CPU
    #: time of the checking process and the harness (None: spent on cluster workers)
    golden_checked: int = 0
    cpu_seconds: float | None = None

    @property
    def sim_rate(self) -> float:
        """Vectors per second of simulation proper (testbench loop, excluding startup)."""
        return self.vectors / self.sim_seconds if self.sim_seconds else 0.0


def run_conformance(
    backend: str,
    policy: str,
    vectors: int,
    seed: int,
    exhaustive: bool = False,
    max_levels: int = 8,
    price_bits: int = 31,
    handshake: Handshake | None = None,
    chunk_vectors: int = 100_000,
    plusargs: tuple[str, ...] = (),
    log: Callable[[str], None] = print,
    engine: str = "cocotb",
    **bulk_options: Any,
) -> ConformanceResult:
    """Generate the vectors (seeded), play them on ``backend`` and count mismatches.

    ``engine="bulk"`` (Verilator only) runs :func:`run_bulk` with ``bulk_options``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "bulk":
        if backend != "verilator":
            raise ValueError("the bulk engine runs on the verilator backend only")
        return run_bulk(policy, vectors, seed, exhaustive=exhaustive, max_levels=max_levels,
                        price_bits=price_bits, handshake=handshake, chunk_vectors=chunk_vectors,
                        plusargs=plusargs, log=log, **bulk_options)
    widths = DatapathWidths(max_levels, price_bits)
    hs = handshake or Handshake(idle=0.05, stall=0.05, seed=seed)
    rng = random.Random(seed)
    if exhaustive:
        segments = exhaustive_scenario(policy, max_levels, price_bits)
    else:
        segments = random_scenario(rng, policy, vectors, max_levels, price_bits,
                                   segment_size=(64, 1024))
    total = sum(len(s) for s in segments)
    log(f"conformance: backend {backend}, policy {policy}, seed {seed}, {total} vectors in "
        f"{len(segments)} segments{' (exhaustive grid)' if exhaustive else ''}")
    result = ConformanceResult()
    codec = PortCodec(max_levels, price_bits)
    start = time.perf_counter()
    chunks = list(chunked(segments, chunk_vectors))

    def play(chunk: list[Segment], exp: Expectation, k: int) -> tuple[list[int], float, int]:
        chunk_hs = Handshake(hs.idle, hs.stall, hs.seed + k)
        if backend == "amaranth":
            t0 = time.perf_counter()
            outputs, stats = run_amaranth(chunk, max_levels, price_bits, chunk_hs)
            board = Scoreboard(exp.golden, codec)
            for raw in outputs:
                board.push(raw)
            board.finish()
            result.reports.extend(board.reports[: max(0, 10 - len(result.reports))])
            return board.mismatched, time.perf_counter() - t0, stats["cycles"]
        from nanoquote.sim.conformance.verilator_runner import run_verilator

        summary = run_verilator(chunk, exp.golden, max_levels, price_bits, chunk_hs, plusargs=plusargs)
        result.reports.extend(summary["reports"][: max(0, 10 - len(result.reports))])
        return summary["mismatched"], summary["seconds"], summary["cycles"]

    if backend == "verilator":
        from nanoquote.sim.verilator import build

        t0 = time.perf_counter()
        build("pipeline", max_levels, price_bits)
        log(f"  verilator model ready ({time.perf_counter() - t0:.1f} s)")
    with ThreadPoolExecutor(max_workers=1) as pool:
        exp_next = expect(chunks[0], widths) if chunks else None
        for k, chunk in enumerate(chunks):
            exp = exp_next
            assert exp is not None
            running: Future = pool.submit(play, chunk, exp, k)
            # golden for the next chunk while this one simulates (overlaps with Verilator)
            exp_next = expect(chunks[k + 1], widths) if k + 1 < len(chunks) else None
            rtl_bad, seconds, cycles = running.result()
            model_bad = exp.model_mismatches
            if model_bad:
                result.reports.extend(
                    f"model differs from golden at vector #{result.vectors + i}"
                    for i in model_bad[: max(0, 10 - len(result.reports))])
            n = len(exp.golden)
            result.rtl_mismatches += len(rtl_bad)
            result.model_mismatches += len(model_bad)
            result.mismatches += len(set(rtl_bad) | set(model_bad))
            result.vectors += n
            result.sim_seconds += seconds
            result.cycles += cycles
            log(f"  chunk {k + 1}/{len(chunks)}: {result.vectors}/{total} vectors, "
                f"{n / seconds if seconds else 0:,.0f} vectors/s simulated, "
                f"mismatches {result.mismatches} (rtl {result.rtl_mismatches}, "
                f"model {result.model_mismatches})")
    result.wall_seconds = time.perf_counter() - start
    return result


def run_bulk(
    policy: str,
    vectors: int,
    seed: int,
    *,
    exhaustive: bool = False,
    max_levels: int = 8,
    price_bits: int = 31,
    handshake: Handshake | None = None,
    chunk_vectors: int = 1_000_000,
    plusargs: tuple[str, ...] = (),
    golden_share: float = 0.001,
    workers: int = 0,
    scheduler: str | None = None,
    corrupt: tuple[int, int, int] | None = None,
    log: Callable[[str], None] = print,
) -> ConformanceResult:
    """The bulk engine (:mod:`nanoquote.sim.conformance.bulk`): the run's shards checked
    in this process on one harness, or on a Dask cluster (``workers`` local worker
    processes, or ``scheduler``'s); results merge in shard order either way.
    ``corrupt = (shard, vector, bit)`` flips one output bit (the self-test)."""
    from nanoquote.sim.conformance.bulk import (
        ChunkResult,
        Shard,
        check_shard,
        judge_chunk,
        plan_shards,
        process_harness,
        submit_chunk,
    )
    from nanoquote.sim.verilator import build_bulk

    shards = plan_shards(policy, vectors, seed, exhaustive=exhaustive, max_levels=max_levels,
                         price_bits=price_bits, handshake=handshake, chunk_vectors=chunk_vectors,
                         golden_share=golden_share)
    total = sum(s.vectors for s in shards)
    distributed = bool(workers or scheduler)
    log(f"conformance: engine bulk, policy {policy}, seed {seed}, {total} vectors in "
        f"{len(shards)} shards{' (exhaustive grid)' if exhaustive else ''}, golden sample "
        f"{golden_share:g}" + (f", on {scheduler or f'{workers} local workers'}" if distributed else ""))
    t0 = time.perf_counter()
    executable = build_bulk(max_levels, price_bits).executable
    log(f"  verilator bulk model ready ({time.perf_counter() - t0:.1f} s)")
    result = ConformanceResult()
    start, cpu_start = time.perf_counter(), time.process_time()

    def merge(shard: Shard, found: ChunkResult) -> None:
        result.rtl_mismatches += len(found.rtl_mismatched)
        result.model_mismatches += len(found.model_mismatched)
        result.mismatches += len(set(found.rtl_mismatched) | set(found.model_mismatched))
        result.reports.extend(f"{shard.describe()}: {line}"
                              for line in found.reports[: max(0, 10 - len(result.reports))])
        result.vectors += found.vectors
        result.cycles += found.cycles
        result.golden_checked += found.golden_checked
        elapsed = time.perf_counter() - start
        log(f"  shard {shard.index + 1}/{len(shards)}: {result.vectors}/{total} vectors, "
            f"{result.vectors / elapsed if elapsed else 0:,.0f} vectors/s, mismatches "
            f"{result.mismatches} (rtl {result.rtl_mismatches}, model {result.model_mismatches})")

    if distributed:
        from nanoquote.sim.distributed import cluster, run_tasks

        with cluster(scheduler, workers or 1) as client:
            found = run_tasks(client, functools.partial(check_shard, plusargs=plusargs, executable=executable),
                              shards,
                              describe=Shard.describe,
                              progress=lambda done, n: log(f"  {done}/{n} shards checked"))
        for shard, shard_result in zip(shards, found, strict=True):
            merge(shard, shard_result)
    else:
        harness = process_harness(max_levels, price_bits, plusargs, executable)
        harness_cpu = harness.cpu_seconds()
        in_flight: collections.deque[tuple[Shard, list[Segment], np.ndarray]] = collections.deque()
        for k, shard in enumerate(shards):
            # shard k queued behind k-1: the harness plays one while this process
            # generates and models the next and judges the last
            segments = shard.scenario()
            bad_bit = corrupt[1:] if corrupt is not None and corrupt[0] == k else None
            in_flight.append((shard, segments, submit_chunk(harness, segments, shard.handshake, bad_bit)))
            while len(in_flight) == 2 or (in_flight and k == len(shards) - 1):
                done, done_segments, expected = in_flight.popleft()
                merge(done, judge_chunk(harness, done_segments, expected, harness.collect(),
                                        done.golden_rng(), done.golden_share))
        result.cpu_seconds = time.process_time() - cpu_start + harness.cpu_seconds() - harness_cpu
    result.wall_seconds = result.sim_seconds = time.perf_counter() - start
    return result
