"""Conformance runs: the pipeline (on a simulator backend) against the golden model.

Vectors are played in chunks (a chunk is one simulator run starting from reset, so the
expected refresh state restarts with it). For every vector the expected output is the
golden ladder and refresh decision (docs/spec.md §6); the bit-accurate model is checked on the same
vectors. A vector counts as a mismatch if the RTL or the model differs from golden.
With Verilator the next chunk's golden expectations are computed while the simulator
process runs the current one.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from nanoquote.hw.contract.widths import DatapathWidths
from nanoquote.sim.conformance.amaranth_runner import Handshake, run_amaranth
from nanoquote.sim.conformance.scenario import Expectation, Scoreboard, Segment, expect
from nanoquote.sim.conformance.vectors import exhaustive_scenario, random_scenario
from nanoquote.sim.port_codec import PortCodec

__all__ = ["ConformanceResult", "run_conformance", "chunked", "BACKENDS"]

BACKENDS = ("amaranth", "verilator")


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

    @property
    def sim_rate(self) -> float:
        """Vectors per second of simulation proper (testbench loop, excluding startup)."""
        return self.vectors / self.sim_seconds if self.sim_seconds else 0.0


def chunked(segments: list[Segment], chunk_vectors: int) -> Iterator[list[Segment]]:
    """Consecutive groups of whole segments with about ``chunk_vectors`` updates each."""
    group: list[Segment] = []
    size = 0
    for seg in segments:
        group.append(seg)
        size += len(seg)
        if size >= chunk_vectors:
            yield group
            group, size = [], 0
    if group:
        yield group


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
) -> ConformanceResult:
    """Generate the vectors (seeded), play them on ``backend`` and count mismatches."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
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
