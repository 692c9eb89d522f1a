"""Float ONNX model to an INT8 QDQ model that hdlgen builds: a thin layer over onnxruntime's
``quantize_static`` and its calibrators (MinMax, Percentile, and Entropy, which is TensorRT's KL
method). No calibration of our own.

Settings chosen for the hardware (docs/int8.md):

- QDQ format, so the file stays a standard ONNX graph that onnxruntime runs as it is built;
- weights int8, symmetric (zero point 0), per output channel;
- activations uint8 (or int8) with a zero point, ranges from the calibration data;
- biases int32 in units of input scale times weight scale (onnxruntime's default);
- onnxruntime's pre-processing first (shape inference, batch norm folded into the convolution).

What quantize writes, and what it replaces (``check_output``, before any work, and again right
before writing):

- ``-o`` names an ``.onnx`` file, written whole or not at all, outside every build directory (they
  hold only what hdlgen builds) and never over one of the command's inputs;
- the model carries two ``metadata_props`` entries: ``hdlgen.quantize`` (the hdlgen version and the
  command) and ``hdlgen.sha256`` (SHA-256 of the model serialized without that entry);
- an existing ``-o`` file is replaced only when it is such a file, unedited: a file of the user's,
  or one edited since, is never overwritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import shlex
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import options as O
from ..errors import HdlgenError

__all__ = ["METHODS", "ACTIVATION_TYPES", "DEFAULT_PERCENTILE", "TensorRange", "check_output", "quantize_model",
           "quantized_ranges"]

METHODS = ("minmax", "percentile", "entropy")
ACTIVATION_TYPES = ("uint8", "int8")
DEFAULT_PERCENTILE = 99.999  # for --method percentile
BATCH = 32                   # calibration samples per onnxruntime run
# TensorRT's entropy calibration: a 2048-bin histogram, thresholds searched over 128 quantized bins.
# (quantize_static would run onnxruntime's entropy calibrator with 128 bins of each, which leaves
# one candidate threshold, the maximum: min/max by another name.)
ENTROPY_BINS, ENTROPY_QUANTIZED_BINS = 2048, 128
# Calibration values beyond this magnitude are refused. float32 ends at 3.4e38, and the tensors after
# the input sum products of it: near that end they overflow to inf, and inf - inf is the NaN that
# leaves onnxruntime without a scale. 1e30 leaves eight decades for the layers to grow through.
MAX_CALIBRATION = 1e30
WRITER_KEY, DIGEST_KEY = "hdlgen.quantize", "hdlgen.sha256"      # metadata_props of the file quantize writes
FIX_SHAPE = "python -m onnxruntime.tools.make_dynamic_shape_fixed"


@dataclass(frozen=True)
class TensorRange:
    """An activation tensor's quantizer: the real range its integers cover, as calibrated."""

    tensor: str
    lo: float
    hi: float
    scale: float
    zero_point: int
    dtype: str


# -- the output file -------------------------------------------------------------------------------

def check_output(output: Path, inputs: list[Path]) -> None:
    """Refuse an ``-o`` that ``hdlgen quantize`` may not write (see the module's rule); touches nothing.

    Parameters
    ----------
    output : Path
        The QDQ model to write.
    inputs : list of Path
        The command's input files (the model, the calibration data), which ``output`` may not be.
    """
    from ..builddir import check_output_file

    output = check_output_file(output, flag="-o", suffix=".onnx", inputs=inputs)
    if output.exists() and not _written_by_hdlgen(output):
        raise HdlgenError(f"-o {output} exists and hdlgen did not write it (or it was edited since, or an hdlgen that "
                          f"did not yet mark its outputs wrote it); hdlgen keeps it: choose another -o or remove it "
                          f"yourself")


def _digest(proto) -> str:
    return hashlib.sha256(proto.SerializeToString()).hexdigest()


def _written_by_hdlgen(path: Path) -> bool:
    """Whether ``path`` is a model quantize wrote, unedited: its digest entry matches the rest of it."""
    import onnx
    from google.protobuf.message import DecodeError

    if not path.is_file():
        return False
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(path.read_bytes())
    except (DecodeError, ValueError, RecursionError):
        return False
    digests = [e for e in proto.metadata_props if e.key == DIGEST_KEY]
    if len(digests) != 1 or not any(e.key == WRITER_KEY for e in proto.metadata_props):
        return False
    recorded = digests[0].value
    proto.metadata_props.remove(digests[0])
    return _digest(proto) == recorded


def _mark(proto, command: list[str]) -> bytes:
    """``proto`` with the entries that say hdlgen wrote it (replacing any it had), serialized."""
    from .. import __version__

    kept = [(e.key, e.value) for e in proto.metadata_props if e.key not in (WRITER_KEY, DIGEST_KEY)]
    del proto.metadata_props[:]
    for key, value in [*kept, (WRITER_KEY, f"hdlgen {__version__}: {shlex.join(command)}")]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    digest = _digest(proto)
    entry = proto.metadata_props.add()
    entry.key, entry.value = DIGEST_KEY, digest
    return proto.SerializeToString()


# -- the model and its calibration data ------------------------------------------------------------

def _float_input(path: Path, proto):
    """The model's one float input: its name and dimensions, each (size, name) with size None when dynamic."""
    graph = proto.graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise HdlgenError(f"{path}: the model has {len(inputs)} inputs; hdlgen quantizes models with exactly one")
    name, tensor = inputs[0].name, inputs[0].type.tensor_type
    if tensor.elem_type != 1:
        raise HdlgenError(f"{path}: input {name!r} must be float32")
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear", "Quant", "BipolarQuant", "MultiThreshold")
           for n in graph.node):
        raise HdlgenError(f"{path}: the model is already quantized; give hdlgen quantize a float model, or build "
                          f"this one directly")
    dims = [(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None, d.dim_param)
            for d in tensor.shape.dim]
    if not dims:
        raise HdlgenError(f"{path}: input {name!r} has no shape in the model (unknown rank, or a scalar); hdlgen "
                          f"quantizes an input of shape (batch, ...), as exporters declare it")
    return name, dims


def _calibration(path: Path, data, source: str, name: str, dims: list) -> np.ndarray:
    """``data`` as float32 samples of the input's shape; ``source`` names it in messages."""
    data = np.asarray(data)
    if (not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data)
            or not np.all(np.isfinite(data))):
        raise HdlgenError(f"{source}: calibration data must be finite real numbers")
    magnitude = np.abs(data.astype(np.float64))
    if magnitude.size and magnitude.max() > MAX_CALIBRATION:
        at = tuple(int(i) for i in np.unravel_index(np.argmax(magnitude), data.shape))
        raise HdlgenError(f"{source}: calibration value {float(data[at]):g} at index {at} is beyond +-{MAX_CALIBRATION:g}, "
                          f"where the model's float32 tensors overflow before onnxruntime can scale them; scale the "
                          f"calibration inputs (and the model's first layer) down")
    dynamic = [k for k, (size, _) in enumerate(dims) if k > 0 and size is None]
    if dynamic:
        raise HdlgenError(_fix_dimensions(path, name, dims, dynamic, data.shape))
    wanted = tuple(size for size, _ in dims[1:])
    if data.ndim == len(wanted) and data.shape == wanted:
        data = data[None]
    if data.shape[1:] != wanted or len(data) == 0:
        raise HdlgenError(f"{source}: calibration data has shape {data.shape}; input {name!r} takes "
                          f"(samples, {', '.join(map(str, wanted))})")
    return data.astype(np.float32)


def _fix_dimensions(path: Path, name: str, dims: list, dynamic: list[int], shape: tuple) -> str:
    """The message for dynamic sample dimensions: which, and onnxruntime's command that fixes them
    (with the sizes of the calibration samples where their rank says which they are)."""
    sample = shape[1:] if len(shape) == len(dims) else shape if len(shape) == len(dims) - 1 else None
    sizes = [str(dims[0][0] or 1)] + [str(size) if size is not None else str(sample[k - 1]) if sample else "?"
                                      for k, (size, _) in enumerate(dims) if k > 0]
    listed = ", ".join(f"{k} ({dims[k][1]!r})" if dims[k][1] else str(k) for k in dynamic)
    unknown = " (with one sample's sizes for the ?)" if "?" in sizes else ""
    return (f"{path}: input {name!r} has dynamic dimensions besides the batch: {listed} of "
            f"({', '.join(str(size) if size is not None else param or '?' for size, param in dims)}); hdlgen quantizes "
            f"a fixed sample shape: fix it with {FIX_SHAPE} --input_name {name} --input_shape {','.join(sizes)} "
            f"{path} fixed.onnx{unknown}, then quantize fixed.onnx")


def _batch(path: Path, name: str, dims: list, samples: int) -> int:
    """Samples per onnxruntime run: equal batches (onnxruntime's histogram calibrators stack them into
    one array), of the model's own batch size when it fixes one."""
    fixed = dims[0][0]
    if fixed is None:
        return max(d for d in range(1, BATCH + 1) if samples % d == 0)
    if samples % fixed:
        enough = (f"e.g. the first {samples - samples % fixed}" if samples > fixed else f"at least {fixed}")
        one = ",".join(["1"] + [str(size) for size, _ in dims[1:]])
        raise HdlgenError(f"{path}: input {name!r} has a fixed batch of {fixed}, so onnxruntime calibrates in batches of "
                          f"{fixed}, and {samples} calibration samples do not fill them: give a multiple of {fixed} "
                          f"samples ({enough}), or fix the batch at 1 with {FIX_SHAPE} --input_name {name} "
                          f"--input_shape {one} {path} fixed.onnx")
    return fixed


def _percentile(method: str, percentile) -> float | None:
    if percentile is None:
        return DEFAULT_PERCENTILE if method == "percentile" else None
    if method != "percentile":
        raise HdlgenError(f"--percentile applies to --method percentile only, not {method}: add --method percentile "
                          f"or leave --percentile out")
    O.check("percentile", O.PERCENTILE, percentile)
    return float(percentile)


def _reader(name: str, data: np.ndarray, batch: int):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{name: data[i:i + batch]} for i in range(0, len(data), batch)])

        def get_next(self):
            return next(self.batches, None)

    return Reader()


def _entropy_ranges(model: Path, work: Path, reader, cache: Path) -> None:
    """onnxruntime's entropy calibrator with TensorRT's histogram sizes; its ranges go to ``cache``,
    which ``quantize_static`` then reads instead of calibrating again."""
    import inspect

    from onnxruntime.quantization import CalibrationMethod, quantize_static
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

    if "calibration_cache_path" not in inspect.signature(quantize_static).parameters:
        raise HdlgenError("entropy calibration needs a newer onnxruntime (quantize_static has no "
                          "calibration_cache_path here): pip install -U onnxruntime")
    calibrator = create_calibrator(model, augmented_model_path=str(work / "augmented.onnx"),
                                   calibrate_method=CalibrationMethod.Entropy,
                                   extra_options={"num_bins": ENTROPY_BINS, "num_quantized_bins": ENTROPY_QUANTIZED_BINS,
                                                  "symmetric": False})
    calibrator.collect_data(reader)
    save_tensors_data(calibrator.compute_data(), cache)


def quantized_ranges(proto) -> list[TensorRange]:
    """The activation quantizers of a QDQ model: each QuantizeLinear's tensor and the range it covers."""
    from onnx import numpy_helper

    const = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    ranges = []
    for node in proto.graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] in const:
            continue
        scale = float(const[node.input[1]].reshape(-1)[0])
        zero = const[node.input[2]] if len(node.input) > 2 and node.input[2] else np.zeros((), np.uint8)
        info = np.iinfo(zero.dtype)
        zp = int(zero.reshape(-1)[0])
        ranges.append(TensorRange(node.input[0], (info.min - zp) * scale, (info.max - zp) * scale, scale, zp,
                                  str(zero.dtype)))
    return ranges


@contextlib.contextmanager
def _quiet():
    """Keep onnxruntime's chatter from the user: its prints (progress), its Python warnings (numpy's
    RuntimeWarnings on NaN) and its root-logger warnings; yields the warnings caught, for a failure's
    message. (A handler on the root logger also stops ``logging.warning`` configuring stderr.)"""
    root, handler = logging.getLogger(), logging.NullHandler()
    root.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("always")
            yield caught
    finally:
        root.removeHandler(handler)


def _overflow(model: Path, tensor: str | None = None) -> HdlgenError:
    where = f"tensor {tensor!r}" if tensor else "a tensor"
    return HdlgenError(f"{model}: calibrating it overflows float32 inside the model ({where} has an infinite or NaN "
                       f"range); scale the calibration inputs (and the model's first layer) down")


def _failure(model: Path, error: Exception, caught: list) -> HdlgenError:
    """onnxruntime refused the model or the data: say so in one line; an overflow in plain words."""
    text = f"{type(error).__name__}: {str(error).strip()}"
    numeric = ("NaN", "overflow", "invalid value")          # numpy's words for what inf and NaN did
    if ("scale issue" in text or "is not finite" in text
            or any(issubclass(w.category, RuntimeWarning) and any(n in str(w.message) for n in numeric) for w in caught)):
        return _overflow(model)
    return HdlgenError(f"{model}: onnxruntime's quantizer failed ({text[:300]})")


def _command(model: Path, calibration, output: Path, method: str, activations: str, percentile) -> list[str]:
    """The command line that quantizes the same way, recorded in the file quantize writes."""
    source = (str(Path(calibration).absolute()) if isinstance(calibration, (str, os.PathLike))
              else f"<array of shape {np.shape(calibration)}>")
    return ["hdlgen", "quantize", str(model.absolute()), "--calibration", source, "--method", method,
            *(["--percentile", f"{percentile:g}"] if method == "percentile" else []), "--activations", activations,
            "-o", str(output.absolute())]


def quantize_model(model: Path, calibration, output: Path, *, method: str = "minmax", activations: str = "uint8",
                   percentile: float | None = None, progress=None) -> list[TensorRange]:
    """Quantize the float ONNX ``model`` into the QDQ file ``output`` (written whole or not at all).

    Parameters
    ----------
    model : Path
        A float model, binary ONNX, with one float32 input.
    calibration : numpy.ndarray or Path
        Calibration samples in the input's layout, batch first, or the ``.npy`` file holding them.
    output : Path
        The ``.onnx`` file to write; ``check_output`` says which may be written.
    method : str
        One of `METHODS`.
    activations : str
        One of `ACTIVATION_TYPES`.
    percentile : float, optional
        For ``method="percentile"`` only; `DEFAULT_PERCENTILE` when None.
    progress : callable, optional
        Called with a line for each step.

    Returns
    -------
    list of TensorRange
        The calibrated activation ranges.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from ..builddir import write_file
    from ..frontend.qdq import load_qdq
    from ..frontend.qonnx import read_onnx
    from ..readers import read_npy
    from .streamline import streamline

    O.check("method", O.Choice(METHODS), method)
    O.check("activations", O.Choice(ACTIVATION_TYPES), activations)
    percentile = _percentile(method, percentile)
    model, output = Path(model), Path(output)
    named = isinstance(calibration, (str, os.PathLike))
    inputs = [model, Path(calibration)] if named else [model]
    check_output(output, inputs)
    source = str(calibration) if named else "calibration data"
    data = read_npy(Path(calibration), "calibration data") if named else calibration
    proto = read_onnx(model)
    name, dims = _float_input(model, proto)
    data = _calibration(model, data, source, name, dims)
    batch = _batch(model, name, dims, len(data))
    calibrate = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                 "entropy": CalibrationMethod.Entropy}[method]
    extra = {"ActivationSymmetric": False, "WeightSymmetric": True,
             **({} if percentile is None else {"CalibPercentile": percentile})}
    with tempfile.TemporaryDirectory(prefix="hdlgen-quantize-") as work, _quiet() as caught:
        work = Path(work)
        prepared, quantized = work / "prepared.onnx", work / "quantized.onnx"
        try:
            if progress:
                progress("pre-processing (shape inference, batch norm folding)")
            quant_pre_process(proto, prepared)
            if progress:
                progress(f"calibrating on {len(data)} samples ({method})")
            cache = None
            if method == "entropy":
                cache = work / "ranges.json"
                _entropy_ranges(prepared, work, _reader(name, data, batch), cache)
            quantize_static(prepared, quantized, _reader(name, data, batch), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8 if activations == "uint8"
                            else QuantType.QInt8, weight_type=QuantType.QInt8, calibrate_method=calibrate,
                            extra_options=extra, **({} if cache is None else {"calibration_cache_path": cache}))
        except HdlgenError:
            raise
        except Exception as e:              # noqa: BLE001 - onnxruntime refuses the model or the data
            raise _failure(model, e, caught) from None
        result = onnx.load(str(quantized), format="protobuf")
    ranges = quantized_ranges(result)
    for r in ranges:
        if not np.isfinite(r.scale):
            raise _overflow(model, r.tensor)
    marked = _mark(result, _command(model, calibration, output, method, activations, percentile))
    try:
        streamline(load_qdq(output, result))     # it must build: refuse to write what hdlgen cannot lower
    except HdlgenError as e:
        raise HdlgenError(f"the quantized model is not one hdlgen builds, so {output} was not written: "
                          f"{str(e).removeprefix(str(output) + ': ')}") from None
    check_output(output, inputs)        # again: the folder or the file may have changed while calibrating
    write_file(output, marked)
    return ranges
