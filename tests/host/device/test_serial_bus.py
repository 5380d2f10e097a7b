"""SerialBus without a board: frames it builds, answers it takes or refuses, its retries,
and the ``serial:`` URL. A scripted port stands in for the serial device."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest
from nanoquote.host.device.batch import BatchError, Idle, Poll, Read, Write
from nanoquote.host.device.bus import BatchRefused, BusTimeout, LinkError, Resp
from nanoquote.host.device.serial_bus import SerialBus, parse_serial_url, plan_frames
from nanoquote.hw.contract import link
from nanoquote.hw.contract.register_map import register_map

RMAP = register_map()
SCRATCH = RMAP["SCRATCH"].address
ROOT = Path(__file__).resolve().parents[3]


class ScriptedPort:
    """A serial port whose answers a test scripts: ``answer(frame) -> bytes``, per frame."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.frames: list[bytes] = []
        self.pending = b""
        self.timeout = 1.0

    def reset_input_buffer(self):
        self.pending = b""

    def write(self, data):
        self.frames.append(bytes(data))
        self.pending += self.answers.pop(0)(bytes(data)) if self.answers else b""

    def flush(self):
        pass

    def read(self, size):
        data, self.pending = self.pending[:size], self.pending[size:]
        return data

    def close(self):
        pass


def seq_of(frame):
    return frame[1]


def ok(*results, done=None):
    return lambda frame: link.encode_answer(seq_of(frame), 0, len(results) if done is None else done, results)


def test_the_crc_check_value():
    assert link.crc16(b"123456789") == 0x29B1


def test_a_frame_byte_for_byte():
    # sync, seq, length 4 (LE), a read of 3 words at 0, CRC-16/CCITT-FALSE big-endian (the
    # CRCs computed bit by bit, independently of crc16)
    assert link.encode_frame(7, [link.read_command(0, 3)]) == bytes.fromhex("5a 07 0400 10 0000 03 c5ef")
    assert link.encode_answer(7, 0, 1, [0x4E514F54]) == bytes.fromhex("a5 07 00 0100 544f514e a954")


def test_a_quote_batch_is_one_frame_with_bursts():
    ops = [Write(0x80, 5), Write(0x84, 0), Write(0x88, 100), Write(0x8C, 104), Write(0x90, 3), Idle(5),
           Poll(0xA0, 1, 64, 0), Read(0xA4)] + [Read(0xC0 + 4 * i) for i in range(3)] + [
           Read(0x100 + 4 * i) for i in range(3)]
    frames, unreachable = plan_frames(ops)
    assert unreachable is None and len(frames) == 1
    commands = [c.data for c in frames[0].commands]
    assert commands == [
        bytes([0x2F, 0x80, 0, 5]) + struct.pack("<5I", 5, 0, 100, 104, 3),  # one burst write
        bytes([0x30, 5, 0, 0]),
        bytes([0x40, 0xA0, 0]) + struct.pack("<IH", 1, 64) + bytes(3),
        bytes([0x10, 0xA4, 0, 1]), bytes([0x10, 0xC0, 0, 3]), bytes([0x10, 0x00, 1, 3]),
    ]
    assert frames[0].units == list(range(len(ops)))


def test_reads_writes_and_an_error_answer_map_to_the_batch():
    port = ScriptedPort(ok(11, 22, done=3), lambda f: link.encode_answer(seq_of(f), Resp.SLVERR, 2, [33]))
    bus = SerialBus("scripted", serial=port)
    assert bus.batch([Read(0), Write(SCRATCH, 1), Read(8)]) == [11, None, 22]
    with pytest.raises(BatchError, match="operation 2 of a batch") as err:
        bus.batch([Read(SCRATCH), Write(SCRATCH, 2), Write(0, 1), Read(SCRATCH)])
    assert (err.value.index, err.value.resp, err.value.results) == (2, Resp.SLVERR, [33, None])
    assert [seq_of(f) for f in port.frames] == [1, 2]


def test_a_bad_answer_to_reads_is_retried():
    bad_crc = lambda f: bytearray(ok(5)(f))[:-1] + b"\x00"  # noqa: E731
    wrong_seq = lambda f: link.encode_answer(seq_of(f) ^ 1, 0, 1, [5])  # noqa: E731
    port = ScriptedPort(bad_crc, wrong_seq, ok(5))
    bus = SerialBus("scripted", serial=port, quiet=0.0)
    assert bus.read32(SCRATCH) == 5
    assert bus.retried == 2 and bus.link_generation == 2 and len(port.frames) == 3


def test_a_lost_answer_to_a_write_is_not_retried():
    port = ScriptedPort(lambda f: link.encode_answer(seq_of(f) ^ 1, 0, 1))
    bus = SerialBus("scripted", serial=port, quiet=0.0)
    with pytest.raises(LinkError, match=r"answered request \d+ .*it holds writes, so it is not sent again"):
        bus.write32(SCRATCH, 1)
    assert len(port.frames) == 1
    port = ScriptedPort()  # silence
    bus = SerialBus("scripted", serial=port, quiet=0.0)
    with pytest.raises(BusTimeout, match="no answer .* not sent again"):
        bus.write32(SCRATCH, 1)
    assert len(port.frames) == 1


def test_a_refused_frame_is_retried_even_with_writes():
    refused = lambda f: link.encode_answer(seq_of(f), link.STATUS_BAD_CRC, 0)  # noqa: E731
    port = ScriptedPort(refused, ok(done=1))
    bus = SerialBus("scripted", serial=port, quiet=0.0)
    bus.write32(SCRATCH, 1)
    assert len(port.frames) == 2 and port.frames[0][2:-2] == port.frames[1][2:-2]
    port = ScriptedPort(refused, refused, refused)
    bus = SerialBus("scripted", serial=port, quiet=0.0)
    with pytest.raises(BatchRefused, match="refused a frame of 1 operations: bad CRC"):
        bus.write32(SCRATCH, 1)


def test_long_batches_split_and_stop_at_the_first_error():
    ops = [Read(SCRATCH)] * (link.MAX_RESULTS + 10)
    frames, _ = plan_frames(ops)
    assert [f.results for f in frames] == [link.MAX_RESULTS, 10]
    port = ScriptedPort(ok(*range(link.MAX_RESULTS)), ok(*range(10)))
    assert SerialBus("scripted", serial=port).batch(ops) == list(range(link.MAX_RESULTS)) + list(range(10))
    frames, unreachable = plan_frames([Read(0), Read(0x10000), Read(0)])
    assert unreachable == 1 and [f.units for f in frames] == [[0]]
    frames, _ = plan_frames([Idle(link.MAX_CYCLES + 5), Read(0)])
    assert frames[0].units == [0, 0, 1]  # a long wait: two wait commands of one operation


@pytest.mark.parametrize("url, message", [
    ("serial://dev/ttyUSB1", "bad serial URL"),
    ("serial:///dev/ttyUSB1?baud=fast", "baud must be an integer"),
    ("serial:///dev/ttyUSB1?baud=-3", "baud must be positive"),
    ("serial:///dev/ttyUSB1?parity=E", "unknown parameter 'parity'"),
])
def test_bad_urls_are_named(url, message):
    with pytest.raises(ValueError, match=message):
        parse_serial_url(url)
    assert parse_serial_url("serial:///dev/ttyUSB1?baud=3000000").port == "/dev/ttyUSB1"
    assert parse_serial_url("serial:/dev/ttyUSB1").baud == 3_000_000


@pytest.mark.parametrize("backend, words", [
    ("serial:///dev/ttyUSB1?baud=fast", ["baud must be an integer"]),
    ("serial:///nonexistent/tty?baud=3000000", ["cannot open /nonexistent/tty at 3000000 baud"]),
])
def test_the_demo_names_a_bad_serial_backend(tmp_path, backend, words):
    proc = subprocess.run([sys.executable, "-m", "nanoquote.cli", "demo", "--backend", backend, "--events", "5",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 or "usage" in proc.stderr, proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr
