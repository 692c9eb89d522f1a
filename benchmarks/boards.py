"""The board demos, from the model file to the bitstream: resources and Fmax of the network in its
board shell (UART, frame buffer, CRC, PLL), placed and routed at the shell's clock, beside the same
network alone (``hdlgen synth`` at the same clock: out of context on ECP5, inside the small IO shell
on iCE40), so the shell's cost shows; the network's frame rate beside the rate the UART carries;
and the wall time of each step.

    python benchmarks/boards.py [--board icebreaker --board ulx3s-85f] [--clock-mhz F]

Each board builds its demo model (``boards/boards.json``: the digits BNN for the iCEBreaker, the
Brevitas digits CNN w4a4 for the ULX3S-85F) with class output, runs the test split through the
simulated board (bit-exact against the golden model), and makes the bitstream. ``--clock-mhz``
runs the shells from their PLL at that clock (folded for it, as ``hdlgen demo --board B --clock-mhz F``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_BOARDS = ("icebreaker", "ulx3s-85f")


def measure(board_name: str, workdir: Path, clock_mhz: float | None = None) -> list[str]:
    import hdlgen
    from hdlgen.boards import get_board
    from hdlgen.host.protocol import link_frames_per_second
    from hdlgen.paths import EXAMPLES
    from hdlgen.shell.core import LinkFormat

    board = get_board(board_name)
    model = EXAMPLES / board.demo["model"]
    clock = clock_mhz or board.clock_mhz or board.oscillator_mhz
    times = {}
    start = time.monotonic()
    design = hdlgen.build(model, workdir / board_name, target=board.target, output="class", clock_mhz=clock,
                          target_fps=board.demo.get("fps"))
    times["build"] = time.monotonic() - start
    x, labels = np.load(model.parent / "test_x.npy"), np.load(model.parent / "test_y.npy")
    start = time.monotonic()
    run = design.run_on_board(x, port="sim")
    times["simulated board"] = time.monotonic() - start
    same = int(np.all(run.hw_words == run.golden_words, axis=1).sum())
    start = time.monotonic()
    shell = design.bitstream(board_name, clock_mhz=clock_mhz)
    times["bitstream"] = time.monotonic() - start
    start = time.monotonic()
    alone = design.synthesize(clock_mhz=clock)
    times["network alone (synth)"] = time.monotonic() - start

    cap = board.resources
    fps = design.report["frames_per_second_at_clock"]
    link = link_frames_per_second(LinkFormat.from_report(design.report), shell.baud)
    rows = [f"## {board_name}: {model.relative_to(EXAMPLES)}, class output, {shell.clock_mhz:g} MHz"
            f"{' (PLL)' if shell.pll else ''}",
            f"simulated board: {same}/{len(x)} frames equal the golden model, accuracy "
            f"{np.mean(run.outputs[:, 0] == labels):.4f}, {run.stats.retries} retries",
            "| design | LUT | FF | BRAM | DSP | Fmax (MHz) |", "|---|---|---|---|---|---|"]
    fmax = f"{alone.fmax_mhz:.1f}" if alone.fmax_mhz else "n/a"
    rows.append(f"| network alone (baseline) | {alone.lut:,} | {alone.ff:,} | {alone.bram:g} | {alone.dsp} | {fmax} |")
    rows.append(f"| in the board shell | {shell.lut:,} / {cap['lut']:,} | {shell.ff:,} | {shell.bram:g} / {cap['bram']} | "
                f"{shell.dsp} / {cap['dsp']} | {shell.fmax_mhz:.1f} (timing {'met' if shell.timing_met else 'NOT met'}) |")
    rows.append(f"frames/s: network {fps:,.0f} at {clock:g} MHz; the UART at {shell.baud} baud carries {link:,.0f}")
    rows.append("wall time: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--board", action="append", help=f"boards to measure (default: {', '.join(DEFAULT_BOARDS)})")
    parser.add_argument("--clock-mhz", type=float, help="the shells' clock, from their PLL (default: each board's)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hdlgen-boards-") as tmp:
        for name in args.board or DEFAULT_BOARDS:
            print("\n".join(measure(name, Path(tmp), args.clock_mhz)), flush=True)
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
