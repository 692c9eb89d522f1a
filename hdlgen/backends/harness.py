"""The native Verilator harness (``rtl_templates/stream_harness.cpp``): build once, stream files through."""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import HdlgenError
from ..paths import RTL_TEMPLATES
from .process import run
from .tools import verilator_env, verilator_executable
from .vendor_models import simulation_models


@dataclass
class HarnessRun:
    words: list[int]
    cycles: int
    frames: int
    first_frame_end: int
    interval_min: int | None
    interval_max: int | None
    interval_mean: float | None
    withheld: int = 0        # cycles in which the input withheld a beat it had (idle)
    refused: int = 0         # cycles in which the output was not ready (backpressure)


def _words_per(bits: int) -> int:
    return max(1, -(-bits // 32))


def simulation_digest(sources: dict[str, str], harness: str) -> str:
    """A name for a compiled simulation: it changes with the Verilog, the C++ harness and the vendor
    models added, so a simulator built by another hdlgen is never reused."""
    h = hashlib.sha256()
    for text in (*sources.values(), simulation_models(*sources.values())):
        h.update(text.encode())
    h.update((RTL_TEMPLATES / harness).read_bytes())
    return h.hexdigest()[:16]


def compile_simulation(sources: dict[str, str], harness: str, toplevel: str, build_dir: Path, *, defines: str = "",
                       jobs: int = 2) -> Path:
    """Compile Verilog ``sources`` (file name -> text) with the C++ ``harness`` from ``rtl_templates``
    into ``build_dir/Vsim``, staged beside it and moved into place when it works (with its log when
    it fails). Yosys's models of the vendor primitives the sources instantiate are added."""
    verilator_env()
    models = simulation_models(*sources.values())
    if models:
        sources = {**sources, "vendor_models.v": models}
    build_dir = Path(build_dir).resolve()
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = build_dir.with_name(f".{build_dir.name}.staging-{secrets.token_hex(4)}")
    # Verilator's makefiles cannot take paths with spaces: the sources are copied in and named relatively
    cmd = [verilator_executable(), "--cc", "--exe", "--build", "-O3", "--x-assign", "fast", "--x-initial", "fast",
           "-Wno-fatal", "-Wno-lint", "--top-module", toplevel, "--prefix", "Vtop", "-Mdir", ".",
           "-CFLAGS", defines or "-O3", "-j", str(jobs), "-o", "Vsim", *sources, harness]
    # GNU Make refuses directories whose path holds a space: compile elsewhere, keep the result here
    work = Path(tempfile.mkdtemp(prefix="hdlgen-verilator-")) if " " in str(staging) else staging
    try:
        staging.mkdir()
        for name, text in sources.items():
            (work / name).write_text(text)
        shutil.copyfile(RTL_TEMPLATES / harness, work / harness)
        with open(work / "build.log", "w") as f:
            done = run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=work)
        if work != staging:
            for name in ("Vsim", "build.log"):
                if (work / name).exists():
                    shutil.copy2(work / name, staging / name)
        if done.returncode != 0:
            shutil.rmtree(build_dir, ignore_errors=True)
            staging.rename(build_dir)
            log = build_dir / "build.log"
            lines = log.read_text(errors="replace").strip().splitlines()
            cause = ([line for line in lines if "not found" in line or "No such file" in line] +
                     [line for line in lines if "error" in line.lower() and "exited with" not in line])[:2] or lines[-2:]
            raise HdlgenError(f"Verilator could not build the simulation (see {log}): {' | '.join(cause)[:400]}")
        staging.rename(build_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if work != staging:
            shutil.rmtree(work, ignore_errors=True)
    return build_dir / "Vsim"


class NativeHarness:
    """A compiled simulator of a stream top with the harness around it (``NativeHarness.build`` makes one)."""

    RUN_FILES = ("inputs.bin", "outputs.bin", "progress.txt")      # what each run writes beside the simulator

    def __init__(self, build_dir: Path, *, in_bits: int, out_bits: int):
        self.build_dir = Path(build_dir).resolve()
        self.in_words, self.out_words = _words_per(in_bits), _words_per(out_bits)
        self.binary = self.build_dir / "Vsim"
        if not self.binary.exists():
            raise HdlgenError(f"{self.build_dir} holds no built simulation")

    @staticmethod
    def is_built(build_dir: Path) -> bool:
        return (Path(build_dir) / "Vsim").exists()

    @classmethod
    def build(cls, verilog_file: Path, toplevel: str, build_dir: Path, *, in_bits: int, out_bits: int,
              jobs: int = 2) -> "NativeHarness":
        """Compile the harness into ``build_dir``, staged beside it and moved into place when it works."""
        defines = f"-O3 -DIN_WORDS={_words_per(in_bits)} -DOUT_WORDS={_words_per(out_bits)} -DLAST_BIT={out_bits - 1}"
        compile_simulation({"design.v": Path(verilog_file).read_text()}, "stream_harness.cpp", toplevel, build_dir,
                           defines=defines, jobs=jobs)
        return cls(build_dir, in_bits=in_bits, out_bits=out_bits)

    def run(self, in_words: list[int], out_beats: int, *, max_cycles: int, progress=None, idle: float = 0.0,
            backpressure: float = 0.0, seed: int = 0) -> HarnessRun:
        """Stream ``in_words`` through; ``progress(frames_out)`` is called every half second.

        ``idle`` and ``backpressure`` are the probabilities of a cycle in which the input withholds
        its next beat and of one in which the output is not ready (from ``seed``). The harness checks
        that no handshake output of the top follows its inputs combinationally (see
        ``rtl_templates/stream_harness.cpp``)."""
        for name, value in (("idle", idle), ("backpressure", backpressure)):
            if not 0 <= value < 1:
                raise HdlgenError(f"{name} must be a probability from 0 up to (not including) 1, not {value!r}")
        def to_u32(words: list[int], per: int) -> np.ndarray:
            flat = [(w >> (32 * k)) & 0xFFFFFFFF for w in words for k in range(per)]
            return np.array(flat, dtype="<u4")

        in_file, out_file, progress_file = (self.build_dir / name for name in self.RUN_FILES)
        to_u32(in_words, self.in_words).tofile(in_file)
        tick = None
        if progress is not None:
            def tick():
                try:
                    progress(int(progress_file.read_text().strip() or 0))
                except (OSError, ValueError):
                    pass
        done = run([str(self.binary), str(in_file), str(out_file), str(len(in_words)), str(out_beats),
                    str(max_cycles), str(progress_file), repr(float(idle)), repr(float(backpressure)), str(int(seed))],
                   capture_output=True, text=True, tick=tick)
        if done.returncode == 3:
            cycle = json.loads(done.stdout.strip().splitlines()[-1])["cycle"]
            raise HdlgenError(f"the design's handshake outputs follow its inputs combinationally (seen at cycle "
                              f"{cycle}); the native harness needs them registered")
        if done.returncode not in (0, 1) or not done.stdout.strip():
            raise HdlgenError(f"the simulation failed: {done.stderr.strip() or done.stdout.strip()}")
        stats = json.loads(done.stdout.strip().splitlines()[-1])
        if done.returncode == 1:
            raise HdlgenError(f"the simulation stopped after {stats['cycles']} cycles with {stats['beats_out']} of "
                              f"{out_beats} output beats; the design stalled")
        raw = np.fromfile(out_file, dtype="<u4").astype(object).reshape(-1, self.out_words)
        words = [sum(int(v) << (32 * k) for k, v in enumerate(row)) for row in raw]
        n = stats["intervals"]
        return HarnessRun(words, stats["cycles"], stats["frames"], stats["first_frame_end"],
                          stats["interval_min"] if n else None, stats["interval_max"] if n else None,
                          stats["interval_sum"] / n if n else None, stats["withheld"], stats["refused"])
