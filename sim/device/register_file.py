"""The register file's bus semantics in Python, from the register map alone.

It answers exactly as the gateware register block must (the conventions of
``nanoquote.hw.contract.register_map``): DECERR for unmapped addresses, SLVERR for
writes to read-only registers or reserved bits and for refused pulses, byte strobes,
write-1-to-clear, write pulses, staged registers committed together (a commit with a
staged field outside its ``commit_range`` is refused), constant identity registers and
consistent reads of wide read-only values. It imports no gateware, so it serves both
as the software device's register file and as the independent expectation the
register block's tests compare with. What the registers *mean* is left to the owner
through hooks.
"""

from __future__ import annotations

from collections.abc import Callable

from nanoquote.host.device.bus import Resp
from nanoquote.hw.contract.register_map import Access, Register, RegisterMap

__all__ = ["RegisterFileModel", "strobe_mask"]

#: ``on_pulse(register, written_value)``: the owner's action for an accepted pulse.
PulseHook = Callable[[Register, int], None]
#: ``read_ro(register) -> value``: the current value of a sourced read-only register.
ReadHook = Callable[[Register], int]


def strobe_mask(strobe: int) -> int:
    """The bit mask of the bytes a 4-bit AXI write strobe selects."""
    return sum(0xFF << (8 * i) for i in range(4) if strobe >> i & 1)


#: :func:`strobe_mask` of every strobe, for the write path.
_STROBE_MASKS = tuple(strobe_mask(s) for s in range(16))


class RegisterFileModel:
    """Register storage and bus responses; ``live`` holds what the datapath uses.

    ``ro`` holds the value of every sourced read-only register when no ``read_ro`` hook
    is given (a test sets it as it drives the gateware's inputs); ``busy`` is the
    refusal input of each write-pulse register; with ``record_pulses``, ``pulses``
    records ``(register name, written value)`` of every accepted pulse write.
    """

    def __init__(self, rmap: RegisterMap, on_pulse: PulseHook | None = None,
                 read_ro: ReadHook | None = None, *, record_pulses: bool = False) -> None:
        self.map = rmap
        self.on_pulse = on_pulse
        self.read_ro = read_ro or (lambda reg: self.ro[reg.name])
        self.live: dict[str, int] = {}
        self.staged: dict[str, int] = {}
        self.ro: dict[str, int] = {reg.name: 0 for reg in rmap if reg.sourced}
        self.busy: dict[str, bool] = {reg.name: False for reg in rmap if reg.access is Access.WP}
        self.record_pulses = record_pulses
        self.pulses: list[tuple[str, int]] = []
        self._snapshots: dict[str, int] = {}
        #: Each mapped word's register, word index and field bits, decoded once.
        self._words: dict[int, tuple[Register, int, int]] = {
            address: (reg, word, reg.word_mask(word)) for reg in rmap for word, address in enumerate(reg.addresses)}
        self._commit_mask = rmap["CONTROL"].field("commit").mask
        self.reset()

    def reset(self) -> None:
        for reg in self.map:
            if reg.access in (Access.RW, Access.W1C):
                self.live[reg.name] = reg.reset
                if reg.staged:
                    self.staged[reg.name] = reg.reset
        self._snapshots.clear()

    def field(self, name: str, field: str) -> int:
        """A field of a register's live value."""
        return self.map[name].unpack(self.live[name])[field]

    def live_fields(self, group: str) -> dict[str, int]:
        """Every field of ``group`` (``config``, ``inventory``) by name, live values."""
        values: dict[str, int] = {}
        for reg in self.map.group(group):
            values.update(self.map[reg.name].unpack(self.live[reg.name]))
        return values

    def flag(self, error: str) -> None:
        """Set a sticky bit of ERRORS (cleared only by writing 1 to it)."""
        self.live["ERRORS"] |= self.map["ERRORS"].field(error).mask

    def _bus_error(self, resp: Resp) -> Resp:
        self.flag("bus_error")
        return resp

    # -- bus ------------------------------------------------------------------------------

    def read32(self, address: int) -> tuple[Resp, int]:
        found = self._words.get(address)
        if found is None:
            return self._bus_error(Resp.DECERR), 0
        reg, word, _ = found
        access = reg.access
        if access is Access.RO:
            if reg.constant:
                value = reg.reset
            elif word == 0:
                value = self._snapshots[reg.name] = self.read_ro(reg)
            else:
                value = self._snapshots.get(reg.name, self.read_ro(reg))
        elif access is Access.WP:
            value = 0
        else:
            value = self.live[reg.name]
        return Resp.OKAY, (value >> (32 * word)) & 0xFFFFFFFF

    def write32(self, address: int, value: int, strobe: int = 0xF) -> Resp:
        found = self._words.get(address)
        if found is None:
            return self._bus_error(Resp.DECERR)
        reg, word, word_mask = found
        mask = _STROBE_MASKS[strobe & 0xF]
        written = value & mask
        access = reg.access
        if access is Access.RO or written & ~word_mask:
            return self._bus_error(Resp.SLVERR)
        shift = 32 * word
        if access is Access.W1C:
            self.live[reg.name] &= ~(written << shift)
        elif access is Access.WP:
            if self.busy[reg.name]:
                return self._bus_error(Resp.SLVERR)
            commit = reg.name == "CONTROL" and written & self._commit_mask
            if commit and self.map.commit_violations(self.staged):
                self.flag("commit_rejected")
                return self._bus_error(Resp.SLVERR)
            if self.record_pulses:
                self.pulses.append((reg.name, written))
            if self.on_pulse is not None:
                self.on_pulse(reg, written)
            if commit:
                self.live.update(self.staged)
        else:
            store = self.staged if reg.staged else self.live
            store[reg.name] = (store[reg.name] & ~(mask << shift)) | (written << shift)
        return Resp.OKAY
