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

import fcntl
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from . import __version__
from .errors import HdlgenError
from .readers import parse_json, read_json, validate

__all__ = ["MARKER", "BuildDir", "check_output_dir", "check_output_file", "write_build", "write_file",
           "replace_folder"]

MARKER = "hdlgen-build.json"
FORMAT = "hdlgen-build"
REPORT = "report.json"
DERIVED = re.compile(r"^(sim|synth|board|synth-[a-z0-9][a-z0-9-]*\.json)$")   # what sim, synth, run and bitstream add
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# What a directory with a marker holds: a build (hdlgen build), or a sweep's results (hdlgen explore).
# Each command replaces only a directory of its own kind; a marker without "kind" is a build's.
KINDS = {"build": ("report.json", "lowered.json", "lowered.npz"), "explore": ("explore.csv", "explore.png")}
CORE_FILES = KINDS["build"]
MARKER_SCHEMA = {
    "type": "object",
    "required": ["format", "hdlgen", "command", "files", "derived"],
    "additionalProperties": False,
    "properties": {
        "format": {"const": FORMAT},
        "kind": {"enum": list(KINDS)},
        "hdlgen": {"type": "string"},
        "command": {"type": "array", "items": {"type": "string"}},
        "files": {"type": "object", "additionalProperties": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
        "derived": {"type": "array", "items": {"type": "string", "pattern": DERIVED.pattern}, "uniqueItems": True},
    },
}
SIM_ENTRY = re.compile(r"^\.?[0-9a-f]{16}(\.staging-[0-9a-f]{8})?$")      # a harness per Verilog digest
CONTENTS = ".hdlgen-contents"       # in each folder sim and synth fill: the files hdlgen put there

_COUNT = {"type": "integer", "minimum": 1, "maximum": 2 ** 40}
_STREAM = {"type": "object", "required": ["features", "values_per_beat", "bits_per_value", "beats_per_frame"],
           "properties": {"features": _COUNT, "values_per_beat": _COUNT, "bits_per_value": _COUNT,
                          "beats_per_frame": _COUNT}}
REPORT_SCHEMA = {
    "type": "object",
    "required": ["top", "target", "layers", "pipeline", "input", "output"],
    "properties": {
        "top": {"type": "string", "pattern": IDENTIFIER.pattern},
        "target": {"type": "string"},
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


def _rebuild(marker: dict | None, path: Path | None = None) -> str:
    """How to make the build at ``path`` again: its recorded command, aimed at ``path`` itself (a
    build directory may have been copied or moved since)."""
    command = marker.get("command") if isinstance(marker, dict) else None
    if isinstance(command, list) and command and all(isinstance(c, str) for c in command):
        if path is not None and "-o" in command[:-1]:
            at = command.index("-o") + 1
            command = command[:at] + [str(Path(path).absolute())] + command[at + 1:]
        return f"rebuild it: {shlex.join(command)}"
    return "rebuild it with hdlgen build"


def _resolve(path: Path) -> Path:
    try:
        return Path(path).resolve()
    except RuntimeError:                     # a loop of symbolic links
        raise HdlgenError(f"{path}: a loop of symbolic links; give a real path") from None


def _parse_marker(path: Path) -> dict:
    """The marker of ``path``, checked against its schema; raises a bare HdlgenError otherwise."""
    file = path / MARKER
    if file.is_symlink() or not file.is_file():
        raise HdlgenError(f"{path} is not an hdlgen build directory (no {MARKER})")
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise HdlgenError(f"{file} is damaged (not UTF-8)") from None
    marker = parse_json(text, file, "build marker")
    validate(marker, MARKER_SCHEMA, file)
    for name in marker["files"]:
        if not IDENTIFIER.match(name.replace(".", "_")) or DERIVED.match(name):
            raise HdlgenError(f"{file} lists {name!r}, which hdlgen never writes")
    missing = [name for name in KINDS[kind_of(marker)] if name not in marker["files"]]
    if missing:
        raise HdlgenError(f"{file}: files: {missing[0]!r} is a required property")
    return marker


def kind_of(marker: dict) -> str:
    """What a marker's directory holds; markers written before kinds were recorded name them by files."""
    if "kind" in marker:
        return marker["kind"]
    return "explore" if set(marker["files"]) == set(KINDS["explore"]) else "build"


def _not_a_build(path: Path, marker: dict) -> HdlgenError:
    return HdlgenError(f"{path} holds the results of 'hdlgen {kind_of(marker)}' ({', '.join(KINDS[kind_of(marker)])}), "
                       f"not a build; build the model with 'hdlgen build MODEL -o DIR' and give DIR")


def _read_marker(path: Path) -> dict:
    """The marker of a build directory to read; refuses one edited or written by another version."""
    try:
        marker = _parse_marker(path)
    except HdlgenError as e:
        if not (path / MARKER).exists():
            raise HdlgenError(f"{e}; run 'hdlgen build MODEL -o {path}' first") from None
        raise HdlgenError(f"{e}; the build directory was edited, {_rebuild(None)}") from None
    if kind_of(marker) != "build":
        raise _not_a_build(path, marker)
    if marker["hdlgen"] != __version__:
        raise HdlgenError(f"{path} was built by hdlgen {marker['hdlgen']}, and this is hdlgen {__version__}; "
                          f"{_rebuild(marker, path)}")
    return marker


def _foreign(path: Path, marker: dict) -> list[str]:
    """Entries of a build directory that hdlgen did not write: not in the marker, or not of the
    shape hdlgen gives the ``sim`` and ``synth`` folders it adds."""
    from .boards import board_names
    from .targets import target_names

    known = set(marker["files"]) | set(marker["derived"]) | {MARKER}
    foreign = sorted(name for name in os.listdir(path) if name not in known)
    for name in marker["derived"]:
        entry = path / name
        if not os.path.lexists(entry):
            continue
        if entry.is_symlink() or entry.is_dir() != (name in ("sim", "synth", "board")):
            foreign.append(name)
        elif name in ("sim", "synth", "board"):
            for n in os.listdir(entry):
                fits = SIM_ENTRY.match(n) if name == "sim" else n in target_names() if name == "synth" else \
                    n == "sim" or n in board_names()
                # an interrupted Verilator build of hdlgen's, or a board folder replace_folder was killed in
                staged = STAGED.match(n) if name == "board" else None
                staging = (name == "sim" and "staging" in n) or (staged is not None and staged[1] in board_names())
                fits = fits or (name == "board" and staging)
                if not fits or (entry / n).is_symlink() or not (entry / n).is_dir():
                    foreign.append(f"{name}/{n}")
                elif not staging:
                    # the simulated board compiles in board/sim/.DIGEST.staging-*: an interrupted one stays
                    foreign += [f"{name}/{n}/{f}" for f in _unsealed(entry / n)
                                if not (name == "board" and SIM_ENTRY.match(f.split("/")[0]) and "staging" in f)]
    return foreign


def _files_below(folder: Path) -> set[str]:
    return {str(Path(root, f).relative_to(folder)) for root, _, files in os.walk(folder) for f in files}


def _unsealed(folder: Path) -> list[str]:
    """Files in a folder that sim or synth filled which its contents list does not name."""
    try:
        sealed = set((folder / CONTENTS).read_text().splitlines())
    except (OSError, UnicodeDecodeError):
        sealed = set()
    return sorted(_files_below(folder) - sealed - {CONTENTS})


def _changed(path: Path, marker: dict, *, missing: bool = True) -> list[str]:
    """Files hdlgen wrote that are no longer as written: edited, replaced, or (with ``missing``) gone."""
    return [name for name, digest in marker["files"].items()
            if (os.path.lexists(path / name) or missing) and
            ((path / name).is_symlink() or not (path / name).is_file() or _digest(path / name) != digest)]


def _listed(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def check_output_dir(outdir: Path, inputs: Iterable[Path] = (), kind: str = "build") -> None:
    """Refuse an OUT that hdlgen may not write (see the module's rule); touches nothing. ``kind`` is
    what the command writes there: it replaces only a directory of that kind."""
    outdir = Path(outdir)
    if outdir.is_symlink():
        raise HdlgenError(f"-o {outdir} is a symbolic link; give the directory itself (hdlgen does not write through links)")
    target = _resolve(outdir)
    cwd = _resolve(Path.cwd())
    if target == cwd or target in cwd.parents:
        raise HdlgenError(f"-o {outdir} is the current directory or one of its parents, which hdlgen will not replace; "
                          f"give a new directory such as -o build/{target.name or 'out'}")
    for item in inputs:
        item = _resolve(item)
        if target == item or target in item.parents:
            raise HdlgenError(f"-o {outdir} holds {item}, an input of this build; choose another output directory")
    if not outdir.exists():
        existing = next(p for p in target.parents if p.exists())
        if not existing.is_dir():
            raise HdlgenError(f"-o {outdir}: {existing} is a file, not a folder; choose another output directory")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise HdlgenError(f"-o {outdir}: cannot create it in {existing} (permission denied)")
        return
    if not outdir.is_dir():
        raise HdlgenError(f"-o {outdir} exists and is not a directory; choose another output directory")
    if not os.listdir(outdir):
        return
    if not (outdir / MARKER).exists():
        raise HdlgenError(f"{outdir} exists and is not an hdlgen build directory (it has no {MARKER}); hdlgen "
                          f"replaces only directories it wrote: choose another -o or empty it yourself")
    try:
        marker = _parse_marker(outdir)       # any version: a build from an older hdlgen is replaced too
    except HdlgenError as e:
        raise HdlgenError(f"{e}, so hdlgen cannot tell its files from yours and will not replace {outdir}: "
                          f"remove it yourself or choose another -o") from None
    if kind_of(marker) != kind:
        held = "an hdlgen build (with its simulations and syntheses)" if kind_of(marker) == "build" else \
            f"the results of 'hdlgen {kind_of(marker)}'"
        raise HdlgenError(f"-o {outdir} holds {held}, and 'hdlgen {kind}' replaces only its own results; choose "
                          f"another -o, or remove {outdir} yourself")
    foreign = _foreign(outdir, marker)
    if foreign:
        raise HdlgenError(f"{outdir} holds files hdlgen did not write ({_listed(foreign)}); hdlgen keeps them and will "
                          f"not replace the directory: move them out or choose another -o")
    changed = _changed(outdir, marker, missing=False)      # a file deleted holds nothing of yours to keep
    if changed:
        raise HdlgenError(f"{outdir}: {_listed(changed)} changed after hdlgen wrote it; hdlgen keeps your edits and will "
                          f"not replace the directory: move them out or choose another -o")


def check_output_file(path: Path, *, flag: str, suffix: str, inputs: Iterable[Path] = ()) -> Path:
    """Refuse a file a command may not write (``--out``, ``quantize -o``) before any work: a name
    without ``suffix``, a link, one of the command's ``inputs``, a folder, a missing or unwritable
    folder, or a place inside an hdlgen build directory (which holds only what hdlgen builds)."""
    path = Path(path)
    named = f"{flag} {path}"
    a_file = f"{'an' if suffix[1:2] in tuple('aeiou') else 'a'} {suffix} file"
    real = Path(os.path.realpath(path))          # never raises, even on a loop of links
    if path.suffix.lower() != suffix:
        raise HdlgenError(f"{named}: name {a_file}")
    if path.is_symlink():
        raise HdlgenError(f"{named} is a symbolic link; name the file itself (hdlgen does not write through links)")
    for given in inputs:
        if real == Path(os.path.realpath(given)):
            raise HdlgenError(f"{named} is also an input of this command ({given}); name another file")
    if path.is_dir():
        raise HdlgenError(f"{named} is a directory; name {a_file}")
    folder = path.absolute().parent
    if not folder.is_dir():
        raise HdlgenError(f"{named}: the folder {folder} does not exist")
    for parent in dict.fromkeys((*path.absolute().parents, *real.parents)):
        if (parent / MARKER).exists():
            raise HdlgenError(f"{named} is inside the build directory {parent}, which holds only what hdlgen "
                              f"builds; write it elsewhere")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise HdlgenError(f"{named}: cannot write there (permission denied); choose a folder you can write")
    try:           # root's os.access says yes to folders such as /proc, where nothing can be created
        with tempfile.TemporaryFile(dir=folder, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as e:
        raise HdlgenError(f"{named}: cannot create a file in {folder} ({e.strerror or e}); choose a folder you "
                          f"can write") from None
    return path


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


@contextmanager
def _signals_held():
    """Ctrl-C and SIGTERM wait until the block ends, so a second signal cannot cut a cleanup short."""
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def write_build(outdir: Path, write: Callable[[Path], None], *, command: list[str], inputs: Iterable[Path] = (),
                kind: str = "build") -> None:
    """Call ``write(staging)`` to write a build, then put it at ``outdir`` with its marker.

    Staging happens beside ``outdir``; ``outdir`` is checked again right before it is replaced, and
    a replaced build is deleted only after the new one is in place. ``command`` is what rebuilds it.
    """
    outdir = Path(outdir)
    parent = outdir.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HdlgenError(f"-o {outdir}: cannot create {parent} ({e.strerror})") from None
    def complete(staging: Path) -> None:
        write(staging)
        files = {entry.name: _digest(entry) for entry in sorted(staging.iterdir())}
        # a build's marker reads as before kinds were recorded, so other installs of this version open it
        _write_marker(staging, {"format": FORMAT, **({} if kind == "build" else {"kind": kind}), "hdlgen": __version__,
                                "command": command, "files": files, "derived": []})
        check_output_dir(outdir, inputs, kind)

    replace_folder(outdir, complete, prefix="hdlgen-", what=f"-o {outdir}")


STAGED = re.compile(r"^\.([A-Za-z0-9_-]+)\.(staging|previous)-[0-9a-f]{8}$")   # replace_folder's, if it was killed


def replace_folder(folder: Path, write: Callable[[Path], None], *, prefix: str = "", what: str | None = None) -> None:
    """Write ``folder`` whole: ``write(staging)`` fills a hidden folder beside it, which then takes
    ``folder``'s place. The previous ``folder`` is deleted only after the new one is in place; a
    failure or an interrupt (Ctrl-C, SIGTERM) before that leaves it as it was, and no staging behind."""
    folder = Path(folder)
    token = secrets.token_hex(4)
    staging = folder.with_name(f".{folder.name}.{prefix}staging-{token}")
    previous = folder.with_name(f".{folder.name}.{prefix}previous-{token}")
    swapped = False
    try:
        try:
            os.mkdir(staging)             # mode 0o777 less the umask, like every file written in it
        except OSError as e:
            raise HdlgenError(f"{what or folder}: cannot write in {folder.absolute().parent} ({e.strerror})") from None
        write(staging)
        with _signals_held():
            if os.path.lexists(folder):
                folder.rename(previous)
            staging.rename(folder)
            swapped = True
    finally:
        with _signals_held():
            if previous.exists() and not swapped:
                if not os.path.lexists(folder):
                    previous.rename(folder)       # stopped between the two renames: put the old one back
            if staging.exists():
                shutil.rmtree(staging)
            if previous.exists() and swapped:
                shutil.rmtree(previous)


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
        if path.is_file():
            raise HdlgenError(f"{path} is a file, not a build directory; build it first ('hdlgen build {path} -o OUT') "
                              f"and give OUT" if path.suffix.lower() in (".json", ".onnx") else
                              f"{path} is a file, not a build directory; give the folder 'hdlgen build -o' wrote")
        if not path.is_dir():
            raise HdlgenError(f"{path}: no such build directory; run 'hdlgen build MODEL -o {path}' first")
        marker = _read_marker(path)
        changed = _changed(path, marker)
        gone = [name for name in changed if not os.path.lexists(path / name)]
        edited = [name for name in changed if name not in gone]
        if edited:
            raise HdlgenError(f"{path}: {_listed(edited)} changed after hdlgen wrote it; {_rebuild(marker, path)}, "
                              f"after moving your edited files out of {path} (hdlgen never replaces them), or into "
                              f"another directory")
        if gone:
            raise HdlgenError(f"{path}: {_listed(gone)} went missing after hdlgen wrote it; {_rebuild(marker, path)}")
        foreign = _foreign(path, marker)
        if foreign:
            raise HdlgenError(f"{path} holds files hdlgen did not write ({_listed(foreign)}); move them out of the "
                              f"build directory, which hdlgen writes")
        report = read_json(path / REPORT, "build report", REPORT_SCHEMA)
        verilog = f"{report['top']}.v"
        if verilog not in marker["files"]:
            raise HdlgenError(f"{path / REPORT} names top {report['top']!r}, but the build holds no {verilog}; "
                              f"{_rebuild(marker, path)}")
        model, foldings = load_lowered(path)
        if {layer["name"]: (layer["pe"], layer["simd"], layer.get("zero_skip", False)) for layer in report["layers"]} != \
                {name: (f.pe, f.simd, f.zero_skip) for name, f in foldings.items()}:
            raise HdlgenError(f"{path}: report.json and lowered.json disagree on the folding; {_rebuild(marker, path)}")
        return cls(path, report, model, foldings, marker)

    @property
    def verilog(self) -> Path:
        return self.path / f"{self.report['top']}.v"

    @property
    def stream_bits(self) -> tuple[int, int]:
        i, o = self.report["input"], self.report["output"]
        return i["values_per_beat"] * i["bits_per_value"], o["last_bit"] + 1

    @staticmethod
    def seal(folder: Path, also: Iterable[str] = ()) -> None:
        """List every file a command wrote in ``folder`` (and ``also``, written there later), so that a
        rebuild can tell them from a user's files."""
        names = sorted(_files_below(folder) | set(also) - {CONTENTS})
        write_file(folder / CONTENTS, ("\n".join(names) + "\n").encode())

    def record(self, entry: str) -> Path:
        """Note in the marker that a later command writes ``entry`` here; returns its path.

        The marker is read again and written under a lock, so commands running side by side on one
        build (sim and synth) each keep what the other recorded.
        """
        if not DERIVED.match(entry):
            raise ValueError(f"{entry!r} is not an output hdlgen adds to a build directory")
        lock = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            marker = _read_marker(self.path)
            if entry not in marker["derived"]:
                if os.path.lexists(self.path / entry):
                    raise HdlgenError(f"{self.path / entry} exists and hdlgen did not write it; move it out of the "
                                      f"build directory, which hdlgen writes")
                marker["derived"].append(entry)
                _write_marker(self.path, marker)
            self.marker = marker
        finally:
            os.close(lock)
        return self.path / entry
