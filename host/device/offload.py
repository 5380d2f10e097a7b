"""The offloaded quote engine: the strategy's ``QuoteEngine`` backed by a device.

The strategy's event loop, QuoteManager and P&L stay on the host; the device computes
the ladder and owns the refresh clock. Inventory and arming are written only when they
change, and join the book update's batch: every update is one bus round trip.
"""

from __future__ import annotations

from nanoquote.host.device.bus import RegisterBus
from nanoquote.host.device.driver import QuoteDriver
from nanoquote.host.device.register_access import DeviceError
from nanoquote.host.strategy.config import MarketMakerConfig
from nanoquote.host.strategy.engine import QuoteDecision
from nanoquote.host.strategy.market_maker import MarketMakerStrategy
from nanoquote.host.strategy.quoting import BookUpdate

__all__ = ["HardwareQuoteEngine", "offloaded_strategy"]


class HardwareQuoteEngine:
    """``QuoteEngine`` over a configured ``QuoteDriver``."""

    def __init__(self, driver: QuoteDriver) -> None:
        if driver.config is None:
            raise ValueError("the driver must be configured before it backs a strategy")
        self.driver = driver
        self._legacy = driver.config.is_legacy
        self._inventory: tuple[int, int, int] | None = None
        self._armed: bool | None = None

    def quote(
        self, book: BookUpdate, position: int, live_bid_qty: int, live_ask_qty: int, armed: bool
    ) -> QuoteDecision:
        inventory = (position, live_bid_qty, live_ask_qty)
        changed = inventory if inventory != self._inventory else None
        arming = armed if armed != self._armed else None
        # Until the batch is answered the device's inventory and arming are unknown: a
        # fault leaves them to be written again with the next update.
        self._inventory = self._armed = None
        result = self.driver.quote(book, inventory=changed, armed=arming)
        if armed:  # the strategy is armed: a blocked ladder means the device killed itself
            result.check_not_killed()  # (its dead-man timer): a device fault (spec §7.5)
        self._inventory, self._armed = inventory, armed
        # the device applied the maximum order quantity (docs/spec.md §8): the strategy's
        # gate counts what it blocked and applies the collar to what it posted
        return QuoteDecision(result.ladder, result.refresh, result.size_blocked)

    @property
    def last_quote_time(self) -> int | None:
        last = self.driver.last_quote_time()
        if last is None and self._legacy:
            return 0  # legacy starts its clock at 0, as the original did
        return last

    def should_refresh(self, now: int) -> bool:
        last = self.last_quote_time
        return True if last is None else now - last >= self.driver.config.refresh_interval_ns  # type: ignore[union-attr]

    def on_kill(self) -> None:
        self.driver.kill()
        self._armed = False

    def on_rearm(self) -> None:
        self.driver.rearm()
        self._armed = True


def offloaded_strategy(config: MarketMakerConfig, bus: RegisterBus, name: str = "offload",
                       instrument_id: int = 1) -> MarketMakerStrategy:
    """A MarketMakerStrategy whose ladders come from the device behind ``bus``.

    The device is identified, the configuration checked against its build (a refused
    one writes nothing), then the device is soft-reset (refresh clock, counters, ladder)
    and configured. A latched kill switch is left alone and reported: only an operator's
    explicit re-arm may clear it.
    """
    driver = QuoteDriver.open(bus)  # identity reads only
    driver.hardware_params(config)  # the configuration against this build, before any write
    if driver.status()["killed"]:
        raise DeviceError("the device's kill switch is latched: re-arm it explicitly first")
    driver.soft_reset()
    driver.configure(config)
    return MarketMakerStrategy(name, instrument_id, config, engine=HardwareQuoteEngine(driver))
