"""The refresh clock of docs/spec.md §6, kept apart so the hardware can own the same state."""

from __future__ import annotations

__all__ = ["RefreshClock"]


class RefreshClock:
    """``due(now)``: ``now - last_quote_time >= interval``; time going backwards never is.

    Legacy starts at ``last_quote_time = 0`` as the original did; the exchange policy
    starts empty, so its first quotable update always refreshes.
    """

    def __init__(self, interval_ns: int, legacy: bool) -> None:
        self.interval_ns = interval_ns
        self.legacy = legacy
        self.last_quote_time: int | None = 0 if legacy else None

    def due(self, now: int) -> bool:
        if self.last_quote_time is None:
            return True
        return now - self.last_quote_time >= self.interval_ns

    def mark(self, now: int) -> None:
        self.last_quote_time = now

    def reset(self) -> None:
        self.last_quote_time = 0 if self.legacy else None
