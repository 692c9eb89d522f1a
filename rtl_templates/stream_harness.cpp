// Native Verilator harness: streams a file of input beats through a generated top and writes
// the output beats, for runs of thousands of frames without Python in the loop.
//
// Build-time defines: IN_WORDS, OUT_WORDS (32-bit words per beat), LAST_BIT (bit index of the
// output's frame-end flag). Files are little-endian uint32 words, IN_WORDS or OUT_WORDS per beat.
//
// usage: Vsim INPUT.bin OUTPUT.bin IN_BEATS OUT_BEATS MAX_CYCLES [PROGRESS_FILE]
// With PROGRESS_FILE, the number of frames out so far is written there every 65,536 cycles.
// prints one JSON line: cycles, beats in/out, and the cycle of every frame's last beat (summarised).
#include "Vtop.h"
#include "verilated.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
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

int main(int argc, char **argv) {
    if (argc != 6 && argc != 7) {
        std::fprintf(stderr, "usage: %s INPUT.bin OUTPUT.bin IN_BEATS OUT_BEATS MAX_CYCLES [PROGRESS_FILE]\n", argv[0]);
        return 2;
    }
    FILE *progress = argc == 7 ? std::fopen(argv[6], "w") : nullptr;
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

    // The generated top registers its outputs (i.ready, o.valid, o.payload): nothing reaches them
    // combinationally from the inputs. So the handshakes of a cycle are known from the outputs of
    // the previous rising edge and the inputs about to be driven, and one full evaluation per cycle
    // (the rising edge, with the new inputs) is enough; the falling edge changes nothing else.
    size_t sent = 0, received = 0;
    uint64_t cycle = 0;
    top.clk = 0;
    top.eval();
    while (received < out_beats && cycle < max_cycles) {
        const bool offer = sent < in_beats;
        top.I_VALID = offer;
        if (offer) put(top.I_PAYLOAD, &in[sent * IN_WORDS]);
        top.O_READY = 1;
        const bool in_fire = offer && top.I_READY;
        const bool out_fire = top.O_VALID;
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
                "\"intervals\": %llu}\n",
                (unsigned long long)cycle, sent, received, frame_ends.size(),
                frame_ends.empty() ? -1LL : (long long)frame_ends[0], (unsigned long long)lo,
                (unsigned long long)hi, (unsigned long long)span, (unsigned long long)n);
    return received == out_beats ? 0 : 1;
}
