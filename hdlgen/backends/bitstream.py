"""Bitstreams: a build's network inside its board shell (``hdlgen.shell``), through Amaranth's
platform flow (amaranth-boards' platform prepares the files and the commands) run on the YoWASP
tools: Yosys, nextpnr, then ecppack or icepack. Boards whose family has no open flow on PyPI get
the files for their vendor tool instead.

Before place and route, Yosys's cell counts are compared with the device's resources, so a design
that cannot fit stops with the numbers. nextpnr runs at the shell's clock; a placed design slower
than that clock stops with its Fmax unless timing failures are allowed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from ..boards import Board, get_board
from ..errors import HdlgenError
from ..progress import ProgressBar
from ..shell.board import PLL_NAME, BoardTop, achieved_mhz
from ..shell.core import LinkFormat
from .process import run
from .synth import summarise, yosys_cells
from .tools import yowasp

__all__ = ["BitstreamResult", "make_bitstream", "uart_divisor", "NAME"]

NAME = "hdlgen_board"
PLL_TOLERANCE = 0.01                    # a PLL clock this far from the one asked for is refused
PLL_RANGE_MHZ = {"ecp5": (3.125, 400.0),     # ECP5's CLKOP (datasheet FPGA-DS-02012: 3.125 to 400 MHz)
                 "ice40": (16.0, 275.0)}     # iCE40's PLLOUT, as icepll checks it
MAX_BAUD_ERROR = 0.02                   # a UART tolerates a few per cent between the two ends
REQUEST_TIMEOUT_S = 0.005               # silence that ends an unfinished request on the board
NEXTPNR_PHASES = (("packing", re.compile(r"Info: Packing")), ("placing", re.compile(r"[Pp]lac(er|ing)|HeAP")),
                  ("routing", re.compile(r"[Rr]out(er|ing)")), ("timing", re.compile(r"Max frequency for clock")))
PLL_TOOL = {"ecp5": ("ecppll", ["-i", "{fin}", "-o", "{fout}", "-n", PLL_NAME, "-f", "pll.v"]),
            # -p: SB_PLL40_PAD, fed by the board's clock pin itself (see BoardTop)
            "ice40": ("icepll", ["-q", "-i", "{fin}", "-o", "{fout}", "-p", "-m", "-n", PLL_NAME, "-f", "pll.v"])}
KEPT = ("{name}.bit", "{name}.bin", "{name}.tim", "{name}.rpt", "{name}.lpf", "{name}.pcf", "nextpnr-report.json",
        "pll.v")


@dataclass
class BitstreamResult:
    board: str
    flow: str                     # yowasp: a bitstream was made; export: files for a vendor tool
    folder: str
    bitstream: str | None
    clock_mhz: float
    pll: bool
    baud: int
    divisor: int
    lut: int
    ff: int
    bram: float
    dsp: int
    capacity: dict
    fmax_mhz: float | None
    timing_met: bool | None

    def to_json(self) -> dict:
        return asdict(self)


def uart_divisor(clock_hz: float, baud: int) -> int:
    """Clock cycles per UART bit; refused when the baud rate it gives is off by more than 2 %."""
    divisor = round(clock_hz / baud)
    if divisor < 4:
        raise HdlgenError(f"--baud {baud} is too fast for a {clock_hz / 1e6:g} MHz shell clock (at least 4 clock cycles "
                          f"a bit); choose at most {int(clock_hz // 4)}")
    error = abs(clock_hz / divisor - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise HdlgenError(f"--baud {baud} is {error:.1%} off at {clock_hz / 1e6:g} MHz (divisor {divisor}); choose a baud "
                          f"rate nearer clock / N, such as {round(clock_hz / divisor)}")
    return divisor


def _check_target(build, board: Board) -> None:
    target = build.report["target"]
    if target != board.target:
        raise HdlgenError(f"{build.path} was built for target {target}, and board {board.name} needs {board.target}; "
                          f"rebuild it with --target {board.target}")


def family_of(board: Board) -> str:
    return {"ecp5-85k": "ecp5", "ecp5-25k": "ecp5", "ice40-up5k": "ice40"}.get(board.target, "xilinx")


def check_clock(board_name: str, clock_mhz: float | None) -> None:
    """Refuse, in a second and before any build, a shell clock ``board_name``'s PLL cannot make."""
    board = get_board(board_name)
    oscillator = board.oscillator_mhz
    if clock_mhz is None or abs(clock_mhz - oscillator) <= 1e-9:
        return
    with tempfile.TemporaryDirectory(prefix="hdlgen-pll-") as work:
        _pll(board, family_of(board), oscillator, clock_mhz, Path(work))


def _pll(board: Board, family: str, oscillator_mhz: float, clock_mhz: float, work: Path) -> tuple[float, str]:
    """The PLL module for ``clock_mhz`` and the clock it makes; refused unless that is within
    ``PLL_TOLERANCE`` of the clock asked for, with the nearest clock the PLL makes."""
    if family not in PLL_TOOL:
        raise HdlgenError(f"board {board.name}: no PLL generator for {family}; leave --clock-mhz at the board's "
                          f"{oscillator_mhz:g} MHz")
    lo, hi = PLL_RANGE_MHZ[family]
    if not lo <= clock_mhz <= hi:
        nearest = min(max(clock_mhz, lo), hi)
        raise HdlgenError(f"--clock-mhz {clock_mhz:g}: the PLL of board {board.name} makes {lo:g} to {hi:g} MHz; the "
                          f"nearest clock it makes is {nearest:g} MHz: choose --clock-mhz {nearest:g} or one in that range")
    tool, args = PLL_TOOL[family]
    args = [a.format(fin=f"{oscillator_mhz:g}", fout=f"{clock_mhz:g}") for a in args]
    done = run([*yowasp(tool), *args], cwd=work, capture_output=True, text=True)
    if done.returncode != 0 or not (work / "pll.v").exists():
        said = (done.stderr or done.stdout).strip()
        reach = re.search(r"range ([0-9.]+) MHz - ([0-9.]+) MHz", said)
        nearest = "" if reach is None else \
            f"; the nearest it makes is about {min(max(clock_mhz, float(reach[1])), float(reach[2])):g} MHz"
        raise HdlgenError(f"--clock-mhz {clock_mhz:g}: {tool} found no PLL setting for it from the {oscillator_mhz:g} MHz "
                          f"oscillator ({said[-300:]}){nearest}; choose another --clock-mhz")
    text = (work / "pll.v").read_text()
    achieved = achieved_mhz(family, text)
    if abs(achieved - clock_mhz) > PLL_TOLERANCE * clock_mhz:
        raise HdlgenError(f"--clock-mhz {clock_mhz:g}: the PLL of board {board.name} cannot make it from the "
                          f"{oscillator_mhz:g} MHz oscillator; the nearest clock it makes is {achieved:g} MHz: "
                          f"choose --clock-mhz {achieved:g}")
    return achieved, text


def _fits(board: Board, summary: dict, build) -> None:
    """Refuse a design larger than the board's device, with the numbers. ``summary`` holds Yosys's
    counts and, after a failed placement, ``cells``: what nextpnr could not place (count, cell type)."""
    names = {"lut": "LUTs", "ff": "flip-flops", "bram": "block RAMs", "dsp": "DSPs"}
    need = {k: summary[k] for k in names}
    have = board.resources
    over = [names[k] for k in need if need[k] > have[k]]
    if "cells" in summary:
        count, kind = summary["cells"]
        over.append(f"{count:,} {kind} to place, more than the device has")
    if not over:
        return
    figures = ", ".join(f"{need[k]:,g} of {have[k]:,} {names[k]}" for k in need)
    layers = sorted(build.report["layers"], key=lambda l: -l["pe"] * l["simd"])[:2]
    widest = ", ".join(f"{l['name']} (PE {l['pe']}, SIMD {l['simd']})" for l in layers)
    raise HdlgenError(f"the design does not fit board {board.name}: it needs {figures} ({'; '.join(over)}); fold the "
                      f"model further: rebuild with a lower --target-fps, or a --fold file with smaller PE and SIMD "
                      f"for the widest layers, {widest}")


FAILED = "failed"                  # OUT/board/NAME/failed: the logs of the last run that failed


def folder_of(build, board: Board) -> Path:
    return build.path / "board" / board.name


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _replace(build, board: Board, fill) -> Path:
    """``OUT/board/NAME`` replaced whole by what ``fill(staging)`` writes, sealed; the previous folder
    stays until the new one is complete (``builddir.replace_folder``)."""
    from ..builddir import replace_folder

    folder = build.record("board") / board.name
    folder.parent.mkdir(exist_ok=True)

    def write(staging: Path) -> None:
        fill(staging)
        build.seal(staging)

    replace_folder(folder, write)
    return folder


def _keep_logs(build, board: Board, work: Path) -> None:
    """A failed run's logs, kept in ``OUT/board/NAME/failed`` for the user, beside the bitstream of the
    last run that worked (which stays as it was)."""
    folder = folder_of(build, board)

    def fill(staging: Path) -> None:
        if (folder / "bitstream.json").is_file():
            for name in os.listdir(folder):
                if name != FAILED and (folder / name).is_file() and not (folder / name).is_symlink():
                    shutil.copy2(folder / name, staging / name)
        (staging / FAILED).mkdir()
        for name in (f"{NAME}.rpt", f"{NAME}.tim", "nextpnr-report.json"):
            if (work / name).is_file():
                shutil.copy2(work / name, staging / FAILED / name)

    _replace(build, board, fill)


def _failed_log(build, board: Board, name: str) -> Path:
    return folder_of(build, board) / FAILED / name


def _nextpnr_bar(log: Path, bar: ProgressBar):
    def tick():
        if not log.exists():
            return
        text = log.read_text(errors="replace")
        reached = [k for k, (_, pattern) in enumerate(NEXTPNR_PHASES) if pattern.search(text)]
        if reached:
            bar.update(max(reached) + 1, NEXTPNR_PHASES[max(reached)][0])
    return tick


def _failure(tool: str, log: Path, done) -> HdlgenError:
    text = log.read_text(errors="replace") if log.exists() else (done.stderr or "")
    errors = [line.strip() for line in text.splitlines() if "ERROR" in line] or text.strip().splitlines()[-2:]
    return HdlgenError(f"{tool} failed (see {log}): {' | '.join(errors)[:400]}")


def make_bitstream(build, board_name: str, *, clock_mhz: float | None = None, baud: int | None = None,
                   allow_timing_fail: bool = False, progress=None, bars: bool = False) -> BitstreamResult:
    """The board shell around ``build`` (a ``BuildDir``) for ``board_name``: a bitstream in
    ``OUT/board/NAME`` with the logs, constraints and ``bitstream.json``."""
    from .. import options as O
    from ..boards import board_names
    from ..flow import Progress

    board = get_board(O.check("board", O.Choice(board_names()), board_name))
    clock_mhz = O.check("clock_mhz", O.CLOCK_MHZ, clock_mhz, optional=True)
    baud = O.check("baud", O.BAUD, baud, optional=True)
    O.check("allow_timing_fail", O.Flag(), allow_timing_fail)
    _check_target(build, board)
    platform = board.platform_class()()
    family = family_of(board)
    oscillator = platform.default_clk_frequency / 1e6
    wanted = clock_mhz if clock_mhz is not None else board.clock_mhz if board.clock_mhz is not None else oscillator
    baud = baud or board.baud
    link = LinkFormat.from_report(build.report)
    pll = abs(wanted - oscillator) > 1e-9
    if progress is None or not progress.enabled:
        progress = Progress(1, enabled=False)
    else:
        progress = Progress((1 if board.flow == "export" else 4) + int(pll))
    work = Path(tempfile.mkdtemp(prefix="hdlgen-board-"))
    try:
        pll_hz = None
        if pll:
            with progress(f"PLL for {wanted:g} MHz from the {oscillator:g} MHz oscillator"):
                achieved, pll_verilog = _pll(board, family, oscillator, wanted, work)
            platform.add_file("pll.v", pll_verilog)
            pll_hz = achieved * 1e6
        clock_hz = pll_hz or oscillator * 1e6
        divisor = uart_divisor(clock_hz, baud)
        timeout = int(clock_hz * REQUEST_TIMEOUT_S) + 40 * divisor * 10
        platform.add_file("network.v", build.verilog.read_text())
        top = BoardTop(uart=board.uart, family=family, toplevel=build.report["top"], link=link, divisor=divisor,
                       timeout=timeout, pll_hz=pll_hz)
        overrides = {"script_after_synth": "tee -q -o stat.json stat -json"}
        if family == "ice40":
            overrides["synth_opts"] = "-dsp"
        if family != "xilinx":
            overrides["nextpnr_opts"] = "--timing-allow-fail --report nextpnr-report.json --seed 1"
        with progress(f"preparing the {board.name} shell (Amaranth platform {board.platform.split(':')[1]})"):
            plan = platform.prepare(top, name=NAME, **overrides)
            plan.extract(work)
        result = dict(board=board.name, flow=board.flow, clock_mhz=clock_hz / 1e6, pll=pll_hz is not None, baud=baud,
                      divisor=divisor, capacity=board.resources, fmax_mhz=None, timing_met=None, bitstream=None,
                      lut=0, ff=0, bram=0, dsp=0)
        if board.flow == "export":
            files = [name for name in plan.files]
            return _finish(build, board, work, files, result)
        commands = json.loads((work / f"build_{NAME}.json").read_text())["commands"]
        yosys, nextpnr, pack = commands
        with progress("synthesizing (Yosys)"):
            done = run([*yowasp(yosys[0]), *yosys[1:]], cwd=work, capture_output=True, text=True)
            if done.returncode != 0 or not (work / "stat.json").exists():
                _keep_logs(build, board, work)
                raise _failure("Yosys", _failed_log(build, board, f"{NAME}.rpt"), done)
        cells = yosys_cells(work)
        summary = summarise(family, cells)
        if summary["lut"] > board.resources["lut"] or summary["bram"] > board.resources["bram"] or \
                summary["dsp"] > board.resources["dsp"]:
            _keep_logs(build, board, work)
            _fits(board, summary, build)
        with progress(f"placing and routing (nextpnr-{family}) at {clock_hz / 1e6:g} MHz"):
            bar = ProgressBar(len(NEXTPNR_PHASES), "nextpnr", enabled=bars)
            done = run([*yowasp(nextpnr[0]), *nextpnr[1:]], cwd=work, capture_output=True, text=True,
                       tick=_nextpnr_bar(work / f"{NAME}.tim", bar))
            bar.close()
            if done.returncode != 0 or not (work / "nextpnr-report.json").exists():
                _keep_logs(build, board, work)
                log = work / f"{NAME}.tim"
                overflow = re.search(r"Failed to expand region .* of (\d+) (\w+)", _read(log))
                if overflow:
                    _fits(board, {**summary, "cells": (int(overflow.group(1)), overflow.group(2))}, build)
                raise _failure("nextpnr", _failed_log(build, board, log.name), done)
        report = json.loads((work / "nextpnr-report.json").read_text())
        used = {k: v["used"] for k, v in report.get("utilization", {}).items()}
        placed = {"ecp5": ("TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "MULT18X18D"),
                  "ice40": ("ICESTORM_LC", None, "ICESTORM_RAM", "ICESTORM_DSP")}[family]
        result.update(lut=used.get(placed[0], summary["lut"]), ff=used.get(placed[1], summary["ff"]) if placed[1] else
                      summary["ff"], bram=used.get(placed[2], summary["bram"]), dsp=used.get(placed[3], summary["dsp"]))
        fmax = min((c["achieved"] for c in report.get("fmax", {}).values()), default=None)
        result.update(fmax_mhz=fmax, timing_met=fmax is not None and fmax >= clock_hz / 1e6)
        if not result["timing_met"] and not allow_timing_fail:
            _keep_logs(build, board, work)
            raise HdlgenError(f"timing not met on {board.name}: the placed design reaches {fmax or 0:.1f} MHz and the shell "
                              f"runs at {clock_hz / 1e6:g} MHz; choose --clock-mhz {int(fmax or 0)} or lower (or "
                              f"--allow-timing-fail to keep the bitstream anyway); nextpnr's log: "
                              f"{_failed_log(build, board, NAME + '.tim')}; the previous bitstream, if any, is kept")
        with progress(f"packing the bitstream ({pack[0]})"):
            done = run([*yowasp(pack[0]), *pack[1:]], cwd=work, capture_output=True, text=True)
            out = work / pack[-1] if pack[0] == "icepack" else work / f"{NAME}.bit"
            if done.returncode != 0 or not out.exists():
                _keep_logs(build, board, work)
                raise HdlgenError(f"{pack[0]} failed: {(done.stderr or done.stdout).strip()[-300:]}")
        result["bitstream"] = out.name
        return _finish(build, board, work, [k.format(name=NAME) for k in KEPT], result)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _finish(build, board: Board, work: Path, files: list[str], result: dict) -> BitstreamResult:
    def fill(staging: Path) -> None:
        for name in files:
            if (work / name).is_file():
                shutil.copy2(work / name, staging / name)
        # in bitstream.json, files are named relative to its folder
        (staging / "bitstream.json").write_text(json.dumps({**result, "folder": "."}, indent=2) + "\n")

    folder = _replace(build, board, fill)
    result["folder"] = str(folder)
    if result["bitstream"] is not None:
        result["bitstream"] = str(folder / result["bitstream"])
    return BitstreamResult(**result)
