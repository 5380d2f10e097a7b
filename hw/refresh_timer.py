"""The refresh timer of SPEC 6 at one decision per clock.

``fire = eligible & (first | ts >= last + interval)`` where ``eligible`` is "valid, armed
and with a quotable mid" and ``first`` is "exchange policy and no refresh since reset";
legacy starts with ``last = 0``. Unsigned 65-bit arithmetic: ``last + interval`` cannot
overflow, and ``ts < last`` (time going backwards) never fires.

For II=1 the comparison never waits for an adder fed by the previous decision: the
deadline ``last + interval`` is a register, loaded with the precomputed ``ts + interval``
when the timer fires and recomputed from ``last`` otherwise (so a new interval applies
from the next cycle; the pipeline only changes it while no update is in flight).
"""


from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .coefficients import REFRESH_INTERVAL_BITS, TS_BITS

__all__ = ["RefreshTimer"]


class RefreshTimer(wiring.Component):
    """Refresh decision for the update at the decision stage.

    Ports
    -----
    legacy, interval : In
        Active configuration.
    eligible : In
        The update at the decision stage is valid, armed and has a quotable mid.
    ts, ts_plus : In
        Its timestamp and ``ts + interval`` (registered one stage earlier).
    commit : In
        The decision stage advances this cycle: apply ``fire`` to the state.
    fire : Out
        The decision (combinational).
    """

    legacy: In(1)
    interval: In(REFRESH_INTERVAL_BITS)
    eligible: In(1)
    ts: In(TS_BITS)
    ts_plus: In(TS_BITS + 1)
    commit: In(1)
    fire: Out(1)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        last = Signal(TS_BITS)
        quoted = Signal()
        deadline = Signal(TS_BITS + 1)
        first = ~self.legacy & ~quoted
        m.d.comb += self.fire.eq(self.eligible & (first | (self.ts >= deadline)))
        with m.If(self.commit & self.fire):
            m.d.sync += [last.eq(self.ts), quoted.eq(1), deadline.eq(self.ts_plus)]
        with m.Else():
            m.d.sync += deadline.eq(last + self.interval)
        return m
