"""Run a scenario on the pipeline's Verilog under Verilator with cocotb.

:func:`build` compiles ``QuotePipeline(max_levels, price_bits)`` once per parameter set
into a content-addressed directory under ``build/`` (reused while the Verilog and flags
are unchanged, deleted if the build fails); :func:`run_verilator` hands a scenario to the
testbench in ``cocotb_pipeline`` and returns its summary.
"""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from nanoquote.hw.verilog import TOPLEVEL, pipeline_verilog
from nanoquote.sim.conformance.amaranth_runner import Handshake
from nanoquote.sim.conformance.scenario import Segment
from nanoquote.sim.port_codec import PortCodec
from nanoquote.sim.testbenches.cocotb_pipeline import ScenarioFile
from nanoquote.sim.verilator import (
    build_dir_for,
    build_lock,
    prepare_environment,
    removed_on_failure,
)

__all__ = ["VerilatorBuild", "build", "run_verilator", "random_reset_plusargs", "lint",
           "LintResult", "LINT_WAIVERS", "TEST_MODULE"]

TEST_MODULE = "nanoquote.sim.testbenches.cocotb_pipeline"
#: Amaranth's Verilog trips Verilator lint warnings (WIDTHEXPAND, ...) that are fatal by
#: default (the lint test checks them separately). Verilator is two-state: with
#: ``--x-initial unique`` a run with ``+verilator+rand+reset+2`` starts every register
#: random (``RANDOM_RESET_PLUSARGS``), which catches state the reset misses; without
#: that plusarg registers start at 0, so one build serves both kinds of run.
BUILD_ARGS = ("-Wno-fatal", "--x-assign", "unique", "--x-initial", "unique")


def random_reset_plusargs(seed: int) -> tuple[str, ...]:
    """Plusargs for a run whose registers start with seeded random values.

    Verilator takes a positive 31-bit seed; wider seeds (a 32-bit conformance seed) are
    folded into that range.
    """
    return ("+verilator+rand+reset+2", f"+verilator+seed+{seed % (2**31 - 1) + 1}")


@dataclass(frozen=True)
class VerilatorBuild:
    """A parameter set of the compiled model."""

    max_levels: int = 8
    price_bits: int = 31

    @property
    def args(self) -> list[str]:
        return list(BUILD_ARGS)


@cache
def _verilog(max_levels: int, price_bits: int) -> str:
    return pipeline_verilog(max_levels, price_bits, emit_src=False)


def build(spec: VerilatorBuild) -> Path:
    """Compile (or reuse) the model for ``spec``; returns its build directory."""
    prepare_environment()
    verilog = _verilog(spec.max_levels, spec.price_bits)
    bdir = build_dir_for("verilator", verilog, *spec.args)
    with build_lock(bdir):
        return _build_locked(bdir, verilog, spec)


def _build_locked(bdir: Path, verilog: str, spec: VerilatorBuild) -> Path:
    from cocotb_tools.runner import get_runner

    exe = bdir / TOPLEVEL
    if exe.exists():
        return bdir
    shutil.rmtree(bdir, ignore_errors=True)  # a half-built directory is never reused
    failed_log = bdir.with_name(bdir.name + ".failed.log")
    try:
        with removed_on_failure(bdir):
            bdir.mkdir(parents=True)
            source = bdir / f"{TOPLEVEL}.v"
            source.write_text(verilog)
            try:
                get_runner("verilator").build(
                    sources=[source], hdl_toplevel=TOPLEVEL, build_dir=bdir,
                    build_args=spec.args, log_file=bdir / "build.log",
                )
            finally:
                if (bdir / "build.log").exists():
                    shutil.copy(bdir / "build.log", failed_log)
            if not exe.exists():
                raise RuntimeError(f"Verilator build produced no {exe}")
    except Exception as exc:
        tail = failed_log.read_text(errors="replace")[-3000:] if failed_log.exists() else ""
        raise RuntimeError(f"Verilator build failed ({exc}); log {failed_log}:\n{tail}") from exc
    failed_log.unlink(missing_ok=True)
    return bdir


def run_verilator(
    segments: list[Segment],
    expected: list[int],
    spec: VerilatorBuild = VerilatorBuild(),
    handshake: Handshake | None = None,
    plusargs: tuple[str, ...] = (),
    fail_on_mismatch: bool = False,
) -> dict[str, Any]:
    """Play ``segments`` on the compiled model; the testbench's summary (see ``cocotb_pipeline``)."""
    bdir = build(spec)
    from cocotb_tools.runner import get_runner

    codec = PortCodec(spec.max_levels, spec.price_bits)
    handshake = handshake or Handshake()
    scenario = ScenarioFile(
        max_levels=spec.max_levels, price_bits=spec.price_bits,
        segments=[(codec.config(s.params(spec.price_bits)), s.position, s.live_bid, s.live_ask,
                   s.armed, codec.updates(s.ts, s.bid, s.ask, s.has_bid, s.has_ask))
                  for s in segments],
        expected=expected, idle=handshake.idle, stall=handshake.stall, seed=handshake.seed,
        fail_on_mismatch=fail_on_mismatch,
    )
    runs = bdir / "runs"
    runs.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=runs) as tmp:
        tdir = Path(tmp)
        (tdir / "scenario.pkl").write_bytes(pickle.dumps(scenario))
        result = tdir / "result.json"
        get_runner("verilator").test(
            test_module=TEST_MODULE, hdl_toplevel=TOPLEVEL, hdl_toplevel_lang="verilog",
            build_dir=bdir, test_dir=tdir,
            extra_env={"NANOQUOTE_SCENARIO": str(tdir / "scenario.pkl"),
                       "NANOQUOTE_RESULT": str(result)},
            plusargs=list(plusargs), seed=handshake.seed, results_xml=str(tdir / "results.xml"),
            log_file=tdir / "sim.log",
        )
        if not result.exists():
            log = (tdir / "sim.log").read_text(errors="replace")[-4000:]
            raise RuntimeError(f"Verilator simulation wrote no result; log tail:\n{log}")
        return json.loads(result.read_text())


#: ``verilator --lint-only -Wall`` waivers for Amaranth's Verilog, each with its reason.
#: Anything else Verilator reports fails the lint test.
LINT_WAIVERS: dict[str, tuple[str, str]] = {
    # rule: (match pattern or "", reason)
    "WIDTHEXPAND": ("", "Yosys's Verilog writer leaves operand extension to Verilog's "
                        "context-width rules; the widths are Amaranth's, checked by conformance"),
    "WIDTHTRUNC": ("Logical operator LOGNOT*", "Amaranth writes `x == 0` as `!x` on a vector"),
    "UNUSEDSIGNAL": ("", "Amaranth names every signal and every struct/array field as a wire "
                         "for debugging; many are aliases or only partly read"),
    "PROCASSINIT": ("", "registers carry their reset value as a declaration initializer "
                        "(`reg x = init;`) as well as the synchronous reset"),
    "DECLFILENAME": ("", "the file name is chosen by the caller, not the module"),
}


def lint_waiver_file() -> str:
    """The waivers as a Verilator configuration file."""
    lines = ["`verilator_config"]
    for rule, (match, reason) in LINT_WAIVERS.items():
        lines.append(f"// {rule}: {reason}")
        lines.append(f'lint_off -rule {rule}' + (f' -file "*" -match "{match}"' if match else ""))
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class LintResult:
    returncode: int
    output: str

    @property
    def warnings(self) -> list[str]:
        return [line for line in self.output.splitlines() if line.startswith(("%Warning", "%Error"))]


def lint(max_levels: int = 8, price_bits: int = 31, waivers: bool = True) -> LintResult:
    """``verilator --lint-only -Wall`` on the generated Verilog (with :data:`LINT_WAIVERS`)."""
    from nanoquote.sim.verilator import verilator_command

    cmd = verilator_command()
    bdir = build_dir_for("lint", _verilog(max_levels, price_bits), lint_waiver_file())
    bdir.mkdir(parents=True, exist_ok=True)
    source = bdir / f"{TOPLEVEL}.v"
    source.write_text(_verilog(max_levels, price_bits))
    args = ["--lint-only", "-Wall", "--top-module", TOPLEVEL]
    if waivers:
        (bdir / "waivers.vlt").write_text(lint_waiver_file())
        args.append(str(bdir / "waivers.vlt"))
    proc = subprocess.run([*cmd, *args, str(source)], capture_output=True, text=True)
    return LintResult(proc.returncode, proc.stdout + proc.stderr)
