"""Serve the device simulated by Verilator (through cocotb) on a loopback port.

The module is a cocotb test module: its one test, :func:`serve`, resets the top, binds
a lean AXI4-Lite manager to its ``axil__*`` port
(:class:`~nanoquote.sim.testbenches.cocotb_axil.LeanAxiLiteMaster`, via
:class:`~nanoquote.sim.testbenches.cocotb_top.TopBench`, which reads the build's parameters
from its BUILD register) and answers the wire protocol (batches included) of
:mod:`nanoquote.host.device.wire` until a client sends ``OP_CLOSE``. The blocking socket
calls inside the coroutine simply pause simulated time. The ladder stream's ``ready`` is
tied high (a register-only deployment).

From another process::

    from nanoquote.sim.servers.verilator_server import start_verilator_server
    with start_verilator_server(max_levels=8) as server:   # builds (cached), then starts
        bus = server.connect()                              # a SocketBus
        ...
        bus.close()                                         # ends the simulation

:func:`start_verilator_server` builds in the caller (cached, :func:`nanoquote.sim.verilator.build`)
and starts the Verilator executable itself, with cocotb's environment
(:func:`nanoquote.sim.verilator.simulator_command`): two processes, the caller and the
simulator. ``python -m nanoquote.sim.servers.verilator_server [--max-levels N] [--seed S]``
does the same from a shell: the simulator prints ``NANOQUOTE_PORT <port> <token>`` and serves
(``--seed``: registers start from seeded random values, ``+verilator+rand+reset+2``).
``NANOQUOTE_ACCEPT_TIMEOUT`` and ``NANOQUOTE_FRAME_TIMEOUT`` in the simulator's environment
set the listener's accept timeout and the per-frame timeout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cocotb
from nanoquote.sim.servers.server_process import (
    FRAME_TIMEOUT,
    SimServer,
    announce_port,
    launch,
    listen,
    new_token,
    serve_requests,
)

__all__ = ["TEST_MODULE", "serve", "server_command", "start_verilator_server", "main"]

#: This module, as cocotb imports it inside the simulator.
TEST_MODULE = "nanoquote.sim.servers.verilator_server"


@cocotb.test()
async def serve(dut):
    """Answer loopback requests with AXI4-Lite transactions until ``OP_CLOSE``."""
    from nanoquote.sim.testbenches.cocotb_top import TopBench

    tb = TopBench(dut, lean=True)
    await tb.reset()
    listener = listen(timeout=float(os.environ.get("NANOQUOTE_ACCEPT_TIMEOUT", "600")))
    frame_timeout = float(os.environ.get("NANOQUOTE_FRAME_TIMEOUT", str(FRAME_TIMEOUT)))
    token = new_token()
    with listener:
        announce_port(listener, token)
        await serve_requests(listener, tb.read32, tb.write32, tb.idle, tb.addr_width, token=token,
                             frame_timeout=frame_timeout)


def server_command(max_levels: int = 8, price_bits: int = 31, *, addr_width: int = 12,
                   seed: int | None = None, accept_timeout: float = 600.0,
                   frame_timeout: float = FRAME_TIMEOUT, run_dir: Path):
    """``(build, argv, env, results file)`` of a server run in ``run_dir`` (builds if needed)."""
    from nanoquote.sim.verilator import build, quiet_env, simulator_command

    model = build("top", max_levels, price_bits, addr_width)
    plusargs = [] if seed is None else ["+verilator+rand+reset+2", f"+verilator+seed+{seed}"]
    results = run_dir / "results.xml"
    argv, env = simulator_command(model, TEST_MODULE, results_file=results, testcase="serve", seed=seed,
                                  plusargs=plusargs,
                                  extra_env={**quiet_env(), "NANOQUOTE_ACCEPT_TIMEOUT": str(accept_timeout),
                                             "NANOQUOTE_FRAME_TIMEOUT": str(frame_timeout)})
    return model, argv, env, results


def start_verilator_server(max_levels: int = 8, price_bits: int = 31, *, addr_width: int = 12,
                           seed: int | None = None, frame_timeout: float = FRAME_TIMEOUT,
                           timeout: float = 600.0) -> SimServer:
    """Run the Verilator-simulated device as a process; returns ``(process, port)``.

    The Verilator build happens here first (cached in ``build/verilator/``), so a build
    error is raised in the caller.
    """
    run_dir = Path(tempfile.mkdtemp(prefix="nanoquote-verilator-server-"))
    try:
        model, argv, env, results = server_command(max_levels, price_bits, addr_width=addr_width,
                                                   seed=seed, frame_timeout=frame_timeout, run_dir=run_dir)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return launch(argv, name=f"Verilator server ({model.executable})", timeout=timeout, env=env,
                  cwd=run_dir, results=results, run_dir=run_dir)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-levels", type=int, default=8)
    parser.add_argument("--price-bits", type=int, default=31)
    parser.add_argument("--addr-width", type=int, default=12)
    parser.add_argument("--seed", type=int, default=None,
                        help="randomise register start values with this seed (+verilator+rand+reset+2)")
    parser.add_argument("--accept-timeout", type=float, default=600.0)
    parser.add_argument("--frame-timeout", type=float, default=FRAME_TIMEOUT)
    args = parser.parse_args(argv)

    from cocotb_tools.check_results import get_results

    with tempfile.TemporaryDirectory(prefix="nanoquote-verilator-server-") as tmp:
        _, cmd, env, results = server_command(args.max_levels, args.price_bits, addr_width=args.addr_width,
                                              seed=args.seed, accept_timeout=args.accept_timeout,
                                              frame_timeout=args.frame_timeout, run_dir=Path(tmp))
        code = subprocess.run(cmd, env=env, cwd=tmp, check=False).returncode
        if code:
            return code
        try:
            return 1 if get_results(results)[1] else 0
        except RuntimeError:
            return 1


if __name__ == "__main__":
    sys.exit(main())
