"""``hdlgen quantize``: what it refuses, in one line and before calibrating, and what it writes.

The output rule under test (``hdlgen.transforms.quantize``): ``-o`` is an ``.onnx`` file outside
every build directory and never one of the command's inputs; an existing one is replaced only when
hdlgen wrote it and nobody edited it since (its ``hdlgen.sha256`` metadata entry matches the rest).
Each test names the bug it covers: 1 text model files, 2 empty model files, 3 huge calibration
values, 4 dynamic sample dimensions, 5 a fixed batch, 6 --percentile without --method percentile,
7 output files.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hdlgen.builddir import MARKER
from hdlgen.errors import HdlgenError
from hdlgen.frontend import load_model
from hdlgen.golden import predict
from hdlgen.transforms import streamline
from hdlgen.transforms.quantize import DIGEST_KEY, METHODS, WRITER_KEY, quantize_model
from qonnx_graphs import run_onnxruntime
from robustness.harness import assert_refused, copy_native_model, run_cli

FEATURES = 8


def float_mlp(path: Path, rng, *, batch="N", features=FEATURES, scale=1.0) -> Path:
    """x (batch, features) -> MatMul -> Relu -> MatMul, float32, weights times ``scale``."""
    w1 = numpy_helper.from_array((rng.normal(size=(FEATURES, 16)) * scale).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(size=(16, 4)).astype(np.float32), "w2")
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["y"])]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, features])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4])], [w1, w2])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


@pytest.fixture
def work(tmp_path, rng):
    """A float MLP (dynamic batch) and 64 calibration samples."""
    float_mlp(tmp_path / "mlp.onnx", rng)
    np.save(tmp_path / "x.npy", rng.normal(size=(64, FEATURES)).astype(np.float32))
    return tmp_path


def quantize(work: Path, *, model="mlp.onnx", calibration="x.npy", out="int8.onnx", extra=()) -> list:
    return ["quantize", work / model, "--calibration", work / calibration, *extra, "-o", work / out]


def quantized(work: Path, capsys, **kwargs) -> Path:
    status, _, err = run_cli(["-q", *quantize(work, **kwargs)], capsys)
    assert status == 0 and err == "", err
    return work / kwargs.get("out", "int8.onnx")


def assert_builds_and_equals_onnxruntime(path: Path, x: np.ndarray, batch: int | None = None) -> None:
    """The golden model of what hdlgen builds from ``path`` equals onnxruntime running ``path``."""
    lowered = streamline(load_model(path))
    step = batch or len(x)
    want = np.concatenate([run_onnxruntime(path, x[i:i + step]) for i in range(0, len(x), step)])
    assert np.array_equal(predict(lowered, x), want)


# -- bug 1: a .json or text file crashed onnx.load with a traceback ---------------------------------

@pytest.mark.parametrize("kind", ["native-description", "onnx-saved-as-json", "onnx-textproto"])
def test_bug1_a_text_model_file_is_refused_in_one_line(work, capsys, kind):
    if kind == "native-description":
        model = copy_native_model(work / "native")
    else:
        model = work / ("m.json" if kind == "onnx-saved-as-json" else "m.textproto")
        onnx.save(onnx.load(work / "mlp.onnx"), model)        # onnx picks the text format by the name
    hint = "this one is text" if kind == "onnx-textproto" else "a .json model description is built with hdlgen build"
    line = assert_refused(["quantize", model, "--calibration", work / "x.npy", "-o", work / "int8.onnx"], work,
                          capsys, f"{model}: not an ONNX model file: hdlgen reads binary .onnx files (onnx.save); ")
    assert line.endswith(hint)


def test_bug1_the_native_description_still_loads_for_build(tmp_path):
    """hdlgen build reads a .json description itself, not through read_onnx."""
    assert load_model(copy_native_model(tmp_path / "m")).layers


# -- bug 2: an empty .onnx file said "the model has 0 inputs" ----------------------------------------

@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty; an ONNX model is a binary protobuf"),
    (onnx.ModelProto(ir_version=8).SerializeToString(), "holds no ONNX graph"),
])
def test_bug2_an_empty_model_file_says_so(work, capsys, content, message):
    (work / "empty.onnx").write_bytes(content)
    assert_refused(quantize(work, model="empty.onnx"), work, capsys, f"{work / 'empty.onnx'}: {message}")


# -- bug 3: 3e38 let onnxruntime's RuntimeWarnings through, then "scale issue" ----------------------

def test_bug3_calibration_values_beyond_1e30_are_refused_up_front(work, capsys):
    x = np.load(work / "x.npy")
    x[5, 3] = -3e38
    np.save(work / "x.npy", x)
    assert_refused(quantize(work), work, capsys,
                   f"{work / 'x.npy'}: calibration value -3e+38 at index (5, 3) is beyond +-1e+30")


@pytest.mark.parametrize("method", METHODS)
def test_bug3_an_overflow_inside_the_model_is_said_plainly(work, capsys, rng, method):
    """Inputs of 1e20 pass the bound, weights of 1e20 take the first layer past float32."""
    float_mlp(work / "big.onnx", rng, scale=1e20)
    np.save(work / "x.npy", np.load(work / "x.npy") * np.float32(1e20))
    assert_refused(quantize(work, model="big.onnx", extra=["--method", method]), work, capsys,
                   f"{work / 'big.onnx'}: calibrating it overflows float32 inside the model")


# -- bug 4: all-dynamic input dimensions gave "takes (samples, None)" --------------------------------

def test_bug4_dynamic_sample_dimensions_are_named_with_the_command_that_fixes_them(work, capsys, rng):
    float_mlp(work / "dynamic.onnx", rng, features="F")
    line = assert_refused(quantize(work, model="dynamic.onnx"), work, capsys,
                          "input 'x' has dynamic dimensions besides the batch: 1 ('F') of (N, F)")
    command = shlex.split(line.partition("fix it with ")[2].partition(", then")[0])
    assert command[:3] == ["python", "-m", "onnxruntime.tools.make_dynamic_shape_fixed"]
    assert command[3:7] == ["--input_name", "x", "--input_shape", "1,8"]
    subprocess.run([sys.executable, *command[1:]], cwd=work, check=True, capture_output=True)
    assert_builds_and_equals_onnxruntime(quantized(work, capsys, model="fixed.onnx"), np.load(work / "x.npy")[:3], batch=1)


# -- bug 5: a batch fixed at 4 leaked onnxruntime's INVALID_ARGUMENT ---------------------------------

def test_bug5_a_fixed_batch_of_4_calibrates_in_batches_of_4_and_builds(work, capsys, rng):
    """hdlgen build takes the batch dimension as frames, so the batch-4 QDQ model builds as it is."""
    float_mlp(work / "batch4.onnx", rng, batch=4)
    path = quantized(work, capsys, model="batch4.onnx")
    assert_builds_and_equals_onnxruntime(path, np.load(work / "x.npy")[:8], batch=4)


def test_bug5_samples_that_do_not_fill_the_fixed_batch_are_refused(work, capsys, rng):
    float_mlp(work / "batch4.onnx", rng, batch=4)
    np.save(work / "x.npy", np.load(work / "x.npy")[:63])
    line = assert_refused(quantize(work, model="batch4.onnx"), work, capsys,
                          "input 'x' has a fixed batch of 4, so onnxruntime calibrates in batches of 4, and 63 "
                          "calibration samples do not fill them: give a multiple of 4 samples (e.g. the first 60)")
    assert "make_dynamic_shape_fixed --input_name x --input_shape 1,8 " in line


# -- bug 6: --percentile with --method minmax was ignored --------------------------------------------

@pytest.mark.parametrize("method", ["minmax", "entropy"])
def test_bug6_percentile_with_another_method_is_refused(work, capsys, method):
    assert_refused(quantize(work, extra=["--method", method, "--percentile", "99"]), work, capsys,
                   f"--percentile applies to --method percentile only, not {method}")


def test_bug6_percentile_defaults_to_99_999_for_method_percentile_only(work):
    x = np.load(work / "x.npy")
    default = quantize_model(work / "mlp.onnx", x, work / "a.onnx", method="percentile")
    assert default == quantize_model(work / "mlp.onnx", x, work / "b.onnx", method="percentile", percentile=99.999)
    assert default != quantize_model(work / "mlp.onnx", x, work / "c.onnx", method="percentile", percentile=90)
    with pytest.raises(HdlgenError, match="--percentile applies to --method percentile only, not minmax"):
        quantize_model(work / "mlp.onnx", x, work / "d.onnx", percentile=99.999)


# -- bug 7: output files: checked after calibrating, or overwritten silently -------------------------

@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_bug7_a_folder_it_cannot_write_is_refused_before_calibrating(work, capsys):
    """The calibration file does not exist: the -o error comes first, without a temporary file's name."""
    assert_refused(["quantize", work / "mlp.onnx", "--calibration", work / "missing.npy", "-o", "/proc/x.onnx"],
                   work, capsys, "-o /proc/x.onnx: cannot ")


@pytest.mark.parametrize("inside", ["OUT", "OUT/sub"])
def test_bug7_an_output_inside_a_build_directory_is_refused(work, capsys, inside):
    (work / inside).mkdir(parents=True)
    (work / "OUT" / MARKER).write_text("{}")
    assert_refused(quantize(work, calibration="missing.npy", out=f"{inside}/int8.onnx"), work, capsys,
                   f"is inside the build directory {work / 'OUT'}, which holds only what hdlgen builds; write it elsewhere")


@pytest.mark.parametrize("kind", ["user-bytes", "float-model"])
def test_bug7_an_existing_file_hdlgen_did_not_write_is_kept(work, capsys, kind):
    (work / "int8.onnx").write_bytes(b"my notes" if kind == "user-bytes" else (work / "mlp.onnx").read_bytes())
    assert_refused(quantize(work, calibration="missing.npy"), work, capsys,
                   f"-o {work / 'int8.onnx'} exists and hdlgen did not write it (or it was edited since, or an hdlgen "
                   f"that did not yet mark its outputs wrote it); hdlgen keeps it: choose another -o or remove it yourself")


def test_bug7_writing_twice_replaces_hdlgen_own_file(work, capsys):
    first = quantized(work, capsys).read_bytes()
    again = quantized(work, capsys, extra=["--method", "percentile"]).read_bytes()
    assert again != first
    entries = {e.key: e.value for e in onnx.load(work / "int8.onnx").metadata_props}
    assert entries[WRITER_KEY].startswith("hdlgen ") and " quantize " in entries[WRITER_KEY]
    assert "--method percentile --percentile 99.999" in entries[WRITER_KEY] and len(entries[DIGEST_KEY]) == 64


def test_bug7_an_output_edited_since_hdlgen_wrote_it_is_kept(work, capsys):
    model = onnx.load(quantized(work, capsys))
    model.producer_name = "edited"
    onnx.save(model, work / "int8.onnx")
    assert_refused(quantize(work), work, capsys, "exists and hdlgen did not write it (or it was edited since, ")


def test_bug7_the_marked_model_builds_and_equals_onnxruntime(work, capsys):
    assert_builds_and_equals_onnxruntime(quantized(work, capsys), np.load(work / "x.npy"))


@pytest.mark.parametrize("case", ["directory", "the-model", "the-calibration-file", "symbolic-link", "no-folder",
                                  "not-onnx"])
def test_bug7_outputs_quantize_never_writes(work, capsys, case):
    out, calibration, expect = "int8.onnx", "missing.npy", None
    if case == "directory":
        (work / out).mkdir()
        expect = "is a directory; name an .onnx file"
    elif case == "the-model":
        out, expect = "mlp.onnx", "is also an input of this command"
    elif case == "the-calibration-file":
        with open(work / "x.onnx", "wb") as f:              # np.save to a name would add .npy
            np.save(f, np.load(work / "x.npy"))
        out, calibration, expect = "x.onnx", "x.onnx", "is also an input of this command"
    elif case == "symbolic-link":
        (work / "mine.onnx").write_bytes(b"mine")
        (work / out).symlink_to(work / "mine.onnx")
        expect = "is a symbolic link; name the file itself"
    elif case == "no-folder":
        out, expect = "gone/int8.onnx", f"the folder {work / 'gone'} does not exist"
    else:
        out, expect = "int8.txt", "name an .onnx file"
    assert_refused(quantize(work, calibration=calibration, out=out), work, capsys, expect)
