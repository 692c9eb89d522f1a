"""Output directories, edited build directories, option values and simulation inputs.

The rule under test (README, ``hdlgen.builddir``): hdlgen replaces only an empty directory or one
it wrote, proven by its marker; it refuses a directory holding anything else and touches nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from hdlgen.builddir import MARKER
from robustness.harness import assert_refused, copy_native_model, run_cli, snapshot, working_copy


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One build of the bundled model; each test works on its own copy."""
    root = tmp_path_factory.mktemp("built")
    model = copy_native_model(root / "m")
    from hdlgen.cli import main
    assert main(["-q", "build", str(model), "-o", str(root / "out")]) == 0
    return root


@pytest.fixture
def work(tmp_path, built):
    return working_copy(built, tmp_path)


def test_rebuild_replaces_only_its_own_build(work, capsys):
    (work / "out" / "sim").mkdir()            # what sim adds, once the marker records it
    marker = json.loads((work / "out" / MARKER).read_text())
    marker["derived"] = ["sim"]
    (work / "out" / MARKER).write_text(json.dumps(marker))
    status, _, err = run_cli(["-q", "build", work / "m" / "model.json", "-o", work / "out"], capsys)
    assert status == 0, err
    assert sorted(os.listdir(work / "out")) == sorted(["digits_bnn_top.v", "lowered.json", "lowered.npz", "report.json", MARKER])
    assert not [p for p in work.iterdir() if ".hdlgen-" in p.name]


def test_permissions_follow_the_umask(work, capsys):
    old = os.umask(0o027)
    try:
        status, _, err = run_cli(["-q", "build", work / "m" / "model.json", "-o", work / "new"], capsys)
    finally:
        os.umask(old)
    assert status == 0, err
    assert stat.S_IMODE((work / "new").stat().st_mode) == 0o750
    assert {stat.S_IMODE(p.stat().st_mode) for p in (work / "new").iterdir()} == {0o640}


def _folder_with(*files):
    def make(work):
        (work / "mine").mkdir()
        for name in files:
            (work / "mine" / name).write_text("keep")
        return work / "mine"
    return make


def _file_in_build(work):
    (work / "out" / "notes.txt").write_text("keep")
    return work / "out"


def _write(path, text):
    path.write_text(text)
    return path.parent


def _sealed(work, folder, *files, extra=None):
    """A folder as sim or synth leave it (files listed in its contents file), plus a user's file."""
    from hdlgen.builddir import CONTENTS

    _edit_marker(work, derived=[folder.split("/")[0]])
    for name in files + ((extra,) if extra else ()):
        _make_file(work / "out" / folder / name)
    (work / "out" / folder / CONTENTS).write_text("\n".join(files) + "\n")
    return work / "out"


def _append(path):
    path.write_text(path.read_text() + " ")
    return path.parent


def _make_file(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("mine")
    return path.parent.parent


def _link(work, target):
    os.symlink(target, work / "link")
    return work / "link"


OUTPUT_DIRS = {
    "user-files": (_folder_with("notes.txt"), "is not an hdlgen build directory"),
    "report-json-is-no-proof": (_folder_with("report.json", "thesis.tex"), "is not an hdlgen build"),
    "build-with-user-file": (_file_in_build, "holds files hdlgen did not write (notes.txt)"),
    "marker-damaged": (lambda w: _write(w / "out" / MARKER, "{"), "remove it yourself or choose another -o"),
    "build-with-an-edited-file": (lambda w: _append(w / "out" / "report.json"), "report.json changed after hdlgen wrote it"),
    "build-with-a-file-in-synth": (lambda w: _edit_marker(w, derived=["synth"]) and _make_file(w / "out" / "synth" / "my.lpf"),
                                   "holds files hdlgen did not write (synth/my.lpf)"),
    "build-with-a-file-in-sim": (lambda w: _edit_marker(w, derived=["sim"]) and _make_file(w / "out" / "sim" / "notes"),
                                 "holds files hdlgen did not write (sim/notes)"),
    "a-symlink-loop": (lambda w: _link(w, w / "link") / "out", "a loop of symbolic links"),
    "a-file-in-a-sealed-sim-folder": (lambda w: _sealed(w, "sim/0123456789abcdef", "Vsim", extra="my_testbench.cpp"),
                                      "sim/0123456789abcdef/my_testbench.cpp"),
    "a-file-in-a-sealed-synth-folder": (lambda w: _sealed(w, "synth/ecp5-25k", "yosys.log", extra="my.lpf"),
                                        "synth/ecp5-25k/my.lpf"),
    "in-proc": (lambda w: Path("/proc/hdlgen-out"), "-o /proc/hdlgen-out: cannot"),
    "marker-listing-a-path": (lambda w: _edit_marker(w, files={**_marker(w)["files"], "../m/model.json": "0" * 64}), "which hdlgen never writes"),
    "a-file": (lambda w: w / "x.npy", "exists and is not a directory"),
    "the-model-file": (lambda w: w / "m" / "model.json", "an input of this build"),
    "the-model-folder": (lambda w: w / "m", "an input of this build"),
    "an-ancestor-of-the-model": (lambda w: w, "an input of this build"),
    "a-symlink": (lambda w: _link(w, w / "out"), "is a symbolic link"),
    "a-dangling-symlink": (lambda w: _link(w, w / "nowhere"), "is a symbolic link"),
    "below-a-file": (lambda w: w / "x.npy" / "out", "x.npy"),
}


def _marker(work):
    return json.loads((work / "out" / MARKER).read_text())


def _edit_marker(work, **changes):
    marker = json.loads((work / "out" / MARKER).read_text())
    marker.update(changes)
    (work / "out" / MARKER).write_text(json.dumps(marker))
    return work / "out"


def test_a_build_from_another_version_is_replaced(work, capsys):
    _edit_marker(work, hdlgen="0.0.1")
    status, _, err = run_cli(["-q", "build", work / "m" / "model.json", "-o", work / "out"], capsys)
    assert status == 0, err
    assert json.loads((work / "out" / MARKER).read_text())["hdlgen"] != "0.0.1"


@pytest.mark.parametrize("folder, files", [("sim/0123456789abcdef", ("Vsim", "inputs.bin")),
                                           ("synth/xc7", ("yosys.log", "netlist.json"))])
def test_rebuild_removes_what_sim_and_synth_wrote(work, capsys, folder, files):
    _sealed(work, folder, *files)
    status, _, err = run_cli(["-q", "build", work / "m" / "model.json", "-o", work / "out"], capsys)
    assert status == 0, err
    assert not (work / "out" / folder.split("/")[0]).exists()


def test_rebuild_advice_names_the_directory_in_hand(work, capsys):
    shutil.copytree(work / "out", work / "copy")
    (work / "copy" / "report.json").write_text("{}")
    line = assert_refused(["sim", work / "copy", "--inputs", work / "x.npy"], work, capsys, "rebuild it: hdlgen build")
    assert f"-o {work / 'copy'}" in line and f"-o {work / 'out'}" not in line


def test_marker_records_what_rebuilds_it(work):
    command = json.loads((work / "out" / MARKER).read_text())["command"]
    assert command[:2] == ["hdlgen", "build"] and command[2].endswith("model.json") and command[3] == "-o"


def test_commands_side_by_side_keep_each_others_records(work):
    from hdlgen.builddir import BuildDir

    a, b = BuildDir.open(work / "out"), BuildDir.open(work / "out")
    a.record("sim")
    b.record("synth")
    assert sorted(json.loads((work / "out" / MARKER).read_text())["derived"]) == ["sim", "synth"]


@pytest.mark.parametrize("case", sorted(OUTPUT_DIRS))
def test_output_directory_refused(work, capsys, case):
    make, message = OUTPUT_DIRS[case]
    outdir = make(work)
    assert_refused(["build", work / "m" / "model.json", "-o", outdir], work, capsys, message)


@pytest.mark.parametrize("where, out", [("out", "."), ("out", ".."), ("out/inner", "../.."), ("m", "."), (".", "")])
def test_current_directory_and_its_parents_refused(work, capsys, monkeypatch, where, out):
    (work / where).mkdir(exist_ok=True)
    monkeypatch.chdir(work / where)
    assert_refused(["build", work / "m" / "model.json", "-o", out], work, capsys, "the current directory or one of its parents")


def test_folding_file_inside_the_output_directory_refused(work, capsys):
    fold = work / "out" / "fold.json"
    fold.write_text("{}")
    assert_refused(["build", work / "m" / "model.json", "-o", work / "out", "--fold", fold], work, capsys,
                   "an input of this build")


# -- build directories edited after hdlgen wrote them --------------------------------------------------

def _rewrite_json(name, change):
    def edit(out):
        doc = json.loads((out / name).read_text())
        change(doc)
        (out / name).write_text(json.dumps(doc))
    return edit


def _truncate(name):
    def edit(out):
        data = (out / name).read_bytes()
        (out / name).write_bytes(data[: len(data) // 2])
    return edit


def _replace_by_link(path, target):
    path.unlink()
    os.symlink(target, path)


EDITS = {
    "report-top-injection": _rewrite_json("report.json", lambda d: d.update(top="x; shell rm -rf /")),
    "report-latency": _rewrite_json("report.json", lambda d: d["pipeline"].update(latency_bound_cycles=10 ** 12)),
    "report-beats": _rewrite_json("report.json", lambda d: d["input"].update(values_per_beat=3)),
    "report-truncated": _truncate("report.json"),
    "report-removed": lambda out: (out / "report.json").unlink(),
    "report-symlink": lambda out: _replace_by_link(out / "report.json", out / "lowered.json"),
    "lowered-json-fold": _rewrite_json("lowered.json", lambda d: d["layers"][0].update(pe=2)),
    "lowered-json-truncated": _truncate("lowered.json"),
    "lowered-npz-truncated": _truncate("lowered.npz"),
    "lowered-npz-replaced": lambda out: np.savez(out / "lowered.npz", x=np.zeros(3)),
    "verilog-edited": lambda out: next(out.glob("*.v")).write_text("module evil; endmodule\n"),
    "verilog-removed": lambda out: next(out.glob("*.v")).unlink(),
    "marker-removed": lambda out: (out / MARKER).unlink(),
    "marker-version": lambda out: _edit_marker(out.parent, hdlgen="9.9"),
    "marker-digest": lambda out: _edit_marker(out.parent, files={"report.json": "0" * 64}),
    "marker-not-json": lambda out: (out / MARKER).write_bytes(b"\xff\x00"),
    "marker-deep": lambda out: (out / MARKER).write_text("[" * 100_000),
    "marker-derived-symlink": lambda out: _edit_marker(out.parent, derived=["sim"]) and os.symlink(out.parent, out / "sim"),
}


@pytest.mark.parametrize("command", ["sim", "synth"])
@pytest.mark.parametrize("edit", sorted(EDITS))
def test_edited_build_directory_refused(work, capsys, edit, command):
    EDITS[edit](work / "out")
    argv = ["sim", work / "out", "--inputs", work / "x.npy"] if command == "sim" else \
        ["synth", work / "out", "--target", "xc7"]
    line = assert_refused(argv, work, capsys)
    assert "rebuild it" in line or "hdlgen build MODEL" in line or "did not write" in line, line


@pytest.mark.parametrize("command", ["sim", "synth"])
def test_sim_and_synth_do_not_claim_a_users_file(work, capsys, command):
    (work / "out" / command).write_text("mine")
    argv = ["sim", work / "out", "--inputs", work / "x.npy"] if command == "sim" else \
        ["synth", work / "out", "--target", "xc7"]
    assert_refused(argv, work, capsys, f"holds files hdlgen did not write ({command})")


# -- options and simulation inputs ----------------------------------------------------------------------

BUILD_OPTIONS = [
    ["--clock-mhz", "inf"], ["--clock-mhz", "nan"], ["--clock-mhz", "-1"], ["--clock-mhz", "0"], ["--clock-mhz", "1e400"],
    ["--clock-mhz", "abc"], ["--clock-mhz", "1e-320"], ["--target-fps", "1e-320"], ["--target-fps", "inf"],
    ["--target-fps", "nan"], ["--target-fps", "0"], ["--target-fps", "1e12"], ["--fold", "missing.json"],
    ["--fold", "auto", "--target-fps", "x"], ["--target", "ecp5"], ["--target", ""], ["--bogus"], [],
]


@pytest.mark.parametrize("options", BUILD_OPTIONS, ids=lambda o: " ".join(o) or "no-output-dir")
def test_build_options_refused(work, capsys, options):
    argv = ["build", work / "m" / "model.json"] + (["-o", work / "new"] if options else []) + options
    assert_refused(argv, work, capsys)


def _save(name, array):
    def make(work):
        np.save(work / name, array)
        return work / name
    return make


def _npz(work):
    np.savez(work / "x.npz", x=np.zeros((4, 64)))
    return work / "x.npz"


def _write_bytes(path, data):
    path.write_bytes(data)
    return path


SIM_INPUTS = {
    "zero-frames": (_save("z.npy", np.zeros((0, 64))), "holds no frames"),
    "scalar": (_save("z.npy", np.float64(3.0)), "inputs"),
    "npz": (_npz, "is an NPZ archive"),
    "npz-renamed-npy": (lambda w: _npz(w).rename(w / "y.npy"), "is an NPZ archive"),
    "complex": (_save("z.npy", np.zeros((4, 64), dtype=complex)), "complex"),
    "strings": (_save("z.npy", np.array([["a"] * 64])), "not numbers"),
    "nan": (_save("z.npy", np.full((4, 64), np.nan)), "finite"),
    "inf": (_save("z.npy", np.full((4, 64), np.inf)), "finite"),
    "bools": (_save("z.npy", np.zeros((4, 64), dtype=bool)), "not numbers"),
    "wrong-width": (_save("z.npy", np.zeros((4, 65))), "(4, 65)"),
    "three-dims-wrong-size": (_save("z.npy", np.zeros((4, 8, 8, 2))), "(4, 8, 8, 2)"),
    "truncated": (lambda w: _write_bytes(w / "z.npy", (w / "x.npy").read_bytes()[:100]), "not a readable"),
    "text": (lambda w: _write_bytes(w / "z.npy", b"1,2,3"), "not a .npy file (it starts with neither numpy's nor zip's header"),
    "directory": (lambda w: w / "m", "is a directory"),
    "missing": (lambda w: w / "absent.npy", "not found"),
}


@pytest.mark.parametrize("case", sorted(SIM_INPUTS))
def test_sim_inputs_refused(work, capsys, case):
    make, message = SIM_INPUTS[case]
    assert_refused(["sim", work / "out", "--inputs", make(work)], work, capsys, message)


SIM_LABELS = {
    "floats": np.zeros(4), "too-few": np.zeros(3, dtype=int), "two-dims": np.zeros((4, 1), dtype=int),
    "bools": np.zeros(4, dtype=bool), "complex": np.zeros(4, dtype=complex),
}


@pytest.mark.parametrize("case", sorted(SIM_LABELS))
def test_sim_labels_refused(work, capsys, case):
    np.save(work / "y.npy", SIM_LABELS[case])
    assert_refused(["sim", work / "out", "--inputs", work / "x.npy", "--labels", work / "y.npy"], work, capsys)


@pytest.mark.parametrize("out, message", [("r.txt", "name a .npy file"), ("r", "name a .npy file"),
                                          ("m", "name a .npy file"), ("nowhere/r.npy", "does not exist"),
                                          ("x.npy", "is also an input of this command"),
                                          ("out/y.npy", "is inside the build directory")])
def test_sim_output_file_refused_before_simulating(work, capsys, out, message):
    assert_refused(["sim", work / "out", "--inputs", work / "x.npy", "--out", work / out], work, capsys, message)


def test_snapshot_sees_changes(work):
    """The check every case relies on notices an edit, a new file and a changed mode."""
    before = snapshot(work)
    (work / "x.npy").write_bytes(b"changed")
    assert snapshot(work) != before


# -- the size guard --------------------------------------------------------------------------------------

@pytest.mark.parametrize("options, message", [
    (["--max-weight-bits", "1000"], "holds 8,832 weight bits, over the size guard of 1,000 (--max-weight-bits)"),
    (["--max-lanes", "100"], "over the size guard of 100 (--max-lanes)"),
    (["--target-fps", "1e8", "--max-lanes", "5000"], "asks for 8,960 parallel lanes"),
    (["--max-lanes", "0"], "--max-lanes: must be a whole number from 1 to"),
    (["--max-weight-bits", "1e9"], "--max-weight-bits: expected a whole number"),
])
def test_size_guard(work, capsys, options, message):
    assert_refused(["build", work / "m" / "model.json", "-o", work / "new", *options], work, capsys, message)


def test_size_guard_stops_a_huge_layer_by_default(tmp_path, capsys):
    """A layer with a million inputs is refused before any time goes into generating it."""
    from hdlgen.frontend import save_model
    from hdlgen.ir import BIPOLAR, Dense, InputQuantizer, Model, QuantType

    n = 10 ** 6
    weights = np.where(np.random.default_rng(0).random((10, n)) < 0.5, -1, 1).astype(np.int8)
    save_model(Model("huge", InputQuantizer(n, QuantType.uint(2), 0.1), [Dense("fc0", weights, BIPOLAR, 1.0)]),
               tmp_path / "huge.json")
    assert_refused(["build", tmp_path / "huge.json", "-o", tmp_path / "out"], tmp_path, capsys,
                   "holds 10,000,000 weight bits, over the size guard of 8,388,608")


def test_output_into_a_closed_pipe_is_no_error(work):
    """`hdlgen build ... | head -1`: the reader went away; hdlgen says nothing and exits like a piped tool."""
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)
    done = subprocess.run([sys.executable, "-m", "hdlgen.cli", "-q", "build", str(work / "m" / "model.json"),
                           "-o", str(work / "new")], stdout=write, stderr=subprocess.PIPE, text=True)
    os.close(write)
    assert done.returncode == 141 and done.stderr == "", done.stderr
    assert (work / "new" / MARKER).exists()


@pytest.mark.parametrize("argv, message", [
    ([], "hdlgen: error: give a command: build, sim, synth, quantize, inspect or demo"),
    (["build"], "hdlgen: error: build: the following arguments are required"),
    (["frobnicate"], "hdlgen: error: argument command: invalid choice: 'frobnicate'"),
])
def test_usage_mistakes_are_one_plain_line(work, capsys, argv, message):
    line = assert_refused(argv, work, capsys)
    assert line.startswith(message), line


def test_inputs_of_the_wrong_shape_name_the_file(work, capsys):
    np.save(work / "wide.npy", np.zeros(450))
    assert_refused(["sim", work / "out", "--inputs", work / "wide.npy"], work, capsys,
                   f"{work / 'wide.npy'}: inputs have shape (450,); the model takes (batch, 64)")


def test_version(capsys):
    from hdlgen import __version__
    from hdlgen.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"hdlgen {__version__}"
