"""What every robustness case checks: one error line, status 2, no traceback, and no file touched."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np

from hdlgen.cli import DEMO_MODEL, main

DIGITS = DEMO_MODEL.parent
BREVITAS = DIGITS.parent / "brevitas_digits"


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry below ``root``: its kind, permission bits and content digest (links are not followed)."""
    state = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            info = path.lstat()
            if path.is_symlink():
                state[str(path.relative_to(root))] = ("link", os.readlink(path))
            elif path.is_dir():
                state[str(path.relative_to(root))] = ("dir", info.st_mode)
            else:
                state[str(path.relative_to(root))] = ("file", info.st_mode, hashlib.sha256(path.read_bytes()).hexdigest())
    return state


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_refused(argv: list[str], root: Path, capsys, expect: str | None = None) -> str:
    """Run the command line in-process and check it refuses cleanly, leaving ``root`` as it was."""
    before = snapshot(root)
    status, _, err = run_cli(["-q", *argv], capsys)
    lines = err.strip().splitlines()
    assert status == 2, f"exit status {status}, stderr: {err}"
    assert len(lines) == 1 and lines[0].startswith("hdlgen: error: "), err
    assert "Traceback" not in err
    if expect is not None:
        assert expect in lines[0], lines[0]
    assert snapshot(root) == before, "a failed command changed files"
    return lines[0]


def copy_native_model(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(DIGITS / "model.json", folder / "model.json")
    shutil.copy(DIGITS / "model.npz", folder / "model.npz")
    return folder / "model.json"


def working_copy(built: Path, tmp_path: Path) -> Path:
    """A test's own copy of a module's build: the model folder ``m``, the build ``out``, and four test
    images with their labels as ``x.npy`` and ``y.npy``."""
    shutil.copytree(built / "m", tmp_path / "m")
    shutil.copytree(built / "out", tmp_path / "out")
    np.save(tmp_path / "x.npy", np.load(DIGITS / "test_x.npy")[:4])
    np.save(tmp_path / "y.npy", np.load(DIGITS / "test_y.npy")[:4])
    return tmp_path
