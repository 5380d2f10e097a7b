"""The simulator servers, driven from this process over loopback TCP with ``SocketBus``.

Each server runs the top in its own process (Amaranth's simulator, or Verilator through
cocotb and cocotbext-axi); the host code here is the same blocking code that drives a
real device: identity, error responses as ``BusError``, register access rates and the
whole host driver (configure, arm, quote) against the golden model.
"""

from __future__ import annotations

import time

import pytest
from nanoquote.host.device.batch import BatchError, Idle, Poll, Read, Write
from nanoquote.host.device.bus import BusError, Resp
from nanoquote.host.device.driver import QuoteDriver
from nanoquote.host.device.register_access import Device
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.quoting import BookUpdate, build_ladder
from nanoquote.hw.contract.register_map import MAGIC, VERSION_MAJOR, VERSION_MINOR, register_map
from nanoquote.sim.servers.amaranth_server import start_amaranth_server
from nanoquote.sim.servers.verilator_server import start_verilator_server

RMAP = register_map()
SERVERS = {"amaranth": start_amaranth_server, "verilator": start_verilator_server}


def _rate(fn, count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        fn(i)
    return count / (time.perf_counter() - start)


@pytest.mark.parametrize("backend", [pytest.param(name, marks=[pytest.mark.rtl] if name == "verilator" else [])
                                     for name in SERVERS])
def test_server_over_socket_bus(backend, record_property):
    with SERVERS[backend]() as server:
        process, port = server
        assert process.poll() is None and port > 0
        bus = server.connect()
        try:
            assert bus.read32(RMAP["MAGIC"].address) == MAGIC
            assert RMAP["VERSION"].unpack(bus.read32(RMAP["VERSION"].address)) == {
                "major": VERSION_MAJOR, "minor": VERSION_MINOR}

            with pytest.raises(BusError, match="read of address 0x001c answered DECERR") as err:
                bus.read32(0x01C)
            assert (err.value.address, err.value.resp) == (0x01C, Resp.DECERR)
            with pytest.raises(BusError, match="write of address 0x0000 answered SLVERR") as err:
                bus.write32(RMAP["MAGIC"].address, 0)
            assert (err.value.op, err.value.resp) == ("write", Resp.SLVERR)
            with pytest.raises(BusError, match="answered DECERR"):
                bus.read32(0x10000)  # beyond the device's address window
            assert RMAP["ERRORS"].unpack(bus.read32(RMAP["ERRORS"].address))["bus_error"] == 1
            bus.write32(RMAP["ERRORS"].address, 0xF)

            scratch = RMAP["SCRATCH"].address
            bus.write32(scratch, 0xDEADBEEF)
            bus.write32(scratch, 0x00AA0055, strobe=0b0101)
            assert bus.read32(scratch) == 0xDEAABE55
            bus.idle(10)

            reads = _rate(lambda i: bus.read32(scratch), 200)
            writes = _rate(lambda i: bus.write32(scratch, i), 200)
            record_property("reads_per_s", round(reads))
            record_property("writes_per_s", round(writes))
            print(f"{backend}: {reads:.0f} reads/s, {writes:.0f} writes/s over SocketBus")

            # A batch: the same effects and results as its operations one by one.
            book_ts = RMAP["BOOK_TS"].addresses
            ops = [Write(scratch, 0x11223344), Write(scratch, 0xAABBCCDD, 0b0110), Read(scratch),
                   Write(book_ts[0], 0x1234), Write(book_ts[1], 0x5678), Read(book_ts[0]), Read(book_ts[1]),
                   Idle(3), Poll(scratch, 0x00BB0000, 3, 2), Poll(scratch, 1 << 31, 2, 1), Write(scratch, 9, 0),
                   Read(scratch), Read(RMAP["MAGIC"].address), Read(RMAP["COUNT_UPDATES"].address)]
            expected = []
            for op in ops:
                if isinstance(op, Read):
                    expected.append(bus.read32(op.address))
                elif isinstance(op, Write):
                    expected.append(bus.write32(op.address, op.value, op.strobe))
                elif isinstance(op, Poll):
                    expected.append(bus.read32(op.address))  # one read decides either poll here
                else:
                    expected.append(bus.idle(op.cycles))
            for address in (scratch, *book_ts):
                bus.write32(address, 0)
            assert bus.batch(ops) == expected
            with pytest.raises(BatchError) as err:  # an error answer ends the batch there
                bus.batch([Write(scratch, 1), Write(RMAP["MAGIC"].address, 0), Write(scratch, 2)])
            assert (err.value.index, err.value.op, err.value.resp, err.value.results) == (1, "write", Resp.SLVERR,
                                                                                          [None])
            assert bus.read32(scratch) == 1
            bus.write32(RMAP["ERRORS"].address, 0xF)

            # The host driver end to end: configure, arm, quote; the golden ladder comes back.
            driver = QuoteDriver(Device.open(bus))
            config = MarketMakerConfig()
            driver.configure(config)
            driver.set_inventory(12, 5, 0)
            driver.arm()
            for book in (BookUpdate(1_000, 100_000, 100_050), BookUpdate(2_000, 100_050, 100_000),
                         BookUpdate(200_000_000, 99_000, 99_075)):
                result = driver.quote(book)
                assert result.ladder == build_ladder(config, book, 12, 5, 0), book
            assert driver.status()["armed"] == 1
            assert driver.counters()["updates"] == 3
        finally:
            bus.close()
        assert server.stop() == 0
