"""The simulated board: the Verilated board core behind a pseudo-terminal, as a serial port.

:func:`start_board_sim` builds (cached) the board core
(:class:`~nanoquote.hw.gateware.board.BoardCore` with
:data:`~nanoquote.hw.gateware.board.SIM_CYCLES_PER_BIT`) with the UART harness
(``uart_harness.cpp``, :func:`nanoquote.sim.verilator.build_board`), opens a
pseudo-terminal and starts the harness with its master side: the harness drives the
core's ``rx`` pin bit by bit with the bytes written to the terminal and writes back the
bytes it decodes from ``tx``. The slave side (:attr:`BoardSim.path`, a ``/dev/pts/N``)
is a serial port like the board's ``/dev/ttyUSB1``: :meth:`BoardSim.connect` opens a
:class:`~nanoquote.host.device.serial_bus.SerialBus` on it, and ``nanoquote demo --backend
serial:///dev/pts/N`` works as well while it runs.

This process keeps the slave side open (raw, no echo) for the harness's lifetime, so a
host may close and reopen the port; :meth:`BoardSim.stop` closes the harness's standard
input, which ends it (it reports its figures on standard error).
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import termios
import time
import tty
from collections.abc import Sequence
from pathlib import Path

from nanoquote.host.device.serial_bus import SerialBus

__all__ = ["BoardSim", "start_board_sim", "SIM_QUIET"]

_START = "nanoquote-uart"
#: Seconds of silence that end a resynchronisation with the simulated board (its clock
#: runs at a few million cycles a second, so its answers are slower than the board's).
SIM_QUIET = 0.3


class BoardSim:
    """A running simulated board: :attr:`path` is its serial port."""

    def __init__(self, executable: Path, cycles_per_bit: int, plusargs: Sequence[str] = (), *,
                 timeout: float = 60.0) -> None:
        master, slave = os.openpty()
        try:
            tty.setraw(slave)
            attrs = termios.tcgetattr(slave)
            attrs[3] &= ~termios.ECHO
            termios.tcsetattr(slave, termios.TCSANOW, attrs)
            self.path = os.ttyname(slave)
            self.process = subprocess.Popen([str(executable), str(cycles_per_bit), str(master), *plusargs],
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=(master,),
                                            start_new_session=True)
        except BaseException:
            os.close(slave)
            raise
        finally:
            os.close(master)  # the harness has its own copy
        self._slave = slave
        self.cycles_per_bit = cycles_per_bit
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline().decode(errors="replace").split() if ready else []
        if line != [_START, str(cycles_per_bit)]:
            code = self.stop()
            raise RuntimeError(f"the simulated board ({executable}) did not start (it said {' '.join(line)!r}, "
                               f"exit status {code})")

    @property
    def url(self) -> str:
        """The ``--backend`` URL of this board."""
        return f"serial://{self.path}"

    def connect(self, timeout: float = 30.0) -> SerialBus:
        """A :class:`SerialBus` to this board (its baud rate is the harness's: any)."""
        self.check()
        return SerialBus(self.path, timeout=timeout, quiet=SIM_QUIET, name=f"the simulated board ({self.path})")

    def check(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise RuntimeError(f"the simulated board exited with status {code}")

    def stop(self, timeout: float = 10.0) -> int | None:
        """End the harness (end of its input; then SIGKILL after ``timeout`` s); its exit status."""
        proc = self.process
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None
        return code

    def __enter__(self) -> BoardSim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_board_sim(max_levels: int = 8, price_bits: int = 31, *, seed: int | None = None) -> BoardSim:
    """Build (cached) and start the simulated board; a ``RuntimeError`` if either fails."""
    from nanoquote.hw.gateware.board import SIM_CYCLES_PER_BIT
    from nanoquote.sim.verilator import build_board, random_reset_plusargs

    executable = build_board(max_levels, price_bits).executable
    return BoardSim(executable, SIM_CYCLES_PER_BIT, () if seed is None else random_reset_plusargs(seed))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nanoquote.sim.servers.board_server``: run the simulated board until Ctrl-C."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-levels", type=int, default=8)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    with start_board_sim(args.max_levels, seed=args.seed) as board:
        print(f"the simulated board is at {board.url} (Ctrl-C ends it)", flush=True)
        try:
            while board.process.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
