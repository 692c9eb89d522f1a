"""Synthesis with YoWASP Yosys and nextpnr, and the resource and timing figures they report.

Yosys's stdout can be cut short once ABC runs, so everything is read from files: the log
(``-l``), statistics (``tee -q -o stat.json stat -json``) and nextpnr's ``--report``.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import HdlgenError
from ..targets import synthesis_spec
from .io_shell import SHELL_NAME, shell_verilog
from .process import run
from .vendor_models import PRIMITIVE_FAMILY, instantiated_primitives
from .tools import yowasp


@dataclass
class SynthResult:
    target: str
    device: str
    lut: int              # LUT sites: LUT4 (+2 per CCU2C carry cell) on Lattice, LUT1-6 on Xilinx; as placed
                          # where nextpnr ran (its count adds the LUTs it uses to route), else Yosys's
    lut_synth: int        # the same from Yosys's netlist, before place and route
    ff: int
    bram: float           # block RAMs (Xilinx: 36 Kb equivalents)
    lutram: int
    dsp: int
    carry: int            # carry cells (CCU2C / SB_CARRY / CARRY4 / CARRY8)
    fmax_mhz: float | None
    cells: dict
    placed: bool
    lut_mapper: str

    def to_json(self) -> dict:
        return asdict(self)




def summarise(family: str, cells: dict) -> dict:
    """``SynthResult``'s counts (lut, ff, bram, lutram, dsp, carry) of a family's primitive cells."""
    def count(pattern):
        return sum(v for k, v in cells.items() if re.fullmatch(pattern, k))
    if family == "ecp5":
        return dict(lut=count("LUT4") + 2 * count("CCU2C"), ff=count("TRELLIS_FF"), bram=count("DP16KD|PDPW16KD"),
                    lutram=count("TRELLIS_DPR16X4|DPR16X4"), dsp=count("MULT18X18D|ALU54B"), carry=count("CCU2C"))
    if family == "ice40":
        return dict(lut=count("SB_LUT4"), ff=count("SB_DFF.*"), bram=count("SB_RAM40_4K.*"), lutram=0,
                    dsp=count("SB_MAC16"), carry=count("SB_CARRY"))
    return dict(lut=count("LUT[1-6](_2)?"), ff=count("FD[A-Z]*"), bram=count("RAMB36E[12]") + 0.5 * count("RAMB18E[12]"),
                lutram=count("RAM(32|64|128|256)[XM].*|RAM[0-9]+X1[SD].*"), dsp=count("DSP48E[12]"),
                carry=count("CARRY[48]"))


def check_primitives(verilog: Path, target_name: str, text: str | None = None) -> None:
    """Refuse Verilog that instantiates another family's primitives (a build's carry cells)."""
    family = synthesis_spec(target_name)["family"]
    text = Path(verilog).read_text() if text is None else text
    foreign = [p for p in instantiated_primitives(text) if PRIMITIVE_FAMILY[p] != family]
    if foreign:
        raise HdlgenError(f"{verilog} instantiates {PRIMITIVE_FAMILY[foreign[0]]} primitives ({', '.join(foreign)}), "
                          f"which {target_name} does not have: rebuild with --target {target_name} to synthesize "
                          f"for it")


def synthesize(verilog: Path, toplevel: str, target_name: str, workdir: Path, *, clock_mhz: float = 100.0,
               place: bool = True, stream_bits: tuple[int, int] | None = None,
               pack_only: bool = False) -> SynthResult:
    """Synthesize (and for Lattice targets place and route) one Verilog file.

    ``stream_bits`` (input and output payload widths of a stream top) is needed for targets that
    measure through an IO shell. ``pack_only``: nextpnr packs the netlist into the device's cells
    and stops (no placement, no Fmax; the counts are the cells placement would start from).
    """
    spec = synthesis_spec(target_name)
    text = Path(verilog).read_text()
    check_primitives(verilog, target_name, text)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "design.v").write_text(text)
    sources = "design.v"
    if spec.get("io_shell") and place:
        if stream_bits is None:
            raise HdlgenError(f"target {target_name} measures through an IO shell and needs the stream widths")
        (workdir / "shell.v").write_text(shell_verilog(toplevel, *stream_bits))
        sources, toplevel = "design.v shell.v", SHELL_NAME
    flow = f"{spec['yosys']} -top {toplevel}"
    done = _run_yosys(sources, flow, workdir)
    mapper = "abc9"
    if done.returncode != 0 and spec.get("yosys_fallback") and "Assert" in _read(workdir / "yosys.log"):
        flow, mapper = spec["yosys_fallback"].format(top=toplevel), "abc (ABC9 hit a Yosys assertion)"
        done = _run_yosys(sources, flow, workdir)
    if done.returncode != 0 or not (workdir / "stat.json").exists():
        log = _read(workdir / "yosys.log") or done.stderr
        errors = [line for line in log.splitlines() if "ERROR" in line] or log.strip().splitlines()[-1:]
        raise HdlgenError(f"Yosys failed for {target_name} (see {workdir / 'yosys.log'}): {' '.join(errors)[:400]}")
    cells = yosys_cells(workdir)
    summary = summarise(spec["family"], cells)
    summary["lut_synth"] = summary["lut"]
    fmax, placed = None, False
    if spec["nextpnr"] and place:
        fmax, placed_summary = _place_and_route(spec, workdir, clock_mhz, pack_only)
        summary.update(placed_summary)
        placed = not pack_only
    return SynthResult(target_name, spec["device"], fmax_mhz=fmax, cells=cells, placed=placed, lut_mapper=mapper,
                       **summary)


def yosys_cells(workdir: Path) -> dict[str, int]:
    """The primitive cells of the design ``synthesize`` last synthesized in ``workdir``."""
    stat = json.loads((workdir / "stat.json").read_text())
    return {k: v for k, v in stat["design"]["num_cells_by_type"].items() if not k.startswith("$")}


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _run_yosys(sources: str, flow: str, workdir: Path):
    (workdir / "stat.json").unlink(missing_ok=True)
    script = f"read_verilog {sources}; {flow}; tee -q -o stat.json stat -json; write_json netlist.json"
    return run([*yowasp("yosys"), "-q", "-l", "yosys.log", "-p", script], cwd=workdir, capture_output=True, text=True)


def utilisation(log: str) -> dict[str, tuple[int, int]]:
    """(used, available) per cell type from nextpnr's "Device utilisation" lines, which it prints
    even when placement then fails."""
    return {m.group(1): (int(m.group(2)), int(m.group(3)))
            for m in re.finditer(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", log)}


def _place_and_route(spec: dict, workdir: Path, clock_mhz: float, pack_only: bool = False) -> tuple[float | None, dict]:
    context = [] if spec.get("io_shell") else ["--out-of-context"]
    how = ["--pack-only"] if pack_only else ["--freq", str(clock_mhz), "--timing-allow-fail", "--report", "report.json"]
    cmd = [*yowasp(f"nextpnr-{spec['nextpnr']}"), *spec["nextpnr_args"], "--json", "netlist.json",
           *context, *how, "--log", "nextpnr.log", "--seed", "1", "-q"]
    (workdir / "report.json").unlink(missing_ok=True)
    done = run(cmd, cwd=workdir, capture_output=True, text=True)
    if pack_only and done.returncode == 0:
        used = {kind: n for kind, (n, _) in utilisation(_read(workdir / "nextpnr.log")).items()}
        return None, _placed_counts(spec["family"], used)
    if done.returncode != 0 or not (workdir / "report.json").exists():
        log = (workdir / "nextpnr.log").read_text(errors="replace") if (workdir / "nextpnr.log").exists() else done.stderr
        errors = [line for line in log.splitlines() if "ERROR" in line] or log.strip().splitlines()[-1:]
        overflow = re.search(r"Failed to expand region .* of (\d+) (\w+)|Unable to (?:find legal placement|place cell)"
                             r"|utilisation limit|too many", " ".join(errors))
        over = [f"{used:,} {kind} of {have:,}" for kind, (used, have) in utilisation(log).items() if used > have]
        if overflow or over:
            need = (f" (it needs {', '.join(over)})" if over else
                    f" (it needs {overflow.group(1)} {overflow.group(2)})" if overflow.group(1) else "")
            raise HdlgenError(f"the design does not fit {spec['device']}{need}; fold the model further "
                              f"(hdlgen build with a lower --target-fps) or choose a larger target")
        raise HdlgenError(f"nextpnr failed (see {workdir / 'nextpnr.log'}): {' '.join(errors)[:400]}")
    report = json.loads((workdir / "report.json").read_text())
    clocks = report.get("fmax", {})
    fmax = min((c["achieved"] for c in clocks.values()), default=None)
    util = report.get("utilization", {})
    return fmax, _placed_counts(spec["family"], {k: v["used"] for k, v in util.items()})


def _placed_counts(family: str, used: dict[str, int]) -> dict:
    if family == "ecp5":
        return dict(lut=used.get("TRELLIS_COMB", 0), ff=used.get("TRELLIS_FF", 0), bram=used.get("DP16KD", 0),
                    dsp=used.get("MULT18X18D", 0))
    return dict(lut=used.get("ICESTORM_LC", 0), bram=used.get("ICESTORM_RAM", 0), dsp=used.get("ICESTORM_DSP", 0))


def format_table(results: list[SynthResult]) -> str:
    rows = [("target", "LUT", "FF", "BRAM", "LUTRAM", "DSP", "carry", "Fmax MHz")]
    for r in results:
        rows.append((r.target, str(r.lut), str(r.ff), f"{r.bram:g}", str(r.lutram), str(r.dsp), str(r.carry),
                     f"{r.fmax_mhz:.1f}" if r.fmax_mhz else "n/a (no place and route)"))
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows)


def _hierarchical(flow: str) -> str:
    """A target's Yosys flow that keeps the design's hierarchy (``synth_xilinx`` keeps it unless
    told ``-flatten``; the Lattice flows flatten unless told ``-noflatten``)."""
    flow = re.sub(r"\s-flatten\b", "", flow)
    return re.sub(r"\b(synth_(?:ecp5|ice40))\b", r"\1 -noflatten", flow)


def _own_cells(stat: dict) -> dict[str, dict[str, int]]:
    """Each module's own primitive cells (parametrised primitives under their plain names)."""
    out = {}
    for name, module in stat["modules"].items():
        cells = {}
        for kind, count in module["num_cells_by_type"].items():
            kind = kind.rsplit("\\", 1)[-1] if kind.startswith("$paramod") else kind
            if not kind.startswith("$"):
                cells[kind] = cells.get(kind, 0) + count
        out[name.lstrip("\\")] = cells
    return out


def synthesize_by_module(verilog: Path, toplevel: str, target_name: str, workdir: Path) -> dict[str, dict]:
    """Yosys's counts (``lut``, ``lutram``, ``bram``, ``dsp``, ``ff``, ``carry``) per instance of
    ``toplevel``'s direct submodules, from one synthesis that keeps the hierarchy (no place and
    route); the top's own glue is under ``""``. Used to calibrate ``transforms.resources``."""
    spec = synthesis_spec(target_name)
    text = Path(verilog).read_text()
    check_primitives(verilog, target_name, text)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "design.v").write_text(text)
    done = _run_yosys("design.v", f"{_hierarchical(spec['yosys'])} -top {toplevel}", workdir)
    if done.returncode != 0 and spec.get("yosys_fallback"):
        done = _run_yosys("design.v", _hierarchical(spec["yosys_fallback"].format(top=toplevel)), workdir)
    if done.returncode != 0 or not (workdir / "stat.json").exists():
        log = _read(workdir / "yosys.log") or done.stderr
        errors = [line for line in log.splitlines() if "ERROR" in line] or log.strip().splitlines()[-1:]
        raise HdlgenError(f"Yosys failed for {target_name} (see {workdir / 'yosys.log'}): {' '.join(errors)[:400]}")
    own = _own_cells(json.loads((workdir / "stat.json").read_text()))
    totals: dict[str, dict] = {}
    for module, cells in own.items():
        instance = module.split(".")[1] if module.startswith(toplevel + ".") else ""
        summed = totals.setdefault(instance, {})
        for kind, count in cells.items():
            summed[kind] = summed.get(kind, 0) + count
    return {instance: summarise(spec["family"], cells) for instance, cells in totals.items()}
