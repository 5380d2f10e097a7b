"""The AXI4-Lite slave's handshakes: channel order, back-pressure, AXI stability rules.

A protocol checker watches every cycle: once ``bvalid``/``rvalid`` is high it stays high
with stable ``bresp``/``rresp``/``rdata`` until the handshake, and a response never comes
without a request. Requests come with AW and W in either order or together, with random
gaps and random ``bready``/``rready`` back-pressure, and reads run concurrently with
writes.
"""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator
from nanoquote.host.device.bus import Resp
from nanoquote.hw.contract.register_map import register_map
from nanoquote.hw.gateware.axil import AxiLiteSignature
from nanoquote.sim.testbenches.amaranth_axil_master import AxiLiteSimMaster
from nanoquote.sim.testbenches.amaranth_support import RegisterBlockHarness, test_seed

RMAP = register_map()
SCRATCH = RMAP["SCRATCH"].address


def checker(dut, violations, counts):
    """AXI rules on the slave's outputs, sampled at every clock edge."""
    async def process(ctx):
        p = dut.axil
        prev = None
        async for _clk, _rst, *now in ctx.tick().sample(
                p.awvalid, p.awready, p.wvalid, p.wready, p.bvalid, p.bready, p.bresp,
                p.arvalid, p.arready, p.rvalid, p.rready, p.rresp, p.rdata):
            awv, awr, wv, wr, bv, br, bresp, arv, arr, rv, rr, rresp, rdata = now
            counts["aw"] += awv and awr
            counts["w"] += wv and wr
            counts["ar"] += arv and arr
            if prev is not None:
                _, _, _, _, pbv, pbr, pbresp, _, _, prv, prr, prresp, prdata = prev
                if pbv and not pbr and not (bv and bresp == pbresp):
                    violations.append("bvalid dropped or bresp changed before bready")
                if prv and not prr and not (rv and (rresp, rdata) == (prresp, prdata)):
                    violations.append("rvalid dropped or rdata/rresp changed before rready")
            if bv and br:
                counts["b"] += 1
                if counts["b"] > min(counts["aw"], counts["w"]):
                    violations.append("write response before its address and data")
            if rv and rr:
                counts["r"] += 1
                if counts["r"] > counts["ar"]:
                    violations.append("read response before its address")
            prev = now
    return process


def run(bench_factories, seed, stall):
    dut = RegisterBlockHarness(RMAP)
    violations: list[str] = []
    counts = dict.fromkeys(("aw", "w", "b", "ar", "r"), 0)
    sim = Simulator(dut)
    sim.add_clock(5e-9)
    for k, factory in enumerate(bench_factories):
        async def bench(ctx, factory=factory, k=k):
            master = AxiLiteSimMaster(ctx, dut.axil, rng=random.Random(seed * 10 + k), stall=stall)
            await factory(ctx, master)
        sim.add_testbench(bench)
    sim.add_process(checker(dut, violations, counts))
    sim.run()
    assert not violations, f"seed {seed}: {violations[:5]}"
    return counts


def test_signature_is_flat_and_named_as_axi():
    names = [path[0] for path, _member in AxiLiteSignature(12).members.flatten()]
    assert names == ["awaddr", "awprot", "awvalid", "awready", "wdata", "wstrb", "wvalid", "wready",
                     "bresp", "bvalid", "bready", "araddr", "arprot", "arvalid", "arready", "rdata",
                     "rresp", "rvalid", "rready"]


@pytest.mark.parametrize("aw_first", [True, False])
def test_aw_and_w_in_either_order_with_long_gaps(aw_first):
    async def bench(ctx, master):
        p = master.port
        first, second = ((p.awvalid, p.awready), (p.wvalid, p.wready))[::1 if aw_first else -1]
        ctx.set(p.awaddr, SCRATCH)
        ctx.set(p.wdata, 0x600DF00D)
        ctx.set(p.wstrb, 0xF)
        ctx.set(first[0], 1)
        await ctx.tick().until(first[1])
        ctx.set(first[0], 0)
        for _ in range(7):  # the slave must wait for the other channel
            assert not ctx.get(p.bvalid)
            await ctx.tick()
        ctx.set(second[0], 1)
        await ctx.tick().until(second[1])
        ctx.set(second[0], 0)
        await ctx.tick().until(p.bvalid)
        for _ in range(5):  # bvalid holds without bready
            assert ctx.get(p.bvalid) and ctx.get(p.bresp) == Resp.OKAY
            await ctx.tick()
        ctx.set(p.bready, 1)
        await ctx.tick()
        ctx.set(p.bready, 0)
        assert await master.read(SCRATCH) == (Resp.OKAY, 0x600DF00D)

    run([bench], 0, 0.0)


@pytest.mark.parametrize("seed", [1, 2])
def test_concurrent_reads_and_writes_under_random_stalls(seed):
    seed = test_seed(seed)
    written: list[int] = []
    seen: list[int] = []

    async def writer(ctx, master):
        for n in range(1, 80):
            assert await master.write(SCRATCH, n) == Resp.OKAY
            written.append(n)
        assert await master.write(0x01C, 0) == Resp.DECERR

    async def reader(ctx, master):
        for _ in range(80):
            resp, value = await master.read(SCRATCH)
            assert resp == Resp.OKAY
            seen.append(value)

    counts = run([writer, reader], seed, 0.4)
    assert counts["b"] == 80 and counts["r"] == 80
    assert seen == sorted(seen), f"seed {seed}: reads went backwards"
    assert set(seen) <= {0, *written}, f"seed {seed}: a read returned a value never written"


def test_back_to_back_writes_without_waiting_for_the_response():
    """A manager may send the next AW and W before taking B: nothing may be lost or merged."""
    async def bench(ctx, master):
        p = master.port
        values = [0x11111111, 0x22222222, 0x33333333]
        addresses = [SCRATCH, RMAP["BOOK_TS"].address, SCRATCH]
        aw_sent = w_sent = 0
        responses = []
        ctx.set(p.bready, 0)
        for cycle in range(200):
            if aw_sent < 3:
                ctx.set(p.awaddr, addresses[aw_sent])
                ctx.set(p.awvalid, 1)
            if w_sent < 3:
                ctx.set(p.wdata, values[w_sent])
                ctx.set(p.wstrb, 0xF)
                ctx.set(p.wvalid, 1)
            ctx.set(p.bready, cycle % 9 == 8)  # take a response only now and then
            aw_hs = aw_sent < 3 and ctx.get(p.awready)
            w_hs = w_sent < 3 and ctx.get(p.wready)
            b_hs = ctx.get(p.bvalid) and ctx.get(p.bready)
            if b_hs:
                responses.append(ctx.get(p.bresp))
            await ctx.tick()
            aw_sent += aw_hs
            w_sent += w_hs
            if aw_sent == 3:
                ctx.set(p.awvalid, 0)
            if w_sent == 3:
                ctx.set(p.wvalid, 0)
            if len(responses) == 3:
                break
        ctx.set(p.bready, 0)
        assert responses == [Resp.OKAY] * 3
        assert await master.read(SCRATCH) == (Resp.OKAY, 0x33333333)
        assert await master.read(RMAP["BOOK_TS"].address) == (Resp.OKAY, 0x22222222)

    run([bench], 0, 0.0)
