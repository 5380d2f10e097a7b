"""A behavioural model of the register file's bus semantics, from the register map.

It answers exactly as the gateware register block must (see the conventions in
``nanoquote.hw.contract.register_map``): DECERR for unmapped addresses, SLVERR for writes to
read-only registers or reserved bits, byte strobes, write-1-to-clear, write pulses,
staged registers committed together, consistent reads of wide read-only values. What
the registers *mean* is left to the owner through two hooks.
"""

from __future__ import annotations

from collections.abc import Callable

from nanoquote.host.device.bus import Resp
from nanoquote.hw.contract.register_map import Access, Register, RegisterMap

__all__ = ["RegisterFileModel"]

#: ``on_pulse(register, written_value) -> ok``; returning False answers SLVERR and the
#: write has no effect. ``read_ro(register) -> value`` supplies read-only values.
PulseHook = Callable[[Register, int], bool]
ReadHook = Callable[[Register], int]


def _strobe_mask(strobe: int) -> int:
    return sum(0xFF << (8 * i) for i in range(4) if strobe >> i & 1)


class RegisterFileModel:
    """Register storage and bus responses; ``live`` holds what the datapath uses."""

    def __init__(self, rmap: RegisterMap, on_pulse: PulseHook, read_ro: ReadHook) -> None:
        self.map = rmap
        self.on_pulse = on_pulse
        self.read_ro = read_ro
        self.live: dict[str, int] = {}
        self.staged: dict[str, int] = {}
        self._snapshots: dict[str, int] = {}
        self.reset()

    def reset(self) -> None:
        for reg in self.map:
            if reg.access in (Access.RW, Access.W1C):
                self.live[reg.name] = reg.reset
                if reg.staged:
                    self.staged[reg.name] = reg.reset
        self._snapshots.clear()

    def commit(self) -> None:
        self.live.update(self.staged)

    def flag(self, error: str) -> None:
        """Set a sticky bit of ERRORS (cleared only by writing 1 to it)."""
        self.live["ERRORS"] |= self.map["ERRORS"].field(error).mask

    def _bus_error(self, resp: Resp) -> Resp:
        self.flag("bus_error")
        return resp

    # -- bus ------------------------------------------------------------------------------

    def read32(self, address: int) -> tuple[Resp, int]:
        found = self.map.at(address)
        if found is None:
            return self._bus_error(Resp.DECERR), 0
        reg, word = found
        if reg.access is Access.WP:
            return Resp.OKAY, 0
        if reg.access is Access.RO:
            if word == 0:
                value = self.read_ro(reg)
                self._snapshots[reg.name] = value
            else:
                value = self._snapshots.get(reg.name, self.read_ro(reg))
        else:
            value = self.live[reg.name]
        return Resp.OKAY, (value >> (32 * word)) & 0xFFFFFFFF

    def write32(self, address: int, value: int, strobe: int = 0xF) -> Resp:
        found = self.map.at(address)
        if found is None:
            return self._bus_error(Resp.DECERR)
        reg, word = found
        mask = _strobe_mask(strobe)
        if reg.access is Access.RO or value & mask & ~reg.word_mask(word):
            return self._bus_error(Resp.SLVERR)
        written = value & mask
        shift = 32 * word
        if reg.access is Access.W1C:
            self.live[reg.name] &= ~(written << shift)
        elif reg.access is Access.WP:
            if not self.on_pulse(reg, written):
                return self._bus_error(Resp.SLVERR)
        else:
            store = self.staged if reg.staged else self.live
            store[reg.name] = (store[reg.name] & ~(mask << shift)) | (written << shift)
        return Resp.OKAY
