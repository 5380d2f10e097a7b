"""The testbenches' register access: the host's programs, awaited, plus composite steps.

Both the ``amaranth.sim`` tests and the cocotb benches drive the top through
:class:`BenchRegisters`, so they configure, feed inventory and quote through exactly
the access sequences the host driver uses (``RegisterPrograms``).
"""

from __future__ import annotations

from typing import Any

from nanoquote.host.device.register_access import AsyncDevice
from nanoquote.hw.contract.coefficients import PipelineParams

__all__ = ["BenchRegisters"]


class BenchRegisters(AsyncDevice):
    """An :class:`AsyncDevice` with the steps testbenches repeat."""

    async def configure(self, params: PipelineParams) -> None:
        """Stage the ``config`` group from ``params`` (by field name) and commit."""
        await self.run(self.programs.write_group("config", params.as_dict()))

    async def set_inventory(self, position: int, live_bid_qty: int = 0, live_ask_qty: int = 0) -> None:
        await self.run(self.programs.write_group(
            "inventory", {"position": position, "live_bid_qty": live_bid_qty, "live_ask_qty": live_ask_qty}))

    async def ladder(self, polls: int = 50) -> dict[str, Any]:
        """Poll ``LADDER_STATUS.valid``, then read every level (an unposted one must read 0)."""
        status = await self.run(self.programs.wait_for_ladder(polls))
        if status is None:
            raise AssertionError(f"no ladder after {polls} polls of LADDER_STATUS")
        prices = await self.run(self.programs.read_ladder(self.map.max_levels, posted_only=False))
        return {**status, **prices}

    async def quote(self, ts: int, bid: int | None, ask: int | None) -> dict[str, Any]:
        await self.run(self.programs.submit(ts, bid, ask))
        return await self.ladder()
