"""Bulk conformance: the Verilated pipeline at millions of vectors per second.

The vectors live in numpy arrays; a C++ harness (``bulk_harness.cpp``, compiled with the
design by :func:`nanoquote.sim.verilator.build_bulk`) drives them into the model with
the cocotb bench's handshake (seeded idle cycles and back-pressure, ports set with a
segment's first update), with no Python per clock. Vectors and ladders cross in shared
memory (a file in ``/dev/shm`` per slot; a pipe carries one request and one answer per
chunk) as one 64-bit value per field: the harness packs and unpacks them at the offsets
of the layouts (:func:`port_fields`, sent to it at start-up), so checking is a numpy
comparison of two (fields x vectors) arrays:

* every output field of every vector against the bit-accurate model
  (:func:`model_expectation`);
* the model against the golden model on a seeded sample of vectors
  (:func:`golden_sample_check`): the ladder from ``build_ladder``, and the refresh
  decision of docs/spec.md §6 given the refreshes before that vector.

A chunk of vectors is one harness request starting from a hard reset, so a run cut into
:class:`Shard` s can be checked anywhere (:func:`check_shard` on a Dask worker) with the
same verdicts.
"""

from __future__ import annotations

import atexit
import collections
import mmap
import os
import random
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import IO

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data
from nanoquote.host.strategy.quoting import BookUpdate
from nanoquote.hw.contract.widths import DatapathWidths
from nanoquote.hw.gateware.layouts import ladder_out_layout, market_update_layout
from nanoquote.hw.model import RefreshModel, coefficient_stage, ladder
from nanoquote.sim.conformance.amaranth_runner import Handshake
from nanoquote.sim.conformance.reference import SpecRefreshClock, golden_ladder
from nanoquote.sim.conformance.scenario import Segment, chunked
from nanoquote.sim.conformance.vectors import exhaustive_scenario, random_scenario
from nanoquote.sim.port_codec import PortCodec

__all__ = ["PortField", "port_fields", "BulkHarness", "ChunkResult", "model_expectation",
           "golden_sample_check", "verify_chunk", "submit_chunk", "judge_chunk", "HarnessError",
           "Shard", "plan_shards", "BULK_SEGMENT_SIZE", "process_harness", "check_shard"]

_MAGIC = 0x4E51424B
_NONE = 0xFFFFFFFF


class HarnessError(RuntimeError):
    """The harness process failed or answered something that is not the protocol."""


@dataclass(frozen=True)
class PortField:
    """One field of a port as the harness moves it: a name (``bid_price[3]`` for an
    array element), its bit offset and width."""

    name: str
    base: str
    index: int | None
    offset: int
    width: int


def port_fields(layout: data.StructLayout) -> list[PortField]:
    """The layout's fields, arrays expanded to elements, in offset order; checked to
    cover every bit of the port exactly once (so no bit goes unchecked)."""
    out: list[PortField] = []
    for name, f in layout:
        if isinstance(f.shape, data.ArrayLayout):
            width = Shape.cast(f.shape.elem_shape).width
            out += [PortField(f"{name}[{i}]", name, i, f.offset + i * width, width)
                    for i in range(f.shape.length)]
        else:
            out.append(PortField(name, name, None, f.offset, Shape.cast(f.shape).width))
    out.sort(key=lambda p: p.offset)
    covered = 0
    for p in out:
        if p.offset != covered or not 1 <= p.width <= 64:
            raise ValueError(f"field {p.name} at bit {p.offset} (width {p.width}) leaves a gap, "
                             f"overlaps or is wider than 64 bits")
        covered += p.width
    if covered != layout.size:
        raise ValueError(f"fields cover {covered} of {layout.size} bits")
    return out


def _words(bits: int) -> int:
    return -(-bits // 32)


@dataclass
class _Slot:
    """A shared data file, the chunk in flight in it, and its expectation buffer."""

    file: IO[bytes]
    map: mmap.mmap | None = None
    vectors: int | None = None  # the chunk in flight, or None
    out_at: int = 0
    scratch: np.ndarray | None = None


class BulkHarness:
    """One harness process and its shared data files for a run (``with`` closes them).

    :meth:`submit` hands a chunk to the harness, which simulates it in its own process
    while the caller computes the chunk's expectation; :meth:`collect` waits for the
    oldest chunk's ladders. With two slots a second chunk can be submitted before the
    first is collected, so the harness never waits for the comparison. The arrays
    :meth:`collect` returns are views of the shared file, valid until that slot's next
    :meth:`submit`.
    """

    def __init__(self, executable: Path, max_levels: int, price_bits: int,
                 plusargs: tuple[str, ...] = (), slots: int = 2) -> None:
        self.in_fields = port_fields(market_update_layout(price_bits))
        self.out_fields = port_fields(ladder_out_layout(max_levels, price_bits))
        self.codec = PortCodec(max_levels, price_bits)
        shm = Path("/dev/shm")
        self._slots = [_Slot(tempfile.NamedTemporaryFile(prefix="nanoquote-bulk-",
                                                         dir=shm if shm.is_dir() else None))
                       for _ in range(slots)]
        self._next = 0  # the slot the next submit uses
        self._in_flight: collections.deque[_Slot] = collections.deque()
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([str(executable), *(s.file.name for s in self._slots), *plusargs],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr)
        hello = self.proc.stdout.readline().decode(errors="replace").split()
        expected = [_words(market_update_layout(price_bits).size),
                    _words(self.codec.config_layout.size),
                    _words(ladder_out_layout(max_levels, price_bits).size), slots]
        if hello[:1] != ["nanoquote-bulk"] or hello[1:] != [str(w) for w in expected]:
            self.close()
            raise HarnessError(f"{executable} is not a bulk harness of this build (said {hello!r}, "
                               f"expected port words and slots {expected}){self._tail()}")
        self.cfg_words = expected[1]
        tables = []
        for fields in (self.in_fields, self.out_fields):
            tables += [len(fields)] + [v for f in fields for v in (f.offset, f.width)]
        self._send(np.array(tables, dtype="<u4").tobytes())

    def __enter__(self) -> BulkHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for slot in self._slots:
            slot.file.close()

    def cpu_seconds(self) -> float:
        """User + system CPU time of the harness process so far (0 if unknown)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    def _tail(self) -> str:
        self._stderr.seek(0)
        text = self._stderr.read()[-2000:].decode(errors="replace").strip()
        return f"; harness stderr: {text}" if text else ""

    def _send(self, payload: bytes) -> None:
        try:
            self.proc.stdin.write(payload)
            self.proc.stdin.flush()
        except OSError as exc:
            raise HarnessError(f"the harness stopped reading ({exc}){self._tail()}") from None

    @staticmethod
    def _region(slot: _Slot, size: int) -> mmap.mmap:
        """The slot's file mapped with at least ``size`` bytes (grown by doubling)."""
        if slot.map is None or len(slot.map) < size:
            size = max(size, 2 * len(slot.map)) if slot.map is not None else size
            os.ftruncate(slot.file.fileno(), size)
            slot.map = mmap.mmap(slot.file.fileno(), size)
        return slot.map

    def submit(self, segments: list[Segment], handshake: Handshake,
               corrupt: tuple[int, int] | None = None) -> None:
        """Queue ``segments`` to be played from a hard reset. ``corrupt = (vector, bit)``
        flips that bit of that vector's ladder port value (the comparison's self-test)."""
        index = self._next
        slot = self._slots[index]
        if slot.vectors is not None:
            raise HarnessError("every slot holds a chunk in flight; collect() one first")
        pb, n_seg = self.codec.price_bits, len(segments)
        n = sum(len(s) for s in segments)
        seg_w = self.cfg_words + 5
        upd_at = -(-n_seg * seg_w * 4 // 8) * 8
        out_at = upd_at + n * len(self.in_fields) * 8
        region = self._region(slot, max(4096, out_at + n * len(self.out_fields) * 8))
        cfg = np.frombuffer(region, "<u4", n_seg * seg_w).reshape(n_seg, seg_w)
        for k, seg in enumerate(segments):
            raw = self.codec.config(seg.params(pb))
            cfg[k, : self.cfg_words] = np.frombuffer(raw.to_bytes(4 * self.cfg_words, "little"), "<u4")
            cfg[k, self.cfg_words:] = (seg.position & 0xFFFF, seg.live_bid, seg.live_ask,
                                       int(seg.armed), len(seg))
        updates = np.frombuffer(region, "<u8", n * len(self.in_fields), upd_at).reshape(-1, n)
        for j, f in enumerate(self.in_fields):
            np.concatenate([getattr(s, f.base) for s in segments], out=updates[j], casting="unsafe")
        del cfg, updates  # no view may outlive a remap of the region
        at, bit = corrupt if corrupt is not None else (_NONE, 0)
        seed = handshake.seed & ((1 << 64) - 1)
        self._send(struct.pack("<12I", _MAGIC, index, n_seg, n, _threshold(handshake.idle),
                               _threshold(handshake.stall), seed & _NONE, seed >> 32, at, bit,
                               len(region) & _NONE, len(region) >> 32))
        slot.vectors, slot.out_at = n, out_at
        self._in_flight.append(slot)
        self._next = (index + 1) % len(self._slots)

    def collect(self) -> tuple[np.ndarray, int, int]:
        """Wait for the oldest submitted chunk: (ladders as a (fields x ladders) uint64
        array, extra ladders beyond the vectors, cycles)."""
        if not self._in_flight:
            raise HarnessError("collect() without a submitted chunk")
        slot = self._in_flight.popleft()
        n, slot.vectors = slot.vectors, None
        assert n is not None and slot.map is not None
        answer = self.proc.stdout.read(16)
        if len(answer) != 16:
            raise HarnessError(f"the harness ended mid-answer (exit status {self.proc.poll()})"
                               f"{self._tail()}")
        received, extra, lo, hi = struct.unpack("<4I", answer)
        if received > n:
            raise HarnessError(f"the harness returned {received} ladders for {n} vectors")
        outputs = np.frombuffer(slot.map, "<u8", n * len(self.out_fields), slot.out_at)
        return outputs.reshape(-1, n)[:, :received], extra, lo | hi << 32

    def scratch(self, vectors: int) -> np.ndarray:
        """A (ladder fields x at least ``vectors``) uint64 buffer of the slot the next
        :meth:`submit` uses, kept between chunks for their expectations (fresh memory for
        every chunk costs more than the model)."""
        slot = self._slots[self._next]
        if slot.scratch is None or slot.scratch.shape[1] < vectors:
            slot.scratch = np.empty((len(self.out_fields), vectors), dtype=np.uint64)
        return slot.scratch

    def raw(self, column: np.ndarray) -> int:
        """The ladder port value of one vector's fields."""
        return sum(int(v) << f.offset for v, f in zip(column.tolist(), self.out_fields, strict=True))


def _threshold(probability: float) -> int:
    """``probability`` as the harness's 32-bit draw threshold."""
    return min(_NONE, int(Fraction(probability) * (1 << 32)))


def model_expectation(segments: list[Segment], widths: DatapathWidths,
                      fields: list[PortField], out: np.ndarray | None = None) -> np.ndarray:
    """The bit-accurate model's ladder of every vector, as a (fields x vectors) uint64
    array in ``fields`` order (in ``out``'s first columns when given); the refresh state
    runs from reset across the segments."""
    n = sum(len(s) for s in segments)
    if out is None:
        out = np.empty((len(fields), n), dtype=np.uint64)
    out = out[:, :n]
    clock = RefreshModel()
    row = 0
    for seg in segments:
        params = seg.params(widths.price_bits)
        coeffs = coefficient_stage(params, seg.position, seg.live_bid, seg.live_ask, widths)
        lad = ladder(coeffs, seg.bid, seg.ask, seg.has_bid, seg.has_ask)
        refresh = clock.run(bool(params.legacy), params.refresh_interval,
                            np.full(len(seg), seg.armed), lad.quotable, seg.ts)
        values = {"ts": seg.ts, "bid_post": lad.bid_post, "ask_post": lad.ask_post,
                  "bid_count": lad.bid_count, "ask_count": lad.ask_count,
                  "out_of_domain": lad.out_of_domain, "no_mid": lad.no_mid,
                  "crossed": lad.crossed, "refresh": refresh, "size_blocked": lad.size_blocked,
                  "killed": 0, "deadman": 0}  # the pipeline has no kill latch (the top's)
        block = out[:, row: row + len(seg)]
        for j, f in enumerate(fields):
            if f.index is None:
                block[j] = values[f.base]
            else:  # bid_price[i], ask_price[i]
                lad.level_price(f.base.split("_", 1)[0], f.index, out=block[j])
        row += len(seg)
    return out


def golden_sample_check(segments: list[Segment], expected: np.ndarray, fields: list[PortField],
                        widths: DatapathWidths, rng: random.Random, share: float,
                        ) -> tuple[int, list[int], list[str]]:
    """Compare the model's ladders ``expected`` (fields x vectors) with the golden model on a seeded sample of
    about ``share`` of the vectors (at least one per chunk): ``(vectors checked, the
    differing vectors, a report for each)``.

    The refresh decision of vector ``j`` is the spec's rule applied to the state the
    model's own earlier decisions imply (the last refresh before ``j`` in the chunk, or
    none since the reset), so a model that ever decides wrongly is caught at the sampled
    vector where it does.
    """
    n = expected.shape[1]
    if n == 0:
        return 0, [], []
    k = max(1, min(n, round(n * share)))
    picks = sorted(rng.sample(range(n), k))
    col = {f.name: j for j, f in enumerate(fields)}
    refresh = expected[col["refresh"]].astype(bool)
    ts_all = expected[col["ts"]]
    last = np.where(refresh, np.arange(n), -1)
    last = np.concatenate(([-1], np.maximum.accumulate(last)[:-1]))  # last refresh before j
    starts = np.cumsum([0] + [len(s) for s in segments])
    reports: list[str] = []
    differing: list[int] = []
    for j in picks:
        s_idx = int(np.searchsorted(starts, j, side="right")) - 1
        seg, i = segments[s_idx], j - int(starts[s_idx])
        book = BookUpdate(int(seg.ts[i]), int(seg.bid[i]) if seg.has_bid[i] else None,
                          int(seg.ask[i]) if seg.has_ask[i] else None)
        gold = golden_ladder(seg.config, book, seg.position, seg.live_bid, seg.live_ask,
                             widths.max_levels, widths.price_max)
        clock = SpecRefreshClock()
        clock.last_quote_time = int(ts_all[last[j]]) if last[j] >= 0 else None
        want = {"ts": book.ts, "bid_post": gold.bid_post, "ask_post": gold.ask_post,
                "bid_count": gold.bid_count, "ask_count": gold.ask_count,
                "out_of_domain": gold.out_of_domain, "no_mid": int(gold.no_mid),
                "crossed": int(gold.crossed), "size_blocked": int(gold.size_blocked),
                "refresh": int(clock.decide(seg.config, seg.armed, not gold.no_mid, book.ts))}
        want |= {f"bid_price[{q}]": p for q, p in enumerate(gold.bid_price)}
        want |= {f"ask_price[{q}]": p for q, p in enumerate(gold.ask_price)}
        bad = [f"{name}: model {int(expected[col[name], j])}, golden {value}"
               for name, value in want.items() if int(expected[col[name], j]) != value]
        if bad:
            differing.append(j)
            reports.append(f"model differs from golden at vector #{j}: " + "; ".join(bad))
    return k, differing, reports


@dataclass
class ChunkResult:
    """What one chunk's check found."""

    vectors: int = 0
    rtl_mismatched: list[int] = field(default_factory=list)
    #: sampled vectors where the model differs from golden
    model_mismatched: list[int] = field(default_factory=list)
    golden_checked: int = 0
    extra: int = 0
    cycles: int = 0
    reports: list[str] = field(default_factory=list)


def judge_chunk(harness: BulkHarness, segments: list[Segment], expected: np.ndarray,
                played: tuple[np.ndarray, int, int], golden_rng: random.Random,
                golden_share: float, max_reports: int = 10) -> ChunkResult:
    """Compare a chunk's ladders ``played`` (what :meth:`BulkHarness.collect` gave) with
    the model's ``expected`` on every vector, and the model with golden on a sample."""
    codec = harness.codec
    outputs, extra, cycles = played
    n, m = expected.shape[1], outputs.shape[1]
    result = ChunkResult(vectors=n, extra=extra, cycles=cycles)
    differs = np.flatnonzero((outputs != expected[:, :m]).any(axis=0))
    result.rtl_mismatched = differs.tolist() + list(range(m, n)) + list(range(n, n + extra))
    for j in differs[:max_reports].tolist():
        got, want = codec.decode(harness.raw(outputs[:, j])), codec.decode(harness.raw(expected[:, j]))
        result.reports.append(f"vector #{j}: " + "; ".join(got.diff(want)))
    if m < n:
        result.reports.append(f"{n - m} outputs missing (from vector #{m})")
    if extra:
        result.reports.append(f"{extra} unexpected extra outputs")
    widths = DatapathWidths(codec.max_levels, codec.price_bits)
    result.golden_checked, result.model_mismatched, golden_reports = golden_sample_check(
        segments, expected, harness.out_fields, widths, golden_rng, golden_share)
    result.reports += golden_reports
    del result.reports[max_reports:]
    return result


def submit_chunk(harness: BulkHarness, segments: list[Segment], handshake: Handshake,
                 corrupt: tuple[int, int] | None = None) -> np.ndarray:
    """Queue a chunk on the harness and compute its expectation while it simulates."""
    codec = harness.codec
    scratch = harness.scratch(sum(len(s) for s in segments))
    harness.submit(segments, handshake, corrupt)
    return model_expectation(segments, DatapathWidths(codec.max_levels, codec.price_bits),
                             harness.out_fields, scratch)


def verify_chunk(harness: BulkHarness, segments: list[Segment], handshake: Handshake,
                 golden_rng: random.Random, golden_share: float,
                 corrupt: tuple[int, int] | None = None) -> ChunkResult:
    """Play one chunk on the harness and check it (:func:`submit_chunk`, then
    :func:`judge_chunk`)."""
    expected = submit_chunk(harness, segments, handshake, corrupt)
    return judge_chunk(harness, segments, expected, harness.collect(), golden_rng, golden_share)


#: Segment lengths of bulk random scenarios: long segments keep the per-segment cost
#: (a configuration, its coefficients) small against the per-vector cost.
BULK_SEGMENT_SIZE = (256, 8192)


@dataclass(frozen=True)
class Shard:
    """One independently checkable chunk of a run: random vectors from its own seed, or
    given segments (the exhaustive grid's)."""

    index: int
    policy: str
    seed: int
    vectors: int
    max_levels: int
    price_bits: int
    handshake: Handshake
    golden_share: float
    segments: tuple[Segment, ...] = ()

    def describe(self) -> str:
        return (f"shard {self.index} ({self.vectors} vectors, policy {self.policy}, "
                f"seed {self.seed}, handshake seed {self.handshake.seed})")

    def scenario(self) -> list[Segment]:
        """The shard's segments (random ones are generated from ``(seed, index)``)."""
        if self.segments:
            return list(self.segments)
        rng = random.Random(f"nanoquote-bulk/{self.seed}/{self.index}")
        return random_scenario(rng, self.policy, self.vectors, self.max_levels, self.price_bits,
                               segment_size=BULK_SEGMENT_SIZE)

    def golden_rng(self) -> random.Random:
        return random.Random(f"nanoquote-bulk-golden/{self.seed}/{self.index}")


def plan_shards(policy: str, vectors: int, seed: int, *, exhaustive: bool = False,
                max_levels: int = 8, price_bits: int = 31, handshake: Handshake | None = None,
                chunk_vectors: int = 1_000_000, golden_share: float = 0.001) -> list[Shard]:
    """The run cut into shards of about ``chunk_vectors`` vectors (the same shards,
    hence the same vectors and verdicts, however and wherever they are run)."""
    hs = handshake or Handshake(0.05, 0.05, seed)

    def shard(k: int, n: int, segments: tuple[Segment, ...] = ()) -> Shard:
        return Shard(k, policy, seed, n, max_levels, price_bits,
                     Handshake(hs.idle, hs.stall, hs.seed + k), golden_share, segments)

    if exhaustive:
        groups = chunked(exhaustive_scenario(policy, max_levels, price_bits), chunk_vectors)
        return [shard(k, sum(len(s) for s in g), tuple(g)) for k, g in enumerate(groups)]
    sizes = [chunk_vectors] * (vectors // chunk_vectors)
    if vectors % chunk_vectors:
        sizes.append(vectors % chunk_vectors)
    return [shard(k, n) for k, n in enumerate(sizes)]


_HARNESSES: dict[tuple[int, int, tuple[str, ...]], BulkHarness] = {}


def process_harness(max_levels: int, price_bits: int, plusargs: tuple[str, ...] = (),
                    executable: Path | None = None) -> BulkHarness:
    """This process's harness for a build (started on first use), so a worker that checks
    many shards starts one simulator. ``executable`` is a harness already built (the
    client's, when the worker shares its file system); without it, or when it is not
    there, the build is made or found in this machine's cache."""
    from nanoquote.sim.verilator import build_bulk

    key = (max_levels, price_bits, plusargs)
    harness = _HARNESSES.get(key)
    if harness is None or harness.proc.poll() is not None:
        if executable is None or not executable.exists():
            executable = build_bulk(max_levels, price_bits).executable
        harness = BulkHarness(executable, max_levels, price_bits, plusargs)
        _HARNESSES[key] = harness
    return harness


@atexit.register
def _close_harnesses() -> None:
    for harness in _HARNESSES.values():
        harness.close()
    _HARNESSES.clear()


def check_shard(shard: Shard, plusargs: tuple[str, ...] = (),
                corrupt: tuple[int, int] | None = None, executable: Path | None = None) -> ChunkResult:
    """Check one shard on this process's harness (what a distributed worker runs)."""
    harness = process_harness(shard.max_levels, shard.price_bits, plusargs, executable)
    return verify_chunk(harness, shard.scenario(), shard.handshake, shard.golden_rng(),
                        shard.golden_share, corrupt)
