"""The host driver: configure, arm, feed inventory and market data, read ladders.

Every call validates its input before the first register access, so a rejected
configuration or book update writes nothing. A book update (with the inventory and
arming changes that go with it) is one batch: one bus round trip. Configuration is written to the staged
registers, committed in one pulse, then read back and compared.
"""

from __future__ import annotations

from typing import Any

from nanoquote.host.device.bus import BusError, BusTimeout, RegisterBus
from nanoquote.host.device.register_access import Device, DeviceError, Program
from nanoquote.host.strategy.config import ConfigError, MarketMakerConfig
from nanoquote.host.strategy.domain import POSITION_MAX, DomainError, check_int
from nanoquote.host.strategy.quoting import BookUpdate, Ladder
from nanoquote.hw.contract.coefficients import PipelineParams

__all__ = ["ReadbackMismatch", "DeviceTimeout", "DeviceKilled", "HardwareLadder", "QuoteDriver"]


class ReadbackMismatch(DeviceError):
    """A register read back differs from what was written and committed."""


class DeviceTimeout(DeviceError):
    """The device did not deliver a ladder in time; the kill switch was tripped if possible."""


class DeviceKilled(DeviceError):
    """The device's kill switch is latched (by ``CONTROL.kill`` or its dead-man timer): the
    ladder came back blocked."""

    def __init__(self, message: str, deadman: bool) -> None:
        super().__init__(message)
        self.deadman = deadman


class HardwareLadder:
    """A ladder read from the device, with its refresh decision and kill flags (a ladder
    the kill switch blocked has nothing posted; ``deadman``: the dead-man timer latched it)."""

    __slots__ = ("ladder", "refresh", "killed", "deadman", "size_blocked")

    def __init__(self, ladder: Ladder, refresh: bool, killed: bool = False, deadman: bool = False,
                 size_blocked: bool = False) -> None:
        self.ladder = ladder
        self.refresh = refresh
        self.killed = killed
        self.deadman = deadman
        self.size_blocked = size_blocked

    def check_not_killed(self) -> None:
        """Raise :class:`DeviceKilled` if the kill switch blocked this ladder."""
        if self.killed:
            who = "its dead-man timer" if self.deadman else "CONTROL.kill"
            raise DeviceKilled(f"the device's kill switch is latched (by {who}): the ladder was blocked",
                               self.deadman)


class QuoteDriver:
    """One quote pipeline behind a register bus."""

    def __init__(self, device: Device, ladder_poll_limit: int = 64) -> None:
        self.device = device
        self.ladder_poll_limit = ladder_poll_limit
        self.max_levels = device.map.max_levels
        self.price_bits = device.map.price_bits
        self.latency = device.map.latency
        self.config: MarketMakerConfig | None = None

    @classmethod
    def open(cls, bus: RegisterBus, **kwargs: int) -> QuoteDriver:
        """Identify the device (refusing an unknown one) and bind a driver to it."""
        return cls(Device.open(bus), **kwargs)

    def close(self) -> None:
        self.device.bus.close()

    # -- configuration --------------------------------------------------------------------

    def hardware_params(self, config: MarketMakerConfig) -> PipelineParams:
        """The register values for ``config``; raises ``ConfigError`` if this build can't."""
        if not isinstance(config, MarketMakerConfig):
            raise ConfigError(f"configure() needs a MarketMakerConfig, got {type(config).__name__}")
        if config.num_levels > self.max_levels:
            raise ConfigError(
                f"config field 'num_levels': {config.num_levels} is invalid, allowed 1..{self.max_levels} "
                f"(this device's build maximum)"
            )
        return PipelineParams.from_config(config, self.price_bits)

    @staticmethod
    def risk_params(config: MarketMakerConfig) -> dict[str, int]:
        """The ``risk`` group's register values for ``config`` (the dead-man timeout)."""
        return {"deadman_us": config.deadman_timeout_us or 0}

    def configure(self, config: MarketMakerConfig) -> None:
        """Validate, write the staged ``config`` and ``risk`` registers, commit, read back
        and compare."""
        wanted = self.hardware_params(config).as_dict()  # before any register access
        risk = self.risk_params(config)
        dev = self.device
        dev.run(self._configure_program(wanted, risk))
        got = dev.run(dev.programs.read_group("config", "risk"))
        wanted.update(risk)
        for name, (reg, _) in {**dev.map.fields_of("config"), **dev.map.fields_of("risk")}.items():
            if got[name] != wanted[name]:
                raise ReadbackMismatch(f"{reg.name}.{name} reads {got[name]:#x} after commit, "
                                       f"wrote {wanted[name]:#x}")
        self.config = config

    def _configure_program(self, params: dict[str, int], risk: dict[str, int]) -> Program[None]:
        """Stage and commit the ``config`` group, then the ``risk`` group: one batch."""
        yield from self.device.programs.write_group("config", params)
        yield from self.device.programs.write_group("risk", risk)

    def set_inventory(self, position: int, live_bid_qty: int, live_ask_qty: int) -> None:
        """Feed back the filled position and live quantity per side (committed together)."""
        values = self._inventory(position, live_bid_qty, live_ask_qty)
        self.device.run(self.device.programs.write_group("inventory", values))

    @staticmethod
    def _inventory(position: int, live_bid_qty: int, live_ask_qty: int) -> dict[str, int]:
        """The inventory group's values, checked (``ValueError``) before any access."""
        try:
            check_int("position", position, -POSITION_MAX, POSITION_MAX)
            check_int("live_bid_qty", live_bid_qty, 0, (1 << 32) - 1)
            check_int("live_ask_qty", live_ask_qty, 0, (1 << 32) - 1)
        except DomainError as exc:
            raise ValueError(str(exc)) from None
        return {"position": position, "live_bid_qty": live_bid_qty, "live_ask_qty": live_ask_qty}

    # -- operator controls ----------------------------------------------------------------

    def arm(self) -> None:
        self.device.pulse("CONTROL", "arm")

    def disarm(self) -> None:
        self.device.pulse("CONTROL", "disarm")

    def kill(self) -> None:
        self.device.pulse("CONTROL", "kill")

    def rearm(self) -> None:
        self.device.pulse("CONTROL", "rearm")

    def heartbeat(self) -> None:
        """Restart the dead-man timer (every quote does it as well, in its own batch)."""
        self.device.pulse("HEARTBEAT", "beat")

    def soft_reset(self) -> None:
        self.device.pulse("CONTROL", "soft_reset")

    def status(self) -> dict[str, int]:
        return self.device.read_fields("STATUS")

    def errors(self) -> dict[str, int]:
        return self.device.read_fields("ERRORS")

    def clear_errors(self) -> None:
        self.device.write("ERRORS", self.device.read("ERRORS"))

    def counters(self) -> dict[str, int]:
        return {r.name.removeprefix("COUNT_").lower(): self.device.read(r.name)
                for r in self.device.map if r.name.startswith("COUNT_")}

    def last_quote_time(self) -> int | None:
        """``None`` until the first refresh since reset."""
        if not self.status()["has_quoted"]:
            return None
        return self.device.read("LAST_QUOTE_TIME")

    # -- the register quote path ----------------------------------------------------------

    def quote(self, book: BookUpdate, *, inventory: tuple[int, int, int] | None = None,
              armed: bool | None = None) -> HardwareLadder:
        """Send one book update through the pipeline and read its ladder, in one batch.

        ``inventory`` (position, live bid and ask quantity) and ``armed``, when given, are
        written (and committed) first, in the same batch. Everything is checked before
        the first access.
        """
        price_max = (1 << self.price_bits) - 1
        for name, price in (("best_bid", book.best_bid), ("best_ask", book.best_ask)):
            if price is not None and not 1 <= price <= price_max:
                raise ValueError(f"book {name} must be in 1..{price_max}, got {price}")
        if self.config is None:
            raise DeviceError("configure() the device before sending market data")
        values = None if inventory is None else self._inventory(*inventory)
        status, prices = self.device.run(self._quote_program(book, values, armed))
        if status is None:
            self._trip_kill()
            raise DeviceTimeout(f"no ladder after {self.ladder_poll_limit} polls of LADDER_STATUS; "
                                "kill switch tripped")
        return HardwareLadder(self._ladder(book, status, prices), bool(status["refresh"]),
                              bool(status["killed"]), bool(status["deadman"]), bool(status["size_blocked"]))

    def _quote_program(self, book: BookUpdate, inventory: dict[str, int] | None,
                       armed: bool | None) -> Program[tuple[dict[str, int] | None, dict[str, Any]]]:
        """The inventory update and arming (if any), then the quote: one batch under ``Device.run``."""
        assert self.config is not None
        programs = self.device.programs
        if inventory is not None:
            yield from programs.write_group("inventory", inventory)
        if armed is not None:
            yield from programs.pulse("CONTROL", "arm" if armed else "disarm")
        yield from programs.pulse("HEARTBEAT", "beat")  # the host is alive: the dead-man timer restarts
        return (yield from programs.quote(book.ts, book.best_bid, book.best_ask, self.config.num_levels,
                                          self.ladder_poll_limit, max(1, self.latency)))

    def _trip_kill(self) -> None:
        try:
            self.kill()
        except (BusError, BusTimeout, OSError):
            pass  # the device is unreachable; the caller learns of the timeout anyway

    def _ladder(self, book: BookUpdate, status: dict[str, int], prices: dict[str, Any]) -> Ladder:
        if not status["no_mid"] and (book.best_bid is None or book.best_ask is None):
            raise DeviceError(f"the device quotes around a mid of a one-sided book {book}")
        mid = None if status["no_mid"] else (book.best_bid + book.best_ask) // 2  # type: ignore[operator]
        return Ladder(mid, bool(status["crossed"]), prices["bid_price"], prices["ask_price"],
                      status["bid_count"], status["ask_count"], status["out_of_domain"])
