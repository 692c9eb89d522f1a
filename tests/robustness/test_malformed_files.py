"""Malformed files of every format hdlgen reads, generated from real ones by mutation.

Each case runs the command line in-process and asserts: exit status 2, exactly one stderr line
starting ``hdlgen: error:``, no traceback, and every file under the test's folder unchanged.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from robustness.harness import BREVITAS, DIGITS, assert_refused, copy_native_model

# -- the native model description: every field of the bundled model, given values of the wrong kind --

MODEL_DOC = json.loads((DIGITS / "model.json").read_text())
RAW = "@@RAW@@"       # stands for a literal that json.dumps cannot write (NaN, Infinity, huge numbers)


def _leaves(doc, path=()):
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _leaves(value, path + (key,))
    elif isinstance(doc, list) and doc and isinstance(doc[0], dict):
        for i, value in enumerate(doc):
            yield from _leaves(value, path + (i,))
    else:
        yield path, doc


# Values no field of the format accepts, whatever its type.
NEVER_VALID = [True, {"x": 1}, [[["deep"]]]]
# Literals valid JSON forbids or that no float holds, for number fields.
BAD_NUMBER_TEXT = ["NaN", "Infinity", "-Infinity", "1e400", "1" + "0" * 400]


STRING_ONLY = ("format", "name", "op", "quant", "weight_quant", "tensors")   # fields where a number is wrong too


def _field_cases():
    for path, value in _leaves(MODEL_DOC):
        name = ".".join(map(str, path))
        for bad in NEVER_VALID:
            yield pytest.param(path, bad, None, id=f"{name}={json.dumps(bad)}")
        if isinstance(value, str):
            if path[-1] in STRING_ONLY:
                yield pytest.param(path, 12345, None, id=f"{name}=12345")
            continue
        for text in BAD_NUMBER_TEXT:
            yield pytest.param(path, RAW, text, id=f"{name}={text[:12]}")
        yield pytest.param(path, str(value), None, id=f"{name}='{value}'")
        if isinstance(value, int):
            yield pytest.param(path, float(value), None, id=f"{name}={float(value)}")


FIELD_CASES = list(_field_cases())


def _set(doc, path, value):
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


@pytest.mark.parametrize("path, bad, raw", FIELD_CASES)
def test_model_field_of_the_wrong_kind(tmp_path, capsys, path, bad, raw):
    model = copy_native_model(tmp_path / "m")
    doc = json.loads(model.read_text())
    _set(doc, path, bad)
    text = json.dumps(doc)
    model.write_text(text.replace(json.dumps(RAW), raw) if raw else text)
    for argv in (["build", model, "-o", tmp_path / "out"], ["inspect", model]):
        assert_refused(argv, tmp_path, capsys)


@pytest.mark.parametrize("shape, message", [
    ([1, 8.9, 8.2], "is not of type 'integer'"),
    ("64", "input.shape: '64' is not of type 'array'"),
    ([True, 8, 8], "input.shape[0]: True is not of type 'integer'"),
    ([64.0], "input.shape[0]: 64.0 is not of type 'integer'"),
    ([], "input.shape: [] should be non-empty"),
    ([1, 1, 1, 64], "input.shape: [1, 1, 1, 64] is too long"),
    ([0, 64], "input.shape[0]: 0 is less than the minimum of 1"),
    ([2, 4, 8], "shape (2, 4, 8) holds 64 values"),  # a valid shape that passes, to show the check is not blanket
])
def test_model_input_shapes(tmp_path, capsys, shape, message):
    model = copy_native_model(tmp_path / "m")
    doc = json.loads(model.read_text())
    doc["input"]["shape"] = shape
    model.write_text(json.dumps(doc))
    if message.startswith("shape (2, 4, 8)"):
        from hdlgen.frontend import load_model
        assert load_model(model).input.shape == (2, 4, 8)
        return
    assert_refused(["build", model, "-o", tmp_path / "out"], tmp_path, capsys, message)


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(tensors=5), "tensors: 5 must be the name of an NPZ file in the model's folder"),
    (lambda d: d.update(tensors="../model.npz"), "must be the name of an NPZ file in the model's folder"),
    (lambda d: d.update(tensors="/etc/passwd"), "must be the name of an NPZ file in the model's folder"),
    (lambda d: d["input"].update(features=True), "input.features: True is not of type 'integer'"),
    (lambda d: d["input"].update(features=10 ** 12), "input.features: 1000000000000 is greater than the maximum"),
    (lambda d: d.update(extra=1), "Additional properties are not allowed ('extra' was unexpected)"),
    (lambda d: d["layers"][0].update(weight=[[True, False]]), "weight[0][0]: True is not of type 'number'"),
    (lambda d: d["layers"][0].update(name="fc0; rm -rf /"), "name: 'fc0; rm -rf /' must be an identifier"),
    (lambda d: d["layers"].insert(0, {"op": "maxpool2d", "name": "p", "kernel": [2, 2.5]}), "kernel[1]: 2.5 is not of type"),
    (lambda d: d["layers"].insert(0, {"op": "flatten", "name": 5}), "name: 5 must be an identifier"),
    (lambda d: d.update(version=True), "format version True is not supported"),
    (lambda d: d.update(arithmetic="float16"), "arithmetic: 'float16' is not one of"),
])
def test_model_documents(tmp_path, capsys, change, message):
    model = copy_native_model(tmp_path / "m")
    doc = json.loads(model.read_text())
    change(doc)
    model.write_text(json.dumps(doc))
    assert_refused(["build", model, "-o", tmp_path / "out"], tmp_path, capsys, message)


# -- whole files: truncated, empty, garbage, not UTF-8, nested too deep -------------------------------

def _truncations(data: bytes):
    data = data.rstrip()
    return {"empty": b"", "1-byte": data[:1], "third": data[: len(data) // 3], "half": data[: len(data) // 2],
            "all-but-one": data[:-1]}


def _garbage(data: bytes):
    rng = np.random.default_rng(len(data))
    return {"garbage": rng.integers(0, 256, size=300, dtype=np.uint8).tobytes(),
            "flipped-header": data[:2] + bytes([data[2] ^ 0xFF]) + data[3:]}


JSON_TEXT = (DIGITS / "model.json").read_bytes()
JSON_MUTATIONS = {**_truncations(JSON_TEXT), "not-utf8": b"\xff\xfe" + JSON_TEXT, "latin1": "{\"name\": \"mod\xe8le\"}".encode("latin-1"),
                  "deep-nesting": b"[" * 100_000 + b"]" * 100_000, "deep-objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
                  "a-list": b"[1, 2, 3]", "null": b"null", "nan": b"NaN", "huge-int": b"1" + b"0" * 5000}


@pytest.mark.parametrize("mutation", sorted(JSON_MUTATIONS))
def test_model_json_damaged(tmp_path, capsys, mutation):
    model = copy_native_model(tmp_path / "m")
    model.write_bytes(JSON_MUTATIONS[mutation])
    for argv in (["build", model, "-o", tmp_path / "out"], ["inspect", model]):
        assert_refused(argv, tmp_path, capsys)


NPZ_BYTES = (DIGITS / "model.npz").read_bytes()


def _npz_with(tmp_path, change):
    arrays = dict(np.load(DIGITS / "model.npz"))
    change(arrays)
    np.savez(tmp_path / "m" / "model.npz", **arrays)


NPZ_ARRAY_CHANGES = {
    "complex-weights": lambda a: a.update({"fc0.weight": a["fc0.weight"] + 1j}),
    "string-weights": lambda a: a.update({"fc0.weight": a["fc0.weight"].astype(str)}),
    "bool-weights": lambda a: a.update({"fc0.weight": a["fc0.weight"] > 0}),
    "nan-gamma": lambda a: a["bn0.gamma"].__setitem__(3, np.nan),
    "inf-scale": lambda a: a.update({"fc_out.weight_scale": np.full_like(a["fc_out.weight_scale"], np.inf)}),
    "missing-array": lambda a: a.pop("bn1.var"),
    "wrong-shape": lambda a: a.update({"bn0.beta": np.zeros((3, 3))}),
    "fractional-weights": lambda a: a.update({"fc1.weight": a["fc1.weight"] * 0.5}),
    "one-dim-weights": lambda a: a.update({"fc1.weight": a["fc1.weight"].ravel()}),
    "empty-weights": lambda a: a.update({"fc1.weight": np.zeros((0, 64))}),
}


@pytest.mark.parametrize("mutation", sorted(_truncations(NPZ_BYTES)) + sorted(_garbage(NPZ_BYTES)) + sorted(NPZ_ARRAY_CHANGES) + ["npy-instead"])
def test_model_npz_damaged(tmp_path, capsys, mutation):
    model = copy_native_model(tmp_path / "m")
    npz = tmp_path / "m" / "model.npz"
    if mutation in NPZ_ARRAY_CHANGES:
        _npz_with(tmp_path, NPZ_ARRAY_CHANGES[mutation])
    elif mutation == "npy-instead":
        with open(npz, "wb") as f:
            np.save(f, np.zeros(3))
    else:
        npz.write_bytes({**_truncations(NPZ_BYTES), **_garbage(NPZ_BYTES)}[mutation])
    for argv in (["build", model, "-o", tmp_path / "out"], ["inspect", model]):
        assert_refused(argv, tmp_path, capsys)


FOLDINGS = {
    "not-utf8": b'{"fc0": {"pe": 1, "simd": 64}}\xff',
    "truncated": b'{"fc0": {"pe": 1, "simd"',
    "floats": b'{"fc0": {"pe": 1.0, "simd": 64}, "fc1": {"pe": 1, "simd": 64}, "fc_out": {"pe": 5, "simd": 2}}',
    "bools": b'{"fc0": {"pe": true, "simd": 64}, "fc1": {"pe": 1, "simd": 64}, "fc_out": {"pe": 5, "simd": 2}}',
    "strings": b'{"fc0": {"pe": "1", "simd": 64}, "fc1": {"pe": 1, "simd": 64}, "fc_out": {"pe": 5, "simd": 2}}',
    "huge": b'{"fc0": {"pe": 1e400, "simd": 64}}',
    "nan": b'{"fc0": {"pe": NaN, "simd": 64}}',
    "list": b'[1, 64]',
    "deep": b"[" * 100_000,
    "extra-key": b'{"fc0": {"pe": 1, "simd": 64, "depth": 2}, "fc1": {"pe": 1, "simd": 64}, "fc_out": {"pe": 5, "simd": 2}}',
    "negative": b'{"fc0": {"pe": -1, "simd": 64}, "fc1": {"pe": 1, "simd": 64}, "fc_out": {"pe": 5, "simd": 2}}',
    "not-dividing": b'{"fc0": {"pe": 3, "simd": 64}, "fc1": {"pe": 1, "simd": 64}, "fc_out": {"pe": 5, "simd": 2}}',
    "unknown-layer": b'{"fc9": {"pe": 1, "simd": 1}}',
}


@pytest.mark.parametrize("mutation", sorted(FOLDINGS))
def test_folding_file_damaged(tmp_path, capsys, mutation):
    model = copy_native_model(tmp_path / "m")
    fold = tmp_path / "fold.json"
    fold.write_bytes(FOLDINGS[mutation])
    assert_refused(["build", model, "-o", tmp_path / "out", "--fold", fold], tmp_path, capsys, str(fold))


# -- ONNX models and their external data ------------------------------------------------------------

def _copy_onnx(tmp_path, name="w1a1.onnx"):
    folder = tmp_path / "m"
    folder.mkdir()
    for file in BREVITAS.glob(f"{name}*"):
        shutil.copy(file, folder / file.name)
    return folder / name


def _edit_onnx(path, change):
    proto = onnx.load(str(path), load_external_data=False)
    change(proto)
    onnx.save(proto, str(path))


def _first(proto, op):
    return next(n for n in proto.graph.node if n.op_type == op)


def _set_initializer(proto, name, array):
    for k, init in enumerate(proto.graph.initializer):
        if init.name == name:
            proto.graph.initializer[k].CopyFrom(numpy_helper.from_array(array, name))
            return
    raise KeyError(name)


def _quant_bits(value):
    def change(proto):
        node = _first(proto, "Quant")
        _set_initializer(proto, node.input[3], np.array(value, dtype=np.float32))
    return change


def _external_location(location):
    def change(proto):
        for init in proto.graph.initializer:
            for entry in init.external_data:
                if entry.key == "location":
                    entry.value = location
    return change


def _domain(op, domain):
    def change(proto):
        _first(proto, op).domain = domain
    return change


def _complex_weight(proto):
    init = next(i for i in proto.graph.initializer if numpy_helper.to_array(i).size > 100)
    value = numpy_helper.to_array(init).astype(np.complex64) + 1j
    proto.graph.initializer.remove(init)
    proto.graph.initializer.append(numpy_helper.from_array(value, init.name))


def _string_initializer(proto):
    init = next(i for i in proto.graph.initializer if numpy_helper.to_array(i).size > 100)
    proto.graph.initializer.remove(init)
    proto.graph.initializer.append(numpy_helper.from_array(np.array(["a", "b"], dtype=object), init.name))


ONNX_CHANGES = {
    "quant-bits-nan": ("w1a1.onnx", _quant_bits(np.nan), "holds nan at index (); every value must be a finite number"),
    "quant-bits-inf": ("w1a1.onnx", _quant_bits(np.inf), "holds inf at index (); every value must be a finite number"),
    "quant-bits-zero": ("w1a1.onnx", _quant_bits(0.0), "0-bit quantizer is not supported"),
    "quant-bits-huge": ("w1a1.onnx", _quant_bits(1e30), "1e+30-bit quantizer is not supported"),
    "quant-unknown-domain": ("w1a1.onnx", _domain("Quant", "com.example.other"), "domain 'com.example.other'"),
    "gemm-custom-domain": ("w1a1.onnx", _domain("Gemm", "qonnx.custom_op.general"), "is not the standard ONNX domain"),
    "complex-initializer": ("w1a1.onnx", _complex_weight, "complex"),
    "string-initializer": ("w1a1.onnx", _string_initializer, "hdlgen reads real numbers"),
    "external-data-outside": ("w2a2.onnx", _external_location("../w2a2.onnx.data"), "outside the model's folder"),
    "external-data-absolute": ("w2a2.onnx", _external_location("/etc/hostname"), "outside the model's folder"),
    "external-data-missing": ("w2a2.onnx", _external_location("gone.onnx.data"), "not beside it"),
}


@pytest.mark.parametrize("case", sorted(ONNX_CHANGES))
def test_onnx_model_damaged(tmp_path, capsys, case):
    name, change, message = ONNX_CHANGES[case]
    model = _copy_onnx(tmp_path, name)
    _edit_onnx(model, change)
    if case == "external-data-outside":
        shutil.copy(model.parent / "w2a2.onnx.data", tmp_path / "w2a2.onnx.data")
    for argv in (["build", model, "-o", tmp_path / "out"], ["inspect", model]):
        assert_refused(argv, tmp_path, capsys, message)


ONNX_BYTES = (BREVITAS / "w1a1.onnx").read_bytes()


@pytest.mark.parametrize("mutation", sorted(_truncations(ONNX_BYTES)) + sorted(_garbage(ONNX_BYTES)))
def test_onnx_file_damaged(tmp_path, capsys, mutation):
    model = _copy_onnx(tmp_path)
    model.write_bytes({**_truncations(ONNX_BYTES), **_garbage(ONNX_BYTES)}[mutation])
    for argv in (["build", model, "-o", tmp_path / "out"], ["inspect", model]):
        assert_refused(argv, tmp_path, capsys)


def test_onnx_external_data_truncated(tmp_path, capsys):
    model = _copy_onnx(tmp_path, "w2a2.onnx")
    data = model.parent / "w2a2.onnx.data"
    data.write_bytes(data.read_bytes()[:100])
    assert_refused(["build", model, "-o", tmp_path / "out"], tmp_path, capsys, "w2a2.onnx")


# -- ONNX graphs with one node or tensor broken, for every node and tensor of two real exports -------------

def _node_mutations(proto):
    for k, node in enumerate(proto.graph.node):
        label = f"{k}-{node.op_type}"
        if len(node.input) > 1:
            yield f"{label}-drops-an-input", lambda p, k=k: p.graph.node[k].input.pop()
        if len(node.input):
            yield f"{label}-input-renamed", lambda p, k=k: p.graph.node[k].input.__setitem__(0, "nowhere")
        yield f"{label}-unknown-op", lambda p, k=k: setattr(p.graph.node[k], "op_type", "Frobnicate")
        for a, attribute in enumerate(node.attribute):
            yield f"{label}-{attribute.name}-emptied", lambda p, k=k, a=a: _empty_attribute(p.graph.node[k].attribute[a])
    for k, init in enumerate(proto.graph.initializer):
        if len(init.dims) and init.name.startswith(("Constant", "onnx", "fc", "conv", "bn", "weight")) or k < 12:
            yield f"init{k}-flattened-and-shortened", lambda p, k=k: _shorten(p, k)


def _empty_attribute(attribute):
    kind = attribute.type
    attribute.Clear()
    attribute.name, attribute.type = "kernel_shape", kind      # a wrong attribute of the same kind


def _shorten(proto, k):
    init = proto.graph.initializer[k]
    value = numpy_helper.to_array(init).ravel()[:-1] if numpy_helper.to_array(init).size > 1 else np.zeros(3, np.float32)
    init.CopyFrom(numpy_helper.from_array(value.astype(numpy_helper.to_array(init).dtype), init.name))


GRAPH_MUTATIONS = [(name, label, change) for name in ("w1a1.onnx", "cnn_w1a1.onnx")
                   for label, change in _node_mutations(onnx.load(str(BREVITAS / name), load_external_data=False))]


@pytest.mark.parametrize("name, label, change", GRAPH_MUTATIONS, ids=[f"{n}-{l}" for n, l, _ in GRAPH_MUTATIONS])
def test_onnx_graph_broken(tmp_path, capsys, name, label, change):
    """One line and nothing written, or, where the change is harmless to the graph, a normal import."""
    from hdlgen.cli import main
    from robustness.harness import snapshot

    model = _copy_onnx(tmp_path, name)
    _edit_onnx(model, change)
    before = snapshot(tmp_path)
    capsys.readouterr()
    status = main(["-q", "inspect", str(model)])
    out, err = capsys.readouterr()
    assert status in (0, 2) and "Traceback" not in err, err
    assert snapshot(tmp_path) == before
    if status == 2:
        assert len(err.strip().splitlines()) == 1 and err.startswith("hdlgen: error: "), err


def _nan_weight(proto):
    init = next(i for i in proto.graph.initializer if numpy_helper.to_array(i).size > 100)
    value = numpy_helper.to_array(init).copy()
    value.flat[5] = np.nan
    _set_initializer(proto, init.name, value)


def _constant_in_external_data(proto):
    from onnx import helper

    tensor = numpy_helper.from_array(np.ones(3, np.float32), "c")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    tensor.ClearField("raw_data")
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "elsewhere.bin"
    proto.graph.node.insert(0, helper.make_node("Constant", [], ["unused_c"], value=tensor))


ONNX_CHANGES.update({
    "nan-weight": ("w1a1.onnx", _nan_weight, "every value must be a finite number"),
    "external-data-nul": ("w2a2.onnx", _external_location("w2a2\0.data"), "NUL byte"),
    "constant-in-external-data": ("w1a1.onnx", _constant_in_external_data, "stored as external data"),
})


@pytest.mark.parametrize("text, message", [
    ('{"fc0": {"pe": 1, "simd": 64}, "fc0": {"pe": 2, "simd": 64}}', "the key 'fc0' appears twice"),
])
def test_duplicate_keys_refused(tmp_path, capsys, text, message):
    model = copy_native_model(tmp_path / "m")
    (tmp_path / "fold.json").write_text(text)
    assert_refused(["build", model, "-o", tmp_path / "out", "--fold", tmp_path / "fold.json"], tmp_path, capsys, message)


def test_npy_header_promising_more_than_the_file_holds(tmp_path, capsys):
    model = copy_native_model(tmp_path / "m")
    with open(tmp_path / "m" / "model.npz", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (2 ** 40,)})
    assert_refused(["inspect", model], tmp_path, capsys)
    (tmp_path / "m" / "model.npz").rename(tmp_path / "x.npy")
    assert_refused(["sim", tmp_path, "--inputs", tmp_path / "x.npy"], tmp_path, capsys)


def test_a_path_with_a_line_break_stays_on_one_line(tmp_path, capsys):
    assert_refused(["inspect", tmp_path / "a\nb.json"], tmp_path, capsys, "a | b.json")


def test_conv_padding_that_explodes_the_activation(tmp_path, capsys):
    from hdlgen.frontend import save_model
    from hdlgen.ir import BIPOLAR, Conv2d, InputQuantizer, Model, QuantType

    conv = Conv2d("c", np.ones((1, 1, 3, 3)), BIPOLAR, padding=(65536,) * 4)
    save_model(Model("wide", InputQuantizer(64, QuantType.uint(2), 0.1, shape=(1, 8, 8)), [conv]), tmp_path / "w.json")
    assert_refused(["build", tmp_path / "w.json", "-o", tmp_path / "out"], tmp_path, capsys,
                   "layer 'c' gives 17,181,442,084 values per frame")


def test_a_group_count_that_does_not_divide_the_channels(tmp_path, capsys):
    import json

    from hdlgen.frontend import save_model
    from hdlgen.ir import Conv2d, InputQuantizer, Model, QuantType, Quantizer

    conv = Conv2d("dw", np.ones((6, 1, 3, 3)), QuantType.int(2), padding=(1, 1, 1, 1), groups=6)
    model = Model("dw", InputQuantizer(6 * 5 * 5, QuantType.uint(2), 0.5, shape=(6, 5, 5)),
                  [conv, Quantizer("q", QuantType.uint(2), 0.5)])
    save_model(model, tmp_path / "dw.json")
    doc = json.loads((tmp_path / "dw.json").read_text())
    doc["layers"][0]["groups"] = 4
    (tmp_path / "dw.json").write_text(json.dumps(doc))
    line = assert_refused(["build", tmp_path / "dw.json", "-o", tmp_path / "out"], tmp_path, capsys, "layer 'dw'")
    assert "groups=4 must divide the 6 output channels" in line


@pytest.mark.parametrize("attributes, message", [
    ({"pads": [1, 1, 1, 1]}, "average pooling with padding (1, 1, 1, 1) and count_include_pad=0 divides border windows"),
    ({"ceil_mode": 1}, "ceil_mode is not supported for average pooling; export with ceil_mode=0"),
], ids=["padding-not-counted", "ceil-mode"])
def test_average_pools_hardware_cannot_follow(tmp_path, capsys, attributes, message):
    from qonnx_graphs import Graph

    g = Graph([2, 6, 6], 1).quant(0.5, 4, signed=False)
    g.op("AveragePool", kernel_shape=[3, 3], strides=[2, 2], **attributes).quant(0.25, 4, signed=False)
    g.op("Flatten", axis=1)
    line = assert_refused(["build", g.save(tmp_path / "pool.onnx"), "-o", tmp_path / "out"], tmp_path, capsys,
                          "AveragePool_")
    assert message in line
