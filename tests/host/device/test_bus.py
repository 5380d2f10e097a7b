"""Register buses: mmap of a device file and the loopback socket protocol."""

import threading

import pytest
from nanoquote.host.device.bus import BusError, BusTimeout, MmapBus, Resp, SocketBus
from nanoquote.sim.servers.bus_server import listen, serve_connection


class Scratchpad:
    """A bus with 16 words; word 3 is read-only, beyond 16 words is unmapped."""

    def __init__(self):
        self.words = [0] * 16

    def read32(self, address):
        if address >= 64:
            raise BusError("read", address, Resp.DECERR)
        return self.words[address // 4]

    def write32(self, address, value, strobe=0xF):
        if address >= 64:
            raise BusError("write", address, Resp.DECERR)
        if address == 12:
            raise BusError("write", address, Resp.SLVERR)
        mask = sum(0xFF << (8 * i) for i in range(4) if strobe >> i & 1)
        self.words[address // 4] = (self.words[address // 4] & ~mask) | (value & mask)

    def close(self):
        pass


def test_mmap_bus_on_a_file_backed_mapping(tmp_path):
    path = tmp_path / "bar0"
    path.write_bytes(bytes(8192))
    bus = MmapBus(path, size=4096, offset=4096)
    bus.write32(0x10, 0xDEADBEEF)
    bus.write32(0x10, 0x00001200, strobe=0b0010)
    assert bus.read32(0x10) == 0xDEAD12EF
    bus.close()
    raw = path.read_bytes()
    assert raw[4096 + 0x10:4096 + 0x14] == (0xDEAD12EF).to_bytes(4, "little")
    assert raw[:4096] == bytes(4096)  # the base offset was honoured


def test_mmap_bus_rejects_bad_accesses(tmp_path):
    path = tmp_path / "bar0"
    path.write_bytes(bytes(4096))
    with pytest.raises(ValueError, match="multiple"):
        MmapBus(path, size=64, offset=3)
    bus = MmapBus(path, size=64)
    with pytest.raises(ValueError, match="aligned"):
        bus.read32(2)
    with pytest.raises(ValueError, match="outside"):
        bus.write32(64, 1)
    with pytest.raises(ValueError, match="32 bits"):
        bus.write32(0, 1 << 32)
    bus.close()


@pytest.fixture
def served_scratchpad():
    pad = Scratchpad()
    server = listen()
    port = server.getsockname()[1]

    def run():
        conn, _ = server.accept()
        serve_connection(conn, pad)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    bus = SocketBus(port=port, timeout=5)
    yield pad, bus
    bus.close()
    thread.join(timeout=5)
    server.close()


def test_socket_bus_round_trip_and_errors(served_scratchpad):
    pad, bus = served_scratchpad
    bus.write32(4, 0x12345678)
    bus.write32(4, 0xAB000000, strobe=0b1000)
    assert bus.read32(4) == 0xAB345678 and pad.words[1] == 0xAB345678
    with pytest.raises(BusError) as info:
        bus.read32(0x100)
    assert info.value.resp is Resp.DECERR and "0x0100" in str(info.value) and "DECERR" in str(info.value)
    with pytest.raises(BusError, match="write of address 0x000c answered SLVERR"):
        bus.write32(12, 1)
    assert pad.words[3] == 0


def test_socket_bus_times_out_on_a_silent_peer():
    server = listen()
    port = server.getsockname()[1]
    bus = SocketBus(port=port, timeout=0.2)  # connected (backlog) but nobody answers
    with pytest.raises(BusTimeout, match="no answer"):
        bus.read32(0)
    bus.close()
    server.close()


def test_wire_frames_carry_the_request_id():
    from nanoquote.host.device import wire

    assert (wire.REQUEST.size, wire.RESPONSE.size) == (14, 9)
    frame = wire.encode_request(wire.OP_WRITE, 0xA1B2C3D4, 0x10, 0xDEADBEEF, 0xF)
    assert frame == bytes([1]) + (0xA1B2C3D4).to_bytes(4, "little") + (0x10).to_bytes(4, "little") \
        + (0xDEADBEEF).to_bytes(4, "little") + bytes([0xF])
    assert wire.decode_request(frame) == (wire.OP_WRITE, 0xA1B2C3D4, 0x10, 0xDEADBEEF, 0xF)
    assert wire.decode_response(wire.encode_response(Resp.SLVERR, 7, 9)) == (Resp.SLVERR, 7, 9)
    hello = wire.decode_request(wire.encode_hello(3, 0x0123456789ABCDEF))
    assert (hello.op, hello.seq, hello.strobe) == (wire.OP_HELLO, 3, wire.PROTOCOL_VERSION)
    assert wire.hello_token(hello) == 0x0123456789ABCDEF
    with pytest.raises(ValueError, match="64-bit"):
        wire.encode_hello(1, 1 << 64)
