"""Run a scenario on the pipeline's Verilog under Verilator with cocotb.

:func:`run_verilator` compiles ``QuotePipeline(max_levels, price_bits)`` (or reuses its
cached build, :func:`nanoquote.sim.verilator.build`), hands a scenario to the testbench
in ``cocotb_pipeline`` and returns its summary.
"""

from __future__ import annotations

import json
import pickle
import tempfile
from pathlib import Path
from typing import Any

from nanoquote.sim.conformance.amaranth_runner import Handshake
from nanoquote.sim.conformance.scenario import Segment
from nanoquote.sim.port_codec import PortCodec
from nanoquote.sim.testbenches.cocotb_pipeline import ScenarioFile
from nanoquote.sim.verilator import build, run_cocotb

__all__ = ["run_verilator", "TEST_MODULE"]

TEST_MODULE = "nanoquote.sim.testbenches.cocotb_pipeline"


def run_verilator(
    segments: list[Segment],
    expected: list[int],
    max_levels: int = 8,
    price_bits: int = 31,
    handshake: Handshake | None = None,
    plusargs: tuple[str, ...] = (),
    fail_on_mismatch: bool = False,
) -> dict[str, Any]:
    """Play ``segments`` on the compiled model; the testbench's summary (see ``cocotb_pipeline``)."""
    model = build("pipeline", max_levels, price_bits)
    codec = PortCodec(max_levels, price_bits)
    handshake = handshake or Handshake()
    scenario = ScenarioFile(
        max_levels=max_levels, price_bits=price_bits,
        segments=[(codec.config(s.params(price_bits)), s.position, s.live_bid, s.live_ask,
                   s.armed, codec.updates(s.ts, s.bid, s.ask, s.has_bid, s.has_ask))
                  for s in segments],
        expected=expected, idle=handshake.idle, stall=handshake.stall, seed=handshake.seed,
        fail_on_mismatch=fail_on_mismatch,
    )
    runs = model.build_dir / "runs"
    runs.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=runs) as tmp:
        tdir = Path(tmp)
        (tdir / "scenario.pkl").write_bytes(pickle.dumps(scenario))
        result = tdir / "result.json"
        run_cocotb(model, TEST_MODULE, seed=handshake.seed, plusargs=plusargs, test_dir=tdir,
                   log_file=tdir / "sim.log",
                   extra_env={"NANOQUOTE_SCENARIO": str(tdir / "scenario.pkl"),
                              "NANOQUOTE_RESULT": str(result)})
        if not result.exists():
            log = (tdir / "sim.log").read_text(errors="replace")[-4000:]
            raise RuntimeError(f"Verilator simulation wrote no result; log tail:\n{log}")
        return json.loads(result.read_text())
