"""Host driver over the software device: configuration, controls, quote path and faults."""

import pytest
from nanoquote.host.device.bus import BusError, Resp
from nanoquote.host.device.driver import DeviceTimeout, QuoteDriver, ReadbackMismatch
from nanoquote.host.device.offload import offloaded_strategy
from nanoquote.host.device.register_access import Device, WrongDevice
from nanoquote.host.strategy.config import ConfigError, MarketMakerConfig
from nanoquote.host.strategy.quoting import BookUpdate, build_ladder
from nanoquote.hw.contract.coefficients import PipelineParams
from nanoquote.hw.contract.register_map import MAGIC, Access, register_map
from nanoquote.sim.device.software_device import SoftwareDevice


class Recording:
    """Wraps a bus, records writes, and can tamper with reads of one address."""

    def __init__(self, bus, tamper=None):
        self.bus, self.tamper, self.writes = bus, tamper or {}, []

    def read32(self, address):
        value = self.bus.read32(address)
        return self.tamper[address](value) if address in self.tamper else value

    def write32(self, address, value, strobe=0xF):
        self.writes.append((address, value, strobe))
        self.bus.write32(address, value, strobe)

    def close(self):
        pass


RMAP = register_map()


def addr(name):
    return RMAP[name].address


def test_configure_writes_commits_and_reads_back():
    device = SoftwareDevice()
    driver = QuoteDriver.open(device)
    config = MarketMakerConfig(tick_size=7, base_spread_ticks=3, inventory_skew_factor=1 / 3)
    driver.configure(config)
    assert device.params() == PipelineParams.from_config(config)
    assert driver.device.read_fields("ORDER") == {"order_size": 5, "num_levels": 3}


def test_unknown_device_is_refused():
    with pytest.raises(WrongDevice, match="not a nanoquote device"):
        Device.open(Recording(SoftwareDevice(), {addr("MAGIC"): lambda v: v ^ 1}))
    with pytest.raises(WrongDevice, match="version 2.0 is not supported"):
        Device.open(Recording(SoftwareDevice(), {addr("VERSION"): lambda v: 0x00020000}))
    assert Device.open(SoftwareDevice()).bus.read32(addr("MAGIC")) == MAGIC


def test_bad_config_is_rejected_before_any_register_write():
    bus = Recording(SoftwareDevice(max_levels=4))
    driver = QuoteDriver.open(bus)
    with pytest.raises(ConfigError, match="'num_levels': 6 .*build maximum"):
        driver.configure(MarketMakerConfig(num_levels=6))
    with pytest.raises(ValueError, match="position"):
        driver.set_inventory(40000, 0, 0)
    with pytest.raises(ConfigError):
        driver.configure({"tick_size": 25})
    assert bus.writes == []


def test_readback_mismatch_is_reported():
    tick = addr("TICK")
    driver = QuoteDriver.open(Recording(SoftwareDevice(), {tick: lambda v: v + 1}))
    with pytest.raises(ReadbackMismatch, match=r"TICK.tick reads 0x1a after commit, wrote 0x19"):
        driver.configure(MarketMakerConfig())


def test_bus_error_names_address_and_response():
    device = Device.open(SoftwareDevice())
    with pytest.raises(BusError, match=r"write of address 0x0000 answered SLVERR") as info:
        device.write("MAGIC", 1)
    assert info.value.resp is Resp.SLVERR and info.value.address == 0
    with pytest.raises(BusError, match=r"read of address 0x01fc answered DECERR"):
        device.bus.read32(0x1FC)
    assert device.read_fields("ERRORS")["bus_error"] == 1


def test_device_rejects_an_invalid_commit_and_changes_nothing():
    soft = SoftwareDevice()
    driver = QuoteDriver.open(soft)
    driver.configure(MarketMakerConfig())
    before = dict(soft.regs.live)
    driver.device.write_fields("TICK", tick=0)
    with pytest.raises(BusError, match="SLVERR"):
        driver.device.pulse("CONTROL", "commit", "arm")
    after = dict(soft.regs.live)
    assert after.pop("ERRORS") != before.pop("ERRORS")
    assert after == before and not soft.armed
    assert driver.errors()["commit_rejected"] == 1
    driver.clear_errors()
    assert driver.errors() == {"bus_error": 0, "commit_rejected": 0, "out_of_domain": 0, "crossed": 0,
                               "deadman": 0}


def test_timeout_trips_the_kill_switch():
    soft = SoftwareDevice()
    status = addr("LADDER_STATUS")
    driver = QuoteDriver.open(Recording(soft, {status: lambda v: v & ~1}), ladder_poll_limit=5)
    driver.configure(MarketMakerConfig())
    driver.arm()
    with pytest.raises(DeviceTimeout, match="kill switch tripped"):
        driver.quote(BookUpdate(0, 50000, 50025))
    assert soft.killed and not soft.armed


def test_quote_path_matches_golden_and_counts():
    soft = SoftwareDevice()
    driver = QuoteDriver.open(soft)
    config = MarketMakerConfig()
    driver.configure(config)
    for position, (bid, ask) in [(0, (50000, 50025)), (30, (50000, 50025)), (-30, (50000, 50050))]:
        driver.set_inventory(position, 0, 0)
        result = driver.quote(BookUpdate(1, bid, ask))
        assert result.ladder == build_ladder(config, BookUpdate(1, bid, ask), position)
        assert not result.refresh  # not armed
    driver.quote(BookUpdate(2, 50025, 50000))
    assert driver.counters()["crossed"] == 1 and driver.errors()["crossed"] == 1
    assert driver.counters()["updates"] == 4 and driver.last_quote_time() is None
    with pytest.raises(ValueError, match="best_ask"):
        driver.quote(BookUpdate(3, 1, 1 << 31))


def test_arm_kill_rearm_latch():
    soft = SoftwareDevice()
    driver = QuoteDriver.open(soft)
    driver.arm()
    driver.kill()
    driver.arm()
    assert driver.status() == {"armed": 0, "killed": 1, "settled": 1, "has_quoted": 0, "deadman": 0}
    driver.rearm()
    assert driver.status()["armed"] == 1 and driver.status()["killed"] == 0
    driver.disarm()
    assert driver.status()["armed"] == 0


def test_strategy_kill_switch_reaches_the_device():
    soft = SoftwareDevice()
    strategy = offloaded_strategy(MarketMakerConfig(), soft)
    strategy.arm()
    assert len(strategy.on_market_data(BookUpdate(0, 50000, 50025))) == 6 and soft.armed
    assert len(strategy.kill()) == 6 and soft.killed
    strategy.rearm()
    assert not soft.killed
    soft.killed = True
    with pytest.raises(Exception, match="latched"):
        offloaded_strategy(MarketMakerConfig(), soft)


def test_every_register_resets_to_its_map_value():
    device = Device.open(SoftwareDevice())
    for reg in RMAP:
        expected = 0 if reg.access is Access.WP else reg.reset
        if reg.name == "BUILD":
            continue  # latency is a build figure the software device reports as 0
        assert device.read(reg.name) == expected, reg.name


def test_strobes_reserved_bits_w1c_and_wide_snapshots():
    soft = SoftwareDevice()
    bus = soft
    bus.write32(addr("SCRATCH"), 0x11223344)
    bus.write32(addr("SCRATCH"), 0xAABBCCDD, strobe=0b0101)
    assert bus.read32(addr("SCRATCH")) == 0x11BB33DD
    with pytest.raises(BusError, match="SLVERR"):
        bus.write32(addr("TICK"), 1 << 16)  # reserved bit of TICK
    bus.write32(addr("TICK"), 0xFFFF0000, strobe=0b0011)  # reserved bytes not strobed: fine
    with pytest.raises(BusError, match="SLVERR"):
        bus.write32(addr("STATUS"), 0)
    soft.regs.flag("crossed")
    bus.write32(addr("ERRORS"), 0b0001)  # clears bus_error only
    assert Device(bus, RMAP).read_fields("ERRORS")["crossed"] == 1
    soft.refresh.last = (7 << 32) | 5
    low = bus.read32(addr("LAST_QUOTE_TIME"))
    soft.refresh.last = (9 << 32) | 6
    assert (low, bus.read32(addr("LAST_QUOTE_TIME") + 4)) == (5, 7)  # snapshot at the low read
