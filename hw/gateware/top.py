"""The quote engine's top level: pipeline, register block, AXI4-Lite, control latches.

:class:`NanoquoteTop` puts the :class:`~nanoquote.hw.gateware.pipeline.QuotePipeline` behind the
register map of ``nanoquote.hw.contract.register_map``:

* ``axil``: AXI4-Lite slave (:class:`~nanoquote.hw.gateware.axil.AxiLiteRegisterSlave` and the
  generated :class:`~nanoquote.hw.gateware.register_block.RegisterBlock`).
* ``i``: market updates (the pipeline's ``MarketUpdate`` stream), one per clock.
* ``o``: ladders (the pipeline's ``LadderOut`` stream). Its ``ready`` is an input of
  the top: a deployment that uses only the register quote path ties ``o.ready`` high
  (otherwise an undelivered ladder stalls the pipeline and the register path with it).

Control (``CONTROL`` pulses, applied in this order, so the later wins within one
write): ``soft_reset`` and ``disarm`` disarm; ``arm`` arms unless killed; ``kill``
latches the kill switch and disarms; ``rearm`` clears the kill latch and arms.
``soft_reset`` also clears the refresh state, the event counters and the captured
ladder, and forgets a book submit not yet in the pipeline. ``commit`` (checked by the
register block) copies the staged configuration and inventory to the live registers
that drive the pipeline's ``cfg``, ``position`` and ``live_*_qty`` ports. After reset
the live configuration is all zero (``max_inventory = 0``: nothing is ever quoted) and
the engine is disarmed, so nothing is quoted before a commit and an arm.

Register quote path: a write to ``BOOK_SUBMIT`` takes ``BOOK_TS``/``BOOK_BID``/
``BOOK_ASK`` and the written ``has_bid``/``has_ask`` as one update, clears
``LADDER_STATUS.valid`` and enters the pipeline at the next cycle the pipeline is
ready: **the register path has priority** over the stream (the stream then sees
``i.ready`` low for that one cycle; register writes are at least five cycles apart,
so the stream keeps at least four fifths of the cycles). A submit written while the previous
one is still waiting to enter (only possible while ``o`` is back-pressured) is refused
with SLVERR. The pipeline preserves order, so the ladder of the submitted update is
the one delivered when the count of delivered ladders reaches the count of accepted
updates at its entry; it is captured into ``LADDER_*`` and ``LADDER_STATUS.valid`` is
set.

Counters (32-bit, wrapping; cleared by ``clear_counters`` and ``soft_reset``): UPDATES
counts updates entering the pipeline (stream and register path); the others count
delivered ladders (taken from ``o``): LADDERS all, REFRESHES with ``refresh``, NO_MID and CROSSED with
those flags, OUT_OF_DOMAIN adds ``out_of_domain``, GATED_BID/ASK those with a mid and
fewer levels than the live ``num_levels``. ``ERRORS.out_of_domain``/``crossed`` are set
by delivered ladders. Event flags are registered once before the counters, so the
counters and error bits are off the ladder stream's path.

Refresh state: ``LAST_QUOTE_TIME`` and ``STATUS.has_quoted`` follow the delivered
ladders (a ladder with ``refresh`` sets them to its ``ts``), so they always agree with
the ladders the host has read; ``soft_reset`` clears them and pulses the pipeline's
``soft_reset`` input, which clears the pipeline's own refresh clock.

Timing: the only logic the top adds to the per-update path is the two-way input
multiplexer in front of the pipeline (one LUT level, selected by a register and its
inverted twin to halve the select's fanout). Where the pipeline's first stage has no
slack for it, ``input_register=True`` moves the multiplexer in front of a register
stage instead (one more cycle of ``LATENCY``; no bubbles: the stage takes a new update
whenever it is empty or the pipeline takes its update; an update waiting there when a
new configuration is committed is computed with the new one). The
register read multiplexer reads registers only (captured ladder, counters, latches,
live configuration, the registered ``settled``); the capture of the register path's
ladder is enabled by a registered match, so its compare is off the wide enable. So the
top's own logic (AXI slave, register block, capture, counters) is not what limits the
clock; docs/performance.md has its fmax with a stand-in pipeline.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Module, Mux, ResetSignal, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In
from nanoquote.hw.contract.coefficients import CYCLES_PER_US, DEADMAN_US_BITS, check_cycles_per_us
from nanoquote.hw.contract.register_map import register_map
from nanoquote.hw.gateware.axil import AxiLiteRegisterSlave, AxiLiteSignature
from nanoquote.hw.gateware.pipeline import QuotePipeline
from nanoquote.hw.gateware.register_block import RegisterBlock, port_name

__all__ = ["NanoquoteTop"]


class NanoquoteTop(wiring.Component):
    """The quote engine: ``axil`` registers, ``i`` market updates in, ``o`` ladders out.

    Parameters
    ----------
    max_levels : int
        Build-time maximum of ``num_levels`` (1..16).
    price_bits : int
        Price width.
    addr_width : int
        AXI4-Lite byte address width (the map decodes its own size; the rest is DECERR).
    input_register : bool
        Put the stream/register-path arbitration behind a register stage (one more cycle
        of latency, no multiplexer in front of the pipeline's first stage); see the
        module docstring.
    cycles_per_us : int
        Cycles of the design's clock a microsecond: what the dead-man timer counts
        (``DEADMAN.deadman_us`` microseconds are ``deadman_us * cycles_per_us`` cycles).
        The default is the 200 MHz build clock's (``CYCLES_PER_US``); a design clocked
        otherwise passes its own (the board's ``BoardCore`` does).

    Attributes
    ----------
    LATENCY : int
        Cycles from a market update accepted on ``i`` to its ladder on ``o`` (the
        pipeline's, plus one with ``input_register``).
    rmap : RegisterMap
        The register map of this build.
    """

    def __init__(self, max_levels: int = 8, price_bits: int = 31, *, addr_width: int = 12,
                 input_register: bool = False, cycles_per_us: int = CYCLES_PER_US) -> None:
        self.cycles_per_us = check_cycles_per_us(cycles_per_us)
        self.max_levels = max_levels
        self.price_bits = price_bits
        self.addr_width = addr_width
        self.input_register = input_register
        self.pipeline = QuotePipeline(max_levels=max_levels, price_bits=price_bits, config_strobe=True,
                                      kill_input=True)
        self.LATENCY = int(QuotePipeline.LATENCY) + int(input_register)
        if self.LATENCY < 2:
            raise ValueError(f"the ladder capture needs a pipeline latency of 2 or more, got {self.LATENCY}")
        self.rmap = register_map(max_levels, price_bits, latency=self.LATENCY)
        self.regs = RegisterBlock(self.rmap, addr_width=addr_width)
        self.slave = AxiLiteRegisterSlave(addr_width)
        #: the arm and kill latches (``STATUS.armed``/``killed``), for a board's LEDs
        self.armed = Signal()
        self.killed = Signal()
        members = self.pipeline.signature.members
        super().__init__({
            "axil": In(AxiLiteSignature(addr_width)),
            "i": members["i"],
            "o": members["o"],
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.slave = slave = self.slave
        m.submodules.regs = rb = self.regs
        m.submodules.pipeline = pipe = self.pipeline
        wiring.connect(m, wiring.flipped(self.axil), slave.axil)
        wiring.connect(m, slave.regs, rb.bus)
        ctl = rb.control

        # -- live configuration and inventory -> pipeline (matched by field name) --------------
        sources = {}
        for reg in self.rmap:
            if reg.staged:
                for f in reg.fields:
                    sources[f.name] = getattr(getattr(rb, reg.name.lower()), f.name)
        for name, _ in pipe.cfg.shape():
            m.d.comb += getattr(pipe.cfg, name).eq(sources[name])
        for name in self.rmap.fields_of("inventory"):
            m.d.comb += getattr(pipe, name).eq(sources[name])
        # the live copies change only at a commit: it tells the pipeline so
        m.d.comb += pipe.config_changed.eq(rb.committed)

        # -- arm / kill latches ----------------------------------------------------------------
        armed = self.armed
        killed = self.killed
        deadman_killed = Signal()  # the latched kill is the dead-man timer's
        # Dead-man timer: while armed with a non-zero timeout, a heartbeat, a commit or
        # arming restarts it; ``deadman_us`` microseconds (of ``cycles_per_us`` cycles) later
        # the timeout ends (``fire``, registered: the compare stays off the latches) and the
        # kill latches at the next clock edge.
        cycles_per_us = self.cycles_per_us
        prescale = Signal(range(cycles_per_us))
        elapsed_us = Signal(DEADMAN_US_BITS, init=1)  # the microsecond running, from 1
        timeout_us = rb.deadman.deadman_us
        restart = Signal()
        fire = Signal()  # registered
        m.d.comb += restart.eq(~armed | rb.heartbeat_stb | rb.committed)
        m.d.sync += fire.eq(armed & ~restart & (timeout_us != 0) & (prescale == cycles_per_us - 1)
                            & (elapsed_us == timeout_us))
        with m.If(restart):
            m.d.sync += [prescale.eq(0), elapsed_us.eq(1)]
        with m.Elif(prescale == cycles_per_us - 1):
            m.d.sync += [prescale.eq(0), elapsed_us.eq(elapsed_us + 1)]
        with m.Else():
            m.d.sync += prescale.eq(prescale + 1)
        with m.If(ctl.soft_reset | ctl.disarm):
            m.d.sync += armed.eq(0)
        with m.If(ctl.arm & ~killed):
            m.d.sync += armed.eq(1)
        with m.If(fire):
            m.d.sync += [killed.eq(1), armed.eq(0), deadman_killed.eq(1)]
        with m.If(ctl.kill):
            m.d.sync += [killed.eq(1), armed.eq(0)]
        with m.If(ctl.rearm):
            m.d.sync += [killed.eq(0), armed.eq(1), deadman_killed.eq(0)]
        m.d.comb += rb.errors_set.deadman.eq(fire)
        m.d.comb += pipe.armed.eq(armed)
        m.d.comb += pipe.soft_reset.eq(ctl.soft_reset)

        # -- input arbitration: a pending register submit goes first ---------------------------
        # The select fans out to every payload bit on the per-update path: the prices take
        # it from an inverted twin register (synthesis keeps both), halving the fanout.
        update_layout = pipe.i.payload.shape()
        pending = Signal()
        pending_next = Signal()
        pending_n = Signal(init=1)  # always ~pending
        m.d.sync += [pending.eq(pending_next), pending_n.eq(~pending_next)]
        pending_update = Signal(update_layout)
        sel_prices = ~pending_n
        chosen = Signal(update_layout)
        m.d.comb += [
            chosen.ts.eq(Mux(pending, pending_update.ts, self.i.payload.ts)),
            chosen.has_bid.eq(Mux(pending, pending_update.has_bid, self.i.payload.has_bid)),
            chosen.has_ask.eq(Mux(pending, pending_update.has_ask, self.i.payload.has_ask)),
            chosen.bid.eq(Mux(sel_prices, pending_update.bid, self.i.payload.bid)),
            chosen.ask.eq(Mux(sel_prices, pending_update.ask, self.i.payload.ask)),
            rb.book_submit_busy.eq(pending),
        ]
        # ``front_ready``: the chosen update is taken this cycle (by the pipeline, or by the
        # input register); ``accepted``: an update is taken. The order is kept throughout.
        front_ready = Signal()
        accepted = Signal()
        if self.input_register:
            in_valid = Signal()
            in_update = Signal(update_layout)
            m.d.comb += [front_ready.eq(~in_valid | pipe.i.ready),
                         pipe.i.valid.eq(in_valid), pipe.i.payload.eq(in_update)]
            with m.If(front_ready):
                m.d.sync += [in_valid.eq(pending | self.i.valid), in_update.eq(chosen)]
        else:
            m.d.comb += [front_ready.eq(pipe.i.ready),
                         pipe.i.valid.eq(pending | self.i.valid), pipe.i.payload.eq(chosen)]
        m.d.comb += [self.i.ready.eq(~pending & front_ready),
                     accepted.eq((pending | self.i.valid) & front_ready)]
        # Kill: the pipeline clears its output register while the latch is set, so from the
        # second clock after the kill pulse no ladder leaves with a level posted (a ladder
        # held there by back-pressure included). The latch drives the clear directly: a
        # flip-flop into the output prices' synchronous resets, no logic behind the register.
        m.d.comb += [pipe.kill.eq(killed), pipe.kill_deadman.eq(deadman_killed)]
        wiring.connect(m, pipe.o, wiring.flipped(self.o))
        ladder = pipe.o.payload

        delivered = Signal()
        m.d.comb += delivered.eq(pipe.o.valid & pipe.o.ready)

        # Sequence numbers of accepted updates and delivered ladders; the pipeline keeps
        # order, so the ladder of update n is the n-th delivered.
        seq_bits = max(8, (4 * self.LATENCY + 16).bit_length())
        accepted_seq = Signal(seq_bits)
        delivered_seq = Signal(seq_bits)
        target_seq = Signal(seq_bits)
        waiting = Signal()
        with m.If(accepted):
            m.d.sync += accepted_seq.eq(accepted_seq + 1)
        with m.If(delivered):
            m.d.sync += delivered_seq.eq(delivered_seq + 1)
        # ``is_next``: the next ladder delivered is the target's. Registered (the compare is
        # off the capture enable, which fans out to the whole captured ladder); exact
        # because the target is set at least LATENCY >= 2 cycles before its ladder leaves.
        # Both compares start at flip-flops; ``o.ready`` only selects between them.
        is_next = Signal()
        m.d.sync += is_next.eq(Mux(delivered, (delivered_seq + 1)[:seq_bits] == target_seq,
                                   delivered_seq == target_seq))

        ladder_layout = ladder.shape()
        # Wide registers cleared by a registered copy of the reset (with soft_reset), so the
        # reset net does not reach them: ``rst`` fans out to every control register.
        reset_q = Signal(init=1, reset_less=True)
        m.d.sync += reset_q.eq(ResetSignal())
        captured = Signal(ladder_layout, reset_less=True)
        ladder_valid = Signal()
        # A new submit forgets the previous one (its ladder is no longer wanted), so only
        # the last submitted update's ladder is ever captured.
        # The target ladder is loaded while it waits at the pipeline's output (its enable
        # has no ``o.ready`` in it, and reloading the same ladder while stalled is
        # harmless); it counts as captured at its handshake.
        with m.If(waiting & is_next & pipe.o.valid):
            m.d.sync += captured.eq(ladder)
        with m.If(waiting & is_next & delivered):
            m.d.sync += [waiting.eq(0), ladder_valid.eq(1)]
        m.d.comb += pending_next.eq(pending)
        with m.If(pending & front_ready):
            m.d.comb += pending_next.eq(0)
            m.d.sync += [waiting.eq(1), target_seq.eq(accepted_seq)]
        with m.If(rb.book_submit_stb):
            m.d.comb += pending_next.eq(1)
            m.d.sync += [
                waiting.eq(0),
                ladder_valid.eq(0),
                pending_update.ts.eq(rb.book_ts.ts),
                pending_update.bid.eq(rb.book_bid.bid),
                pending_update.ask.eq(rb.book_ask.ask),
                pending_update.has_bid.eq(rb.book_submit.has_bid),
                pending_update.has_ask.eq(rb.book_submit.has_ask),
            ]
        with m.If(ctl.soft_reset):
            m.d.comb += pending_next.eq(0)
            m.d.sync += [waiting.eq(0), ladder_valid.eq(0), captured.eq(0)]
        # the kill blocks the captured ladder as well, in every cycle it is latched (the
        # clear comes straight from the latch: a register read starts cycles after the
        # write that kills has been applied)
        with m.If(killed):
            m.d.sync += [captured.bid_post.eq(0), captured.ask_post.eq(0), captured.killed.eq(1),
                         captured.deadman.eq(deadman_killed)]
            for level in range(self.max_levels):
                m.d.sync += [captured.bid_price[level].eq(0), captured.ask_price[level].eq(0)]

        # -- captured ladder -> LADDER_* registers -----------------------------------------------
        # LADDER_STATUS and LADDER_MASK fields are ladder fields of the same name
        m.d.comb += rb.ladder_status.valid.eq(ladder_valid)
        for reg in (self.rmap["LADDER_STATUS"], self.rmap["LADDER_MASK"]):
            for f in reg.fields:
                if f.name != "valid":
                    m.d.comb += getattr(getattr(rb, port_name(reg)), f.name).eq(getattr(captured, f.name))
        for level in range(self.max_levels):
            m.d.comb += [
                getattr(rb, f"ladder_bid{level}").price.eq(captured.bid_price[level]),
                getattr(rb, f"ladder_ask{level}").price.eq(captured.ask_price[level]),
            ]

        # -- status ------------------------------------------------------------------------------
        m.d.comb += [
            rb.status.armed.eq(armed),
            rb.status.killed.eq(killed),
            rb.status.deadman.eq(deadman_killed),
        ]
        # registered, so the register read multiplexer does not sit behind the pipeline's
        # control logic (status is one cycle late)
        settled = Signal()
        m.d.sync += settled.eq(pipe.settled)
        m.d.comb += rb.status.settled.eq(settled)
        # The refresh clock's state as the delivered ladders report it: a ladder with
        # ``refresh`` moved it to that ladder's ``ts`` (so the value always matches the
        # ladders the host has seen).
        last_quote_time = Signal(len(ladder.ts), reset_less=True)
        has_quoted = Signal()
        with m.If(delivered & ladder.refresh):
            m.d.sync += [last_quote_time.eq(ladder.ts), has_quoted.eq(1)]
        with m.If(ctl.soft_reset):
            m.d.sync += [last_quote_time.eq(0), has_quoted.eq(0)]
        with m.If(reset_q):
            m.d.sync += [last_quote_time.eq(0), captured.eq(0)]
        m.d.comb += [rb.status.has_quoted.eq(has_quoted),
                     rb.last_quote_time.last_quote_time.eq(last_quote_time)]

        # -- event counters and sticky ladder errors (registered events, then counters) ---------
        # What increments each counter is the register map's (``Counter``); the events are
        # registered once, so the counters and error bits are off the ladder stream's path.
        live_config = SimpleNamespace(**sources)
        counters = self.rmap.group("counters")
        events = {}
        for reg in counters:
            spec = reg.counter
            if spec.source == "update":
                value = accepted
            else:
                counts = delivered if spec.when is None else delivered & spec.when(ladder, live_config)
                value = counts if spec.amount is None else Mux(counts, spec.amount(ladder, live_config), 0)
            event = Signal(len(Value.cast(value)), name=f"event_{reg.name.removeprefix('COUNT_').lower()}")
            m.d.sync += event.eq(value)
            events[reg.name] = event
        # registered, so the clear reaches the 256 counter bits straight from a flip-flop
        # (the counters clear a cycle after the pulse; events are a cycle late as well)
        clear = Signal(reset_less=True)
        m.d.sync += clear.eq(ctl.soft_reset | ctl.clear_counters | reset_q)
        for reg in counters:
            counter = Signal(32, name=port_name(reg), reset_less=True)
            with m.If(clear):
                m.d.sync += counter.eq(0)
            with m.Else():
                m.d.sync += counter.eq(counter + events[reg.name])
            m.d.comb += getattr(rb, port_name(reg)).count.eq(counter)
        for f in self.rmap["ERRORS"].fields:
            if f.set_by is not None:
                m.d.comb += getattr(rb.errors_set, f.name).eq(events[f.set_by].any())
        return m
