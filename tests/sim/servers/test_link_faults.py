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
from nanoquote.host.device.batch import MAX_BATCH_OPS, BatchError, Poll, Read, Write
from nanoquote.host.device.bus import (
    BatchRefused,
    BusTimeout,
    LinkError,
    LinkRefused,
    Resp,
    ServerBusy,
    SocketBus,
)
from nanoquote.host.device.register_access import Device, Idle, WrongDevice
from nanoquote.host.device.wire import (
    BATCH_OP,
    BATCH_READ,
    BATCH_WRITE,
    MAX_IDLE_CYCLES,
    OP_BATCH,
    OP_HELLO,
    OP_IDLE,
    OP_READ,
    PROTOCOL_VERSION,
    RESP_BUSY,
    RESP_MALFORMED,
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


def _idle(cycles):
    """A program that only idles (sent when it ends: ``Device.run`` holds idles back)."""
    yield Idle(cycles)


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
    with pytest.raises(BusTimeout, match="no answer for a batch of 1 operations"):
        device.run(_idle(10))  # the timeout reaches the caller of the access
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
        device.run(_idle(10))
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
        device.run(_idle(10))
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


# -- batches over the link ------------------------------------------------------------------


def _random_batch(rng):
    """Reads, writes (some refused), submits, polls and idles on the registers a host uses."""
    submit = Write(RMAP["BOOK_SUBMIT"].address, RMAP["BOOK_SUBMIT"].pack(has_bid=1, has_ask=1))
    choices = [lambda: Read(rng.choice([SCRATCH, RMAP["BOOK_BID"].address, RMAP["LADDER_MASK"].address,
                                        RMAP["COUNT_UPDATES"].address, RMAP["ERRORS"].address])),
               lambda: Write(SCRATCH, rng.getrandbits(32), rng.randrange(16)),
               lambda: Write(RMAP["BOOK_BID"].address, rng.randrange(1, 1 << 20)),
               lambda: submit,
               lambda: Poll(RMAP["LADDER_STATUS"].address, 1, rng.randint(1, 3), rng.randrange(2)),
               lambda: Idle(rng.randrange(3)),
               lambda: Write(RMAP["MAGIC"].address, 0) if rng.random() < 0.3 else Read(0x01C)]
    return [rng.choice(choices)() for _ in range(rng.randint(0, 30))]


def test_a_batch_over_the_link_equals_the_device_in_process(served):
    served_device, local = SoftwareDevice(), SoftwareDevice()
    server = served(served_device)
    bus = server.bus()
    rng = random.Random(11)
    for _ in range(40):
        ops = _random_batch(rng)
        try:
            expected, error = local.batch(ops), None
        except BatchError as exc:
            expected, error = None, exc
        if error is None:
            assert bus.batch(ops) == expected
        else:
            with pytest.raises(BatchError) as err:
                bus.batch(ops)
            assert (err.value.index, err.value.resp, err.value.results) == (error.index, error.resp, error.results)
    assert [served_device.read32(a) for a in (SCRATCH, RMAP["COUNT_UPDATES"].address, RMAP["ERRORS"].address)] == [
        local.read32(a) for a in (SCRATCH, RMAP["COUNT_UPDATES"].address, RMAP["ERRORS"].address)]
    assert bus.link_generation == 0  # error answers never cost the connection
    bus.close()


def test_a_bus_error_mid_batch_over_the_link_names_the_operation(served):
    device = SoftwareDevice()
    server = served(device)
    bus = server.bus()
    with pytest.raises(BatchError, match=r"operation 1 of a batch \(read\): read of address 0x001c answered "
                                         "DECERR") as err:
        bus.batch([Write(SCRATCH, 1), Read(0x01C), Write(SCRATCH, 2)])
    assert (err.value.index, err.value.resp, err.value.results) == (1, Resp.DECERR, [None])
    assert device.read32(SCRATCH) == 1  # before it: performed; after it: not
    assert bus.batch([Read(SCRATCH)]) == [1] and bus.link_generation == 0
    bus.close()


def _batch_frame(seq, records, count=None):
    return encode_request(OP_BATCH, seq, 0, len(records) if count is None else count) + b"".join(records)


def test_a_malformed_batch_is_refused_whole_and_changes_nothing(served):
    device = SoftwareDevice()
    server = served(device)
    raw = Raw(server.port)
    assert raw.hello(0).resp == Resp.OKAY
    write = BATCH_OP.pack(BATCH_WRITE, SCRATCH, 5, 0xF, 0)
    for bad in (BATCH_OP.pack(9, 0, 0, 0, 0),  # unknown kind
                BATCH_OP.pack(BATCH_READ, 2, 0, 0, 0),  # misaligned
                BATCH_OP.pack(BATCH_WRITE, SCRATCH, 1, 0x1F, 0),  # strobe
                BATCH_OP.pack(3, SCRATCH, 1, 10, MAX_IDLE_CYCLES)):  # a poll that would idle too long
        raw.sock.sendall(_batch_frame(7, [write, bad]))
        assert recv_response(raw.sock) == (RESP_MALFORMED, 7, 0)  # no results follow
    assert device.read32(SCRATCH) == 0  # the good write before the bad record was not performed
    assert raw.request(OP_READ, SCRATCH) == (Resp.OKAY, raw.seq, 0)  # the connection goes on
    raw.sock.sendall(_batch_frame(8, [], count=MAX_BATCH_OPS + 1))  # oversized: its records unread
    assert recv_response(raw.sock) == (RESP_MALFORMED, 8, 0)
    assert raw.closed_by_server()

    bus = server.bus()
    with pytest.raises(ValueError, match=f"at most {MAX_BATCH_OPS} operations"):
        bus.batch([Read(SCRATCH)] * (MAX_BATCH_OPS + 1))  # refused by the client, nothing sent
    assert bus.batch([Write(SCRATCH, 3), Read(SCRATCH)]) == [None, 3] and bus.link_generation == 0
    bus.close()


def test_a_batch_the_server_refuses_raises_batch_refused():
    """A server that answers ``RESP_MALFORMED`` (one that checks more than this client)."""
    listener = listen()

    def serve():
        conn, _ = listener.accept()
        with conn:
            hello = recv_request(conn)
            conn.sendall(encode_response(Resp.OKAY, hello.seq, PROTOCOL_VERSION))
            request = recv_request(conn)
            conn.recv(request.value * BATCH_OP.size)
            conn.sendall(encode_response(RESP_MALFORMED, request.seq, 0))
            conn.recv(64)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    bus = SocketBus(port=listener.getsockname()[1], timeout=5)
    with pytest.raises(BatchRefused, match="refused a batch of 1 operations as malformed; nothing was performed"):
        bus.batch([Write(SCRATCH, 1)])
    assert bus.link_generation == 1
    bus._closed = True  # nothing left to close on this stub
    thread.join(5)
    listener.close()


def test_a_client_of_another_protocol_version_is_refused(served):
    server = served(SoftwareDevice())
    raw = Raw(server.port)
    assert raw.hello(0, version=PROTOCOL_VERSION - 1) == (RESP_REFUSED, raw.seq, PROTOCOL_VERSION)
    assert raw.closed_by_server()
    assert PROTOCOL_VERSION == 3


def test_a_server_of_another_protocol_version_is_named():
    listener = listen()

    def serve():
        conn, _ = listener.accept()
        with conn:
            hello = recv_request(conn)
            conn.sendall(encode_response(RESP_REFUSED, hello.seq, 2))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with pytest.raises(LinkRefused, match="it speaks wire protocol 2, this client 3"):
        SocketBus(port=listener.getsockname()[1], timeout=5).batch([Read(0)])
    thread.join(5)
    listener.close()


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
        raw.sock.sendall(_batch_frame(3, [BATCH_OP.pack(BATCH_WRITE, SCRATCH, 1, 0xF, 0), BATCH_OP.pack(9, 0, 0, 0, 0)]))
        assert recv_response(raw.sock) == (RESP_MALFORMED, 3, 0)  # refused whole
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
        with pytest.raises(BatchError) as err:
            bus.batch([Write(SCRATCH, 5), Read(0x01C), Write(SCRATCH, 6)])
        assert (err.value.index, err.value.resp, err.value.results) == (1, Resp.DECERR, [None])
        assert bus.batch([Read(SCRATCH)]) == [5] and bus.link_generation == 0
        bus.close()  # the stop rule is unchanged: OP_CLOSE ends the server
        assert server.stop() == 0

