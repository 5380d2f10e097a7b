"""The board's register bus over its serial link: :class:`SerialBus` (pyserial).

It speaks the framed protocol of :mod:`nanoquote.hw.contract.link` to the board's host
link (or to the simulated board's pseudo-terminal) and offers the calls of every other
bus (``read32``, ``write32``, ``batch``, ``idle``, ``close``), so the driver and the
offloaded strategy run over it unchanged.

A batch becomes as few frames as the link's limits allow (commands of at most
:data:`~nanoquote.hw.contract.link.MAX_FRAME_BYTES` bytes and
:data:`~nanoquote.hw.contract.link.MAX_RESULTS` result words a frame): consecutive reads
of consecutive registers become one burst read, consecutive writes of consecutive
registers with one strobe one burst write, a poll one poll command. A quote update (its
writes, the wait, the poll and the ladder reads) is one frame and one answer. The frames
of a batch go one at a time, each after the previous one's answer, so the batch still
ends at its first error response (:class:`~nanoquote.host.device.batch.BatchError`).

Failures and retries:

* no answer in time: :class:`~nanoquote.host.device.bus.BusTimeout`; an answer whose
  CRC does not match, whose sequence number is not the request's, or that is cut short:
  :class:`~nanoquote.host.device.bus.LinkError`; a frame the device refused whole (bad
  CRC, length or command, or cut short on its side):
  :class:`~nanoquote.host.device.bus.BatchRefused`. Each names the port and what was sent.
* Before raising, the link is resynchronised: the bytes still arriving are read and
  dropped until the line has been quiet for ``quiet`` seconds, and
  :attr:`link_generation` changes (so :class:`~nanoquote.host.device.register_access.Device`
  identifies the device again).
* A frame is sent again (up to ``retries`` times) only when that is provably free of
  side effects: when it holds no write (reads, polls and waits only), or when the device
  answered it with a link status (a refused frame is never executed, not even in part).
  A frame with writes whose answer was lost is never sent again: whether it was
  performed is unknown.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

from nanoquote.host.device.batch import BatchError, Idle, Operation, Poll, Read, Write, check_batch
from nanoquote.host.device.bus import BatchRefused, BusTimeout, LinkError, _check_access
from nanoquote.host.device.responses import BusError, Resp
from nanoquote.hw.contract.link import (
    ANSWER_HEADER,
    LINK_STATUS,
    MAX_COUNT,
    MAX_CYCLES,
    MAX_FRAME_BYTES,
    MAX_RESULTS,
    SYNC_ANSWER,
    Command,
    crc16,
    encode_frame,
    idle_command,
    poll_command,
    read_command,
    write_command,
)

__all__ = ["SerialBus", "SerialURL", "parse_serial_url", "plan_frames", "DEFAULT_BAUD", "BAUD_RATES"]

DEFAULT_BAUD = 3_000_000
#: Rates a host may ask for: those the FT2232H makes exactly from 12 MHz (12 MHz / n), and
#: 115,200 (approximate there) for a console; the bitstream's rate is 3 Mbaud (docs/board.md).
BAUD_RATES = (12_000_000, 6_000_000, 4_000_000, 3_000_000, 2_000_000, 1_000_000, 115_200)
#: Link addresses are 16-bit: an address beyond answers DECERR without an access.
ADDRESS_LIMIT = 1 << 16


@dataclass(frozen=True)
class SerialURL:
    port: str
    baud: int = DEFAULT_BAUD
    timeout: float = 1.0


def parse_serial_url(url: str) -> SerialURL:
    """``serial:///dev/ttyUSB1?baud=3000000&timeout=1`` (or ``serial:/dev/ttyUSB1``);
    ``ValueError`` naming what is wrong."""
    parsed = urlparse(url)
    if parsed.scheme != "serial" or not parsed.path or parsed.netloc:
        raise ValueError(f"bad serial URL {url!r}: use serial:///dev/ttyUSB1?baud=3000000")
    query = parse_qs(parsed.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"baud", "timeout"})
    if unknown:
        raise ValueError(f"bad serial URL {url!r}: unknown parameter {unknown[0]!r} (baud, timeout)")
    try:
        baud = int(query.get("baud", [DEFAULT_BAUD])[-1])
    except ValueError:
        raise ValueError(f"bad serial URL {url!r}: baud must be an integer") from None
    if baud <= 0:
        raise ValueError(f"bad serial URL {url!r}: baud must be positive, got {baud}")
    try:
        timeout = float(query.get("timeout", [1.0])[-1])
    except ValueError:
        raise ValueError(f"bad serial URL {url!r}: timeout must be a number of seconds") from None
    if not timeout > 0:
        raise ValueError(f"bad serial URL {url!r}: timeout must be positive")
    return SerialURL(parsed.path, baud, timeout)


@dataclass
class _Frame:
    """The commands of one frame and, per unit, the batch operation it performs."""

    commands: list[Command] = field(default_factory=list)
    units: list[int] = field(default_factory=list)  # op index of each unit
    result_units: list[bool] = field(default_factory=list)
    size: int = 0
    results: int = 0

    @property
    def has_writes(self) -> bool:
        return any(c.data[0] & 0xF0 == 0x20 for c in self.commands)


def _unit_commands(ops: Sequence[Operation], start: int) -> tuple[Command, list[int], int]:
    """The command for ``ops[start]`` and the consecutive ones it can take; its units' op
    indices and the index after it."""
    op = ops[start]
    if isinstance(op, Read):
        end = start + 1
        while (end < len(ops) and end - start < MAX_COUNT and type(ops[end]) is Read
               and ops[end].address == op.address + 4 * (end - start) and ops[end].address < ADDRESS_LIMIT):
            end += 1
        return read_command(op.address, end - start), list(range(start, end)), end
    if isinstance(op, Write):
        end = start + 1
        while (end < len(ops) and end - start < MAX_COUNT and type(ops[end]) is Write
               and ops[end].address == op.address + 4 * (end - start) and ops[end].strobe == op.strobe
               and ops[end].address < ADDRESS_LIMIT):
            end += 1
        return (write_command(op.address, [o.value for o in ops[start:end]], op.strobe),
                list(range(start, end)), end)
    if isinstance(op, Poll):
        return poll_command(op.address, op.mask, op.limit, op.cycles), [start], start + 1
    raise TypeError(op)


def plan_frames(ops: Sequence[Operation]) -> tuple[list[_Frame], int | None]:
    """The frames that perform ``ops`` (checked), and the index of the first operation
    whose address the link cannot carry (``None``: none; the frames stop before it)."""
    frames = [_Frame()]
    index = 0

    def add(command: Command, units: list[int], results: list[bool]) -> None:
        frame = frames[-1]
        if frame.size + len(command.data) > MAX_FRAME_BYTES or frame.results + command.results > MAX_RESULTS:
            frames.append(_Frame())
            frame = frames[-1]
        frame.commands.append(command)
        frame.units += units
        frame.result_units += results
        frame.size += len(command.data)
        frame.results += command.results

    while index < len(ops):
        op = ops[index]
        if isinstance(op, Idle):
            left = op.cycles
            while True:  # a long wait: several commands, each one unit of the same operation
                chunk = min(left, MAX_CYCLES)
                add(idle_command(chunk), [index], [False])
                left -= chunk
                if left == 0:
                    break
            index += 1
            continue
        if op.address >= ADDRESS_LIMIT:
            return [f for f in frames if f.commands], index
        command, units, index = _unit_commands(ops, index)
        add(command, units, [isinstance(ops[u], (Read, Poll)) for u in units])
    return [f for f in frames if f.commands], None


class SerialBus:
    """The board's registers over a serial port (``port``: a device path or a pyserial URL).

    ``timeout``: seconds to wait for each part of an answer (its sync byte, its header,
    the rest); at 3 Mbaud the largest frame takes 3.4 ms on the wire.
    ``quiet``: seconds of silence that end a resynchronisation. ``retries``: how often a
    frame that is safe to repeat is sent again. ``serial``: an open pyserial port to use
    instead of opening ``port``.
    """

    def __init__(self, port: str, baud: int = DEFAULT_BAUD, timeout: float = 1.0, *, quiet: float = 0.02,
                 retries: int = 2, name: str | None = None, serial: Any = None) -> None:
        self.port, self.baud, self.quiet, self.retries = port, baud, quiet, retries
        self._timeout = timeout
        self.name = name or f"the board on {port}"
        self.link_generation = 0
        #: frames sent, frames sent again, bytes sent and received (for throughput figures)
        self.frames = 0
        self.retried = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self._seq = 0
        self._closed = False
        if serial is None:
            import serial as pyserial

            try:
                serial = pyserial.serial_for_url(port, baudrate=baud, timeout=timeout, write_timeout=timeout,
                                                 exclusive=True)
            except (pyserial.SerialException, OSError, ValueError) as exc:
                raise LinkError(f"cannot open {port} at {baud} baud: {exc}") from exc
        self._serial = serial
        self._serial.reset_input_buffer()

    @property
    def timeout(self) -> float:
        return self._timeout

    @timeout.setter
    def timeout(self, value: float) -> None:
        self._timeout = value
        self._serial.timeout = value

    # -- one frame ---------------------------------------------------------------------------

    def _read(self, size: int) -> bytes:
        """Up to ``size`` bytes: fewer when the port's timeout passes first."""
        data = b""
        while len(data) < size:
            chunk = self._serial.read(size - len(data))
            if not chunk:
                break
            data += chunk
        self.bytes_received += len(data)
        return data

    def resync(self) -> int:
        """Drop what still arrives until the line has been quiet for ``quiet`` s; the bytes dropped."""
        dropped = 0
        self._serial.timeout = self.quiet
        try:
            while True:
                chunk = self._serial.read(4096)
                if not chunk:
                    break
                dropped += len(chunk)
        finally:
            self._serial.timeout = self._timeout
        self.link_generation += 1
        return dropped

    def _answer(self, seq: int, frame: _Frame, what: str) -> tuple[int, int, list[int]]:
        """The answer to request ``seq``: ``(status, done, results)``; raises on a bad one."""
        while True:  # the sync byte (noise before it is dropped)
            head = self._read(1)
            if not head:
                raise BusTimeout(f"no answer for {what} from {self.name} within {self._timeout} s")
            if head[0] == SYNC_ANSWER:
                break
        header = self._read(ANSWER_HEADER.size)
        if len(header) < ANSWER_HEADER.size:
            raise BusTimeout(f"the answer to {what} from {self.name} stopped after {1 + len(header)} bytes")
        answered, status, done = ANSWER_HEADER.unpack(header)
        count = sum(frame.result_units[:done]) if status in (Resp.OKAY, Resp.SLVERR, Resp.DECERR) else 0
        rest = self._read(4 * count + 2)
        if len(rest) < 4 * count + 2:
            raise BusTimeout(f"the answer to {what} from {self.name} stopped after "
                             f"{1 + len(header) + len(rest)} bytes")
        if crc16(header + rest) != 0:
            raise LinkError(f"{self.name} answered {what} with a bad CRC")
        if answered != seq:
            raise LinkError(f"{self.name} answered request {answered} to {what} (request {seq})")
        return status, done, list(struct.unpack(f"<{count}I", rest[:4 * count]))

    def _exchange(self, frame: _Frame) -> tuple[int, int, list[int]]:
        """Send ``frame`` and return ``(status, done, results)``, retrying where safe."""
        what = f"a frame of {len(frame.units)} operations"
        attempt = 0
        while True:
            if self._closed:
                raise LinkError(f"{self.name}: this bus is closed")
            self._seq = (self._seq + 1) & 0xFF
            data = encode_frame(self._seq, frame.commands)
            self._serial.reset_input_buffer()
            try:
                self._serial.write(data)
                self._serial.flush()
            except Exception as exc:  # pyserial's SerialException, SerialTimeoutException, OSError
                self.link_generation += 1
                raise LinkError(f"cannot write to {self.name}: {exc}") from exc
            self.frames += 1
            self.bytes_sent += len(data)
            refused = None
            try:
                status, done, results = self._answer(self._seq, frame, what)
                if status in LINK_STATUS:
                    refused = status
                    raise BatchRefused(f"{self.name} refused {what}: {LINK_STATUS[status]}; nothing was performed")
                if status not in (Resp.OKAY, Resp.SLVERR, Resp.DECERR) or (
                        status == Resp.OKAY and done != len(frame.units)) or done > len(frame.units):
                    raise LinkError(f"{self.name} answered {what} with status {status:#x} after {done} operations")
                return status, done, results
            except (BusTimeout, LinkError) as exc:
                self.resync()
                safe = refused is not None or not frame.has_writes
                if not safe or attempt >= self.retries:
                    more = "" if safe else "; it holds writes, so it is not sent again"
                    raise type(exc)(f"{exc}{more}") from None
                attempt += 1
                self.retried += 1
            except Exception as exc:  # the port itself failed (unplugged)
                self.link_generation += 1
                raise LinkError(f"{self.name}: {exc}") from exc

    # -- RegisterBus -------------------------------------------------------------------------

    def batch(self, ops: list[Operation]) -> list[Any]:
        """Perform ``ops``; their results (a read's or poll's value, ``None`` otherwise)."""
        check_batch(ops)
        frames, unreachable = plan_frames(ops)
        results: list[Any] = []
        offset = 0  # index of each frame's first operation
        for frame in frames:
            status, done, words = self._exchange(frame)
            values = iter(words)
            performed = frame.units[:done]
            last = None
            for unit, is_result in zip(performed, frame.result_units, strict=False):
                if unit != last:
                    results.append(None)
                    last = unit
                if is_result:
                    results[-1] = next(values)
            if status != Resp.OKAY:
                failing = frame.units[done]
                if results and performed and performed[-1] == failing:
                    results.pop()  # part of a split wait performed: the operation was not
                op = ops[failing]
                raise BatchError(failing, op, getattr(op, "address", 0), Resp(status), results[:failing])
            offset = frame.units[-1] + 1
        if unreachable is not None:
            op = ops[unreachable]
            raise BatchError(unreachable, op, op.address, Resp.DECERR, results)
        assert offset == len(ops) and len(results) == len(ops)
        return results

    def read32(self, address: int) -> int:
        _check_access(address)
        try:
            return self.batch([Read(address)])[0]
        except BatchError as exc:
            raise BusError("read", address, exc.resp) from None

    def write32(self, address: int, value: int, strobe: int = 0xF) -> None:
        _check_access(address, value, strobe)
        try:
            self.batch([Write(address, value, strobe)])
        except BatchError as exc:
            raise BusError("write", address, exc.resp) from None

    def idle(self, cycles: int) -> None:
        """Wait ``cycles`` of the device's clock (the device counts them)."""
        self.batch([Idle(cycles)])

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._serial.close()
