"""``nanoquote sweep``: the strategy's results over a grid of configurations, on Dask.

Each grid point is a MarketMakerConfig; each of its ``--sessions`` is the seeded
random-walk market (:func:`nanoquote.sim.random_walk.play_market`) played through the
strategy on a backend: the golden strategy, or the offloaded one over a device. Every
session is one task on the cluster (:mod:`nanoquote.sim.distributed`); the results come
back in task order and every metric is computed with exact or order-fixed arithmetic,
so the same arguments give the same ``sweep.csv`` and ``sweep.json`` whatever the number
of workers. docs/sweep.md describes the command.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import json
import platform
import random
import sys
import time
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from importlib import metadata
from itertools import product
from pathlib import Path
from typing import Any

from nanoquote.host.strategy.config import ConfigError, MarketMakerConfig, QuotePolicy
from nanoquote.sim.device_backends import STRATEGY_BACKENDS, open_strategy
from nanoquote.sim.random_walk import play_market

from nanoquote.cli import count, describe_os_error, write_text_file

__all__ = ["BACKENDS", "METRICS", "GridAxis", "Point", "SessionMetrics", "SessionTask", "SweepError",
           "aggregate", "configure", "grid_points", "parse_grid", "parse_setting", "run", "run_session",
           "run_sweep", "session_seed", "sweep_tasks"]

PROG = "nanoquote sweep"
BACKENDS = STRATEGY_BACKENDS
#: At most this many values per grid field (a range with a tiny step is a mistake).
MAX_AXIS_VALUES = 10_000

#: Per-point metrics, in CSV order, and how a point aggregates its sessions.
METRICS: dict[str, str] = {
    "realized_pnl": "mean",  # closed-trade P&L net of fees
    "unrealized_pnl": "mean",  # open position marked to the last mid
    "total_pnl": "mean",
    "fees": "mean",
    "fills": "sum",
    "orders": "sum",
    "cancels": "sum",
    "max_abs_position": "max",
    "final_position": "mean",
}
_PNL = ("realized_pnl", "unrealized_pnl", "total_pnl", "fees")


class SweepError(ValueError):
    """A grid, setting or grid point that cannot run; the message names it and why."""


# -- grid --------------------------------------------------------------------------------

_HINTS = typing.get_type_hints(MarketMakerConfig)


def _kind(name: str) -> str:
    """How a field's values are written: 'int', 'float', 'optional int' or 'policy'."""
    hint = _HINTS[name]
    if hint is QuotePolicy:
        return "policy"
    if hint in (int, float):
        return hint.__name__
    return "optional int"


def _check_field(name: str, where: str) -> None:
    if name not in MarketMakerConfig.field_names():
        raise SweepError(f"{where}: unknown field {name!r}; fields: {', '.join(MarketMakerConfig.field_names())}")


def _scalar(name: str, text: str, where: str) -> Any:
    """One value of field ``name`` written as ``text``, of the field's type."""
    kind = _kind(name)
    text = text.strip()
    if kind == "policy":
        if text not in {p.value for p in QuotePolicy}:
            raise SweepError(f"{where}: {text!r} is not a quote policy ({name} is 'legacy' or 'exchange')")
        return text
    if kind == "optional int" and text.lower() in ("none", "null", "off"):
        return None
    try:
        return int(text) if kind != "float" else float(text)
    except ValueError:
        described = {"int": "an integer", "float": "a number",
                     "optional int": "an integer or 'none'"}[kind]
        raise SweepError(f"{where}: {text!r} is not {described} ({name} is {kind})") from None


def _range(name: str, spec: str, where: str) -> list[Any]:
    """START:STOP:STEP, STOP included when a step lands on it; exact for floats."""
    kind = _kind(name)
    if kind == "policy":
        raise SweepError(f"{where}: {name} takes a list of values, not a range")
    parts = spec.split(":")
    if len(parts) != 3:
        raise SweepError(f"{where}: a range is START:STOP:STEP, got {spec!r}")
    try:
        start, stop, step = (Fraction(int(p)) if kind != "float" else Fraction(p.strip()) for p in parts)
    except (ValueError, ZeroDivisionError):
        described = "integers" if kind != "float" else "finite numbers"
        raise SweepError(f"{where}: START, STOP and STEP must be {described} ({name} is {kind})") from None
    if step <= 0:
        raise SweepError(f"{where}: STEP must be > 0, got {parts[2].strip()!r}")
    if stop < start:
        raise SweepError(f"{where}: STOP {parts[1].strip()!r} is below START {parts[0].strip()!r}")
    n = int((stop - start) / step) + 1
    if n > MAX_AXIS_VALUES:
        raise SweepError(f"{where}: {n} values, at most {MAX_AXIS_VALUES} per field")
    values = [start + k * step for k in range(n)]
    return [float(v) for v in values] if kind == "float" else [int(v) for v in values]


@dataclass(frozen=True)
class GridAxis:
    """One ``--grid``: a field and its values, in the order given."""

    field: str
    values: tuple[Any, ...]


def parse_grid(spec: str) -> GridAxis:
    """``FIELD=V1,V2,...`` or ``FIELD=START:STOP:STEP``."""
    where = f"--grid {spec!r}"
    name, sep, rest = spec.partition("=")
    name = name.strip()
    if not sep or not name or not rest.strip():
        raise SweepError(f"{where}: expected FIELD=V1,V2,... or FIELD=START:STOP:STEP")
    _check_field(name, where)
    if ":" in rest:
        values = _range(name, rest, where)
    else:
        values = [_scalar(name, text, where) for text in rest.split(",")]
        repeated = sorted({repr(v) for v in values if values.count(v) > 1})
        if repeated:
            raise SweepError(f"{where}: value(s) {', '.join(repeated)} given twice")
    return GridAxis(name, tuple(values))


def parse_setting(spec: str) -> tuple[str, Any]:
    """``FIELD=VALUE`` of ``--set``."""
    where = f"--set {spec!r}"
    name, sep, text = spec.partition("=")
    name = name.strip()
    if not sep or not name or not text.strip():
        raise SweepError(f"{where}: expected FIELD=VALUE")
    _check_field(name, where)
    return name, _scalar(name, text, where)


@dataclass(frozen=True)
class Point:
    """A grid point: its index in grid order, its grid values and its whole config."""

    index: int
    values: dict[str, Any]
    config: MarketMakerConfig

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={_text(v)}" for k, v in self.values.items())


def grid_points(axes: Sequence[GridAxis], build: Callable[[dict[str, Any]], MarketMakerConfig],
                check: Callable[[MarketMakerConfig], None] | None = None) -> list[Point]:
    """Every combination of the axes (the first varies slowest), each built and checked.

    ``build`` makes a point's config from its grid values; ``check`` may refuse a
    config (a device build that cannot run it). The first refusal is a
    :class:`SweepError` naming the point, before anything runs.
    """
    names = [axis.field for axis in axes]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise SweepError(f"--grid: field(s) {', '.join(map(repr, twice))} given more than once")
    points = []
    for index, combo in enumerate(product(*(axis.values for axis in axes))):
        values = dict(zip(names, combo, strict=True))
        try:
            config = build(values)
            if check is not None:
                check(config)
        except ConfigError as exc:
            label = ", ".join(f"{k}={_text(v)}" for k, v in values.items())
            raise SweepError(f"grid point {index} ({label}): {exc}") from None
        points.append(Point(index, values, config))
    return points


# -- sessions ----------------------------------------------------------------------------

def session_seed(seed: int, point: int, session: int) -> int:
    """The market seed of session ``session`` of point ``point`` in a sweep seeded ``seed``."""
    digest = hashlib.blake2b(f"{seed}:{point}:{session}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


@dataclass(frozen=True)
class SessionMetrics:
    """What one session did (P&L in money, as the strategy books it)."""

    realized_pnl: float
    unrealized_pnl: float
    total_pnl: float
    fees: float
    fills: int
    orders: int
    cancels: int
    max_abs_position: int
    final_position: int


def run_session(backend: str, config: MarketMakerConfig, seed: int, events: int) -> SessionMetrics:
    """One seeded market session of ``events`` book updates through ``backend``'s strategy."""
    with open_strategy(backend, config, "sweep") as strategy:
        result = play_market(strategy, seed, events)
        base = strategy.base
        return SessionMetrics(
            realized_pnl=base.realized_pnl, unrealized_pnl=base.unrealized_pnl, total_pnl=base.total_pnl,
            fees=base.fees, fills=result.fills, orders=result.orders, cancels=result.cancels,
            max_abs_position=result.max_abs_position, final_position=strategy.position)


def aggregate(sessions: Sequence[SessionMetrics]) -> dict[str, float | int]:
    """A point's metrics from its sessions (:data:`METRICS` says how each aggregates).

    Means are exact (``Fraction``) and rounded once, so they do not depend on the order
    of the sessions.
    """
    if not sessions:
        raise ValueError("a point needs at least one session")
    out: dict[str, float | int] = {}
    for name, how in METRICS.items():
        values = [getattr(s, name) for s in sessions]
        if how == "sum":
            out[name] = sum(values)
        elif how == "max":
            out[name] = max(values)
        else:
            out[name] = float(sum(map(Fraction, values)) / len(values))
    return out


@dataclass(frozen=True)
class SessionTask:
    """One session of one point: what a worker needs to run it."""

    point: int
    session: int
    seed: int
    events: int
    backend: str
    config: MarketMakerConfig
    label: str

    def describe(self) -> str:
        return f"grid point {self.point} ({self.label}), session {self.session}, seed {self.seed}"


def _run_task(task: SessionTask) -> SessionMetrics:
    """The worker's side of a task."""
    return run_session(task.backend, task.config, task.seed, task.events)


def sweep_tasks(points: Sequence[Point], *, seed: int, sessions: int, events: int,
                backend: str) -> list[SessionTask]:
    """Every session of every point, point by point."""
    return [SessionTask(p.index, j, session_seed(seed, p.index, j), events, backend, p.config, p.label)
            for p in points for j in range(sessions)]


def run_sweep(client: Any, points: Sequence[Point], *, seed: int, sessions: int, events: int,
              backend: str, progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """One row per point: its grid values, then its metrics. Raises ``ShardError`` naming
    the point, session and seed of the first session that failed."""
    from nanoquote.sim.distributed import run_tasks

    tasks = sweep_tasks(points, seed=seed, sessions=sessions, events=events, backend=backend)
    results = run_tasks(client, _run_task, tasks, describe=SessionTask.describe, progress=progress)
    return [{**p.values, **aggregate(results[i * sessions:(i + 1) * sessions])}
            for i, p in enumerate(points)]


# -- outputs -----------------------------------------------------------------------------

def _text(value: Any) -> str:
    """A grid value as written in the CSV, the table and the plot."""
    if value is None:
        return "none"
    if isinstance(value, QuotePolicy):
        return value.value
    return repr(value) if isinstance(value, float) else str(value)


def sweep_csv(axes: Sequence[GridAxis], rows: Sequence[dict[str, Any]]) -> str:
    """The grid fields, then the metrics, one row per point."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([a.field for a in axes] + list(METRICS))
    for row in rows:
        writer.writerow([_text(row[a.field]) for a in axes] + [_text(row[m]) for m in METRICS])
    return out.getvalue()


def _jsonable(value: Any) -> Any:
    return value.value if isinstance(value, QuotePolicy) else value


def _config_mapping(config: MarketMakerConfig) -> dict[str, Any]:
    return {name: _jsonable(getattr(config, name)) for name in MarketMakerConfig.field_names()}


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("nanoquote", "dask", "distributed"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def sweep_json(axes: Sequence[GridAxis], points: Sequence[Point], rows: Sequence[dict[str, Any]], *,
               seed: int, sessions: int, events: int, backend: str,
               timing: dict[str, Any] | None = None) -> str:
    """The CSV's rows with each point's whole config and session seeds, and how they were
    made; ``timing`` (the one part that differs between runs) comes last."""
    doc: dict[str, Any] = {
        "seed": seed, "backend": backend, "sessions": sessions, "events": events,
        "grid": {a.field: [_jsonable(v) for v in a.values] for a in axes},
        "metrics": METRICS,
        "points": [{"point": p.index, **{a.field: _jsonable(row[a.field]) for a in axes},
                    **{m: row[m] for m in METRICS},
                    "seeds": [session_seed(seed, p.index, j) for j in range(sessions)],
                    "config": _config_mapping(p.config)}
                   for p, row in zip(points, rows, strict=True)],
        "versions": _versions(),
    }
    if timing is not None:
        doc["timing"] = timing
    return json.dumps(doc, indent=2) + "\n"


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def write_heatmap(path: Path, axes: Sequence[GridAxis], rows: Sequence[dict[str, Any]], metric: str,
                  title: str) -> None:
    """``metric`` over the first two grid fields (mean over any others), or a line over
    the only one, as a PNG."""
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 6), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    x_axis = axes[0]
    if len(axes) == 1:
        ys = [row[metric] for row in rows]
        xs: Sequence[Any] = x_axis.values if _numeric(x_axis.values) else range(len(x_axis.values))
        ax.plot(xs, ys, marker="o")
        if not _numeric(x_axis.values):
            ax.set_xticks(list(xs), [_text(v) for v in x_axis.values])
        ax.set_xlabel(x_axis.field)
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
    else:
        y_axis = axes[1]
        cells: dict[tuple[int, int], list[Fraction]] = {}
        xi = {v: i for i, v in enumerate(x_axis.values)}
        yi = {v: i for i, v in enumerate(y_axis.values)}
        for row in rows:
            cells.setdefault((yi[row[y_axis.field]], xi[row[x_axis.field]]), []).append(Fraction(row[metric]))
        grid = [[float(sum(cells[r, c]) / len(cells[r, c])) for c in range(len(xi))] for r in range(len(yi))]
        low, high = min(map(min, grid)), max(map(max, grid))
        norm = TwoSlopeNorm(0.0, low, high) if metric in _PNL and low < 0 < high else None
        image = ax.imshow(grid, origin="lower", aspect="auto", cmap="RdYlGn" if metric in _PNL else "viridis",
                          norm=norm, interpolation="nearest")
        fig.colorbar(image, ax=ax, label=metric)
        for axis_values, set_ticks in ((x_axis.values, ax.set_xticks), (y_axis.values, ax.set_yticks)):
            stride = max(1, len(axis_values) // 15)
            positions = list(range(0, len(axis_values), stride))
            set_ticks(positions, [_text(axis_values[i]) for i in positions])
        ax.set_xlabel(x_axis.field)
        ax.set_ylabel(y_axis.field)
        if len(xi) * len(yi) <= 150:
            for r, line in enumerate(grid):
                for c, value in enumerate(line):
                    ax.text(c, r, f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}",
                            ha="center", va="center", fontsize=7)
        if len(axes) > 2:
            title += f"\nmean over {', '.join(a.field for a in axes[2:])}"
    ax.set_title(title, fontsize=10)
    fig.savefig(path, format="png")


_HEADERS = {"realized_pnl": "realized", "unrealized_pnl": "unrealized", "total_pnl": "total P&L",
            "fees": "fees", "fills": "fills", "orders": "orders", "cancels": "cancels",
            "max_abs_position": "max |pos|", "final_position": "final pos"}


def _table(axes: Sequence[GridAxis], rows: Sequence[dict[str, Any]], metric: str, caption: str) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(caption=caption, header_style="bold", box=box.SIMPLE_HEAD)
    for a in axes:
        table.add_column(a.field, justify="right")
    for m in METRICS:
        table.add_column(_HEADERS[m], justify="right", style="bold" if m == metric else None)
    for row in rows:
        table.add_row(*(_text(row[a.field]) for a in axes),
                      *(f"{row[m]:.2f}" if isinstance(row[m], float) else str(row[m]) for m in METRICS))
    return table


# -- command -----------------------------------------------------------------------------

def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--grid", action="append", required=True, metavar="FIELD=VALUES",
                        help="a MarketMakerConfig field and its values: V1,V2,... or START:STOP:STEP "
                             "(STOP included); repeat for more fields")
    parser.add_argument("--policy", choices=["legacy", "exchange"],
                        help="quote_policy of the base configuration (default: the config file's, else exchange)")
    parser.add_argument("--config", metavar="FILE.toml", help="TOML file with the base configuration")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", dest="settings",
                        help="a field of the base configuration; repeat for more")
    parser.add_argument("--seed", type=int, help="seed of the whole sweep (default: random, printed)")
    parser.add_argument("--sessions", type=count, default=1, help="seeded sessions per point (default 1)")
    parser.add_argument("--events", type=count, default=1000, help="book updates per session (default 1000)")
    parser.add_argument("--backend", choices=BACKENDS, default="golden",
                        help="the golden strategy (default), or the offloaded one over the software "
                             "device (model) or the RTL in a simulator (amaranth, verilator; slow)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=count, help="worker processes of a local cluster (default 2)")
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run on this Dask scheduler's workers")
    parser.add_argument("--metric", choices=list(METRICS), default="total_pnl",
                        help="the heat map's colour and the table's highlight (default total_pnl)")
    parser.add_argument("--out", metavar="DIR", type=Path, help="write sweep.csv, sweep.json and heatmap.png here")
    parser.add_argument("--verbose", action="store_true", help="show Dask's own log lines")


def _error(message: object) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def _device_check(backend: str) -> Callable[[MarketMakerConfig], None] | None:
    """For a device backend: refuse a config the device's build cannot run (checked on the
    software device, the same build as the simulated RTL)."""
    if backend == "golden":
        return None
    from nanoquote.host.device.driver import QuoteDriver
    from nanoquote.sim.device.software_device import SoftwareDevice

    drivers: dict[int, QuoteDriver] = {}

    def check(config: MarketMakerConfig) -> None:
        if config.max_levels not in drivers:
            drivers[config.max_levels] = QuoteDriver.open(SoftwareDevice(max_levels=config.max_levels))
        drivers[config.max_levels].hardware_params(config)

    return check


def _points(args: argparse.Namespace) -> tuple[list[GridAxis], list[Point]]:
    """The axes and the validated points of the command line."""
    axes = [parse_grid(spec) for spec in args.grid]
    fixed: dict[str, Any] = {}
    if args.policy is not None:
        fixed["quote_policy"] = args.policy
    for spec in args.settings:
        name, value = parse_setting(spec)
        if name in fixed:
            raise SweepError(f"--set {spec!r}: {name} is set twice (by --policy or another --set)")
        fixed[name] = value
    gridded = sorted({a.field for a in axes} & set(fixed))
    if gridded:
        raise SweepError(f"field(s) {', '.join(map(repr, gridded))} both set and on the grid")

    def build(values: dict[str, Any]) -> MarketMakerConfig:
        # built from the explicit fields, so policy-dependent defaults follow a gridded policy
        if args.config:
            return MarketMakerConfig.from_toml(args.config, **fixed, **values)
        return MarketMakerConfig.from_mapping(fixed, **values)

    # A base that fails by itself (an unreadable file, a bad value) is one error about the
    # base, unless the grid's values are what make it valid (num_levels with max_levels).
    try:
        build({})
    except ConfigError as exc:
        try:
            build({a.field: a.values[0] for a in axes})
        except ConfigError:
            raise SweepError(f"base configuration: {exc}") from None
    return axes, grid_points(axes, build, _device_check(args.backend))


def run(args: argparse.Namespace) -> int:
    from nanoquote.sim.distributed import ClusterError, ShardError, cluster
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    try:
        axes, points = _points(args)
    except SweepError as exc:
        return _error(exc)
    made_out = args.out is not None and not args.out.exists()
    if args.out is not None:  # before the sweep, so that a bad --out fails at once
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return _error(f"cannot create {describe_os_error(exc, args.out)}")

    def failed(code: int, message: object) -> int:
        if made_out:
            with contextlib.suppress(OSError):
                args.out.rmdir()  # only if still empty
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return code

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**32)
    where = f"scheduler {args.scheduler}" if args.scheduler else f"{args.workers or 2} local worker(s)"
    console = Console()
    if not console.is_terminal:  # a file or a pipe: whole rows, not rows cut to 80 columns
        console = Console(width=200)
    again = "" if args.seed is not None else f" (random; --seed {seed} repeats the sweep)"
    begun = time.perf_counter()
    try:
        with cluster(args.scheduler, workers=args.workers or 2, verbose=args.verbose) as client:
            started = time.perf_counter()
            console.print(f"{PROG}: {len(points)} point(s) x {args.sessions} session(s) x {args.events} "
                          f"events, backend {args.backend}, on {where}, seed {seed}{again}", highlight=False)
            with Progress(TextColumn("sessions"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=Console(stderr=True), transient=True) as bar:
                job = bar.add_task("sweep", total=len(points) * args.sessions)
                rows = run_sweep(client, points, seed=seed, sessions=args.sessions, events=args.events,
                                 backend=args.backend,
                                 progress=lambda done, total: bar.update(job, completed=done))
            wall = time.perf_counter() - started
    except ClusterError as exc:
        return failed(2, exc)
    except ShardError as exc:
        return failed(1, exc)
    shown = list(rows)
    caption = f"{len(points)} point(s) in {wall:.1f} s"
    if len(rows) > 40:
        shown = sorted(rows, key=lambda r: -r[args.metric])[:20]
        caption = f"the 20 of {len(rows)} points highest in {args.metric}, in {wall:.1f} s" + \
            (f"; all in {args.out / 'sweep.csv'}" if args.out else "")
    console.print(_table(axes, shown, args.metric, caption))
    if args.out is not None:
        run_info = dict(seed=seed, sessions=args.sessions, events=args.events, backend=args.backend)
        timing = {"cluster_start_seconds": round(started - begun, 3), "run_seconds": round(wall, 3),
                  "cluster": where}
        title = (f"{args.metric}: {args.backend}, {args.sessions} session(s) x {args.events} events, "
                 f"seed {seed}")
        try:
            write_text_file(args.out / "sweep.csv", sweep_csv(axes, rows))
            write_text_file(args.out / "sweep.json", sweep_json(axes, points, rows, **run_info, timing=timing))
            write_heatmap(args.out / "heatmap.png", axes, rows, args.metric, title)
        except OSError as exc:
            return _error(f"cannot write {describe_os_error(exc)}")
        console.print(f"wrote {args.out / 'sweep.csv'}, sweep.json, heatmap.png", highlight=False)
    return 0

