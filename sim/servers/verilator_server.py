"""Serve the device simulated by Verilator (through cocotb) on a loopback port.

The module is a cocotb test module: its one test, :func:`serve`, resets the top, binds
cocotbext-axi's ``AxiLiteMaster`` (``AxiLiteBus.from_prefix(dut, "axil",
bus_separator="__")``, via :class:`~nanoquote.sim.testbenches.cocotb_top.TB`) and answers the wire
protocol of :mod:`nanoquote.host.device.bus` until a client sends ``OP_CLOSE``. The blocking
socket calls inside the coroutine simply pause simulated time. The ladder stream's
``ready`` is tied high (a register-only deployment).

From another process::

    from nanoquote.sim.servers.verilator_server import start_verilator_server
    with start_verilator_server(max_levels=8) as server:   # builds (cached), then starts
        bus = server.connect()                              # a SocketBus
        ...
        bus.close()                                         # ends the simulation

or ``python -m nanoquote.sim.servers.verilator_server [--max-levels N] [--seed S]``, which builds
if needed, prints ``NANOQUOTE_PORT <port>`` and serves (``--seed``: registers start from
seeded random values, ``+verilator+rand+reset+2``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import cocotb
from nanoquote.sim.servers.server_process import (
    SimServer,
    announce_port,
    launch,
    listen,
    serve_requests,
)

__all__ = ["serve", "start_verilator_server", "main"]


@cocotb.test()
async def serve(dut):
    """Answer loopback requests with AXI4-Lite transactions until ``OP_CLOSE``."""
    from nanoquote.sim.testbenches.cocotb_top import TB

    tb = TB(dut)
    await tb.reset()
    listener = listen(float(os.environ.get("NANOQUOTE_ACCEPT_TIMEOUT", "600")))
    with listener:
        announce_port(listener)
        await serve_requests(listener, tb.read32, tb.write32, tb.idle, tb.addr_width)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-levels", type=int, default=8)
    parser.add_argument("--price-bits", type=int, default=31)
    parser.add_argument("--addr-width", type=int, default=12)
    parser.add_argument("--seed", type=int, default=None,
                        help="randomise register start values with this seed (+verilator+rand+reset+2)")
    parser.add_argument("--accept-timeout", type=float, default=600.0)
    parser.add_argument("--build-dir", type=Path, default=None,
                        help="use this existing build (from build_top) instead of building")
    args = parser.parse_args(argv)

    from cocotb_tools.check_results import get_results
    from nanoquote.sim.verilator_top_build import TopBuild, build_top, run_cocotb

    if args.build_dir is not None:
        build = TopBuild(args.build_dir.resolve(), args.max_levels, args.price_bits, args.addr_width)
    else:
        build = build_top(args.max_levels, args.price_bits, args.addr_width)
    plusargs = [] if args.seed is None else ["+verilator+rand+reset+2", f"+verilator+seed+{args.seed}"]
    os.environ.pop("PYTEST_CURRENT_TEST", None)  # the runner would act as if inside pytest
    run_dir = build.build_dir / f"server_{os.getpid()}"
    try:
        results = run_cocotb(build, "nanoquote.sim.servers.verilator_server", testcase="serve", plusargs=plusargs,
                             seed=args.seed, test_dir=run_dir,
                             extra_env={"NANOQUOTE_ACCEPT_TIMEOUT": str(args.accept_timeout)})
        _tests, failed = get_results(Path(results))
    except SystemExit as exc:  # the runner exits on a simulator failure
        return int(exc.code or 1)
    finally:
        import shutil

        shutil.rmtree(run_dir, ignore_errors=True)
    return 1 if failed else 0


def start_verilator_server(max_levels: int = 8, price_bits: int = 31, *, addr_width: int = 12,
                           seed: int | None = None, timeout: float = 600.0) -> SimServer:
    """Run the Verilator-simulated device in a subprocess; returns ``(process, port)``.

    The Verilator build happens here first (cached in ``build/verilator/``), so a build
    error is raised in the caller.
    """
    from nanoquote.sim.verilator_top_build import build_top

    build = build_top(max_levels, price_bits, addr_width)
    argv = [sys.executable, "-m", "nanoquote.sim.servers.verilator_server", "--max-levels", str(max_levels),
            "--price-bits", str(price_bits), "--addr-width", str(addr_width),
            "--build-dir", str(build.build_dir)]
    if seed is not None:
        argv += ["--seed", str(seed)]
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    return launch(argv, timeout=timeout, env=env)


if __name__ == "__main__":
    sys.exit(main())
