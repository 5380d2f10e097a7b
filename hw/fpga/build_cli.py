"""``nanoquote build``: synthesize, place and route for an ECP5 and report timing.

Exit status: 0 when every seed meets ``--freq``, 1 when timing is missed, 2 when a step
of the flow fails (the message names the step and its log file). CI calls
``nanoquote build --json build/ecp5/build.json`` to check the 200 MHz target.

``--board ecp5-5g-evn`` builds the board top level instead
(:mod:`nanoquote.hw.fpga.board_build`): a bitstream and an SVF for the board, timing at
the board's design clock with its pads (``--freq`` does not apply: the clock is the
board's one clock definition); the exit statuses are the same.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nanoquote.hw.fpga.board_build import BOARDS, run_board_build
from nanoquote.hw.fpga.flow import (
    DEFAULT_LPF,
    DEFAULT_SEED,
    DEFAULT_TIMING_WEIGHT,
    DEVICES,
    BuildError,
    BuildOptions,
    run_build,
)
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from nanoquote.cli import count, describe_os_error

__all__ = ["configure", "run", "parse_seeds", "print_summary"]


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"3"``, ``"1-5"`` or ``"1,4,7"`` as a tuple of seeds."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            seeds += range(int(low), int(high or low) + 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad seed list {text!r}: use N, A-B or A,B,C") from None
    if any(seed < 0 for seed in seeds):
        raise argparse.ArgumentTypeError(f"bad seed list {text!r}: seeds are >= 0")
    if not seeds:
        raise argparse.ArgumentTypeError(f"bad seed list {text!r}: no seed")
    return tuple(seeds)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--board", choices=BOARDS, default=None,
                        help="build the board top level (host link, PLL, pins) to a bitstream (.bit and "
                             ".svf) instead of the out-of-context timing build; docs/board.md")
    parser.add_argument("--device", choices=sorted(DEVICES), default="um5g-85k",
                        help="ECP5 part as nextpnr names it (default: um5g-85k, LFE5UM5G-85F)")
    parser.add_argument("--package", default="CABGA381", help="package (default: CABGA381)")
    parser.add_argument("--speed", type=int, choices=(6, 7, 8), default=8, help="speed grade (default: 8)")
    parser.add_argument("--freq", type=float, default=200.0, metavar="MHZ",
                        help="target clock in MHz (default: 200)")
    parser.add_argument("--seed", type=parse_seeds, default=(DEFAULT_SEED,), metavar="N|A-B|A,B",
                        help=f"placer seed, or several: one place and route per seed (default: {DEFAULT_SEED})")
    parser.add_argument("--top", default="top", metavar="top|pipeline|MODULE:FACTORY",
                        help="design to build (default: top, the full top level)")
    parser.add_argument("--max-levels", type=count, default=8, metavar="N", help="ladder levels (default: 8)")
    parser.add_argument("--price-bits", type=int, default=31, metavar="BITS", help="price width (default: 31)")
    parser.add_argument("--build-dir", type=Path, default=None, metavar="DIR",
                        help="build directory (default: build/ecp5 of the checkout, or "
                             "$NANOQUOTE_BUILD_DIR/ecp5); build.json is written there")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the result to FILE")
    parser.add_argument("--lpf", type=Path, default=DEFAULT_LPF, metavar="FILE",
                        help="LPF template (default: constraints/nanoquote_ecp5.lpf)")
    parser.add_argument("--dff", action="store_true", help="synth_ecp5 -dff (abc9 sees flip-flops; did not finish the top level in 25 min)")
    parser.add_argument("--no-widelut", dest="widelut", action="store_false",
                        help="synth_ecp5 -nowidelut (no PFU muxes for LUTs wider than 4)")
    parser.add_argument("--placer", choices=("heap", "sa", "static"), help="nextpnr placer (default: nextpnr's)")
    parser.add_argument("--router", choices=("router1", "router2"), help="nextpnr router (default: nextpnr's)")
    parser.add_argument("--tmg-ripup", action="store_true", help="nextpnr --tmg-ripup")
    parser.add_argument("--timing-weight", type=count, default=DEFAULT_TIMING_WEIGHT, metavar="N",
                        help=f"nextpnr --placer-heap-timingweight (default: {DEFAULT_TIMING_WEIGHT}; nextpnr's is 10)")
    parser.add_argument("--no-bitstream", dest="bitstream", action="store_false", help="skip ecppack")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress display")


def print_summary(result: dict, console: Console) -> None:
    target = result["target"]
    table = Table(title=f"{result['design']['class']} on {target['device']}-{target['speed']} "
                        f"{target['package']}, target {target['freq_mhz']:g} MHz", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for s in result["seeds"]:
        for clock, mhz in s["fmax_mhz"].items():
            verdict = "[green]PASS[/]" if mhz >= target["freq_mhz"] else "[red]FAIL[/]"
            table.add_row(f"fmax {clock}, seed {s['seed']}", f"{mhz:.2f} MHz {verdict}")
    lat = result["latency"]
    if lat["cycles"] is not None:
        table.add_row("latency", f"{lat['cycles']} cycles = {lat['ns_at_fmax']} ns at fmax "
                                 f"({lat['ns_at_target']} ns at target)")
    for bel, use in result["utilisation"].items():
        if use["used"] or bel in ("LUT4", "TRELLIS_FF", "MULT18X18D", "DP16KD"):
            table.add_row(bel, f"{use['used']} / {use['available']} ({100 * use['used'] / use['available']:.1f} %)")
    table.add_row("wrapper (in the counts)", f"{result['wrapper']['ffs']} FF, ~{result['wrapper']['luts']} LUT4")
    table.add_row("time", ", ".join(f"{k} {v:g} s" for k, v in result["elapsed_s"].items()))
    console.print(table)
    path = result["critical_path"]
    if path:
        cells = ", ".join(f"{n} {t}" for t, n in path["cells"].items())
        console.print(f"critical path ({path['clock']}): {path['delay_ns']} ns = {path['logic_ns']} logic + "
                      f"{path['routing_ns']} routing; {cells}; {path['carry_hops']} carry hops")
        console.print(f"  from {path['from']}  ->  {path['to']}.{path['to_port']}")
        for src in path["sources"]:
            console.print(f"  via {src}", highlight=False)
    failing = [g for g in result["worst_registers"] if g["slack_ns"] < 0]
    if failing:
        console.print(f"{result['failing_flip_flops']} flip-flops miss the target; worst registers "
                      f"(slack ns, failing/bits, worst path from):")
        for g in failing[:12]:
            console.print(f"  {g['slack_ns']:+7.3f}  {g['failing_bits']:4}/{g['bits']:<4} {g['register']}  "
                          f"<- {g['worst_from']}", highlight=False)
    verdict = "[green]timing met[/]" if result["pass"] else "[red]timing NOT met[/]"
    console.print(f"{verdict} at {target['freq_mhz']:g} MHz; results in {result['files']['build_json']}")


def print_board_summary(result: dict, console: Console) -> None:
    clock = result["clock"]
    pll = clock["pll"]
    table = Table(title=f"board {result['board']}: {result['target']['device']}-{result['target']['speed']} "
                        f"{result['target']['package']}, design clock {clock['design_mhz']:g} MHz",
                  title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, mhz in result["fmax_mhz"].items():
        want = result["constraint_mhz"].get(name, clock["design_mhz"])
        verdict = "[green]PASS[/]" if mhz >= want else "[red]FAIL[/]"
        table.add_row(f"fmax {name} (target {want:g} MHz)", f"{mhz:.2f} MHz {verdict}")
    table.add_row("PLL", f"{clock['oscillator_mhz']:g} MHz / {pll['CLKI_DIV']} x {pll['CLKFB_DIV']} "
                         f"(VCO {pll['vco_mhz']:g} MHz, CLKOP_DIV {pll['CLKOP_DIV']})")
    table.add_row("UART", f"{clock['baud']} baud, {clock['cycles_per_bit']} cycles per bit, "
                          f"error {clock['baud_error']:+.3%}")
    for bel, use in result["utilisation"].items():
        if use["used"]:
            table.add_row(bel, f"{use['used']} / {use['available']} ({100 * use['used'] / use['available']:.1f} %)")
    table.add_row("time", ", ".join(f"{k} {v:g} s" for k, v in result["elapsed_s"].items()))
    console.print(table)
    console.print(f"bitstream {result['files']['bitstream']}", highlight=False)
    console.print(f"JTAG SVF  {result['files']['svf']}", highlight=False)
    verdict = "[green]timing met[/]" if result["pass"] else "[red]timing NOT met[/]"
    console.print(f"{verdict} at {clock['design_mhz']:g} MHz; results in {result['files']['board_json']}")


def _write_json(result: dict, path: Path | None, err: Console) -> int:
    """Write ``result`` to ``path`` (if given); the exit status: 0 met, 1 missed, 2 unwritable."""
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
        except (OSError, ValueError) as exc:
            err.print(f"[red]nanoquote build:[/] cannot write {str(path)!r}: "
                      f"{describe_os_error(exc) if isinstance(exc, OSError) else exc}", highlight=False)
            return 2
    return 0 if result["pass"] else 1


def _run_board(args: argparse.Namespace, console: Console, err: Console) -> int:
    from nanoquote.sim.verilator import build_root

    build_dir = args.build_dir if args.build_dir is not None else build_root() / "board"
    try:
        if args.quiet or not err.is_terminal:
            def progress(step: str, line: str, seen: set[str] = set()) -> None:  # noqa: B006
                if step not in seen and not args.quiet:
                    seen.add(step)
                    err.print(f"nanoquote build: {step}")

            result = run_board_build(build_dir, board=args.board, seed=args.seed[0], max_levels=args.max_levels,
                                     price_bits=args.price_bits, timing_weight=args.timing_weight,
                                     progress=progress)
        else:
            with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                          TextColumn("[dim]{task.fields[last]}"), console=err) as bar:
                tasks: dict[str, int] = {}

                def progress(step: str, line: str) -> None:
                    if step not in tasks:
                        for task in tasks.values():
                            bar.update(task, completed=1, last="done")
                        tasks[step] = bar.add_task(step, total=1, last="")
                    bar.update(tasks[step], last=line[:70])

                result = run_board_build(build_dir, board=args.board, seed=args.seed[0],
                                         max_levels=args.max_levels, price_bits=args.price_bits,
                                         timing_weight=args.timing_weight, progress=progress)
                for task in tasks.values():
                    bar.update(task, completed=1, last="done")
    except BuildError as exc:
        err.print(f"[red]nanoquote build:[/] {exc}", highlight=False)
        return 2
    except (ImportError, ValueError) as exc:
        err.print(f"[red]nanoquote build:[/] {type(exc).__name__}: {exc}", highlight=False)
        return 2
    print_board_summary(result, console)
    return _write_json(result, args.json, err)


def run(args: argparse.Namespace) -> int:
    console = Console()
    if args.board is not None:
        return _run_board(args, console, Console(stderr=True))
    options = BuildOptions(top=args.top, device=args.device, package=args.package, speed=args.speed,
                           freq_mhz=args.freq, seeds=args.seed, lpf=args.lpf,
                           max_levels=args.max_levels, price_bits=args.price_bits, dff=args.dff,
                           widelut=args.widelut, placer=args.placer, router=args.router,
                           tmg_ripup=args.tmg_ripup, timing_weight=args.timing_weight,
                           bitstream=args.bitstream)
    if args.build_dir is not None:
        options.build_dir = args.build_dir
    err = Console(stderr=True)
    try:
        if args.quiet:
            result = run_build(options)
        else:
            with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                          TextColumn("[dim]{task.fields[last]}"), console=err) as bar:
                tasks: dict[str, int] = {}

                def progress(step: str, line: str) -> None:
                    if step not in tasks:
                        for task in tasks.values():
                            bar.update(task, completed=1, last="done")
                            bar.stop_task(task)
                        tasks[step] = bar.add_task(step, total=1, last="")
                        if not err.is_terminal:
                            err.print(f"nanoquote build: {step}")
                    bar.update(tasks[step], last=line[:70])

                result = run_build(options, progress)
                for task in tasks.values():
                    bar.update(task, completed=1, last="done")
    except BuildError as exc:
        err.print(f"[red]nanoquote build:[/] {exc}", highlight=False)
        return 2
    except (ImportError, ValueError) as exc:
        err.print(f"[red]nanoquote build:[/] {type(exc).__name__}: {exc}", highlight=False)
        return 2
    print_summary(result, console)
    return _write_json(result, args.json, err)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="nanoquote build")
    configure(parser)
    sys.exit(run(parser.parse_args()))
