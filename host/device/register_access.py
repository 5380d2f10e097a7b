"""Typed register access on top of any ``RegisterBus``.

``Device`` knows the register map: names instead of addresses, multi-word values,
field packing, and the identity check that refuses a device it does not understand.
"""

from __future__ import annotations

from nanoquote.host.device.bus import RegisterBus
from nanoquote.hw.contract.register_map import (
    MAGIC,
    VERSION_MAJOR,
    Register,
    RegisterMap,
    register_map,
)

__all__ = ["DeviceError", "WrongDevice", "Device"]


class DeviceError(RuntimeError):
    """The device is reachable but does not behave as required."""


class WrongDevice(DeviceError):
    """Magic or major version differ: this driver must not touch the device."""


class Device:
    """Registers by name over a bus; construct with ``Device.open(bus)`` to check identity."""

    def __init__(self, bus: RegisterBus, rmap: RegisterMap) -> None:
        self.bus = bus
        self.map = rmap

    @classmethod
    def open(cls, bus: RegisterBus) -> Device:
        """Check MAGIC and VERSION, then build the map of the device's own build."""
        generic = register_map()
        magic = bus.read32(generic["MAGIC"].address)
        if magic != MAGIC:
            raise WrongDevice(f"MAGIC reads {magic:#010x}, expected {MAGIC:#010x}: not a nanoquote device")
        version = generic["VERSION"].unpack(bus.read32(generic["VERSION"].address))
        if version["major"] != VERSION_MAJOR:
            raise WrongDevice(
                f"register map version {version['major']}.{version['minor']} is not supported "
                f"(this driver speaks {VERSION_MAJOR}.x)"
            )
        build = generic["BUILD"].unpack(bus.read32(generic["BUILD"].address))
        if not 1 <= build["max_levels"] <= 16:
            raise WrongDevice(f"BUILD.max_levels reads {build['max_levels']}, expected 1..16")
        rmap = register_map(build["max_levels"], build["price_bits"], build["latency"])
        return cls(bus, rmap)

    def register(self, name: str) -> Register:
        return self.map[name]

    def read(self, name: str) -> int:
        """The whole register (all its words, lowest first, so wide values are consistent)."""
        reg = self.map[name]
        value = 0
        for i, address in enumerate(reg.addresses):
            value |= self.bus.read32(address) << (32 * i)
        return value

    def read_fields(self, name: str) -> dict[str, int]:
        return self.map[name].unpack(self.read(name))

    def write(self, name: str, value: int) -> None:
        """Write a whole register; reserved bits must be zero."""
        reg = self.map[name]
        allowed = sum(reg.word_mask(i) << (32 * i) for i in range(reg.words))
        if value < 0 or value & ~allowed:
            raise ValueError(f"{name}: value {value:#x} sets bits outside its fields (mask {allowed:#x})")
        for i, address in enumerate(reg.addresses):
            self.bus.write32(address, (value >> (32 * i)) & 0xFFFFFFFF)

    def write_fields(self, name: str, **fields: int) -> None:
        self.write(name, self.map[name].pack(**fields))

    def pulse(self, name: str, *fields: str) -> None:
        """Write 1 to some fields of a write-pulse (or W1C) register."""
        self.write_fields(name, **{f: 1 for f in fields})
