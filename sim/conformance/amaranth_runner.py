"""Run a scenario on the pipeline in the Amaranth simulator (the fast test tier).

One async testbench plays driver, back-pressure source and monitor: each cycle it offers
the next update (or idles, with probability ``idle``), sets ``o.ready`` (low with
probability ``stall``), records the handshakes of that cycle and ticks. Port values of a
segment are set in the same cycle as its first update is offered, so "a change followed
immediately by an update" is the normal case.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from amaranth.sim import Simulator
from nanoquote.hw.gateware.pipeline import QuotePipeline
from nanoquote.sim.conformance.scenario import Segment
from nanoquote.sim.port_codec import PortCodec

__all__ = ["Handshake", "run_amaranth"]


@dataclass(frozen=True)
class Handshake:
    """Idle and back-pressure pattern of a run."""

    idle: float = 0.0
    stall: float = 0.0
    seed: int = 0


def run_amaranth(
    segments: list[Segment],
    max_levels: int,
    price_bits: int,
    handshake: Handshake | None = None,
    vcd: str | None = None,
) -> tuple[list[int], dict[str, int]]:
    """Raw ``o.payload`` of every update in order, and cycle statistics."""
    dut = QuotePipeline(max_levels, price_bits)
    codec = PortCodec(max_levels, price_bits)
    handshake = handshake or Handshake()
    rng = random.Random(handshake.seed)
    total = sum(len(s) for s in segments)
    outputs: list[int] = []
    stats = {"cycles": 0, "stall_cycles": 0}

    async def bench(ctx) -> None:  # type: ignore[no-untyped-def]
        payload = dut.i.payload.as_value()
        out_payload = dut.o.payload.as_value()
        cfg = dut.cfg.as_value()

        async def cycle(offer: int | None) -> bool:
            """One clock: offer an update (or idle), sample both handshakes, tick."""
            if offer is not None:
                ctx.set(payload, offer)
            ctx.set(dut.i.valid, offer is not None)
            ready = rng.random() >= handshake.stall
            ctx.set(dut.o.ready, ready)
            accepted = offer is not None and bool(ctx.get(dut.i.ready))
            if ready and ctx.get(dut.o.valid):
                outputs.append(ctx.get(out_payload))
            elif not ready:
                stats["stall_cycles"] += 1
            stats["cycles"] += 1
            await ctx.tick()
            return accepted

        for seg in segments:
            ctx.set(cfg, codec.config(seg.params(price_bits)))
            ctx.set(dut.position, seg.position)
            ctx.set(dut.live_bid_qty, seg.live_bid)
            ctx.set(dut.live_ask_qty, seg.live_ask)
            ctx.set(dut.armed, seg.armed)
            for raw in codec.updates(seg.ts, seg.bid, seg.ask, seg.has_bid, seg.has_ask):
                while True:
                    if rng.random() < handshake.idle:
                        await cycle(None)
                        continue
                    if await cycle(raw):
                        break
        idle_cycles = 0  # drain; give up after a long time without progress
        while len(outputs) < total and idle_cycles < 10_000:
            before = len(outputs)
            await cycle(None)
            idle_cycles = 0 if len(outputs) > before else idle_cycles + 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return outputs, stats
