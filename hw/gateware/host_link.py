"""The board's host link: frames from a UART turned into AXI4-Lite accesses, and their answers.

:class:`HostLink` implements the protocol of :mod:`nanoquote.hw.contract.link` (the frame
format, commands, statuses and CRC are described there and in docs/board.md). It is an
AXI4-Lite manager: ``axil`` connects to :class:`~nanoquote.hw.gateware.top.NanoquoteTop`'s
slave port.

How a frame goes through it, one at a time:

1. *Receive*: after the sync byte, the sequence number, the length and the command bytes
   are taken as they come; the command bytes go into a request buffer (a block RAM of
   :data:`~nanoquote.hw.contract.link.MAX_FRAME_BYTES` bytes) and are checked as they
   arrive (opcode, alignment, counts, the result words they will need), and the CRC is
   computed over them. A bad length or command, a framing error or a CRC mismatch sends
   the parser to *discard*: everything is ignored until the line has been quiet for
   ``timeout_bits`` bit times, then the frame is answered with its link status.
   A frame that stops for ``timeout_bits`` bit times is answered ``STATUS_TIMEOUT``.
2. *Execute* (only a frame whose CRC matched and whose every command was well formed):
   the commands are read back from the buffer and performed one access at a time on
   ``axil`` (AW and W together, then B; AR, then R); read values go into a result
   buffer (a block RAM of :data:`~nanoquote.hw.contract.link.MAX_RESULTS` words). The
   first error response ends the frame.
3. *Answer*: the header, the result words and the CRC go out on the transmitter.

``receiving`` (a frame is being received or discarded) and ``busy`` (a frame is
executed or answered, or the transmitter is sending) tell a simulation harness when
the link is quiet.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from nanoquote.hw.contract.link import (
    FRAME_TIMEOUT_BITS,
    MAX_FRAME_BYTES,
    MAX_RESULTS,
    OP_IDLE,
    OP_POLL,
    OP_READ,
    OP_WRITE,
    STATUS_BAD_COMMAND,
    STATUS_BAD_CRC,
    STATUS_BAD_LENGTH,
    STATUS_TIMEOUT,
    SYNC_ANSWER,
    SYNC_REQUEST,
)
from nanoquote.hw.gateware.axil import AxiLiteSignature, AxiResp

__all__ = ["HostLink", "crc16_update"]

_POLY = 0x1021


def crc16_update(crc: Value, byte: Value) -> Value:
    """The CRC-16/CCITT-FALSE register after ``byte`` (combinational, one byte per cycle)."""
    # Each output bit as the XOR of a set of input bits, found by running the bit-serial
    # algorithm on symbols: c0..c15 for the register, d0..d7 for the byte.
    state = [{("c", i)} for i in range(16)]
    for i in range(8):
        state[8 + i] = state[8 + i] ^ {("d", i)}
    for _ in range(8):
        top = state[15]
        shifted = [set()] + state[:15]
        state = [shifted[i] ^ top if _POLY >> i & 1 else shifted[i] for i in range(16)]
    bits = []
    for terms in state:
        value = Const(0, 1)
        for kind, index in sorted(terms):
            value = value ^ (crc[index] if kind == "c" else byte[index])
        bits.append(value)
    return Cat(*bits)


class HostLink(wiring.Component):
    """Frames in on ``rx_*`` (from a :class:`~nanoquote.hw.gateware.uart.UARTRx`), answers
    out on ``tx_*`` (to a :class:`~nanoquote.hw.gateware.uart.UARTTx`), accesses on ``axil``.

    Parameters
    ----------
    cycles_per_bit : int
        The UART's clock cycles per bit (the receiver timeout is counted in bit times).
    addr_width : int
        Byte address width of ``axil``; an address at or beyond ``2**addr_width`` answers
        DECERR without an access.
    timeout_bits : int
        Bit times of quiet line that end a frame in the middle (and a discard).
    """

    def __init__(self, cycles_per_bit: int, addr_width: int = 12, *,
                 timeout_bits: int = FRAME_TIMEOUT_BITS) -> None:
        self.cycles_per_bit = cycles_per_bit
        self.addr_width = addr_width
        self.timeout_cycles = timeout_bits * cycles_per_bit
        super().__init__({
            "rx_data": In(8),
            "rx_valid": In(1),
            "rx_error": In(1),
            "rx_busy": In(1),
            "tx_data": Out(8),
            "tx_valid": Out(1),
            "tx_ready": In(1),
            "axil": Out(AxiLiteSignature(addr_width)),
            "receiving": Out(1),
            "busy": Out(1),
            "frames": Out(1),    # one cycle per frame executed
            "rejected": Out(1),  # one cycle per frame refused
        })

    def elaborate(self, platform):
        m = Module()
        bus = self.axil
        m.submodules.req = req = Memory(shape=8, depth=MAX_FRAME_BYTES, init=[])
        m.submodules.res = res = Memory(shape=32, depth=MAX_RESULTS, init=[])
        req_w = req.write_port()
        req_r = req.read_port(domain="sync")
        res_w = res.write_port()
        res_r = res.read_port(domain="sync")

        # -- line quiet timer ----------------------------------------------------------------
        quiet_count = Signal(range(self.timeout_cycles + 1))
        quiet = Signal()
        quiet_stb = Signal()  # the cycle the line becomes quiet
        with m.If(self.rx_busy | self.rx_valid | self.rx_error):
            m.d.sync += quiet_count.eq(0)
        with m.Elif(~quiet):
            m.d.sync += quiet_count.eq(quiet_count + 1)
        m.d.comb += [quiet.eq(quiet_count == self.timeout_cycles),
                     quiet_stb.eq(quiet_count == self.timeout_cycles - 1)]

        byte = self.rx_data
        crc = Signal(16)
        crc_next = crc16_update(crc, byte)
        seq = Signal(8)
        length = Signal(range(MAX_FRAME_BYTES + 1))
        status = Signal(8)
        done = Signal(16)

        # -- receive-side command check ------------------------------------------------------
        wptr = Signal(range(MAX_FRAME_BYTES + 1))
        kind = Signal(3)  # 0 opcode next, 1 read, 2 write, 3 idle, 4 poll
        pos = Signal(4)
        data_left = Signal(range(4 * 255 + 1))
        results = Signal(range(MAX_RESULTS + 256))
        count_byte = Signal(8)
        cmd_end = Signal()
        cmd_bad = Signal()
        with m.Switch(kind):
            with m.Case(0):
                with m.If(byte == OP_READ):
                    pass
                with m.Elif(byte[4:] == OP_WRITE >> 4):
                    pass
                with m.Elif((byte == OP_IDLE) | (byte == OP_POLL)):
                    pass
                with m.Else():
                    m.d.comb += cmd_bad.eq(1)
            with m.Case(1, 2):  # read, write: addr lo, addr hi, count (then write data)
                with m.If(pos == 1):
                    m.d.comb += cmd_bad.eq(byte[:2] != 0)
                with m.Elif(pos == 3):
                    m.d.comb += [cmd_bad.eq((byte == 0) | ((kind == 1) & (results + byte > MAX_RESULTS))),
                                 cmd_end.eq(kind == 1)]
                with m.Elif(pos == 4):
                    m.d.comb += cmd_end.eq(data_left == 1)
            with m.Case(3):  # idle: cycles
                m.d.comb += cmd_end.eq(pos == 3)
            with m.Case(4):  # poll: addr (2), mask (4), limit (2), cycles (3)
                with m.If(pos == 1):
                    m.d.comb += cmd_bad.eq(byte[:2] != 0)
                with m.Elif(pos == 8):
                    m.d.comb += cmd_bad.eq(((byte == 0) & (count_byte == 0)) | (results + 1 > MAX_RESULTS))
                with m.Elif(pos == 11):
                    m.d.comb += cmd_end.eq(1)

        m.d.comb += [req_w.addr.eq(wptr), req_w.data.eq(byte)]

        # -- execution state -----------------------------------------------------------------
        rptr = Signal(range(MAX_FRAME_BYTES + 1))
        advance = Signal()
        m.d.comb += req_r.addr.eq(Mux(advance, rptr + 1, rptr))  # req_r.data is the byte at rptr
        with m.If(advance):
            m.d.sync += rptr.eq(rptr + 1)
        cur = req_r.data
        x_kind = Signal(3)
        x_strobe = Signal(4)
        x_addr = Signal(16)
        x_count = Signal(8)
        x_data = Signal(32)
        x_mask = Signal(32)
        x_limit = Signal(16)
        x_cycles = Signal(24)
        x_tries = Signal(16)
        x_wait = Signal(24)
        res_ptr = Signal(range(MAX_RESULTS + 1))
        aw_pending = Signal()
        w_pending = Signal()
        ar_pending = Signal()
        out_of_range = Signal()
        m.d.comb += out_of_range.eq(x_addr[self.addr_width:] != 0)
        m.d.comb += [
            bus.awaddr.eq(x_addr[:self.addr_width]), bus.araddr.eq(x_addr[:self.addr_width]),
            bus.wdata.eq(x_data), bus.wstrb.eq(x_strobe), bus.awprot.eq(0), bus.arprot.eq(0),
            bus.awvalid.eq(aw_pending), bus.wvalid.eq(w_pending), bus.arvalid.eq(ar_pending),
            res_w.addr.eq(res_ptr), res_w.data.eq(bus.rdata),
        ]
        with m.If(bus.awvalid & bus.awready):
            m.d.sync += aw_pending.eq(0)
        with m.If(bus.wvalid & bus.wready):
            m.d.sync += w_pending.eq(0)
        with m.If(bus.arvalid & bus.arready):
            m.d.sync += ar_pending.eq(0)

        # -- answer state --------------------------------------------------------------------
        tx_word = Signal(range(MAX_RESULTS + 1))
        tx_byte = Signal(2)
        m.d.comb += res_r.addr.eq(tx_word)
        sent = Signal()
        m.d.comb += sent.eq(self.tx_valid & self.tx_ready)
        tx_crc_next = crc16_update(crc, self.tx_data)

        def finish(code):
            m.d.sync += [status.eq(code), tx_word.eq(0), tx_byte.eq(0)]
            m.next = "A_SYNC"

        def reject(code):
            m.d.sync += status.eq(code)
            m.next = "DISCARD"

        receiving_states = ("SEQ", "LEN0", "LEN1", "BODY", "CRC0", "CRC1")
        with m.FSM():
            with m.State("HUNT"):
                m.d.sync += [rptr.eq(0), done.eq(0), res_ptr.eq(0)]
                with m.If(self.rx_valid & (byte == SYNC_REQUEST)):
                    m.d.sync += [crc.eq(0xFFFF), seq.eq(0)]
                    m.next = "SEQ"
            for name in receiving_states:
                with m.State(name):
                    m.d.comb += self.receiving.eq(1)
                    with m.If(self.rx_error):
                        reject(STATUS_BAD_CRC)
                    with m.Elif(quiet_stb):
                        m.d.comb += self.rejected.eq(1)
                        finish(STATUS_TIMEOUT)
                    with m.Elif(self.rx_valid):
                        m.d.sync += crc.eq(crc_next)
                        if name == "SEQ":
                            m.d.sync += seq.eq(byte)
                            m.next = "LEN0"
                        elif name == "LEN0":
                            m.d.sync += length.eq(byte)
                            m.next = "LEN1"
                        elif name == "LEN1":
                            total = Cat(length[:8], byte)
                            m.d.sync += [length.eq(total), wptr.eq(0), kind.eq(0), pos.eq(0), results.eq(0)]
                            with m.If((total == 0) | (total > MAX_FRAME_BYTES)):
                                reject(STATUS_BAD_LENGTH)
                            with m.Else():
                                m.next = "BODY"
                        elif name == "BODY":
                            m.d.comb += req_w.en.eq(1)
                            m.d.sync += [wptr.eq(wptr + 1), pos.eq(pos + 1)]
                            with m.If(kind == 0):
                                m.d.sync += kind.eq(Mux(byte == OP_READ, 1, Mux(byte == OP_IDLE, 3,
                                                    Mux(byte == OP_POLL, 4, 2))))
                            with m.If(pos == 3):
                                m.d.sync += count_byte.eq(byte)
                                with m.If(kind == 1):
                                    m.d.sync += results.eq(results + byte)
                                with m.If(kind == 2):
                                    m.d.sync += data_left.eq(Cat(Const(0, 2), byte))
                            with m.If(pos == 7):
                                m.d.sync += count_byte.eq(byte)
                            with m.If((kind == 2) & (pos == 4)):
                                m.d.sync += [data_left.eq(data_left - 1), pos.eq(4)]
                            with m.If((kind == 4) & (pos == 8)):
                                m.d.sync += results.eq(results + 1)
                            with m.If(cmd_end):
                                m.d.sync += [kind.eq(0), pos.eq(0)]
                            with m.If(cmd_bad):
                                reject(STATUS_BAD_COMMAND)
                            with m.Elif(wptr + 1 == length):
                                with m.If(cmd_end):
                                    m.next = "CRC0"
                                with m.Else():
                                    reject(STATUS_BAD_COMMAND)  # the last command is cut off
                        elif name == "CRC0":
                            m.next = "CRC1"
                        else:
                            with m.If(crc_next == 0):
                                m.next = "X_OP"
                            with m.Else():
                                reject(STATUS_BAD_CRC)
            with m.State("DISCARD"):
                m.d.comb += self.receiving.eq(1)
                with m.If(quiet):
                    m.d.comb += self.rejected.eq(1)
                    finish(status)

            # -- execution ---------------------------------------------------------------------
            with m.State("X_OP"):
                m.d.comb += self.busy.eq(1)
                with m.If(rptr == length):
                    m.d.comb += self.frames.eq(1)
                    finish(AxiResp.OKAY)
                with m.Else():
                    m.d.comb += advance.eq(1)
                    m.d.sync += [x_strobe.eq(cur[:4]), x_tries.eq(0), x_wait.eq(0)]
                    with m.If(cur == OP_READ):
                        m.d.sync += x_kind.eq(1)
                        m.next = "X_A0"
                    with m.Elif(cur == OP_IDLE):
                        m.d.sync += x_kind.eq(3)
                        m.next = "X_C0"
                    with m.Elif(cur == OP_POLL):
                        m.d.sync += x_kind.eq(4)
                        m.next = "X_A0"
                    with m.Else():
                        m.d.sync += x_kind.eq(2)
                        m.next = "X_A0"

            def take(state, target, nxt, lo=None):
                with m.State(state):
                    m.d.comb += [self.busy.eq(1), advance.eq(1)]
                    if lo is None:
                        m.d.sync += target.eq(cur)
                    else:
                        m.d.sync += target[lo:lo + 8].eq(cur)
                    if callable(nxt):
                        nxt()
                    else:
                        m.next = nxt

            def after_addr():
                with m.If(x_kind == 4):
                    m.next = "X_M0"
                with m.Else():
                    m.next = "X_N"

            take("X_A0", x_addr, "X_A1", 0)
            take("X_A1", x_addr, after_addr, 8)

            def after_count():
                with m.If(x_kind == 1):
                    m.next = "X_READ"
                with m.Else():
                    m.next = "X_D0"

            take("X_N", x_count, after_count)
            for i in range(4):
                take(f"X_D{i}", x_data, f"X_D{i + 1}" if i < 3 else "X_WRITE", 8 * i)
                take(f"X_M{i}", x_mask, f"X_M{i + 1}" if i < 3 else "X_L0", 8 * i)
            take("X_L0", x_limit, "X_L1", 0)
            take("X_L1", x_limit, "X_C0", 8)
            take("X_C0", x_cycles, "X_C1", 0)
            take("X_C1", x_cycles, "X_C2", 8)

            def after_cycles():
                with m.If(x_kind == 3):
                    m.next = "X_IDLE"
                with m.Else():
                    m.next = "X_READ"

            take("X_C2", x_cycles, after_cycles, 16)

            with m.State("X_IDLE"):
                m.d.comb += self.busy.eq(1)
                with m.If(x_wait == x_cycles):
                    m.d.sync += [x_wait.eq(0), done.eq(done + 1)]
                    m.next = "X_OP"
                with m.Else():
                    m.d.sync += x_wait.eq(x_wait + 1)

            with m.State("X_WRITE"):  # issue one write
                m.d.comb += self.busy.eq(1)
                with m.If(out_of_range):
                    finish(AxiResp.DECERR)
                with m.Else():
                    m.d.sync += [aw_pending.eq(1), w_pending.eq(1)]
                    m.next = "X_B"
            with m.State("X_B"):
                m.d.comb += [self.busy.eq(1), bus.bready.eq(~aw_pending & ~w_pending)]
                with m.If(bus.bvalid & bus.bready):
                    with m.If(bus.bresp != AxiResp.OKAY):
                        finish(bus.bresp)
                    with m.Else():
                        m.d.sync += [done.eq(done + 1), x_addr.eq(x_addr + 4), x_count.eq(x_count - 1)]
                        with m.If(x_count == 1):
                            m.next = "X_OP"
                        with m.Else():
                            m.next = "X_D0"

            with m.State("X_READ"):  # issue one read (of a read command or a poll)
                m.d.comb += self.busy.eq(1)
                with m.If(out_of_range):
                    finish(AxiResp.DECERR)
                with m.Else():
                    m.d.sync += ar_pending.eq(1)
                    m.next = "X_R"
            with m.State("X_R"):
                m.d.comb += [self.busy.eq(1), bus.rready.eq(~ar_pending)]
                with m.If(bus.rvalid & bus.rready):
                    with m.If(bus.rresp != AxiResp.OKAY):
                        finish(bus.rresp)
                    with m.Elif(x_kind == 1):
                        m.d.comb += res_w.en.eq(1)
                        m.d.sync += [res_ptr.eq(res_ptr + 1), done.eq(done + 1), x_addr.eq(x_addr + 4),
                                     x_count.eq(x_count - 1)]
                        with m.If(x_count == 1):
                            m.next = "X_OP"
                        with m.Else():
                            m.next = "X_READ"
                    with m.Elif(((bus.rdata & x_mask) != 0) | (x_tries + 1 == x_limit)):
                        m.d.comb += res_w.en.eq(1)
                        m.d.sync += [res_ptr.eq(res_ptr + 1), done.eq(done + 1)]
                        m.next = "X_OP"
                    with m.Else():
                        m.d.sync += [x_tries.eq(x_tries + 1), x_wait.eq(0)]
                        m.next = "X_POLL_WAIT"
            with m.State("X_POLL_WAIT"):
                m.d.comb += self.busy.eq(1)
                with m.If(x_wait == x_cycles):
                    m.next = "X_READ"
                with m.Else():
                    m.d.sync += x_wait.eq(x_wait + 1)

            # -- answer ------------------------------------------------------------------------
            def send(state, value, nxt, update_crc=True):
                with m.State(state):
                    m.d.comb += [self.busy.eq(1), self.tx_valid.eq(1), self.tx_data.eq(value)]
                    with m.If(sent):
                        if update_crc:
                            m.d.sync += crc.eq(tx_crc_next)
                        if callable(nxt):
                            nxt()
                        else:
                            m.next = nxt

            with m.State("A_SYNC"):
                m.d.comb += [self.busy.eq(1), self.tx_valid.eq(1), self.tx_data.eq(SYNC_ANSWER)]
                with m.If(sent):
                    m.d.sync += crc.eq(0xFFFF)
                    m.next = "A_SEQ"
            send("A_SEQ", seq, "A_STATUS")
            send("A_STATUS", status, "A_DONE0")
            send("A_DONE0", done[:8], "A_DONE1")

            def after_header():
                with m.If(res_ptr == 0):
                    m.next = "A_CRC0"
                with m.Else():
                    m.next = "A_WORD"

            send("A_DONE1", done[8:], after_header)

            def next_byte():
                m.d.sync += tx_byte.eq(tx_byte + 1)
                with m.If(tx_byte == 3):
                    m.d.sync += tx_word.eq(tx_word + 1)
                    with m.If(tx_word + 1 == res_ptr):
                        m.next = "A_CRC0"

            send("A_WORD", res_r.data.word_select(tx_byte, 8), next_byte)
            send("A_CRC0", crc[8:], "A_CRC1", update_crc=False)
            send("A_CRC1", crc[:8], "HUNT", update_crc=False)
        return m
