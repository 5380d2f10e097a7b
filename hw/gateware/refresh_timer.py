"""The refresh timer of docs/spec.md §6 at one decision per clock.

``fire = eligible & (first | ts >= last + interval)`` where ``eligible`` is "valid, armed
and with a quotable mid" and ``first`` is "exchange policy and no refresh since reset";
legacy starts with ``last = 0``. ``first`` is folded into the stored deadline (0 while
it holds). Unsigned 65-bit arithmetic: ``last + interval`` cannot
overflow, and ``ts < last`` (time going backwards) never fires.

For II=1 and a short decision path, nothing waits for the previous decision to be
written back: the decision registered for the update one stage ahead (``fired``, with
that update's ``ts + interval``) is the pending state, and the deadline register takes
it over one cycle later. The decision compares ``ts`` with both the pending and the
stored deadline, whichever a register selects, in one carry chain. While the
pipeline settles a new configuration, the deadline is recomputed from ``last`` and the
new interval (no update is in flight then).

``clear`` (a soft reset) empties the clock: ``last = 0``, no refresh yet, deadline
``interval``. Updates already past the decision keep their ``refresh`` flag, but their
refresh no longer moves the clock.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from nanoquote.hw.contract.coefficients import REFRESH_INTERVAL_BITS, TS_BITS

__all__ = ["RefreshTimer"]



class RefreshTimer(wiring.Component):
    """Refresh decision for the update leaving the pipeline's first stage.

    Ports
    -----
    legacy, interval : In
        Active configuration.
    settling : In
        A new configuration is being taken over (no update in flight).
    eligible : In
        The update leaving S1 is valid, armed and has a quotable mid.
    ts : In
        Its timestamp.
    commit : In
        The pipeline advances this cycle (the update moves on with the decision).
    clear : In
        Soft reset: forget every refresh so far (one-cycle pulse).
    fire : Out
        The decision (combinational).
    fired : Out
        The registered decision of the update one stage ahead (the ``refresh`` flag).
    """

    legacy: In(1)
    interval: In(REFRESH_INTERVAL_BITS)
    settling: In(1)
    eligible: In(1)
    ts: In(TS_BITS)
    commit: In(1)
    clear: In(1)
    fire: Out(1)
    fired: Out(1)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        last = Signal(TS_BITS)
        quoted = Signal()
        # from when an update with no refresh pending refreshes: 0 while the exchange
        # policy has not refreshed yet (its first eligible update refreshes), else
        # ``last + interval``
        deadline = Signal(TS_BITS + 1)
        # the update one stage ahead: ts and ts + interval (read only while ``pending``)
        fired_ts = Signal(TS_BITS, reset_less=True)
        fired_plus = Signal(TS_BITS + 1, reset_less=True)
        # ``fired`` unless a clear came after it: the refresh the clock has yet to take over;
        # the operand select reads an inverted twin (kept apart by its initial value), off
        # the enables ``pending`` drives
        pending = Signal()
        pending_n = Signal(init=1)
        now = Mux(pending_n, deadline, fired_plus)  # the deadline this update meets
        # One carry chain: ``eligible`` above ``ts`` against a 1 above the deadline, so an
        # ineligible update never reaches it and nothing follows the chain but the register.
        m.d.comb += self.fire.eq(Cat(self.ts, Const(0, 1), self.eligible) >= Cat(now, Const(1, 1)))
        with m.If(self.commit):
            m.d.sync += [self.fired.eq(self.fire), pending.eq(self.fire), pending_n.eq(~self.fire),
                         fired_ts.eq(self.ts), fired_plus.eq(self.ts + self.interval)]
        with m.If(self.clear):
            m.d.sync += [pending.eq(0), pending_n.eq(1), last.eq(0), quoted.eq(0),
                         deadline.eq(Mux(self.legacy, self.interval, 0))]
        with m.Elif(pending):  # take the refresh over (repeats harmlessly while stalled)
            m.d.sync += [last.eq(fired_ts), quoted.eq(1), deadline.eq(fired_plus)]
        with m.Elif(self.settling):
            m.d.sync += deadline.eq(Mux(self.legacy | quoted, last + self.interval, 0))
        return m
