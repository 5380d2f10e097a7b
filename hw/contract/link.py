"""The board's host link: a framed binary protocol over a UART, what host and gateware agree on.

The gateware (:class:`nanoquote.hw.gateware.host_link.HostLink`) and the host
(:class:`nanoquote.host.device.serial_bus.SerialBus`) both take every constant, command
layout and the CRC from here. docs/board.md has the same as a table.

A request frame (host to device)::

    0x5A  seq:u8  len:u16  commands (len bytes)  crc:u16

and its answer (device to host)::

    0xA5  seq:u8  status:u8  done:u16  results (4 bytes per result word)  crc:u16

Multi-byte fields are little-endian, except the CRC, sent high byte first. The CRC is
CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no reflection, no final
XOR) over every byte after the sync byte up to the CRC, so the CRC register over the
whole frame after the sync byte, CRC included, ends at 0.

Commands, executed in order after the whole frame has been received and its CRC
checked (a frame that is not well formed is never executed, not even in part):

* ``0x10 addr:u16 n:u8``: read ``n`` (1..255) words at ``addr``, ``addr + 4``, ...; ``n``
  results.
* ``0x2S addr:u16 n:u8 data:n*u32``: write ``n`` words at consecutive addresses with byte
  strobe ``S`` (the low nibble of the opcode).
* ``0x30 cycles:u24``: wait ``cycles`` clock cycles.
* ``0x40 addr:u16 mask:u32 limit:u16 cycles:u24``: poll: read ``addr`` until a bit of
  ``mask`` is set, at most ``limit`` (1..65535) times, waiting ``cycles`` between reads;
  one result, the last value read (no error if the bit never came).

Every word read or written, every wait and every poll is one *unit*; ``done`` in the
answer counts the units performed. ``status`` is the AXI response: OKAY (every unit
performed), or SLVERR/DECERR, the response of unit ``done`` (the units before it were
performed, it and the rest not; an address at or beyond ``2**addr_width`` answers DECERR
without an access). The results are those of the read and poll units performed.

A frame that is not well formed is answered with ``done = 0``, no results and one of
the link statuses: :data:`STATUS_BAD_CRC` (the CRC does not match, or a byte had a
framing error), :data:`STATUS_BAD_LENGTH` (``len`` is 0 or above
:data:`MAX_FRAME_BYTES`), :data:`STATUS_BAD_COMMAND` (an unknown opcode, a misaligned
address, a count or limit of 0, a command cut off by the frame's end, or more than
:data:`MAX_RESULTS` result words), or :data:`STATUS_TIMEOUT` (the line was quiet for
:data:`FRAME_TIMEOUT_BITS` bit times in the middle of a frame). For the first three the
device first discards everything until the line has been quiet for
:data:`FRAME_TIMEOUT_BITS` bit times, so its answer comes when the rest of a broken frame
has gone by. Bytes before a sync byte, and bytes that arrive while a frame is executed
or answered, are ignored: one frame at a time, the host waits for each answer.
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "SYNC_REQUEST", "SYNC_ANSWER", "OP_READ", "OP_WRITE", "OP_IDLE", "OP_POLL", "MAX_FRAME_BYTES",
    "MAX_RESULTS", "MAX_COUNT", "MAX_LIMIT", "MAX_CYCLES", "FRAME_TIMEOUT_BITS", "STATUS_BAD_CRC",
    "STATUS_BAD_LENGTH", "STATUS_BAD_COMMAND", "STATUS_TIMEOUT", "LINK_STATUS", "crc16",
    "Command", "read_command", "write_command", "idle_command", "poll_command", "encode_frame",
    "encode_answer", "Answer", "ANSWER_HEADER", "answer_size",
]

SYNC_REQUEST = 0x5A
SYNC_ANSWER = 0xA5
OP_READ, OP_WRITE, OP_IDLE, OP_POLL = 0x10, 0x20, 0x30, 0x40
#: Command bytes of one frame (the gateware's request buffer).
MAX_FRAME_BYTES = 1024
#: Result words of one frame (the gateware's result buffer).
MAX_RESULTS = 256
#: Words of one read or write command.
MAX_COUNT = 255
#: Reads of one poll.
MAX_LIMIT = 0xFFFF
#: Cycles of one wait, or between two reads of a poll.
MAX_CYCLES = (1 << 24) - 1
#: A frame that stops for this many bit times is abandoned (answered STATUS_TIMEOUT).
FRAME_TIMEOUT_BITS = 1000
STATUS_BAD_CRC, STATUS_BAD_LENGTH, STATUS_BAD_COMMAND, STATUS_TIMEOUT = 0x10, 0x11, 0x12, 0x13
#: Link statuses (a frame refused whole, nothing performed) and what they mean.
LINK_STATUS = {
    STATUS_BAD_CRC: "bad CRC or framing error",
    STATUS_BAD_LENGTH: "bad frame length",
    STATUS_BAD_COMMAND: "malformed command",
    STATUS_TIMEOUT: "frame cut short (receiver timeout)",
}

#: Answer header after the sync byte: seq, status, done.
ANSWER_HEADER = struct.Struct("<BBH")


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (``crc16(b"123456789") == 0x29B1``)."""
    return binascii.crc_hqx(data, crc)


@dataclass(frozen=True)
class Command:
    """One encoded command: its bytes, its units and its result words."""

    data: bytes
    units: int
    results: int


def read_command(address: int, count: int) -> Command:
    _check_address(address)
    if not 1 <= count <= MAX_COUNT:
        raise ValueError(f"a read command reads 1..{MAX_COUNT} words, not {count}")
    return Command(struct.pack("<BHB", OP_READ, address, count), count, count)


def write_command(address: int, values: Sequence[int], strobe: int = 0xF) -> Command:
    _check_address(address)
    if not 1 <= len(values) <= MAX_COUNT:
        raise ValueError(f"a write command writes 1..{MAX_COUNT} words, not {len(values)}")
    if not 0 <= strobe <= 0xF:
        raise ValueError(f"byte strobe must be 0..15, got {strobe}")
    return Command(struct.pack(f"<BHB{len(values)}I", OP_WRITE | strobe, address, len(values), *values),
                   len(values), 0)


def idle_command(cycles: int) -> Command:
    if not 0 <= cycles <= MAX_CYCLES:
        raise ValueError(f"a wait is 0..{MAX_CYCLES} cycles, not {cycles}")
    return Command(bytes([OP_IDLE]) + cycles.to_bytes(3, "little"), 1, 0)


def poll_command(address: int, mask: int, limit: int, cycles: int) -> Command:
    _check_address(address)
    if not 1 <= limit <= MAX_LIMIT or not 0 <= cycles <= MAX_CYCLES or not 0 <= mask < 1 << 32:
        raise ValueError(f"poll limit 1..{MAX_LIMIT}, cycles 0..{MAX_CYCLES}, 32-bit mask: got "
                         f"{limit}, {cycles}, {mask:#x}")
    return Command(struct.pack("<BHIH", OP_POLL, address, mask, limit) + cycles.to_bytes(3, "little"), 1, 1)


def _check_address(address: int) -> None:
    if address & 3 or not 0 <= address < 1 << 16:
        raise ValueError(f"a link address is a 4-byte aligned 16-bit value, got {address:#x}")


def encode_frame(seq: int, commands: Sequence[Command] | bytes) -> bytes:
    """A request frame: sync, seq, length, the commands, the CRC."""
    body = commands if isinstance(commands, bytes) else b"".join(c.data for c in commands)
    head = struct.pack("<BH", seq & 0xFF, len(body)) + body
    return bytes([SYNC_REQUEST]) + head + crc16(head).to_bytes(2, "big")


def encode_answer(seq: int, status: int, done: int, results: Sequence[int] = ()) -> bytes:
    """An answer frame as the device sends it (for tests and simulated devices)."""
    head = ANSWER_HEADER.pack(seq & 0xFF, status, done) + struct.pack(f"<{len(results)}I", *results)
    return bytes([SYNC_ANSWER]) + head + crc16(head).to_bytes(2, "big")


def answer_size(words: int) -> int:
    """Bytes of an answer carrying ``words`` result words."""
    return 1 + ANSWER_HEADER.size + 4 * words + 2


@dataclass(frozen=True)
class Answer:
    seq: int
    status: int
    done: int
    results: tuple[int, ...]
