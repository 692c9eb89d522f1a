// A simulated board: the board shell's core (hdlgen_board_core: clk, rst, rx, tx) on Verilator, its
// UART pins bridged bit by bit to a pseudo-terminal, so that a serial-port driver (pyserial) talks
// to it as to a board on /dev/ttyUSB0.
//
// Bytes the host writes to the terminal are sent on rx as 8N1 frames of DIVISOR clock cycles per
// bit; tx is sampled in the middle of each bit and every byte with a good stop bit is written back.
// While the shell is idle (its busy output low: no request, no frame in the network, no reply going
// out), no byte is left to send and SETTLE cycles have passed since the last activity, the clock
// stops and the bridge waits for the host, so simulated time passes only when it matters. The
// receiver is busy inside an unfinished request, so it always runs into its own timeout first.
//
// Faults for tests, each at a byte index of the host-to-board stream: --drop N leaves byte N out,
// --corrupt N flips one of its bits, --extra N sends one more byte after it; --drop-reply N and
// --corrupt-reply N do the same to byte N of the board-to-host stream.
//
// usage: Vsim PTY_FD DIVISOR SETTLE [--drop N] [--corrupt N] [--extra N] [--drop-reply N] [--corrupt-reply N]
#include "Vtop.h"
#include "verilated.h"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <poll.h>
#include <set>
#include <string>
#include <unistd.h>

static void send_byte(int fd, uint8_t byte) {
    for (;;) {
        ssize_t n = write(fd, &byte, 1);
        if (n == 1) return;
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            std::perror("uart bridge: write");
            std::exit(3);
        }
        struct pollfd p = {fd, POLLOUT, 0};
        poll(&p, 1, 100);
    }
}

int main(int argc, char **argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s PTY_FD DIVISOR SETTLE [--drop N] [--corrupt N] [--extra N]\n", argv[0]);
        return 2;
    }
    const int fd = std::atoi(argv[1]);
    const int divisor = std::atoi(argv[2]);
    const uint64_t settle = std::strtoull(argv[3], nullptr, 10);
    std::set<uint64_t> drop, corrupt, extra, drop_reply, corrupt_reply;
    for (int k = 4; k < argc; k += 2) {
        std::string flag = argv[k];
        std::set<uint64_t> *faults = flag == "--drop" ? &drop : flag == "--corrupt" ? &corrupt :
            flag == "--extra" ? &extra : flag == "--drop-reply" ? &drop_reply :
            flag == "--corrupt-reply" ? &corrupt_reply : nullptr;
        if (!faults || k + 1 >= argc || argv[k + 1][0] < '0' || argv[k + 1][0] > '9') {
            std::fprintf(stderr, "uart bridge: bad fault argument %s\n", argv[k]);
            return 2;
        }
        faults->insert(std::strtoull(argv[k + 1], nullptr, 10));
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

    Verilated::commandArgs(1, argv);
    Vtop *top = new Vtop;
    top->rx = 1;
    top->rst = 1;
    for (int k = 0; k < 16; k++) {
        top->clk = 0; top->eval();
        top->clk = 1; top->eval();
    }
    top->rst = 0;

    std::deque<uint8_t> pending;
    uint64_t cycle = 0, last_activity = 0, from_host = 0, to_host = 0;
    int rx_left = 0, rx_timer = 0;
    uint16_t rx_frame = 0;
    int tx_state = 0, tx_timer = 0, tx_bit = 0, prev_tx = 1;
    uint8_t tx_byte = 0;
    uint8_t buf[4096];

    for (;;) {
        if (rx_left == 0 && pending.empty()) {
            const bool quiet = tx_state == 0 && !top->busy && cycle - last_activity > settle;
            if (quiet || cycle % 256 == 0) {
                struct pollfd p = {fd, POLLIN, 0};
                int r = poll(&p, 1, quiet ? 100 : 0);
                if (r > 0 && (p.revents & POLLIN)) {
                    ssize_t n = read(fd, buf, sizeof buf);
                    if (n < 0 && errno == EIO) return 0;          // the terminal's other side closed
                    for (ssize_t k = 0; k < n; k++, from_host++) {
                        if (drop.count(from_host)) continue;
                        pending.push_back(corrupt.count(from_host) ? buf[k] ^ 0x10 : buf[k]);
                        if (extra.count(from_host)) pending.push_back(0x3C);
                    }
                    last_activity = cycle;
                } else if (r > 0 && (p.revents & (POLLHUP | POLLERR))) {
                    return 0;
                }
                if (quiet && pending.empty()) continue;           // the clock waits for the host
            }
        }
        if (rx_left == 0 && !pending.empty()) {
            rx_frame = uint16_t((1u << 9) | (unsigned(pending.front()) << 1));   // start 0, data, stop 1
            pending.pop_front();
            rx_left = 10;
            rx_timer = divisor;
        }
        top->rx = rx_left ? (rx_frame & 1) : 1;
        top->clk = 0; top->eval();
        top->clk = 1; top->eval();
        cycle++;
        if (rx_left) {
            last_activity = cycle;
            if (--rx_timer == 0) {
                rx_frame >>= 1;
                rx_left--;
                rx_timer = divisor;
            }
        }
        const int tx = top->tx;
        switch (tx_state) {
        case 0:
            if (prev_tx == 1 && tx == 0) { tx_state = 1; tx_timer = divisor / 2; }
            break;
        case 1:
            if (--tx_timer == 0) {
                if (tx == 0) { tx_state = 2; tx_bit = 0; tx_byte = 0; tx_timer = divisor; }
                else tx_state = 0;
            }
            break;
        case 2:
            if (--tx_timer == 0) {
                tx_byte |= uint8_t(tx << tx_bit);
                tx_timer = divisor;
                if (++tx_bit == 8) tx_state = 3;
            }
            break;
        default:
            if (--tx_timer == 0) {
                if (tx == 1) {
                    if (!drop_reply.count(to_host))
                        send_byte(fd, corrupt_reply.count(to_host) ? tx_byte ^ 0x10 : tx_byte);
                    to_host++;
                }
                tx_state = 0;
            }
        }
        if (tx_state) last_activity = cycle;
        prev_tx = tx;
    }
}
