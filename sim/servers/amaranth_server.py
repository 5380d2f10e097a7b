"""Serve the device simulated by ``amaranth.sim`` on a loopback port.

The server process elaborates :class:`~nanoquote.hw.gateware.top.NanoquoteTop`, runs it in
:class:`amaranth.sim.Simulator` and, from an async testbench, answers the wire protocol
of :mod:`nanoquote.host.device.wire`: each read or write is a cycle-accurate AXI4-Lite
transaction on the top's ``axil`` port (:class:`AxiLiteSimMaster`), ``OP_IDLE`` runs
clock cycles, ``OP_CLOSE`` ends the simulation. The ladder stream's ``ready`` is tied
high and the market-data stream is idle (a register-only deployment).

From another process::

    from nanoquote.sim.servers.amaranth_server import start_amaranth_server
    with start_amaranth_server(max_levels=8) as server:
        bus = server.connect()          # a SocketBus
        ...
        bus.close()                     # ends the server

or ``python -m nanoquote.sim.servers.amaranth_server [--max-levels N] [--vcd out.vcd]``, which
prints ``NANOQUOTE_PORT <port> <token>`` and serves (a client's hello must present the
token: ``SocketBus(port=port, token=int(token, 16))``). ``NANOQUOTE_VCD=<path>`` also
records a waveform.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from contextlib import nullcontext

from amaranth.sim import Simulator
from nanoquote.sim.servers.server_process import (
    FRAME_TIMEOUT,
    SimServer,
    announce_port,
    launch,
    listen,
    new_token,
    serve_requests,
)
from nanoquote.sim.testbenches.amaranth_axil_master import CLOCK_PERIOD, AxiLiteSimMaster

__all__ = ["serve", "start_amaranth_server", "main"]


def serve(dut, listener, *, vcd: str | None = None, announce: bool = False, token: int | None = None,
          frame_timeout: float | None = FRAME_TIMEOUT) -> None:
    """Simulate ``dut`` (a component with an ``axil`` port) serving ``listener`` until closed.

    A client's hello must present ``token`` (``None``: any). With ``announce``, the port
    marker (and the token) is printed once the design has elaborated, so a design that
    fails to elaborate never looks like a listening server.
    """
    sim = Simulator(dut)
    sim.add_clock(CLOCK_PERIOD)
    addr_width = len(dut.axil.awaddr)

    async def testbench(ctx):
        if hasattr(dut, "o"):
            ctx.set(dut.o.ready, 1)  # register-only deployment: nobody back-pressures ladders
        master = AxiLiteSimMaster(ctx, dut.axil)
        await ctx.tick().repeat(2)
        await serve_requests(listener, master.read, master.write, master.idle, addr_width, token=token,
                             frame_timeout=frame_timeout)

    sim.add_testbench(testbench)
    if announce:
        announce_port(listener, token)
    vcd = vcd or os.environ.get("NANOQUOTE_VCD")
    with sim.write_vcd(vcd) if vcd else nullcontext():
        sim.run()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-levels", type=int, default=8)
    parser.add_argument("--price-bits", type=int, default=31)
    parser.add_argument("--addr-width", type=int, default=12)
    parser.add_argument("--vcd", default=None, help="write a waveform to this file")
    parser.add_argument("--accept-timeout", type=float, default=600.0,
                        help="give up when no client connects for this many seconds")
    parser.add_argument("--frame-timeout", type=float, default=FRAME_TIMEOUT,
                        help="drop a client that stalls this many seconds within a frame")
    args = parser.parse_args(argv)
    from nanoquote.hw.verilog import design

    dut = design("top", args.max_levels, args.price_bits, args.addr_width)
    listener = listen(timeout=args.accept_timeout)
    with listener:
        serve(dut, listener, vcd=args.vcd, announce=True, token=new_token(), frame_timeout=args.frame_timeout)
    return 0


def start_amaranth_server(max_levels: int = 8, price_bits: int = 31, *, addr_width: int = 12,
                          vcd: str | None = None, frame_timeout: float = FRAME_TIMEOUT,
                          timeout: float = 120.0) -> SimServer:
    """Run the Amaranth-simulated device in a subprocess; returns ``(process, port)``."""
    argv = [sys.executable, "-m", "nanoquote.sim.servers.amaranth_server", "--max-levels", str(max_levels),
            "--price-bits", str(price_bits), "--addr-width", str(addr_width), "--frame-timeout", str(frame_timeout)]
    if vcd:
        argv += ["--vcd", vcd]
    return launch(argv, name="Amaranth server (python -m nanoquote.sim.servers.amaranth_server)", timeout=timeout)


if __name__ == "__main__":
    sys.exit(main())
