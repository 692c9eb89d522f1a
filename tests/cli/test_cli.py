"""The command line: one clear line for user mistakes, no half-written outputs, working commands."""

import json
import subprocess
import sys

import numpy as np
import pytest

from factories import BIPOLAR, UINT, random_inputs, random_model
from hdlgen.backends.tools import verilator_executable
from hdlgen.backends.vendor_models import simulation_models
from hdlgen.cli import DEMO_MODEL, main
from hdlgen.frontend import save_model
from hdlgen.golden import run_reference
from hdlgen.paths import EXAMPLES


def hdlgen(*args):
    return subprocess.run([sys.executable, "-m", "hdlgen.cli", "-q", *map(str, args)], capture_output=True, text=True)


@pytest.fixture
def small_model(tmp_path, rng):
    model = random_model(rng, sizes=[8, 6, 3], input_quant=UINT(2), act_quant=BIPOLAR)
    save_model(model, tmp_path / "small.json")
    return tmp_path / "small.json", model


def one_error_line(done, message):
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hdlgen: error: ") and message in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_build_writes_verilog_report_and_lowered_model(tmp_path, small_model):
    path, _ = small_model
    done = hdlgen("build", path, "-o", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert (tmp_path / "out" / f"{report['top']}.v").exists()
    assert {"lowered.json", "lowered.npz"} <= {p.name for p in (tmp_path / "out").iterdir()}
    layer = report["layers"][0]
    assert {"pe", "simd", "cycles_per_frame", "weight_memory_bits"} <= set(layer)
    assert report["pipeline"]["initiation_interval_cycles"] == max(l["cycles_per_frame"] for l in report["layers"])
    assert "cycles per frame" in done.stdout


def test_generated_verilog_passes_verilator_lint(tmp_path, small_model):
    path, _ = small_model
    assert hdlgen("build", path, "-o", tmp_path / "out").returncode == 0
    verilog = next((tmp_path / "out").glob("*.v"))
    # with Yosys's models of the carry cells it instantiates (ECP5 CCU2C, the default target)
    models = tmp_path / "models.v"
    models.write_text(simulation_models(verilog.read_text()))
    assert "module CCU2C" in models.read_text()
    lint = subprocess.run([verilator_executable(), "--lint-only", "--top-module", verilog.stem, str(verilog),
                           str(models)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stderr[-2000:]


def test_same_model_gives_identical_verilog(tmp_path, small_model):
    path, _ = small_model
    for out in ("a", "b"):
        assert hdlgen("build", path, "-o", tmp_path / out).returncode == 0
    assert next((tmp_path / "a").glob("*.v")).read_bytes() == next((tmp_path / "b").glob("*.v")).read_bytes()


@pytest.mark.parametrize("change, message", [
    (lambda d: d["layers"][0].update(op="conv"), "unknown op 'conv'"),
    (lambda d: d["layers"][0].pop("weight_quant"), "missing field(s) weight_quant"),
    (lambda d: d["input"].update(features=9), "weight has 8 input features but the previous layer gives 9"),
])
def test_build_rejects_malformed_models(tmp_path, small_model, change, message):
    path, _ = small_model
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    done = hdlgen("build", path, "-o", tmp_path / "out")
    one_error_line(done, message)
    assert not (tmp_path / "out").exists()


def test_build_rejects_folding_that_does_not_divide(tmp_path, small_model):
    path, _ = small_model
    fold = tmp_path / "fold.json"
    fold.write_text(json.dumps({"fc0": {"pe": 4, "simd": 8}, "fc1": {"pe": 1, "simd": 1}}))
    one_error_line(hdlgen("build", path, "-o", tmp_path / "out", "--fold", fold),
                   "layer 'fc0': pe=4 does not divide its 6 output rows; choose a divisor of 6")
    assert not (tmp_path / "out").exists()


def test_build_keeps_a_previous_build_when_the_new_one_fails(tmp_path, small_model):
    path, _ = small_model
    assert hdlgen("build", path, "-o", tmp_path / "out").returncode == 0
    before = sorted(p.name for p in (tmp_path / "out").iterdir())
    one_error_line(hdlgen("build", tmp_path / "missing.json", "-o", tmp_path / "out"), "model file not found")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".hdlgen-")]


def test_build_refuses_a_directory_it_did_not_write(tmp_path, small_model):
    path, _ = small_model
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    one_error_line(hdlgen("build", path, "-o", tmp_path / "mine"), "is not an hdlgen build directory")


def test_build_for_a_target(tmp_path, small_model):
    """The target sets the LUT size the adder trees are shaped for; the report names it, each layer's
    products and why; the rebuild command keeps it; ecp5-85k is the default."""
    path, _ = small_model
    assert hdlgen("build", path, "-o", tmp_path / "out", "--target", "xcup").returncode == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert (report["target"], report["lut_inputs"]) == ("xcup", 6)
    assert [layer["product"] for layer in report["layers"]] == ["select", "xnor"]
    assert "XNOR-popcount" in report["layers"][1]["product_reason"]
    marker = json.loads((tmp_path / "out" / "hdlgen-build.json").read_text())
    assert marker["command"][-2:] == ["--target", "xcup"]
    assert hdlgen("build", path, "-o", tmp_path / "default").returncode == 0
    assert json.loads((tmp_path / "default" / "report.json").read_text())["target"] == "ecp5-85k"
    done = hdlgen("build", path, "-o", tmp_path / "x", "--target", "stratix")
    assert done.returncode == 2 and "must be one of ecp5-25k, ecp5-85k, ice40-up5k, xc7, xcup, not 'stratix'" in done.stderr
    done = hdlgen("build", path, "-o", tmp_path / "y", "--lut-inputs", "6")
    assert done.returncode == 2 and "unrecognized arguments: --lut-inputs" in done.stderr


def test_build_with_target_fps(tmp_path, small_model):
    path, _ = small_model
    assert hdlgen("build", path, "-o", tmp_path / "out", "--target-fps", "20e6").returncode == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["pipeline"]["initiation_interval_cycles"] <= 5
    one_error_line(hdlgen("build", path, "-o", tmp_path / "x", "--target-fps", "1e12"), "lower --target-fps")


def test_unreachable_frame_rate_is_an_error_with_the_best_one(tmp_path):
    # a convolution's window stage sends one window position per beat (simd divides its channels):
    # the digits CNN's first layer cannot go below 64 x 9 cycles per frame, however unrolled
    model = EXAMPLES / "brevitas_digits" / "cnn_w1a1.onnx"
    done = hdlgen("build", model, "-o", tmp_path / "x", "--target-fps", "1e7")
    one_error_line(done, "--target-fps 10,000,000 cannot be met at 100 MHz: even fully unrolled, stage "
                         "'Conv_0_window' takes 576 cycles per frame, so the pipeline makes at most 173,611 frames/s")
    assert "(--target-fps 173611)" in done.stderr and not (tmp_path / "x").exists()
    assert hdlgen("build", model, "-o", tmp_path / "best", "--target-fps", "173611").returncode == 0
    report = json.loads((tmp_path / "best" / "report.json").read_text())
    assert report["pipeline"]["initiation_interval_cycles"] == 576


def test_sim_writes_outputs_in_model_units(tmp_path, small_model, rng):
    path, model = small_model
    assert hdlgen("build", path, "-o", tmp_path / "out").returncode == 0
    x = random_inputs(rng, model, 40)
    labels = rng.integers(0, 3, size=40)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", labels)
    done = hdlgen("sim", tmp_path / "out", "--inputs", tmp_path / "x.npy", "--labels", tmp_path / "y.npy",
                  "--out", tmp_path / "out.npy")
    assert done.returncode == 0, done.stderr
    outputs = np.load(tmp_path / "out.npy")
    assert np.array_equal(outputs, run_reference(model, x))
    assert "RTL == golden model on 40/40 frames" in done.stdout
    accuracy = np.mean(outputs.argmax(1) == labels)
    assert f"accuracy: RTL {accuracy:.4f}, golden model {accuracy:.4f}" in done.stdout
    assert "cycles per frame: measured" in done.stdout and "stalls:" not in done.stdout
    # the same frames with the input and the output stalling at random: the same outputs
    done = hdlgen("sim", tmp_path / "out", "--inputs", tmp_path / "x.npy", "--out", tmp_path / "stalled.npy",
                  "--idle", "0.3", "--backpressure", "0.5", "--seed", "4")
    assert done.returncode == 0, done.stderr
    assert np.array_equal(np.load(tmp_path / "stalled.npy"), outputs)
    assert "RTL == golden model on 40/40 frames" in done.stdout and "stalls: the input withheld" in done.stdout
    done = hdlgen("sim", tmp_path / "out", "--inputs", tmp_path / "x.npy", "--idle", "1")
    assert done.returncode == 2 and "argument --idle: must be a number from 0 to 0.95, not 1" in done.stderr


def test_build_and_sim_with_relative_paths(tmp_path, small_model, rng, monkeypatch):
    path, model = small_model
    monkeypatch.chdir(tmp_path)
    np.save("x.npy", random_inputs(rng, model, 8))
    assert main(["-q", "build", path.name, "-o", "rel/out"]) == 0
    assert main(["-q", "sim", "rel/out", "--inputs", "x.npy", "--out", "y.npy"]) == 0
    assert np.array_equal(np.load("y.npy"), run_reference(model, np.load("x.npy")))


@pytest.mark.parametrize("args, message", [
    (["sim", "{tmp}/nowhere", "--inputs", "{tmp}/x.npy"], "no such build directory"),
    (["sim", "{tmp}/out", "--inputs", "{tmp}/absent.npy"], "inputs file not found"),
    (["sim", "{tmp}/out", "--inputs", "{tmp}/bad.npy"], "inputs have shape (4, 5); the model takes (batch, 8)"),
    (["sim", "{tmp}/out", "--inputs", "{tmp}/x.npy", "--labels", "{tmp}/bad.npy"], "labels must be 4 integers"),
])
def test_sim_errors(tmp_path, small_model, args, message):
    path, _ = small_model
    assert hdlgen("build", path, "-o", tmp_path / "out").returncode == 0
    np.save(tmp_path / "x.npy", np.zeros((4, 8)))
    np.save(tmp_path / "bad.npy", np.zeros((4, 5)))
    one_error_line(hdlgen(*[a.format(tmp=tmp_path) for a in args]), message)


def test_synth_ecp5_reports_luts_and_fmax(tmp_path, small_model):
    """synth takes the build's target unless told otherwise."""
    path, _ = small_model
    assert hdlgen("build", path, "-o", tmp_path / "out", "--target", "ecp5-25k").returncode == 0
    done = hdlgen("synth", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert [line.split()[0] for line in done.stdout.splitlines()[1:-1]] == ["ecp5-25k"]
    ecp5 = json.loads((tmp_path / "out" / "synth-ecp5-25k.json").read_text())
    assert ecp5["lut"] > 0 and ecp5["ff"] > 0 and ecp5["fmax_mhz"] > 50 and ecp5["placed"]
    # its XNOR layers are trees of ECP5 carry cells, which a Xilinx part does not have
    one_error_line(hdlgen("synth", tmp_path / "out", "--target", "xc7"),
                   "instantiates ecp5 primitives (CCU2C), which xc7 does not have: rebuild with --target xc7")
    assert not (tmp_path / "out" / "synth-xc7.json").exists()
    assert hdlgen("build", path, "-o", tmp_path / "xc7", "--target", "xc7").returncode == 0
    done = hdlgen("synth", tmp_path / "xc7", "--target", "xc7", "--target", "ice40-up5k")
    assert done.returncode == 0, done.stderr
    assert "note: this build was made for xc7; its products and adder trees were chosen for that target, " \
           "not ice40-up5k" in done.stderr
    xc7 = json.loads((tmp_path / "xc7" / "synth-xc7.json").read_text())
    assert xc7["lut"] > 0 and xc7["fmax_mhz"] is None
    assert done.stdout.splitlines()[0].split()[:4] == ["target", "LUT", "FF", "BRAM"]


def test_synth_unknown_target(tmp_path):
    done = hdlgen("synth", tmp_path, "--target", "stratix")
    assert done.returncode == 2 and "must be one of ecp5-25k, ecp5-85k, ice40-up5k, xc7, xcup, not 'stratix'" in done.stderr


@pytest.mark.slow
def test_demo(tmp_path):
    done = hdlgen("demo", "-o", tmp_path / "demo")
    assert done.returncode == 0, done.stderr
    assert "RTL == golden model on 450/450 frames" in done.stdout
    line = next(l for l in done.stdout.splitlines() if l.startswith("accuracy"))
    rtl, golden = line.split("RTL ")[1].split(",")[0], line.split("golden model ")[1]
    assert rtl == golden


@pytest.mark.slow
def test_synth_demo_on_ecp5(tmp_path):
    assert main(["-q", "build", str(DEMO_MODEL), "-o", str(tmp_path / "demo")]) == 0
    assert main(["-q", "synth", str(tmp_path / "demo"), "--target", "ecp5-85k"]) == 0
    result = json.loads((tmp_path / "demo" / "synth-ecp5-85k.json").read_text())
    assert result["lut"] > 0 and result["fmax_mhz"] > 0


BREVITAS = DEMO_MODEL.parent.parent / "brevitas_digits"


def test_qonnx_build_sim_inspect(tmp_path):
    """A Brevitas export through the command line: outputs in model units equal qonnx's executor exactly."""
    from qonnx_graphs import execute

    model = BREVITAS / "w1a1.onnx"
    done = hdlgen("build", model, "-o", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    done = hdlgen("sim", tmp_path / "out", "--inputs", BREVITAS / "test_x.npy", "--labels", BREVITAS / "test_y.npy",
                  "--out", tmp_path / "y.npy")
    assert done.returncode == 0, done.stderr
    assert "RTL == golden model on 450/450 frames" in done.stdout
    x = np.load(BREVITAS / "test_x.npy")
    assert np.array_equal(np.load(tmp_path / "y.npy"), execute(model, x))
    done = hdlgen("inspect", model)
    assert done.returncode == 0, done.stderr
    for text in ("imported layers:", "batchnorm", "quantizer", "bipolar, scale 1", "lowered (hardware) layers:",
                 "64 x 64", "uint8", "output: accumulators"):
        assert text in done.stdout


def test_inspect_shows_why_a_model_cannot_be_lowered(tmp_path, rng):
    from qonnx_graphs import Graph

    g = Graph([2, 5, 5], 1).quant(0.5, 4)
    g.op("Conv", g.quantized_weight(rng.choice([-1, 1], size=(4, 1, 3, 3)), 1.0), kernel_shape=[3, 3], group=2)
    g.quant(1.0, 4).op("GlobalAveragePool").binary("Mul", -1.0).quant(0.5, 4).op("Flatten", axis=1)
    g.gemm(g.quantized_weight(rng.choice([-1, 1], size=(3, 4)), 1.0), transB=1)
    done = hdlgen("inspect", g.save(tmp_path / "conv.onnx"))
    assert done.returncode == 0, done.stderr
    assert "conv2d" in done.stdout and "4x1x3x3" in done.stdout and "groups 2" in done.stdout
    assert "cannot lower: layer 'GlobalAveragePool_" in done.stdout and "a falling activation" in done.stdout


@pytest.mark.parametrize("content, message", [(b"garbage", "not an ONNX model"), (None, "model file not found")])
def test_bad_onnx_file_gives_one_error_line(tmp_path, content, message):
    path = tmp_path / "m.onnx"
    if content is not None:
        path.write_bytes(content)
    for command in ("build", "inspect"):
        args = [command, path] + (["-o", tmp_path / "out"] if command == "build" else [])
        one_error_line(hdlgen(*args), message)
    assert not (tmp_path / "out").exists()


def test_unsupported_onnx_op_gives_one_error_line(tmp_path, rng):
    from qonnx_graphs import Graph

    g = Graph([4], 1).quant(0.5, 4).op("Tanh")
    one_error_line(hdlgen("build", g.save(tmp_path / "s.onnx"), "-o", tmp_path / "out"),
                   "(Tanh): op Tanh is not supported; supported ops are Quant, BipolarQuant")


@pytest.mark.slow
def test_synth_brevitas_cnn_on_ecp5(tmp_path):
    """The convolution stages (padding, line buffers, pooling) go through Yosys and nextpnr."""
    assert main(["-q", "build", str(BREVITAS / "cnn_w1a1.onnx"), "-o", str(tmp_path / "cnn")]) == 0
    assert main(["-q", "synth", str(tmp_path / "cnn"), "--target", "ecp5-85k"]) == 0
    result = json.loads((tmp_path / "cnn" / "synth-ecp5-85k.json").read_text())
    assert result["lut"] > 0 and result["fmax_mhz"] > 0


def test_build_says_when_the_executor_rounds(tmp_path, rng):
    """Scales that are not powers of two: one line from build, and the report says which layers."""
    from qonnx_graphs import Graph

    g = Graph([4], 1).quant(0.5, 4)
    g.gemm(g.quantized_weight(rng.choice([-1, 1], size=(3, 4)), 0.3), transB=1)
    done = hdlgen("build", g.save(tmp_path / "m.onnx"), "-o", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stdout.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "Gemm_0" in notes[0] and "float32 executor rounds" in notes[0]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert len(report["exactness_notes"]) == 1 and report["exactness_notes"][0].startswith("Gemm_0:")


def test_inspect_lists_the_whole_graph_when_import_fails(tmp_path):
    from qonnx_graphs import Graph

    g = Graph([2, 4, 4], 1).quant(0.5, 4)
    g.op("Resize", "", g.const([1.0, 1.0, 2.0, 2.0]), mode="nearest")
    done = hdlgen("inspect", g.save(tmp_path / "m.onnx"))
    assert done.stdout.splitlines()[0].startswith(f"graph of {tmp_path / 'm.onnx'}, after qonnx's cleanup (2 nodes")
    assert "Quant [qonnx.custom_op.general] 'Quant_0'" in done.stdout and "Resize 'Resize_0'" in done.stdout
    one_error_line(done, "('Resize_0' after qonnx's cleanup) (Resize): op Resize is not supported; supported ops are Quant,")


@pytest.mark.parametrize("declare", ["annotation", "option"])
def test_declared_input_through_the_command_line(tmp_path, rng, declare):
    """An annotated input (finn_datatype INT4) or --input-type INT4 on an input no quantizer covers."""
    from qonnx_graphs import Graph, execute

    g = Graph([16], 1)
    if declare == "annotation":
        g.annotate("x", "INT4")
    g.binary("Div", 16.0)
    g.gemm(g.quantized_weight(rng.choice([-1, 1], size=(5, 16)), 1.0), transB=1)
    path = g.save(tmp_path / "m.onnx")
    option = ["--input-type", "INT4"] if declare == "option" else []
    done = hdlgen("build", path, "-o", tmp_path / "out", *option)
    assert done.returncode == 0, done.stderr
    x = rng.integers(-8, 8, size=(40, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    done = hdlgen("sim", tmp_path / "out", "--inputs", tmp_path / "x.npy", "--out", tmp_path / "y.npy")
    assert done.returncode == 0, done.stderr
    assert np.array_equal(np.load(tmp_path / "y.npy"), execute(path, x))
    if declare == "option":
        one_error_line(hdlgen("build", path, "-o", tmp_path / "again"), "declare its format with --input-type")
        assert "--input-type" in json.loads((tmp_path / "out" / "hdlgen-build.json").read_text())["command"]


FLOAT_CNN = DEMO_MODEL.parent.parent / "float_digits"


def test_quantize_prints_each_calibrated_range_and_writes_a_model_that_builds(tmp_path):
    done = hdlgen("quantize", FLOAT_CNN / "cnn.onnx", "--calibration", FLOAT_CNN / "calibration.npy",
                  "--method", "percentile", "--percentile", "99.9", "-o", tmp_path / "int8.onnx")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "range (percentile 99.9)" in lines[0] and "zero point" in lines[0]
    assert len(lines) == 1 + 8 + 1 and "(uint8)" in lines[1]      # the input and 7 activations, then what it wrote
    done = hdlgen("build", tmp_path / "int8.onnx", "-o", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert "note:" not in done.stdout         # the rescale is onnxruntime's integer one, not a float executor's


@pytest.mark.parametrize("args, message", [
    (["--calibration", FLOAT_CNN / "test_y.npy"], "calibration data has shape (450,); input 'x' takes (samples, 1, 8, 8)"),
    (["--calibration", FLOAT_CNN / "calibration.npy", "--method", "kl"], "argument --method: must be one of minmax, percentile, entropy, not 'kl'"),
    (["--calibration", FLOAT_CNN / "calibration.npy", "-o", FLOAT_CNN / "cnn.onnx"], "is also an input of this command"),
    (["--calibration", FLOAT_CNN / "calibration.npy", "-o", "model.txt"], "name an .onnx file"),
])
def test_quantize_errors(tmp_path, args, message):
    if "-o" not in args:
        args = args + ["-o", tmp_path / "int8.onnx"]
    one_error_line(hdlgen("quantize", FLOAT_CNN / "cnn.onnx", *args), message)
    assert not (tmp_path / "int8.onnx").exists()


def test_quantize_refuses_a_model_that_is_already_quantized(tmp_path):
    one_error_line(hdlgen("quantize", DEMO_MODEL.parent.parent / "brevitas_digits" / "cnn_w8a8.onnx",
                          "--calibration", FLOAT_CNN / "calibration.npy", "-o", tmp_path / "q.onnx"),
                   "the model is already quantized")


def test_build_with_shift_batchnorm_prints_the_accuracy_change(tmp_path):
    digits = DEMO_MODEL.parent
    done = hdlgen("build", DEMO_MODEL, "-o", tmp_path / "out", "--bn", "shift", "--check-inputs",
                  digits / "test_x.npy", "--check-labels", digits / "test_y.npy")
    assert done.returncode == 0, done.stderr
    assert "batch norm: 2 layer(s) made shift-based" in done.stdout and "on 450 frames" in done.stdout


@pytest.mark.parametrize("args, message", [
    (["--check-inputs", "x.npy"], "--check-inputs and --check-labels go together"),
    (["--check-inputs", "x.npy", "--check-labels", "y.npy"], "add --bn shift"),
])
def test_shift_batchnorm_check_errors(tmp_path, args, message):
    one_error_line(hdlgen("build", DEMO_MODEL, "-o", tmp_path / "out", *args), message)
