"""Serve the device simulated by Verilator on a loopback port, its bus accesses in C++.

Two processes serve: this module's server, which answers the wire protocol of
:mod:`nanoquote.host.device.wire` with the shared request loop
(:func:`~nanoquote.sim.servers.server_process.serve_requests`), and its child, the top
Verilated with the AXI4-Lite harness (``axil_harness.cpp``, built by
:func:`nanoquote.sim.verilator.build_axil`), which performs every read, write, idle and
poll on the top's ``axil`` port itself, a whole batch per pipe round trip
(:class:`Harness`). No Python runs per clock: a register access costs a few simulated
cycles, not a Python coroutine step each. The ladder stream's ``ready`` is tied high
and the market-data stream is idle (a register-only deployment).

From another process::

    from nanoquote.sim.servers.verilator_server import start_verilator_server
    with start_verilator_server(max_levels=8) as server:   # builds (cached), then starts
        bus = server.connect()                              # a SocketBus
        ...
        bus.close()                                         # ends the simulation

:func:`start_verilator_server` builds in the caller (cached), so a build error is raised
there, then starts ``python -m nanoquote.sim.servers.verilator_server --harness <exe>``.
From a shell, ``python -m nanoquote.sim.servers.verilator_server [--max-levels N]
[--seed S]`` builds too, prints ``NANOQUOTE_PORT <port> <token>`` and serves (``--seed``:
registers start from seeded random values, ``+verilator+rand+reset+2``).
"""

from __future__ import annotations

import argparse
import struct
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nanoquote.host.device.batch import Idle, Operation, Poll, Read, Write
from nanoquote.host.device.wire import batch_records
from nanoquote.sim.servers.server_process import (
    FRAME_TIMEOUT,
    SimServer,
    announce_port,
    launch,
    listen,
    new_token,
    run_sync,
    serve_requests,
)

__all__ = ["Harness", "HarnessExited", "serve", "start_verilator_server", "wave_format", "half_period_ps",
           "main"]

#: One operation to the harness: kind, address, value, arg, cycles (the wire's batch fields).
_OP = struct.Struct("<5I")
_WORD = struct.Struct("<I")
_ANSWER = struct.Struct("<2I")
_START = "nanoquote-axil"


def half_period_ps() -> int:
    """Half a period of the build's target clock (``nanoquote build``'s), in picoseconds:
    the time step of the harness's waves."""
    from nanoquote.hw.fpga.flow import BuildOptions

    return round(1e6 / BuildOptions.freq_mhz / 2)


class HarnessExited(RuntimeError):
    """The harness ended (a hung bus, a crash): the server cannot go on."""


class Harness:
    """The harness process: batches of operations in, ``(resp, results)`` out.

    ``plusargs`` go to Verilator (``+verilator+rand+reset+2``...); its stderr is this
    process's, so a hung bus is reported where the server's output goes. ``waves``: dump
    every signal to that file (a harness built for its format, ``build_axil(waves=...)``),
    time in picoseconds at the build's target clock.
    """

    def __init__(self, executable: Path, addr_width: int, plusargs: Sequence[str] = (),
                 waves: Path | None = None) -> None:
        trace = [] if waves is None else ["--waves", str(waves), str(half_period_ps())]
        self.process = subprocess.Popen([str(executable), str(addr_width), *trace, *plusargs],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        assert self.process.stdin is not None and self.process.stdout is not None
        self._in, self._out = self.process.stdin, self.process.stdout
        line = self._out.readline().decode(errors="replace").split()
        if line != [_START, str(addr_width)]:
            self.close()
            raise HarnessExited(f"{executable} did not start (it said {' '.join(line)!r})")

    def _read(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self._out.read(size - len(data))
            if not chunk:
                raise HarnessExited(f"the harness exited with status {self.process.wait()}")
            data += chunk
        return data

    def perform(self, ops: Sequence[Operation]) -> tuple[int, list[Any]]:
        """Perform a checked batch: OKAY and every result, or the failing operation's
        response and the results before it (a read's or poll's value, else ``None``)."""
        try:
            self._in.write(_WORD.pack(len(ops)) + batch_records(ops, _OP))
        except BrokenPipeError:
            raise HarnessExited(f"the harness exited with status {self.process.wait()}") from None
        resp, count = _ANSWER.unpack(self._read(_ANSWER.size))
        words = struct.unpack(f"<{count}I", self._read(4 * count)) if count else ()
        return resp, [w if isinstance(op, (Read, Poll)) else None for op, w in zip(ops, words, strict=False)]

    def close(self) -> int:
        """End the harness (end of input); its exit status."""
        try:
            self._in.close()
        except BrokenPipeError:
            pass
        code = self.process.wait()
        self._out.close()
        return code


def serve(harness: Harness, addr_width: int, *, accept_timeout: float = 600.0,
          frame_timeout: float = FRAME_TIMEOUT) -> None:
    """Announce a port and answer clients with ``harness`` until ``OP_CLOSE``."""

    async def read(address: int) -> tuple[int, int]:
        resp, results = harness.perform([Read(address)])
        return resp, results[0] if results else 0

    async def write(address: int, value: int, strobe: int) -> int:
        return harness.perform([Write(address, value, strobe)])[0]

    async def idle(cycles: int) -> None:
        harness.perform([Idle(cycles)])

    async def batch(ops: list[Operation]) -> tuple[int, list[Any]]:
        return harness.perform(ops)

    token = new_token()
    with listen(timeout=accept_timeout) as listener:
        announce_port(listener, token)
        run_sync(serve_requests(listener, read, write, idle, addr_width, token=token, frame_timeout=frame_timeout,
                                batch=batch))


def start_verilator_server(max_levels: int = 8, price_bits: int = 31, *, addr_width: int = 12,
                           seed: int | None = None, frame_timeout: float = FRAME_TIMEOUT,
                           waves: Path | None = None, timeout: float = 600.0) -> SimServer:
    """Run the Verilator-simulated device as a process; returns its handle.

    The Verilator build happens here first (cached in ``build/verilator/``), so a build
    error is raised in the caller. ``waves``: every signal of the top is dumped to that
    file, in the format of its suffix (``.fst`` or ``.vcd``, :data:`WAVE_FORMATS`), from
    the reset to the end of the simulation.
    """
    from nanoquote.sim.verilator import build_axil

    executable = build_axil(max_levels, price_bits, addr_width, waves=wave_format(waves)).executable
    argv = [sys.executable, "-m", "nanoquote.sim.servers.verilator_server", "--harness", str(executable),
            "--addr-width", str(addr_width), "--frame-timeout", str(frame_timeout)]
    if seed is not None:
        argv += ["--seed", str(seed)]
    if waves is not None:
        argv += ["--waves", str(Path(waves).resolve())]
    return launch(argv, name=f"Verilator server ({executable})", timeout=timeout)


def wave_format(waves: Path | None) -> str | None:
    """The format of a waves file by its suffix; ``ValueError`` for one Verilator can't write."""
    from nanoquote.sim.verilator import WAVE_FORMATS

    if waves is None:
        return None
    suffix = Path(waves).suffix.lower()
    if suffix not in WAVE_FORMATS:
        raise ValueError(f"waves file {waves}: the name must end in {' or '.join(WAVE_FORMATS)} (the format)")
    return suffix


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-levels", type=int, default=8)
    parser.add_argument("--price-bits", type=int, default=31)
    parser.add_argument("--addr-width", type=int, default=12)
    parser.add_argument("--harness", type=Path, default=None,
                        help="the harness executable of this build (default: build or reuse it)")
    parser.add_argument("--seed", type=int, default=None,
                        help="randomise register start values with this seed (+verilator+rand+reset+2)")
    parser.add_argument("--waves", type=Path, default=None, metavar="FILE",
                        help="dump every signal to FILE (.fst or .vcd; the harness must be built for it)")
    parser.add_argument("--accept-timeout", type=float, default=600.0,
                        help="give up when no client connects for this many seconds")
    parser.add_argument("--frame-timeout", type=float, default=FRAME_TIMEOUT,
                        help="drop a client that stalls this many seconds within a frame")
    args = parser.parse_args(argv)
    from nanoquote.sim.verilator import build_axil, random_reset_plusargs

    executable = args.harness or build_axil(args.max_levels, args.price_bits, args.addr_width,
                                            waves=wave_format(args.waves)).executable
    harness = Harness(executable, args.addr_width, () if args.seed is None else random_reset_plusargs(args.seed),
                      waves=args.waves)
    try:
        serve(harness, args.addr_width, accept_timeout=args.accept_timeout, frame_timeout=args.frame_timeout)
    finally:
        code = harness.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
