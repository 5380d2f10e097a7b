"""The board core's host link in amaranth.sim, its UART pins driven bit by bit.

Frames are built by hand from the protocol's table (docs/board.md) and their CRCs
computed bit by bit here, independently of the project's ``crc16``; answers are decoded
from the ``tx`` pin and checked against the register map's values.
"""

from __future__ import annotations

import struct

import pytest
from amaranth.sim import Simulator
from nanoquote.hw.contract.register_map import MAGIC, register_map
from nanoquote.hw.gateware.board import BOARD_CLOCK, BoardCore

RMAP = register_map()
SCRATCH = RMAP["SCRATCH"].address
TIMEOUT_BITS = 40  # a short receiver timeout, so a timeout costs few simulated cycles


def crc_bitwise(data: bytes) -> int:
    """CRC-16/CCITT-FALSE, one bit at a time."""
    crc = 0xFFFF
    for byte in data:
        for i in range(7, -1, -1):
            bit = (byte >> i & 1) ^ (crc >> 15)
            crc = (crc << 1) & 0xFFFF
            if bit:
                crc ^= 0x1021
    return crc


def frame(seq: int, body: bytes) -> bytes:
    head = bytes([seq]) + struct.pack("<H", len(body)) + body
    return b"\x5a" + head + crc_bitwise(head).to_bytes(2, "big")


def read(addr, n):
    return bytes([0x10]) + struct.pack("<HB", addr, n)


def write(addr, *values, strobe=0xF):
    return bytes([0x20 | strobe]) + struct.pack(f"<HB{len(values)}I", addr, len(values), *values)


def poll(addr, mask, limit, cycles):
    return bytes([0x40]) + struct.pack("<HIH", addr, mask, limit) + cycles.to_bytes(3, "little")


def decode(answer: bytes):
    """``(seq, status, done, words)`` of one answer, its CRC checked."""
    assert answer[0] == 0xA5, answer.hex()
    assert crc_bitwise(answer[1:]) == 0, f"bad answer CRC: {answer.hex()}"
    seq, status, done = struct.unpack("<BBH", answer[1:5])
    body = answer[5:-2]
    return seq, status, done, list(struct.unpack(f"<{len(body) // 4}I", body))


def run_link(exchanges, cycles_per_bit=8):
    """Send each exchange's bytes (then let the line idle), collect every answer."""
    dut = BoardCore(cycles_per_bit, timeout_bits=TIMEOUT_BITS)
    answers: list[bytes] = []

    async def bench(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(10)
        for data in exchanges:
            for byte in data:
                for bit in [0] + [byte >> i & 1 for i in range(8)] + [1]:
                    ctx.set(dut.rx, bit)
                    await ctx.tick().repeat(cycles_per_bit)
            answer = bytearray()
            quiet = 0
            # until the link is done and the line has been idle a while
            while quiet < (TIMEOUT_BITS + 20) * cycles_per_bit:
                if ctx.get(dut.tx) == 0:
                    quiet = 0
                    await ctx.tick().repeat(cycles_per_bit // 2)
                    value = 0
                    for i in range(8):
                        await ctx.tick().repeat(cycles_per_bit)
                        value |= ctx.get(dut.tx) << i
                    await ctx.tick().repeat(cycles_per_bit)
                    assert ctx.get(dut.tx) == 1, "stop bit"
                    answer.append(value)
                else:
                    quiet += 1
                    await ctx.tick()
            answers.append(bytes(answer))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return answers


def test_crc_check_value():
    assert crc_bitwise(b"123456789") == 0x29B1


def test_reads_writes_polls_and_error_answers():
    answers = run_link([
        frame(7, read(0, 3) + write(SCRATCH, 0xDEADBEEF) + read(SCRATCH, 1)),
        frame(8, write(SCRATCH, 0x11223344, strobe=0b0010) + read(SCRATCH, 1)
              + poll(RMAP["LADDER_STATUS"].address, 1, 3, 2) + bytes([0x30, 5, 0, 0])),
        # SLVERR: a write to the read-only MAGIC, after one good write; the read after it is not performed
        frame(9, write(SCRATCH, 1) + write(SCRATCH, 2) + write(0, 5) + read(SCRATCH, 1)),
        # DECERR: an address beyond the 12-bit bus (no access), then an unmapped one
        frame(10, read(SCRATCH, 1) + read(0x1000, 1)),
        frame(12, read(0xFFC, 1)),
        frame(11, read(SCRATCH, 1)),
    ])
    seq, status, done, words = decode(answers[0])
    assert (seq, status, done) == (7, 0, 5)
    assert words[0] == MAGIC and words[3] == 0xDEADBEEF
    assert words[2] == RMAP["BUILD"].pack(max_levels=8, price_bits=31, latency=5)
    assert decode(answers[1]) == (8, 0, 4, [0xDEAD33EF, 0])  # byte lane 1 only; no ladder yet
    assert decode(answers[2]) == (9, 2, 2, [])
    assert decode(answers[3]) == (10, 3, 1, [2])
    assert decode(answers[4]) == (12, 3, 0, [])
    assert decode(answers[5]) == (11, 0, 1, [2])  # the write before the error was performed, not the one after


@pytest.mark.parametrize("fault", ["bit flip", "bad length", "bad opcode", "misaligned", "truncated", "garbage"])
def test_a_bad_frame_is_answered_and_changes_nothing(fault):
    good = frame(3, write(SCRATCH, 0xCAFE))
    if fault == "bit flip":
        bad = bytearray(good)
        bad[8] ^= 0x10  # in the written value
        bad, expected = bytes(bad), (3, 0x10)
    elif fault == "bad length":
        bad, expected = b"\x5a\x03\x01\x08" + bytes(20), (3, 0x11)  # 2049 bytes
    elif fault == "bad opcode":
        bad, expected = frame(3, bytes([0x55, 0, 0, 1])), (3, 0x12)
    elif fault == "misaligned":
        bad, expected = frame(3, write(SCRATCH + 2, 1)), (3, 0x12)
    elif fault == "truncated":
        bad, expected = good[:-3], (3, 0x13)
    else:
        bad, expected = bytes([0x00, 0xFF, 0x13, 0x37]), None  # no sync byte: ignored, no answer
    answers = run_link([bad, frame(4, read(SCRATCH, 1))])
    if expected is None:
        assert answers[0] == b""
    else:
        assert decode(answers[0]) == (*expected, 0, [])
    assert decode(answers[1]) == (4, 0, 1, [0])  # the bad frame wrote nothing; the link goes on


def test_the_board_clock_divider():
    """The production divider (design clock / baud) on one frame, bit by bit."""
    assert BOARD_CLOCK.cycles_per_bit == 40 and BOARD_CLOCK.baud_error == 0
    answers = run_link([frame(1, read(0, 1))], cycles_per_bit=BOARD_CLOCK.cycles_per_bit)
    assert decode(answers[0]) == (1, 0, 1, [MAGIC])
