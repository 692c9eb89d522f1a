// Native Verilator harness: streams a file of input beats through a generated top and writes
// the output beats, for runs of thousands of frames without Python in the loop.
//
// Build-time defines: IN_WORDS, OUT_WORDS (32-bit words per beat), LAST_BIT (bit index of the
// output's frame-end flag). Files are little-endian uint32 words, IN_WORDS or OUT_WORDS per beat.
//
// usage: Vsim INPUT.bin OUTPUT.bin IN_BEATS OUT_BEATS MAX_CYCLES [PROGRESS_FILE [IDLE BACKPRESSURE SEED]]
// With PROGRESS_FILE (or "-" for none), the number of frames out so far is written there every
// 65,536 cycles. IDLE and BACKPRESSURE are probabilities (0 to 1): of a cycle in which the input
// withholds a beat it has, and of a cycle in which the output is not ready; SEED seeds them.
// prints one JSON line: cycles, beats in/out, and the cycle of every frame's last beat (summarised).
//
// Assumption: the top's handshake outputs (i.ready, o.valid, o.payload) depend on its inputs only
// through registers. Then a cycle's handshakes are known from the outputs of the previous rising
// edge and the inputs about to be driven, and one evaluation per cycle is enough. The harness
// checks it: on the first 4,096 cycles and every 64th after, it evaluates the top with the new
// inputs before the edge, and stops with exit code 3 if any of those outputs changed.
#include "Vtop.h"
#include "verilated.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

// Verilator spells the "__" of Amaranth's port names as "___05F".
#define I_VALID i___05Fvalid
#define I_READY i___05Fready
#define I_PAYLOAD i___05Fpayload
#define O_VALID o___05Fvalid
#define O_READY o___05Fready
#define O_PAYLOAD o___05Fpayload

template <typename T> static void put(T &sig, const uint32_t *w) {
    uint64_t v = w[0];
    if (sizeof(T) > 4) v |= uint64_t(w[1]) << 32;
    sig = T(v);
}
template <std::size_t N> static void put(VlWide<N> &sig, const uint32_t *w) {
    for (std::size_t i = 0; i < N; i++) sig[i] = w[i];
}
template <typename T> static void get(const T &sig, uint32_t *w) {
    uint64_t v = uint64_t(sig);
    w[0] = uint32_t(v);
    if (sizeof(T) > 4) w[1] = uint32_t(v >> 32);
}
template <std::size_t N> static void get(const VlWide<N> &sig, uint32_t *w) {
    for (std::size_t i = 0; i < N; i++) w[i] = sig[i];
}

static std::vector<uint32_t> read_words(const char *path, size_t count) {
    std::vector<uint32_t> words(count);
    FILE *f = std::fopen(path, "rb");
    if (!f || std::fread(words.data(), 4, count, f) != count) {
        std::fprintf(stderr, "cannot read %zu words from %s\n", count, path);
        std::exit(2);
    }
    std::fclose(f);
    return words;
}

// splitmix64: a small, seedable, portable generator for the stall patterns
static uint64_t next_random(uint64_t &state) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static bool chance(uint64_t &state, double p) {
    return p > 0 && double(next_random(state) >> 11) * (1.0 / 9007199254740992.0) < p;
}

int main(int argc, char **argv) {
    if (argc != 6 && argc != 7 && argc != 10) {
        std::fprintf(stderr, "usage: %s INPUT.bin OUTPUT.bin IN_BEATS OUT_BEATS MAX_CYCLES "
                             "[PROGRESS_FILE [IDLE BACKPRESSURE SEED]]\n", argv[0]);
        return 2;
    }
    FILE *progress = argc >= 7 && std::string(argv[6]) != "-" ? std::fopen(argv[6], "w") : nullptr;
    const double idle = argc == 10 ? std::strtod(argv[7], nullptr) : 0.0;
    const double backpressure = argc == 10 ? std::strtod(argv[8], nullptr) : 0.0;
    uint64_t rng = argc == 10 ? std::strtoull(argv[9], nullptr, 10) : 0;
    const size_t in_beats = std::strtoull(argv[3], nullptr, 10);
    const size_t out_beats = std::strtoull(argv[4], nullptr, 10);
    const uint64_t max_cycles = std::strtoull(argv[5], nullptr, 10);
    std::vector<uint32_t> in = read_words(argv[1], in_beats * IN_WORDS);
    std::vector<uint32_t> out(out_beats * OUT_WORDS + 2 * OUT_WORDS, 0);
    std::vector<uint64_t> frame_ends;

    VerilatedContext ctx;
    Vtop top(&ctx);
    top.clk = 0;
    top.rst = 1;
    top.I_VALID = 0;
    top.O_READY = 0;
    for (int k = 0; k < 3; k++) {
        top.clk = 0; top.eval();
        top.clk = 1; top.eval();
    }
    top.rst = 0;

    // one evaluation per cycle; see the assumption at the top of this file
    size_t sent = 0, received = 0;
    uint64_t cycle = 0;
    top.clk = 0;
    top.eval();
    std::vector<uint32_t> before(OUT_WORDS), after(OUT_WORDS);
    bool offered = false;   // a beat offered and not yet taken stays offered, unchanged
    uint64_t withheld = 0, refused = 0;
    while (received < out_beats && cycle < max_cycles) {
        const bool offer = sent < in_beats && (offered || !chance(rng, idle));
        const bool ready = !chance(rng, backpressure);
        withheld += sent < in_beats && !offer;
        refused += !ready;
        const bool check = cycle < 4096 || (cycle & 63) == 0;
        const bool i_ready = top.I_READY, o_valid = top.O_VALID;
        if (check) get(top.O_PAYLOAD, before.data());
        top.I_VALID = offer;
        if (offer) put(top.I_PAYLOAD, &in[sent * IN_WORDS]);
        top.O_READY = ready;
        if (check) {
            top.eval();
            get(top.O_PAYLOAD, after.data());
            if (bool(top.I_READY) != i_ready || bool(top.O_VALID) != o_valid || before != after) {
                std::printf("{\"combinational_path\": true, \"cycle\": %llu}\n", (unsigned long long)cycle);
                return 3;
            }
        }
        const bool in_fire = offer && i_ready;
        const bool out_fire = o_valid && ready;
        if (out_fire) {
            uint32_t *w = &out[received * OUT_WORDS];
            get(top.O_PAYLOAD, w);
            if ((w[LAST_BIT / 32] >> (LAST_BIT % 32)) & 1u) frame_ends.push_back(cycle);
            received++;
        }
        top.clk = 1;
        top.eval();
        top.clk = 0;
        top.eval();
        if (in_fire) sent++;
        offered = offer && !in_fire;
        cycle++;
        if (progress && (cycle & 0xFFFF) == 0) {
            std::rewind(progress);
            std::fprintf(progress, "%zu\n", frame_ends.size());
            std::fflush(progress);
        }
    }
    top.final();
    if (progress) std::fclose(progress);

    FILE *f = std::fopen(argv[2], "wb");
    if (!f || std::fwrite(out.data(), 4, received * OUT_WORDS, f) != received * OUT_WORDS) {
        std::fprintf(stderr, "cannot write %s\n", argv[2]);
        return 2;
    }
    std::fclose(f);
    // steady state: intervals between frame ends once the pipeline is full
    uint64_t lo = 0, hi = 0, span = 0, n = 0;
    for (size_t k = 3; k < frame_ends.size(); k++) {
        uint64_t d = frame_ends[k] - frame_ends[k - 1];
        lo = n ? (d < lo ? d : lo) : d;
        hi = d > hi ? d : hi;
        span += d;
        n++;
    }
    std::printf("{\"cycles\": %llu, \"beats_in\": %zu, \"beats_out\": %zu, \"frames\": %zu, "
                "\"first_frame_end\": %lld, \"interval_min\": %llu, \"interval_max\": %llu, \"interval_sum\": %llu, "
                "\"intervals\": %llu, \"withheld\": %llu, \"refused\": %llu}\n",
                (unsigned long long)cycle, sent, received, frame_ends.size(),
                frame_ends.empty() ? -1LL : (long long)frame_ends[0], (unsigned long long)lo,
                (unsigned long long)hi, (unsigned long long)span, (unsigned long long)n,
                (unsigned long long)withheld, (unsigned long long)refused);
    return received == out_beats ? 0 : 1;
}
