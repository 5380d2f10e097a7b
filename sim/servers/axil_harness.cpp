// AXI4-Lite harness: the Verilated top performing register accesses in C++, with no
// Python per clock (nanoquote.sim.servers.verilator_server builds it with the top and
// drives it over a pipe).
//
// Usage: axil_harness ADDR_WIDTH [--waves FILE HALF_PERIOD] [+verilator+... plusargs]
// --waves (a build with NANOQUOTE_TRACE_FST or NANOQUOTE_TRACE_VCD defined, and Verilator's
// --trace-fst or --trace) dumps every signal at every clock edge to FILE, time advancing
// HALF_PERIOD units (Verilator's default 1 ps) per edge; a build without tracing refuses it.
// Control on stdin/stdout, little-endian 32-bit words.
//   start:    after the reset, the harness writes one line "nanoquote-axil <addr width>\n".
//   request:  a count N, then N operations of five words: kind, address, value, arg,
//             cycles (the kinds and fields of nanoquote.host.device.wire's batch records:
//             0 read, 1 write (strobe in arg), 2 idle (cycles), 3 poll (mask in value,
//             limit in arg, cycles between reads)).
//   answer:   the response code, a count M, then M result words (a read's or poll's
//             value, 0 for a write or an idle). OKAY: every operation was performed,
//             M = N; an AXI error code: operation M was answered with it, the M before it
//             were performed, it and the rest were not.
// The operations follow nanoquote.host.device.batch.batch_steps: a poll reads until a bit
// of its mask is set, at most `limit` times, idling `cycles` between reads, and gives up
// without an error. An address beyond the bus (>= 2^ADDR_WIDTH) answers DECERR without
// an access, as the Python servers' request loop does.
//
// One transaction at a time (the manager of nanoquote.hw.gateware.axil's slave): AW and W
// together with bready high, AR with rready high, each handshake sampled at the clock
// edge (the values the edge sees) and the valid dropped after it, any byte strobe as
// is. The ladder stream's ready is tied high and the market-data stream is idle (a
// register-only deployment, as the cocotb TopBench ties them). A transaction without a
// response within kMaxCycles is a hung bus: the harness says so on stderr and exits
// with status 3. At the end of its input it says how many requests and cycles it
// simulated (on stderr) and exits with status 0.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "verilated.h"
#include "Vaxil.h"  // the top, verilated with --prefix Vaxil
#if defined(NANOQUOTE_TRACE_FST)
#include "verilated_fst_c.h"
using Trace = VerilatedFstC;
#elif defined(NANOQUOTE_TRACE_VCD)
#include "verilated_vcd_c.h"
using Trace = VerilatedVcdC;
#else
struct Trace {  // a build without tracing: never opened
    void dump(uint64_t) {}
    void close() {}
};
#endif

namespace {

constexpr uint32_t kRead = 0, kWrite = 1, kIdle = 2, kPoll = 3;
constexpr uint32_t kOkay = 0, kDecErr = 3;
constexpr int kMaxCycles = 1000;  // a few cycles are a transaction; this many, a hung bus
constexpr uint32_t kMaxOps = 1024;  // nanoquote.host.device.batch.MAX_BATCH_OPS

struct Op {
    uint32_t kind, address, value, arg, cycles;
};

class Port {
public:
    Port(Vaxil* top, uint32_t addr_width, Trace* trace, uint64_t half_period)
        : top_(top), limit_(uint64_t{1} << addr_width), trace_(trace), half_period_(half_period) {}

    void reset() {  // TopBench.reset: rst high for 4 edges, then 2 edges
        top_->i___05Fvalid = 0;
        top_->o___05Fready = 1;
        top_->axil___05Fawprot = 0;
        top_->axil___05Farprot = 0;
        top_->axil___05Fawvalid = top_->axil___05Fwvalid = top_->axil___05Fbready = 0;
        top_->axil___05Farvalid = top_->axil___05Frready = 0;
        top_->rst = 1;
        idle(4);
        top_->rst = 0;
        idle(2);
    }

    void idle(uint64_t cycles) {
        cycles_ += cycles;
        for (uint64_t k = 0; k < cycles; ++k) {
            edge(0);
            edge(1);
        }
    }

    uint32_t write(uint32_t address, uint32_t value, uint32_t strobe) {
        if (address >= limit_) return kDecErr;
        top_->axil___05Fawaddr = address;
        top_->axil___05Fwdata = value;
        top_->axil___05Fwstrb = strobe & 0xf;
        top_->axil___05Fawvalid = top_->axil___05Fwvalid = top_->axil___05Fbready = 1;
        bool aw_wait = true, w_wait = true;
        for (int k = 0; k < kMaxCycles; ++k) {
            ++cycles_;
            edge(0);  // the values the edge samples
            const bool awready = top_->axil___05Fawready, wready = top_->axil___05Fwready;
            const bool bvalid = top_->axil___05Fbvalid;
            const uint32_t bresp = top_->axil___05Fbresp;
            edge(1);
            if (aw_wait && awready) { aw_wait = false; top_->axil___05Fawvalid = 0; }
            if (w_wait && wready) { w_wait = false; top_->axil___05Fwvalid = 0; }
            if (!aw_wait && !w_wait && bvalid) {
                top_->axil___05Fbready = 0;
                return bresp;
            }
        }
        hung("write", address);
    }

    uint32_t read(uint32_t address, uint32_t& data) {
        data = 0;
        if (address >= limit_) return kDecErr;
        top_->axil___05Faraddr = address;
        top_->axil___05Farvalid = top_->axil___05Frready = 1;
        bool ar_wait = true;
        for (int k = 0; k < kMaxCycles; ++k) {
            ++cycles_;
            edge(0);
            const bool arready = top_->axil___05Farready, rvalid = top_->axil___05Frvalid;
            const uint32_t rresp = top_->axil___05Frresp, rdata = top_->axil___05Frdata;
            edge(1);
            if (ar_wait && arready) { ar_wait = false; top_->axil___05Farvalid = 0; }
            if (rvalid) {
                top_->axil___05Frready = 0;
                if (rresp == kOkay) data = rdata;
                return rresp;
            }
        }
        hung("read", address);
    }

    uint64_t cycles() const { return cycles_; }

private:
    void edge(uint8_t clk) {  // one half period: the clock's new level, evaluated (and dumped)
        top_->clk = clk;
        top_->eval();
        if (trace_ != nullptr) trace_->dump(time_);
        time_ += half_period_;
    }

    [[noreturn]] void hung(const char* what, uint32_t address) {
        std::fprintf(stderr, "axil_harness: %s of %#06x got no response in %d cycles\n", what, address, kMaxCycles);
        if (trace_ != nullptr) trace_->close();  // the waves up to the hang are what explain it
        std::exit(3);
    }

    Vaxil* top_;
    uint64_t limit_;
    Trace* trace_;
    uint64_t half_period_;
    uint64_t time_ = 0;
    uint64_t cycles_ = 0;
};

bool read_words(uint32_t* dst, std::size_t n) {
    return std::fread(dst, sizeof(uint32_t), n, stdin) == n;
}

// Perform `ops` in order up to the first error; the response and the results so far.
uint32_t perform(Port& port, const std::vector<Op>& ops, std::vector<uint32_t>& results) {
    results.clear();
    for (const Op& op : ops) {
        uint32_t value = 0, resp = kOkay;
        if (op.kind == kRead) {
            resp = port.read(op.address, value);
        } else if (op.kind == kWrite) {
            resp = port.write(op.address, op.value, op.arg);
        } else if (op.kind == kIdle) {
            port.idle(op.cycles);
        } else {  // a poll
            resp = port.read(op.address, value);
            for (uint32_t k = 1; resp == kOkay && k < op.arg && !(value & op.value); ++k) {
                port.idle(op.cycles);
                resp = port.read(op.address, value);
            }
        }
        if (resp != kOkay) return resp;
        results.push_back(value);
    }
    return kOkay;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || argv[1][0] == '+') {
        std::fprintf(stderr, "usage: %s ADDR_WIDTH [plusargs]\n", argv[0]);
        return 2;
    }
    const uint32_t addr_width = static_cast<uint32_t>(std::strtoul(argv[1], nullptr, 10));
    if (addr_width < 3 || addr_width > 32) {
        std::fprintf(stderr, "address width %s out of range\n", argv[1]);
        return 2;
    }
    std::unique_ptr<Trace> trace;
    uint64_t half_period = 1;
    if (argc >= 3 && std::string(argv[2]) == "--waves") {
        if (argc < 5) {
            std::fprintf(stderr, "--waves needs a file and a half period\n");
            return 2;
        }
        half_period = std::strtoull(argv[4], nullptr, 10);
#if defined(NANOQUOTE_TRACE_FST) || defined(NANOQUOTE_TRACE_VCD)
        trace = std::make_unique<Trace>();
#else
        std::fprintf(stderr, "this harness was built without tracing: no --waves\n");
        return 2;
#endif
    }
    auto context = std::make_unique<VerilatedContext>();
    context->commandArgs(argc, argv);  // +verilator+rand+reset+2, +verilator+seed+N
    if (trace) context->traceEverOn(true);  // before the model exists
    auto top = std::make_unique<Vaxil>(context.get());
#if defined(NANOQUOTE_TRACE_FST) || defined(NANOQUOTE_TRACE_VCD)
    if (trace) {
        top->trace(trace.get(), 99);
        trace->open(argv[3]);
        if (!trace->isOpen()) {
            std::fprintf(stderr, "cannot write waves to %s\n", argv[3]);
            return 2;
        }
    }
#endif
    Port port(top.get(), addr_width, trace.get(), half_period);
    port.reset();
    std::printf("nanoquote-axil %u\n", addr_width);
    std::fflush(stdout);

    std::vector<Op> ops;
    std::vector<uint32_t> results, answer;
    uint32_t count = 0;
    uint64_t requests = 0;
    while (read_words(&count, 1)) {
        ++requests;
        if (count > kMaxOps) {
            std::fprintf(stderr, "axil_harness: a request of %u operations (at most %u)\n", count, kMaxOps);
            return 2;
        }
        ops.resize(count);
        for (Op& op : ops) {
            uint32_t w[5];
            if (!read_words(w, 5)) return 2;
            op = Op{w[0], w[1], w[2], w[3], w[4]};
            if (op.kind > kPoll) {
                std::fprintf(stderr, "axil_harness: unknown operation kind %u\n", op.kind);
                return 2;
            }
        }
        const uint32_t resp = perform(port, ops, results);
        answer.assign({resp, static_cast<uint32_t>(results.size())});
        answer.insert(answer.end(), results.begin(), results.end());
        if (std::fwrite(answer.data(), sizeof(uint32_t), answer.size(), stdout) != answer.size()) return 3;
        std::fflush(stdout);
    }
    top->final();
    if (trace) trace->close();
    // the one line of a normal run, where the server's output goes
    std::fprintf(stderr, "axil_harness: %llu requests, %llu cycles simulated\n",
                 static_cast<unsigned long long>(requests), static_cast<unsigned long long>(port.cycles()));
    return 0;
}
