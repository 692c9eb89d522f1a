"""hdlgen explore: every folding's estimate as a table and a plot, Pareto points marked, checkable by Yosys."""

import csv
import json

import pytest

from hdlgen.paths import EXAMPLES

from test_cli import hdlgen

CNN = EXAMPLES / "brevitas_digits" / "cnn_w2a2.onnx"
MLP = EXAMPLES / "digits" / "model.json"
MLP_W2A2 = EXAMPLES / "brevitas_digits" / "w2a2.onnx"


def rows(folder):
    with open(folder / "explore.csv") as f:
        return list(csv.DictReader(f))


def test_explore_writes_the_table_and_the_plot(tmp_path):
    done = hdlgen("explore", MLP_W2A2, "--target", "ice40-up5k", "-o", tmp_path / "ex")
    assert done.returncode == 0, done.stderr
    table = rows(tmp_path / "ex")
    assert (tmp_path / "ex" / "explore.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fps = [float(r["frames_per_second"]) for r in table]
    assert fps == sorted(fps) and len(set(fps)) == len(fps)
    # the fits column is the device's verdict, and a Pareto point is one no other point dominates in
    # frame rate, logic cells (iCE40's LUT sites: a LUT and a flip-flop each), block RAMs and DSPs
    assert {r["fits"] for r in table} == {"0", "1"}
    assert all(int(r["lut"]) < int(r["logic_cells"]) for r in table)

    def key(r):
        return float(r["frames_per_second"]), -int(r["logic_cells"]), -float(r["bram"]), -int(r["dsp"])
    for r in table:
        dominated = any(all(a >= b for a, b in zip(key(q), key(r))) and key(q) != key(r) for q in table)
        assert r["pareto"] == ("0" if dominated else "1")
    assert f"wrote {tmp_path / 'ex'}/explore.csv and {tmp_path / 'ex'}/explore.png ({len(table)} foldings" in done.stdout


def test_a_point_of_the_table_builds_as_a_folding_file(tmp_path):
    assert hdlgen("explore", CNN, "-o", tmp_path / "ex").returncode == 0
    point = rows(tmp_path / "ex")[3]
    (tmp_path / "fold.json").write_text(point["folding"])
    assert hdlgen("build", CNN, "-o", tmp_path / "out", "--fold", tmp_path / "fold.json").returncode == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["pipeline"]["initiation_interval_cycles"] == int(point["cycles_per_frame"])
    assert report["estimate"]["lut"] == int(point["lut"])


def test_synthesized_points_add_yosys_counts(tmp_path):
    done = hdlgen("explore", MLP, "--target", "ecp5-85k", "-o", tmp_path / "ex", "--synth", "0")
    assert done.returncode == 0, done.stderr
    first, *rest = rows(tmp_path / "ex")
    assert int(first["yosys_lut"]) == pytest.approx(int(first["lut"]), rel=0.3)
    assert int(first["yosys_ff"]) == pytest.approx(int(first["ff"]), rel=0.3)
    assert float(first["yosys_bram"]) == float(first["bram"]) and all(r["yosys_lut"] == "" for r in rest)
    assert first["logic_cells"] == first["nextpnr_logic_cells"] == ""


def test_on_ice40_synthesized_points_add_the_logic_cells_nextpnr_packs(tmp_path):
    done = hdlgen("explore", MLP_W2A2, "--target", "ice40-up5k", "-o", tmp_path / "ex", "--synth", "1")
    assert done.returncode == 0, done.stderr
    point = rows(tmp_path / "ex")[1]
    # the estimate's logic cells against nextpnr's packing of the same design (within the fit's 25 %)
    assert int(point["nextpnr_logic_cells"]) == pytest.approx(int(point["logic_cells"]), rel=0.25)
    assert int(point["nextpnr_logic_cells"]) > int(point["yosys_lut"])


@pytest.mark.parametrize("args, message", [
    (["--synth", "99"], "--synth 99: there is no point 99"),
    (["--synth", "fast"], "--synth fast: give 'pareto' or point numbers"),
    (["--max-lanes", "1"], "more parallel lanes than --max-lanes 1"),
])
def test_explore_mistakes_are_one_line(tmp_path, args, message):
    done = hdlgen("explore", CNN, "-o", tmp_path / "ex", *args)
    assert done.returncode != 0 and message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "ex").exists()


def test_explore_never_writes_into_a_folder_of_yours(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    done = hdlgen("explore", CNN, "-o", mine)
    assert done.returncode != 0 and "not an hdlgen build directory" in done.stderr
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
