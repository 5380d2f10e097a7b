// Bulk conformance harness: the Verilated quote pipeline driven from shared memory,
// no Python per clock (nanoquote.sim.conformance.bulk builds and drives it).
//
// Usage: bulk_harness SLOT_FILE... [+verilator+... plusargs]
// Control on stdin/stdout, little-endian 32-bit words; the data in the slot files (mapped
// by both sides, so vectors and ladders are never copied through a pipe; with two slots
// the client fills one while the harness plays the other).
//   start:    the harness writes one line "nanoquote-bulk <in words> <cfg words> <out words> <slots>\n";
//             the client answers with the field tables of the update and ladder ports:
//             a count, then (bit offset, width) per field, for each port.
//   request:  magic 0x4e51424b, slot, segments S, vectors N, idle threshold, stall threshold,
//             seed low, seed high, corrupt vector (0xffffffff: none), corrupt bit,
//             file size low, file size high. The slot's file then holds, from offset 0:
//               S segments of 32-bit (cfg words..., position, live bid, live ask, armed, count);
//               at the next multiple of 8: the updates, 64-bit, field-major (N values of
//               the first field, then N of the next, ...);
//               after them: room for the ladders, 64-bit, field-major, N per field.
//   answer:   ladders M, extra ladders E, cycles low, cycles high (the ladders are in the file).
// Requests are answered in order.
// Every request starts from a hard reset, so a request is independent of the ones before.
// Idle (no offer) and back-pressure (o.ready low) happen when a xorshift draw is below the
// thresholds (probability * 2^32). The corrupt fields flip one bit of the ladder port's
// value for one vector: the self-test of the comparison, never used in a normal run.

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "verilated.h"
#include "Vbulk.h"  // the pipeline, verilated with --prefix Vbulk

namespace {

constexpr uint32_t kMagic = 0x4e51424bu;
constexpr uint32_t kNone = 0xffffffffu;
constexpr int kQuietLimit = 10000;  // cycles without a ladder: the pipeline hung
constexpr int kDrainCycles = 64;    // cycles after the last expected ladder, for extras

template <std::size_t N>
constexpr std::size_t words_of(const VlWide<N>&) { return N; }
template <typename T>
constexpr std::size_t words_of(const T&) { return (sizeof(T) + 3) / 4; }

template <std::size_t N>
void put(VlWide<N>& port, const uint32_t* src) {
    for (std::size_t k = 0; k < N; ++k) port[k] = src[k];
}
template <typename T>
void put(T& port, const uint32_t* src) {
    uint64_t v = src[0];
    if (sizeof(T) > 4) v |= static_cast<uint64_t>(src[1]) << 32;
    port = static_cast<T>(v);
}

template <std::size_t N>
void get(const VlWide<N>& port, uint32_t* dst) {
    for (std::size_t k = 0; k < N; ++k) dst[k] = port[k];
}
template <typename T>
void get(const T& port, uint32_t* dst) {
    const uint64_t v = port;
    dst[0] = static_cast<uint32_t>(v);
    if (sizeof(T) > 4) dst[1] = static_cast<uint32_t>(v >> 32);
}

struct Field {  // a field of a port: bit offset and width (1..64)
    uint32_t offset, width;
    uint64_t mask() const { return width == 64 ? ~0ULL : (1ULL << width) - 1; }
};

// Ports as little-endian bytes with 16 bytes of slack, so any field (offset % 8 + width
// <= 71 bits) is one unaligned 128-bit load away.
constexpr std::size_t kSlack = 16;

void insert(uint8_t* port, const Field& f, uint64_t value) {  // into a zeroed port
    unsigned __int128 v;
    std::memcpy(&v, port + f.offset / 8, sizeof v);
    v |= static_cast<unsigned __int128>(value & f.mask()) << (f.offset % 8);
    std::memcpy(port + f.offset / 8, &v, sizeof v);
}

uint64_t extract(const uint8_t* port, const Field& f) {
    unsigned __int128 v;
    std::memcpy(&v, port + f.offset / 8, sizeof v);
    return static_cast<uint64_t>(v >> (f.offset % 8)) & f.mask();
}

bool read_words(uint32_t* dst, std::size_t n) {
    return std::fread(dst, sizeof(uint32_t), n, stdin) == n;
}

struct Rng {  // xorshift64*: the handshake pattern, seeded per request
    uint64_t s;
    uint32_t next() {
        s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
        return static_cast<uint32_t>((s * 0x2545F4914F6CDD1DULL) >> 32);
    }
};

struct SharedFile {  // the client's data file, mapped (again when it grows)
    int fd = -1;
    uint8_t* base = nullptr;
    std::size_t size = 0;
    bool map(std::size_t want) {
        if (base && size == want) return true;
        if (base) munmap(base, size);
        base = nullptr;
        struct stat st;
        if (fstat(fd, &st) != 0 || static_cast<std::size_t>(st.st_size) < want) return false;
        void* p = mmap(nullptr, want, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) return false;
        base = static_cast<uint8_t*>(p);
        size = want;
        return true;
    }
};

bool read_table(std::vector<Field>& table, std::size_t words) {
    uint32_t n = 0;
    if (!read_words(&n, 1)) return false;
    table.resize(n);
    for (Field& f : table) {
        if (!read_words(&f.offset, 1) || !read_words(&f.width, 1)) return false;
        if (f.width < 1 || f.width > 64 || f.offset + f.width > 32 * words) {
            std::fprintf(stderr, "field (%u, %u) outside a %zu-word port\n", f.offset, f.width, words);
            return false;
        }
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<SharedFile> slots;
    for (int k = 1; k < argc && argv[k][0] != '+'; ++k) {
        slots.emplace_back();
        slots.back().fd = open(argv[k], O_RDWR);
        if (slots.back().fd < 0) { std::perror(argv[k]); return 2; }
    }
    if (slots.empty()) { std::fprintf(stderr, "usage: %s SLOT_FILE... [plusargs]\n", argv[0]); return 2; }
    auto context = std::make_unique<VerilatedContext>();
    context->commandArgs(argc, argv);  // +verilator+rand+reset+2, +verilator+seed+N
    auto top = std::make_unique<Vbulk>(context.get());
    const std::size_t in_w = words_of(top->i___05Fpayload);
    const std::size_t cfg_w = words_of(top->cfg);
    const std::size_t out_w = words_of(top->o___05Fpayload);
    std::printf("nanoquote-bulk %zu %zu %zu %zu\n", in_w, cfg_w, out_w, slots.size());
    std::fflush(stdout);

    std::vector<Field> in_fields, out_fields;
    if (!read_table(in_fields, in_w) || !read_table(out_fields, out_w)) return 2;
    const std::size_t n_in = in_fields.size(), n_out = out_fields.size();
    const std::size_t seg_w = cfg_w + 5;
    std::vector<uint32_t> in_port(in_w + kSlack / 4), out_port(out_w + kSlack / 4);
    uint8_t* in_bytes = reinterpret_cast<uint8_t*>(in_port.data());
    const uint8_t* out_bytes = reinterpret_cast<const uint8_t*>(out_port.data());

    uint32_t head[12];
    while (read_words(head, 12)) {
        if (head[0] != kMagic || head[1] >= slots.size()) {
            std::fprintf(stderr, "bad request magic or slot\n");
            return 2;
        }
        SharedFile& shared = slots[head[1]];
        const std::size_t n_seg = head[2], n_vec = head[3];
        const uint32_t idle = head[4], stall = head[5];
        Rng rng{(static_cast<uint64_t>(head[7]) << 32 | head[6]) | 1};
        const uint32_t corrupt_at = head[8], corrupt_bit = head[9];
        const std::size_t file_size = static_cast<std::size_t>(head[11]) << 32 | head[10];
        const std::size_t upd_at = (n_seg * seg_w * 4 + 7) / 8 * 8;
        const std::size_t out_at = upd_at + n_vec * n_in * 8;
        if (out_at + n_vec * n_out * 8 > file_size || !shared.map(file_size)) {
            std::fprintf(stderr, "shared file too small or not mappable\n");
            return 2;
        }
        const uint32_t* segs = reinterpret_cast<const uint32_t*>(shared.base);
        const uint64_t* updates = reinterpret_cast<const uint64_t*>(shared.base + upd_at);
        uint64_t* outputs = reinterpret_cast<uint64_t*>(shared.base + out_at);

        auto tick = [&] { top->clk = 0; top->eval(); top->clk = 1; top->eval(); };
        top->rst = 1; top->i___05Fvalid = 0; top->o___05Fready = 0; top->soft_reset = 0;
        tick(); tick();
        top->rst = 0;
        tick();

        uint64_t cycles = 0;
        std::size_t received = 0, extra = 0, seg = 0, seg_end = 0, pos = 0;
        bool offered = false, started = false;
        int quiet = 0, drain = 0;
        while (quiet < kQuietLimit && drain < kDrainCycles) {
            if (!offered) {
                while (pos >= seg_end && (started ? seg + 1 : 0) < n_seg) {
                    seg = started ? seg + 1 : 0;
                    started = true;
                    const uint32_t* s = &segs[seg * seg_w];
                    put(top->cfg, s);
                    top->position = static_cast<uint16_t>(s[cfg_w] & 0xffffu);
                    top->live_bid_qty = s[cfg_w + 1];
                    top->live_ask_qty = s[cfg_w + 2];
                    top->armed = s[cfg_w + 3] & 1u;
                    seg_end = pos + s[cfg_w + 4];
                }
                if (pos < seg_end && !(idle && rng.next() < idle)) {
                    std::memset(in_bytes, 0, 4 * in_w);
                    for (std::size_t f = 0; f < n_in; ++f) {
                        insert(in_bytes, in_fields[f], updates[f * n_vec + pos]);
                    }
                    put(top->i___05Fpayload, in_port.data());
                    offered = true;
                }
                top->i___05Fvalid = offered;
            }
            top->o___05Fready = !(stall && rng.next() < stall);
            top->clk = 0;
            top->eval();
            const bool took_in = offered && top->i___05Fready;
            if (top->o___05Fready && top->o___05Fvalid) {
                quiet = 0;
                if (received < n_vec) {
                    get(top->o___05Fpayload, out_port.data());
                    for (std::size_t f = 0; f < n_out; ++f) {
                        outputs[f * n_vec + received] = extract(out_bytes, out_fields[f]);
                    }
                    ++received;
                } else {
                    ++extra;
                }
            } else {
                ++quiet;
            }
            top->clk = 1;
            top->eval();
            ++cycles;
            if (took_in) { offered = false; ++pos; }
            if (received >= n_vec && pos >= n_vec) ++drain;
        }
        if (corrupt_at != kNone && corrupt_at < received) {
            for (std::size_t f = 0; f < n_out; ++f) {
                const Field& fd = out_fields[f];
                if (corrupt_bit >= fd.offset && corrupt_bit < fd.offset + fd.width) {
                    outputs[f * n_vec + corrupt_at] ^= 1ULL << (corrupt_bit - fd.offset);
                }
            }
        }
        const uint32_t answer[4] = {static_cast<uint32_t>(received), static_cast<uint32_t>(extra),
                                    static_cast<uint32_t>(cycles), static_cast<uint32_t>(cycles >> 32)};
        if (std::fwrite(answer, sizeof(uint32_t), 4, stdout) != 4) return 3;
        std::fflush(stdout);
    }
    top->final();
    return 0;
}
