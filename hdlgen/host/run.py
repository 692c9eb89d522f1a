"""Running inputs through a board, real or simulated: ``hdlgen run`` and ``Design.run_on_board``."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ..boards import board_names
from ..errors import HdlgenError
from ..progress import ProgressBar
from ..shell.core import LinkFormat
from .driver import BoardLink, LinkStats

__all__ = ["BoardRun", "run_on_board", "SIM_PORT"]

SIM_PORT = "sim"


@dataclass
class BoardRun:
    outputs: np.ndarray           # the board's outputs in model units
    golden_outputs: np.ndarray
    hw_words: np.ndarray
    golden_words: np.ndarray
    stats: LinkStats
    port: str
    baud: int | None


def _bitstream(build, board: str | None) -> dict:
    """``bitstream.json`` of the board a bitstream was made for in this build."""
    folder = build.path / "board"
    built = sorted(p.parent.name for p in folder.glob("*/bitstream.json")
                   if p.parent.name in board_names()) if folder.is_dir() else []
    if board is None:
        if len(built) != 1:
            raise HdlgenError(f"{build.path} holds bitstreams for {', '.join(built) or 'no board'}; name the board "
                              f"with --board (or give --baud), after 'hdlgen bitstream {build.path} --board NAME'")
        board = built[0]
    elif board not in built:
        raise HdlgenError(f"{build.path} holds no bitstream for {board}; run 'hdlgen bitstream {build.path} --board {board}'")
    return json.loads((folder / board / "bitstream.json").read_text())


def _port_hint(name: str) -> str:
    """What to try when a serial port does not open: the ports this machine has (pyserial's list)."""
    from serial.tools import list_ports

    ports = sorted(p.device for p in list_ports.comports())
    found = f"the serial ports here are {', '.join(ports)}" if ports else "this machine shows no serial port"
    return (f"{found} (python -m serial.tools.list_ports -v); check that the board is plugged in and powered, and "
            f"that you may use the port (on Linux, the dialout group)")


def _reply_timeout(build, link: LinkFormat, baud: int, clock_mhz: float | None) -> float:
    """Seconds to wait for a reply: twice the request and reply on the wire and the network's
    latency (at the bitstream's clock, or 1 MHz when unknown), plus USB latency."""
    from .protocol import reply_length, request_length

    wire = (request_length(link) + reply_length(link)) * 10 / baud
    latency = build.report["pipeline"]["latency_bound_cycles"] / ((clock_mhz or 1.0) * 1e6)
    return 2 * (wire + latency) + 0.25


def run_on_board(build, x: np.ndarray, *, port: str = SIM_PORT, board: str | None = None, baud: int | None = None,
                 timeout: float | None = None, retries: int = 8, faults: dict | None = None, progress=None,
                 bars: bool = False) -> BoardRun:
    """Send every frame of ``x`` (model units) to the board on serial ``port`` (``sim``: the simulated
    board on Verilator) and collect the replies; the golden model's words come alongside."""
    from .. import options as O
    from ..backends.packing import pack_beats, unpack_beats
    from ..golden import quantize_input_codes, run_lowered, to_model_units

    if not isinstance(port, str) or not port:
        raise HdlgenError(f"port: expected a serial port such as '/dev/ttyUSB0', or 'sim', not {port!r}")
    board = O.check("board", O.Choice(board_names()), board, optional=True)
    baud = O.check("baud", O.BAUD, baud, optional=True)
    timeout = O.check("timeout", O.TIMEOUT_S, timeout, optional=True)
    retries = O.check("retries", O.RETRIES, retries)
    if faults is not None and (not isinstance(faults, dict) or
                               not all(isinstance(v, (list, tuple)) for v in faults.values())):
        raise HdlgenError(f"faults: expected a dict of fault kinds to lists of byte indices, not {faults!r}")
    if port == SIM_PORT and (board is not None or baud is not None):
        given = [name for name, value in (("--board", board), ("--baud", baud)) if value is not None]
        raise HdlgenError(f"{' and '.join(given)} {'choose' if len(given) > 1 else 'chooses'} a real board's link; the "
                          f"simulated board (--port sim) runs the shell at 8 clock cycles a bit: leave "
                          f"{' and '.join(given)} out, or give a serial --port")

    model, report = build.model, build.report
    link = LinkFormat.from_report(report)
    codes = quantize_input_codes(model, x)
    i, o = report["input"], report["output"]
    beats = pack_beats(codes, i["values_per_beat"], i["bits_per_value"])
    per = i["beats_per_frame"]
    frames = [beats[k * per:(k + 1) * per] for k in range(len(codes))]
    bar = ProgressBar(len(frames), "frames", enabled=bars)

    def ran(port_name: str, rate: int, wait: float) -> tuple[list, LinkStats]:
        try:
            import serial
        except ImportError:
            raise HdlgenError("hdlgen run needs pyserial; install hdlgen with its dependencies: pip install -e .") from None
        try:
            serial_port = serial.Serial(port_name, baudrate=rate, timeout=wait)
        except (serial.SerialException, OSError, ValueError, OverflowError) as e:
            raise HdlgenError(f"--port {port_name}: cannot open it ({e}); {_port_hint(port_name)}") from None
        with serial_port:
            serial_port.reset_input_buffer()
            driver = BoardLink(serial_port, link, timeout=wait, retries=retries)
            try:
                out = driver.run(frames, progress=lambda done, total: bar.update(done))
            except (serial.SerialException, OSError) as e:
                raise HdlgenError(f"--port {port_name}: the serial link failed ({e})") from None
            finally:
                bar.close(f"{driver.stats.frames} frames, {driver.stats.retries} retries")
            return out, driver.stats

    if port == SIM_PORT:
        from .simboard import SimulatedBoard, sim_reply_timeout

        simulated = SimulatedBoard(build, faults=faults, progress=progress)
        with simulated as name:
            try:
                out, stats = ran(name, 115200, timeout or sim_reply_timeout(build))
            except HdlgenError:
                simulated.check_alive()          # a stopped simulator says why, not the link
                raise
        rate = None
    else:
        if faults:
            raise HdlgenError("faults are injected only into the simulated board (--port sim)")
        clock = None
        if baud is None:
            settings = _bitstream(build, board)
            baud, clock = int(settings["baud"]), settings["clock_mhz"]
        out, stats = ran(port, baud, timeout or _reply_timeout(build, link, baud, clock))
        rate = baud
    words = [beat for frame in out for beat in frame]
    hw = unpack_beats(words, o["values_per_beat"], o["bits_per_value"], o["features"])
    golden = run_lowered(model, codes)
    return BoardRun(to_model_units(model, hw), to_model_units(model, golden), hw, golden, stats, port, rate)
