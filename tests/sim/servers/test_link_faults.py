"""The loopback link under faults: late answers, a second client, huge idles, broken and
garbage clients, stalls, strangers without the token, and servers that die.

Most run against the in-process bus server (a ``SoftwareDevice`` served by
``nanoquote.sim.servers.bus_server.serve`` in a thread); the last ones against the
software device's server process and the simulator servers.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import struct
import sys
import threading
import time

import pytest
from nanoquote.host.device.bus import (
    BusTimeout,
    LinkError,
    LinkRefused,
    Resp,
    ServerBusy,
    SocketBus,
)
from nanoquote.host.device.register_access import Device, Idle, WrongDevice
from nanoquote.host.device.wire import (
    MAX_IDLE_CYCLES,
    OP_HELLO,
    OP_IDLE,
    OP_READ,
    PROTOCOL_VERSION,
    RESP_BUSY,
    RESP_REFUSED,
    encode_hello,
    encode_request,
    encode_response,
    recv_request,
    recv_response,
)
from nanoquote.hw.contract.register_map import MAGIC, VERSION_MAJOR, VERSION_MINOR, register_map
from nanoquote.sim.device.software_device import SoftwareDevice
from nanoquote.sim.servers import bus_server
from nanoquote.sim.servers.amaranth_server import start_amaranth_server
from nanoquote.sim.servers.bus_server import start_bus_server
from nanoquote.sim.servers.server_process import ServerExited, launch, listen
from nanoquote.sim.servers.verilator_server import start_verilator_server

RMAP = register_map()
TOKEN = 0x0123_4567_89AB_CDEF
SCRATCH = RMAP["SCRATCH"].address


class Proxy:
    """A bus that forwards to ``target`` (switchable) and records the addresses read."""

    def __init__(self, target):
        self.target, self.reads = target, []

    def read32(self, address):
        self.reads.append(address)
        return self.target.read32(address)

    def write32(self, address, value, strobe=0xF):
        self.target.write32(address, value, strobe)

    def close(self):
        pass


class Served:
    """A bus served in a thread by ``bus_server.serve`` until ``OP_CLOSE``."""

    def __init__(self, bus, idle=None, *, token=None, frame_timeout=10.0):
        self.listener = listen()
        self.port = self.listener.getsockname()[1]
        self.token = token
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, args=(bus, idle, token, frame_timeout), daemon=True)
        self.thread.start()

    def _run(self, bus, idle, token, frame_timeout):
        try:
            bus_server.serve(self.listener, bus, idle, token=token, frame_timeout=frame_timeout)
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            if self.listener.fileno() != -1:
                self.errors.append(exc)

    def bus(self, timeout=10.0, **kwargs):
        return SocketBus(port=self.port, timeout=timeout, token=self.token, **kwargs)

    def stop(self):
        self.thread.join(timeout=1.0)  # a test's last ``close`` has ended it
        if self.thread.is_alive():
            try:
                self.bus(timeout=2).close()  # OP_CLOSE ends the server
            except OSError:
                pass
            self.thread.join(timeout=15)
        alive = self.thread.is_alive()
        self.listener.close()
        assert not self.errors, f"the server failed: {self.errors!r}"
        assert not alive, "the server did not end on OP_CLOSE"


@pytest.fixture
def served():
    servers = []

    def start(bus, idle=None, **options):
        servers.append(Served(bus, idle, **options))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


class Raw:
    """A hand-made client: frames exactly as the test writes them."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.seq = 100

    def hello(self, token, version=PROTOCOL_VERSION):
        frame = bytearray(encode_hello(self.seq, token))
        frame[-1] = version
        self.sock.sendall(bytes(frame))
        return recv_response(self.sock)

    def request(self, op, address=0, value=0, strobe=0):
        self.seq += 1
        self.sock.sendall(encode_request(op, self.seq, address, value, strobe))
        return recv_response(self.sock)

    def closed_by_server(self):
        """True when the server closes (or resets) the connection, reading nothing else."""
        try:
            return self.sock.recv(64) == b""
        except ConnectionResetError:
            return True

    def reset(self):
        """Close abruptly (RST), as a crashing client does."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self):
        self.sock.close()


def _blocking_idle(release: threading.Event):
    """An ``idle`` that answers only once the test releases it (a server stuck in a long idle)."""
    def idle(cycles):
        release.wait(30)
    return idle


def _identity(bus):
    return [bus.read32(RMAP[name].address) for name in ("MAGIC", "VERSION", "BUILD")]


# -- 1. a late answer is never taken for the next request -----------------------------------


def test_a_late_answer_is_never_taken_for_the_next_request(served):
    release = threading.Event()
    server = served(SoftwareDevice(), _blocking_idle(release))
    bus = server.bus()
    device = Device.open(bus)
    generation = bus.link_generation
    bus.timeout = 0.5
    with pytest.raises(BusTimeout, match="no answer for idle of 10 cycles"):
        device.run(iter([Idle(10)]))  # the timeout reaches the caller of the access
    assert bus.link_generation == generation + 1  # the connection was dropped
    release.set()  # the server now answers the idle, on the old connection
    bus.timeout = 10.0  # the new connection waits until the old one is done
    assert device.read_fields("VERSION") == {"major": VERSION_MAJOR, "minor": VERSION_MINOR}
    assert device.read_fields("BUILD") == {"max_levels": 8, "price_bits": 31, "latency": 0}
    assert device.read("MAGIC") == MAGIC
    bus.close()


def test_after_a_reconnect_the_device_is_identified_again(served):
    release = threading.Event()
    proxy = Proxy(SoftwareDevice())
    server = served(proxy, _blocking_idle(release))
    bus = server.bus()
    device = Device.open(bus)
    device.write("SCRATCH", 7)
    bus.timeout = 0.5
    with pytest.raises(BusTimeout):
        device.run(iter([Idle(10)]))
    release.set()
    bus.timeout = 10.0
    proxy.reads.clear()
    assert device.read("SCRATCH") == 7
    assert proxy.reads == [RMAP[name].address for name in ("MAGIC", "VERSION", "BUILD", "SCRATCH")]
    proxy.reads.clear()
    assert device.read("SCRATCH") == 7  # once is enough
    assert proxy.reads == [SCRATCH]
    bus.close()


def test_a_reconnect_to_another_build_raises_wrong_device(served):
    release = threading.Event()
    proxy = Proxy(SoftwareDevice(max_levels=8))
    server = served(proxy, _blocking_idle(release))
    bus = server.bus()
    device = Device.open(bus)
    bus.timeout = 0.5
    with pytest.raises(BusTimeout):
        device.run(iter([Idle(10)]))
    other = SoftwareDevice(max_levels=4)  # another build behind the same port
    proxy.target = other
    release.set()
    bus.timeout = 10.0
    for _ in range(2):  # and it stays refused
        with pytest.raises(WrongDevice, match="another build .*max_levels 4"):
            device.write("SCRATCH", 5)
    assert other.read32(SCRATCH) == 0  # nothing reached it
    bus.close()


def test_an_answer_to_another_request_is_refused():
    """A server that answers with the wrong request id: the client drops the link."""
    listener = listen(timeout=10)
    port = listener.getsockname()[1]

    def lying_server():
        conn, _ = listener.accept()
        with conn:
            hello = recv_request(conn, 10)
            conn.sendall(encode_response(Resp.OKAY, hello.seq, PROTOCOL_VERSION))
            request = recv_request(conn, 10)
            conn.sendall(encode_response(Resp.OKAY, request.seq - 1, 0))  # an old answer
            recv_request(conn, 10)  # until the client closes

    thread = threading.Thread(target=lying_server, daemon=True)
    thread.start()
    bus = SocketBus(port=port, timeout=10)
    with pytest.raises(LinkError, match=r"answered request \d+ .* \(request \d+\)"):
        bus.read32(0)
    assert bus.link_generation == 1
    thread.join(10)
    listener.close()


# -- 2. a second client is told the server is busy ------------------------------------------


def test_a_second_client_is_told_the_server_is_busy(served):
    server = served(SoftwareDevice())
    first = server.bus()
    assert first.read32(0) == MAGIC
    second = server.bus()
    with pytest.raises(ServerBusy, match="is busy: it serves another client"):
        second.read32(0)
    first.write32(SCRATCH, 0x1234)  # the first client goes on undisturbed
    assert first.read32(SCRATCH) == 0x1234 and first.link_generation == 0
    raw = Raw(server.port)  # a raw client sees the one refusal frame, then the close
    answer = raw.hello(0)
    assert (answer.resp, answer.seq) == (RESP_BUSY, raw.seq) and raw.closed_by_server()
    assert first.read32(SCRATCH) == 0x1234
    first.close()


# -- 3. idle requests are bounded ------------------------------------------------------------


def test_idle_requests_are_bounded(served):
    asked = []
    server = served(SoftwareDevice(), asked.append)
    raw = Raw(server.port)
    assert raw.hello(0).resp == Resp.OKAY
    assert raw.request(OP_IDLE, value=0xFFFFFFFF).resp == Resp.SLVERR  # refused, not run
    assert raw.request(OP_IDLE, value=MAX_IDLE_CYCLES + 1).resp == Resp.SLVERR
    assert asked == []
    assert raw.request(OP_IDLE, value=MAX_IDLE_CYCLES).resp == Resp.OKAY
    assert asked == [MAX_IDLE_CYCLES]
    raw.close()

    bus = server.bus()
    with pytest.raises(ValueError, match=f"idle cycles must be 0..{MAX_IDLE_CYCLES} per request"):
        bus.idle(0xFFFFFFFF)  # refused by the client, nothing sent
    bus.idle(MAX_IDLE_CYCLES)
    assert asked == [MAX_IDLE_CYCLES] * 2
    bus.close()


# -- 4. the server survives broken pipes, resets and garbage ---------------------------------


@pytest.mark.parametrize("fault", ["answers pending", "reset", "bad op", "second hello", "truncated frame",
                                   "random bytes", "random frames"])
def test_the_server_survives_a_misbehaving_client(served, fault):
    server = served(SoftwareDevice(), token=TOKEN)  # random bytes never pass for a hello
    raw = Raw(server.port)
    if fault in ("random bytes", "random frames"):
        seed = int(os.environ.get("NANOQUOTE_LINK_SEED", "1"))
        print(f"seed {seed} (NANOQUOTE_LINK_SEED=<n> for another)")
        rng = random.Random(seed)
        if fault == "random frames":  # well-formed frames whose op is none of the protocol's
            assert raw.hello(TOKEN).resp == Resp.OKAY
            for _ in range(20):
                answer = raw.request(rng.randrange(OP_HELLO + 1, 256), rng.getrandbits(32), rng.getrandbits(32),
                                     rng.getrandbits(8))
                assert (answer.resp, answer.seq) == (Resp.SLVERR, raw.seq)
            raw.reset()
        else:  # a stranger's bytes: no hello, refused
            raw.sock.sendall(rng.randbytes(rng.randrange(1, 2000)))
            raw.reset()
    elif fault == "answers pending":  # 200 requests, then gone before reading an answer
        assert raw.hello(TOKEN).resp == Resp.OKAY
        raw.sock.sendall(b"".join(encode_request(OP_READ, i, 0) for i in range(200)))
        raw.close()
    elif fault == "reset":
        assert raw.hello(TOKEN).resp == Resp.OKAY
        assert raw.request(OP_READ).data == MAGIC
        raw.sock.sendall(encode_request(OP_READ, 1, 0))
        raw.reset()
    elif fault in ("bad op", "second hello"):
        assert raw.hello(TOKEN).resp == Resp.OKAY
        answer = raw.request(0x7F if fault == "bad op" else OP_HELLO)
        assert (answer.resp, answer.seq) == (Resp.SLVERR, raw.seq)  # answered, the link stays
        assert raw.request(OP_READ).data == MAGIC
        raw.sock.sendall(encode_request(0x7F, 1, 0))
        raw.close()  # with that answer unread: a reset
    else:  # truncated frame
        assert raw.hello(TOKEN).resp == Resp.OKAY
        raw.sock.sendall(encode_request(OP_READ, 1, 0)[:5])
        raw.close()
    bus = server.bus()
    assert _identity(bus)[0] == MAGIC  # the next connection is served
    assert server.thread.is_alive() and not server.errors
    bus.close()


# -- 5. a client stalling mid-frame is dropped -------------------------------------------------


@pytest.mark.parametrize("stall", ["mid-frame", "before its hello", "mid-hello"])
def test_a_stalling_client_is_dropped(served, stall):
    server = served(SoftwareDevice(), frame_timeout=0.3)
    staller = Raw(server.port)
    if stall == "mid-frame":
        assert staller.hello(0).resp == Resp.OKAY
        staller.sock.sendall(encode_request(OP_READ, 1, 0)[:3])
    elif stall == "mid-hello":
        staller.sock.sendall(encode_hello(1, 0)[:6])
    bus = server.bus(timeout=10)  # waits for the server to give up on the staller
    assert bus.read32(0) == MAGIC
    assert staller.closed_by_server()
    staller.close()
    bus.close()


def test_a_client_thinking_between_frames_keeps_its_link(served):
    server = served(SoftwareDevice(), frame_timeout=0.2)
    bus = server.bus()
    bus.write32(SCRATCH, 3)
    time.sleep(0.6)  # longer than a frame may take, but between frames
    assert bus.read32(SCRATCH) == 3 and bus.link_generation == 0
    bus.close()


# -- 6. loopback only, and a token keeps other users out -------------------------------------


def test_listeners_are_loopback_only():
    with listen() as listener:
        assert listener.getsockname()[0] == "127.0.0.1"


def test_a_connection_without_the_token_is_refused(served):
    server = served(SoftwareDevice(), token=TOKEN)
    with pytest.raises(LinkRefused, match="refused the connection: wrong or missing token"):
        SocketBus(port=server.port, timeout=10).read32(0)
    with pytest.raises(LinkRefused, match="wrong or missing token"):
        SocketBus(port=server.port, timeout=10, token=TOKEN ^ 1).read32(0)
    raw = Raw(server.port)  # an old client, or a stranger: a read as its first frame
    raw.sock.sendall(encode_request(OP_READ, 1, 0))
    answer = recv_response(raw.sock)
    assert (answer.resp, answer.data) == (RESP_REFUSED, PROTOCOL_VERSION) and raw.closed_by_server()
    raw = Raw(server.port)
    assert raw.hello(TOKEN, version=1).resp == RESP_REFUSED and raw.closed_by_server()
    bus = server.bus()  # the right token
    assert bus.read32(0) == MAGIC
    bus.close()


def test_sim_server_connect_passes_the_token():
    with start_bus_server() as server:
        assert server.token is not None and server.port > 0
        with pytest.raises(LinkRefused):
            SocketBus(port=server.port, timeout=10).read32(0)
        bus = server.connect(timeout=10)
        assert Device.open(bus).map.max_levels == 8
        bus.close()  # OP_CLOSE ends the server
        assert server.stop() == 0


# -- 7. a crashed server is named -----------------------------------------------------------


@pytest.mark.parametrize("how, status", [("sys.exit(3)", "exited with status 3"),
                                         ("os.kill(os.getpid(), 9)", "was killed by SIGKILL")])
def test_a_server_that_dies_before_listening_is_named(how, status):
    with pytest.raises(ServerExited, match=f"doomed test server {status}.* before listening"):
        launch([sys.executable, "-c", f"import os, sys; {how}"], name="doomed test server", timeout=30)


def test_a_server_that_dies_after_announcing_is_named():
    with listen() as closed:
        port = closed.getsockname()[1]  # nobody listens there once this is closed
    script = f"import sys; print('NANOQUOTE_PORT {port} 00000000000000ff', flush=True); sys.exit(5)"
    server = launch([sys.executable, "-c", script], name="doomed test server", timeout=30)
    with pytest.raises(ServerExited, match="doomed test server exited with status 5"):
        server.connect(timeout=5)
    assert server.stop() == 5


def test_a_server_that_dies_mid_session_is_named():
    server = start_bus_server()
    try:
        bus = server.connect(timeout=10)
        assert bus.read32(0) == MAGIC
        os.killpg(server.process.pid, signal.SIGKILL)  # the group launch() started
        server.process.wait(10)
        for _ in range(2):  # the access that finds it gone, and the next one
            with pytest.raises(ServerExited, match=r"software device server \(python -m "
                                                   r"nanoquote.sim.servers.bus_server\) was killed by SIGKILL"):
                bus.read32(0)
    finally:
        assert server.stop() == -signal.SIGKILL


# -- the simulator servers: the same faults, and OP_CLOSE still ends them --------------------


@pytest.mark.parametrize("backend", ["amaranth", pytest.param("verilator", marks=pytest.mark.rtl)])
def test_simulator_server_survives_link_faults(backend):
    start = {"amaranth": start_amaranth_server, "verilator": start_verilator_server}[backend]
    with start(frame_timeout=1.0) as server:
        assert server.token is not None
        seed = 7
        print(f"seed {seed}")
        stranger = Raw(server.port)  # garbage from a stranger: refused
        stranger.sock.sendall(random.Random(seed).randbytes(500))
        stranger.reset()
        with pytest.raises(LinkRefused, match=f"{backend.capitalize()} server .*wrong or missing token"):
            SocketBus(port=server.port, timeout=30, name=server.name).read32(0)

        raw = Raw(server.port, timeout=30)  # a client with the token that misbehaves
        assert raw.hello(server.token).resp == Resp.OKAY
        assert raw.request(OP_IDLE, value=0xFFFFFFFF).resp == Resp.SLVERR  # answered at once
        assert raw.request(0x7F).resp == Resp.SLVERR
        raw.sock.sendall(b"".join(encode_request(OP_READ, i, 0) for i in range(50)))
        raw.reset()  # gone with answers pending
        raw = Raw(server.port, timeout=30)
        assert raw.hello(server.token).resp == Resp.OKAY
        raw.sock.sendall(encode_request(OP_READ, 1, 0)[:4])  # stalls mid-frame: dropped after 1 s
        assert raw.closed_by_server()

        bus = server.connect(timeout=30)
        assert _identity(bus)[:2] == [MAGIC, RMAP["VERSION"].pack(major=VERSION_MAJOR, minor=VERSION_MINOR)]
        with pytest.raises(ServerBusy, match=f"{backend.capitalize()} server .*is busy"):
            server.connect(timeout=30).read32(0)
        bus.write32(SCRATCH, 0xC0FFEE)
        with pytest.raises(ValueError, match="idle cycles"):
            bus.idle(0xFFFFFFFF)
        bus.idle(10)
        assert bus.read32(SCRATCH) == 0xC0FFEE and bus.link_generation == 0
        bus.close()  # the stop rule is unchanged: OP_CLOSE ends the server
        assert server.stop() == 0

