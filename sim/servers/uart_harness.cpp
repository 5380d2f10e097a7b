// UART harness: the Verilated board core (nanoquote.hw.gateware.board.BoardCore: UART,
// host link, AXI4-Lite master, register block, pipeline) with its UART pins driven bit by
// bit, its bytes to and from a pseudo-terminal (nanoquote.sim.servers.board_server starts
// it with the pty's master side; a host opens the slave side as a serial port).
//
// Usage: uart_harness CYCLES_PER_BIT PTY_FD [+verilator+... plusargs]
//   start:  after the reset, one line "nanoquote-uart <cycles per bit>" on stdout.
//   end:    at the end of stdin (the parent closes it), a line of figures on stderr (bytes
//           each way, cycles simulated), exit status 0.
//
// Every byte read from the pty is sent on `rx` as an 8N1 character of exactly
// CYCLES_PER_BIT cycles a bit, back to back while bytes are waiting; `tx` is sampled every
// cycle and decoded (start-bit edge, then the middle of each bit), each byte written to
// the pty. Simulated time: the clock runs while bytes go in or out and while the link is
// busy (executing or answering a frame). When the host's bytes stop in the middle of a
// frame (the core says `receiving`), the harness waits up to kGapMs of wall time for
// more: a gap that short takes no simulated time (a host's write may reach the pty in
// pieces); after a longer one the clock runs until the link stops receiving (its
// receiver timeout answers the frame) or bytes come. With the link quiet the harness
// sleeps until the host writes: simulated time stands still while the host thinks.

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <vector>

#include "verilated.h"
#include "Vboard.h"  // the board core, verilated with --prefix Vboard

namespace {

constexpr int kGapMs = 50;

class Board {
public:
    Board(Vboard* top, int cycles_per_bit) : top_(top), bit_(cycles_per_bit) {}

    void reset() {
        top_->rx = 1;
        top_->rst = 1;
        for (int k = 0; k < 4; ++k) cycle();
        top_->rst = 0;
        for (int k = 0; k < 4; ++k) cycle();
        out_.clear();
    }

    // One clock cycle; decode `tx`.
    void cycle() {
        top_->clk = 0; top_->eval();
        top_->clk = 1; top_->eval();
        ++cycles_;
        const bool tx = top_->tx;
        if (tx_phase_ < 0) {
            if (!tx) { tx_phase_ = 0; tx_timer_ = bit_ / 2; }  // the start bit's edge
            return;
        }
        if (--tx_timer_ > 0) return;
        tx_timer_ = bit_;
        if (tx_phase_ == 0) {  // middle of the start bit
            if (tx) { tx_phase_ = -1; return; }  // a glitch
        } else if (tx_phase_ <= 8) {
            tx_byte_ = static_cast<uint8_t>((tx_byte_ >> 1) | (tx ? 0x80 : 0));
        } else {  // middle of the stop bit
            if (tx) out_.push_back(tx_byte_);
            else ++framing_errors_;
            tx_phase_ = -1;
            // back to hunting half a bit early: the next start bit's edge is seen
            return;
        }
        ++tx_phase_;
    }

    void send(uint8_t byte) {
        const int bits[10] = {0, byte & 1, byte >> 1 & 1, byte >> 2 & 1, byte >> 3 & 1, byte >> 4 & 1,
                              byte >> 5 & 1, byte >> 6 & 1, byte >> 7 & 1, 1};
        for (int b : bits) {
            top_->rx = b;
            for (int k = 0; k < bit_; ++k) cycle();
        }
        ++bytes_in_;
    }

    void idle_bit() {
        top_->rx = 1;
        for (int k = 0; k < bit_; ++k) cycle();
    }

    bool busy() const { return top_->busy || tx_phase_ >= 0; }
    bool receiving() const { return top_->receiving; }
    std::vector<uint8_t>& out() { return out_; }
    uint64_t cycles() const { return cycles_; }
    uint64_t bytes_in() const { return bytes_in_; }
    uint64_t framing_errors() const { return framing_errors_; }

private:
    Vboard* top_;
    int bit_;
    int tx_phase_ = -1, tx_timer_ = 0;
    uint8_t tx_byte_ = 0;
    std::vector<uint8_t> out_;
    uint64_t cycles_ = 0, bytes_in_ = 0, framing_errors_ = 0;
};

// Bytes waiting on fd into `queue` (waiting up to `timeout_ms`, -1: until some come or
// stdin ends). False when stdin has ended.
bool gather(int fd, std::deque<uint8_t>& queue, int timeout_ms) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {0, POLLIN, 0}};
    const int n = poll(fds, 2, timeout_ms);
    if (n < 0) return errno == EINTR;
    if (fds[1].revents) {
        char c;
        if (read(0, &c, 1) <= 0) return false;
    }
    if (fds[0].revents & POLLIN) {
        uint8_t buffer[4096];
        const ssize_t got = read(fd, buffer, sizeof buffer);
        for (ssize_t k = 0; k < got; ++k) queue.push_back(buffer[k]);
    }
    // POLLHUP: no host has the slave side open (the parent keeps it open, so only briefly)
    return true;
}

bool flush(int fd, std::vector<uint8_t>& out, uint64_t& bytes_out) {
    std::size_t at = 0;
    while (at < out.size()) {
        const ssize_t put = write(fd, out.data() + at, out.size() - at);
        if (put < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return false;
        }
        at += static_cast<std::size_t>(put);
    }
    bytes_out += out.size();
    out.clear();
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3 || argv[1][0] == '+') {
        std::fprintf(stderr, "usage: %s CYCLES_PER_BIT PTY_FD [plusargs]\n", argv[0]);
        return 2;
    }
    const int bit = std::atoi(argv[1]);
    const int fd = std::atoi(argv[2]);
    if (bit < 4 || fd < 0) {
        std::fprintf(stderr, "uart_harness: bad cycles per bit %s or descriptor %s\n", argv[1], argv[2]);
        return 2;
    }
    auto context = std::make_unique<VerilatedContext>();
    context->commandArgs(argc, argv);
    auto top = std::make_unique<Vboard>(context.get());
    Board board(top.get(), bit);
    board.reset();
    std::printf("nanoquote-uart %d\n", bit);
    std::fflush(stdout);

    std::deque<uint8_t> queue;
    uint64_t bytes_out = 0;
    bool running = true;
    while (running) {
        if (!queue.empty()) {
            board.send(queue.front());
            queue.pop_front();
            if (queue.empty()) running = gather(fd, queue, 0);
        } else if (board.busy()) {
            board.idle_bit();
            if (!board.busy() && !flush(fd, board.out(), bytes_out)) break;
        } else if (board.receiving()) {
            running = gather(fd, queue, kGapMs);
            while (running && queue.empty() && board.receiving() && !board.busy()) {
                board.idle_bit();  // the host has stopped mid-frame: the receiver's timeout runs
                running = gather(fd, queue, 0);
            }
        } else {
            if (!flush(fd, board.out(), bytes_out)) break;
            running = gather(fd, queue, -1);
        }
    }
    flush(fd, board.out(), bytes_out);
    top->final();
    std::fprintf(stderr, "uart_harness: %llu bytes in, %llu bytes out, %llu cycles simulated, %llu framing errors\n",
                 static_cast<unsigned long long>(board.bytes_in()), static_cast<unsigned long long>(bytes_out),
                 static_cast<unsigned long long>(board.cycles()),
                 static_cast<unsigned long long>(board.framing_errors()));
    return 0;
}
