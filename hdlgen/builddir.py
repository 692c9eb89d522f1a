"""Build directories: how ``hdlgen build`` writes and replaces one, and how ``sim`` and ``synth`` open one.

The output-directory rule:

* hdlgen writes OUT whole. It stages the new build in a hidden directory beside OUT (never inside
  it) and moves it into place only when every file is written; the staging directory is removed
  on every exit path, including Ctrl-C and SIGTERM.
* An existing OUT is replaced only when it is empty or holds an hdlgen build, proven by the marker
  ``hdlgen-build.json`` that hdlgen writes there: the hdlgen version, the model, and every entry
  hdlgen wrote (the build's files with their SHA-256 digests, and the ``sim``, ``synth`` and
  ``synth-<target>.json`` outputs that later commands add). If OUT holds anything else, hdlgen
  refuses and touches nothing: files it did not write are never deleted.
* OUT may not be a symbolic link, the current directory or one of its parents, or a directory that
  holds the model or the folding file.

Opening a build directory checks the marker, the version that wrote it and every file's digest, so
a build edited by hand or made by another version is refused with "rebuild it".
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from . import __version__
from .errors import HdlgenError
from .readers import parse_json, validate

__all__ = ["MARKER", "BuildDir", "check_output_dir", "write_build", "write_file"]

MARKER = "hdlgen-build.json"
FORMAT = "hdlgen-build"
REPORT = "report.json"
DERIVED = re.compile(r"^(sim|synth|synth-[a-z0-9][a-z0-9-]*\.json)$")    # what sim and synth add later
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

MARKER_SCHEMA = {
    "type": "object",
    "required": ["format", "hdlgen", "model", "files", "derived"],
    "additionalProperties": False,
    "properties": {
        "format": {"const": FORMAT},
        "hdlgen": {"type": "string"},
        "model": {"type": "string"},
        "files": {"type": "object", "minProperties": 1,
                  "additionalProperties": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
        "derived": {"type": "array", "items": {"type": "string", "pattern": DERIVED.pattern}, "uniqueItems": True},
    },
}

_COUNT = {"type": "integer", "minimum": 1, "maximum": 2 ** 40}
_STREAM = {"type": "object", "required": ["features", "values_per_beat", "bits_per_value", "beats_per_frame"],
           "properties": {"features": _COUNT, "values_per_beat": _COUNT, "bits_per_value": _COUNT,
                          "beats_per_frame": _COUNT}}
REPORT_SCHEMA = {
    "type": "object",
    "required": ["top", "layers", "pipeline", "input", "output"],
    "properties": {
        "top": {"type": "string", "pattern": IDENTIFIER.pattern},
        "layers": {"type": "array", "items": {"type": "object", "required": ["name", "pe", "simd"],
                                              "properties": {"name": {"type": "string"}, "pe": _COUNT, "simd": _COUNT}}},
        "pipeline": {"type": "object", "required": ["initiation_interval_cycles", "latency_bound_cycles"],
                     "properties": {"initiation_interval_cycles": _COUNT, "latency_bound_cycles": _COUNT}},
        "input": _STREAM,
        "output": {**_STREAM, "required": _STREAM["required"] + ["last_bit"],
                   "properties": {**_STREAM["properties"], "last_bit": _COUNT}},
    },
}


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _rebuild(path: Path, marker: dict | None = None) -> str:
    model = marker.get("model") if isinstance(marker, dict) and isinstance(marker.get("model"), str) else "MODEL"
    return f"rebuild it: hdlgen build {model} -o {path}"


def _read_marker(path: Path) -> dict:
    """The marker of the build directory ``path``; refuses a directory hdlgen cannot prove it wrote."""
    file = path / MARKER
    if file.is_symlink() or not file.is_file():
        raise HdlgenError(f"{path} is not an hdlgen build directory (no {MARKER}); "
                          f"run 'hdlgen build MODEL -o {path}' first")
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise HdlgenError(f"{file} is damaged (not UTF-8); {_rebuild(path)}") from None
    try:
        marker = parse_json(text, file, "build marker")
        validate(marker, MARKER_SCHEMA, file)
    except HdlgenError as e:
        raise HdlgenError(f"{e}; the build directory was edited, {_rebuild(path)}") from None
    if marker["hdlgen"] != __version__:
        raise HdlgenError(f"{path} was built by hdlgen {marker['hdlgen']}, and this is hdlgen {__version__}; "
                          f"{_rebuild(path, marker)}")
    for name in marker["files"]:
        if not IDENTIFIER.match(name.replace(".", "_")) or DERIVED.match(name):
            raise HdlgenError(f"{file} lists {name!r}, which hdlgen never writes; {_rebuild(path, marker)}")
    return marker


def check_output_dir(outdir: Path, inputs: Iterable[Path] = ()) -> None:
    """Refuse an OUT that hdlgen may not write (see the module's rule); touches nothing."""
    outdir = Path(outdir)
    if outdir.is_symlink():
        raise HdlgenError(f"-o {outdir} is a symbolic link; give the directory itself (hdlgen does not write through links)")
    target = outdir.resolve()
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        raise HdlgenError(f"-o {outdir} is the current directory or one of its parents, which hdlgen will not replace; "
                          f"give a new directory such as -o build/{target.name or 'out'}")
    for item in inputs:
        item = Path(item).resolve()
        if target == item or target in item.parents:
            raise HdlgenError(f"-o {outdir} holds {item}, an input of this build; choose another output directory")
    if not outdir.exists():
        return
    if not outdir.is_dir():
        raise HdlgenError(f"-o {outdir} exists and is not a directory; choose another output directory")
    entries = set(os.listdir(outdir))
    if not entries:
        return
    if MARKER not in entries:
        raise HdlgenError(f"{outdir} exists and is not an hdlgen build directory (it has no {MARKER}); hdlgen "
                          f"replaces only directories it wrote: choose another -o or empty it yourself")
    marker = _read_marker(outdir)
    foreign = sorted(entries - set(marker["files"]) - set(marker["derived"]) - {MARKER})
    if foreign:
        listed = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise HdlgenError(f"{outdir} holds files hdlgen did not write ({listed}); hdlgen keeps them and will not "
                          f"replace the directory: move them out or choose another -o")


def _write_marker(directory: Path, marker: dict) -> None:
    write_file(directory / MARKER, (json.dumps(marker, indent=2) + "\n").encode())


def write_file(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all: a temporary file beside it, renamed into place."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_build(outdir: Path, write: Callable[[Path], None], *, model: Path, inputs: Iterable[Path] = ()) -> None:
    """Call ``write(staging)`` to write a build, then put it at ``outdir`` with its marker.

    Staging happens beside ``outdir``; ``outdir`` is checked again right before it is replaced, and
    a replaced build is deleted only after the new one is in place.
    """
    outdir = Path(outdir)
    parent = outdir.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(4)
    staging = parent / f".{outdir.name}.hdlgen-staging-{token}"
    previous = parent / f".{outdir.name}.hdlgen-previous-{token}"
    os.mkdir(staging)                     # mode 0o777 less the umask, like every file written below
    try:
        write(staging)
        files = {entry.name: _digest(entry) for entry in sorted(staging.iterdir())}
        _write_marker(staging, {"format": FORMAT, "hdlgen": __version__, "model": str(model), "files": files,
                                "derived": []})
        check_output_dir(outdir, inputs)
        if outdir.exists():
            outdir.rename(previous)
        staging.rename(outdir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
        if previous.exists():
            if outdir.exists():
                shutil.rmtree(previous)
            else:
                previous.rename(outdir)      # interrupted between the two renames: put the old build back


@dataclass
class BuildDir:
    """An hdlgen build directory, checked on open (see the module's rule)."""

    path: Path
    report: dict
    model: object            # LoweredModel
    foldings: dict
    marker: dict

    @classmethod
    def open(cls, path: Path) -> BuildDir:
        from .ir.lowered_io import load_lowered

        path = Path(path)
        if not path.is_dir():
            raise HdlgenError(f"{path} is not a build directory; run 'hdlgen build MODEL -o {path}' first")
        marker = _read_marker(path)
        for name, digest in marker["files"].items():
            file = path / name
            if file.is_symlink() or not file.is_file():
                raise HdlgenError(f"{file} is missing; {_rebuild(path, marker)}")
            if _digest(file) != digest:
                raise HdlgenError(f"{file} was changed after hdlgen wrote it; {_rebuild(path, marker)}")
        for name in marker["derived"]:
            if (path / name).is_symlink():
                raise HdlgenError(f"{path / name} is a symbolic link, which hdlgen never writes; {_rebuild(path, marker)}")
        report = parse_json((path / REPORT).read_text(), path / REPORT, "build report")
        validate(report, REPORT_SCHEMA, path / REPORT)
        verilog = f"{report['top']}.v"
        if verilog not in marker["files"]:
            raise HdlgenError(f"{path / REPORT} names top {report['top']!r}, but the build holds no {verilog}; "
                              f"{_rebuild(path, marker)}")
        model, foldings = load_lowered(path)
        if {layer["name"]: (layer["pe"], layer["simd"]) for layer in report["layers"]} != \
                {name: (f.pe, f.simd) for name, f in foldings.items()}:
            raise HdlgenError(f"{path}: report.json and lowered.json disagree on the folding; {_rebuild(path, marker)}")
        return cls(path, report, model, foldings, marker)

    @property
    def verilog(self) -> Path:
        return self.path / f"{self.report['top']}.v"

    @property
    def stream_bits(self) -> tuple[int, int]:
        i, o = self.report["input"], self.report["output"]
        return i["values_per_beat"] * i["bits_per_value"], o["last_bit"] + 1

    def record(self, entry: str) -> Path:
        """Note in the marker that a later command writes ``entry`` here; returns its path."""
        if not DERIVED.match(entry):
            raise ValueError(f"{entry!r} is not an output hdlgen adds to a build directory")
        if entry not in self.marker["derived"]:
            if os.path.lexists(self.path / entry):
                raise HdlgenError(f"{self.path / entry} exists and hdlgen did not write it; move it out of the build "
                                  f"directory, which hdlgen writes")
            self.marker["derived"].append(entry)
            _write_marker(self.path, self.marker)
        return self.path / entry
