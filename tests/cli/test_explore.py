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
    # the fits column is the device's verdict, and a Pareto point is one no other point dominates
    assert {r["fits"] for r in table} == {"0", "1"}
    for r in table:
        dominated = any(float(q["frames_per_second"]) >= float(r["frames_per_second"]) and int(q["lut"]) <= int(r["lut"])
                        and float(q["bram"]) <= float(r["bram"]) and int(q["dsp"]) <= int(r["dsp"]) and q is not r
                        and (q["lut"], q["bram"], q["dsp"], q["frames_per_second"]) !=
                        (r["lut"], r["bram"], r["dsp"], r["frames_per_second"]) for q in table)
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
    assert float(first["yosys_bram"]) == float(first["bram"]) and all(r["yosys_lut"] == "" for r in rest)


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
