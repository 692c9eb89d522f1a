"""Float ONNX model to an INT8 QDQ model that hdlgen builds: a thin layer over onnxruntime's
``quantize_static`` and its calibrators (MinMax, Percentile, and Entropy, which is TensorRT's KL
method). No calibration of our own.

Settings chosen for the hardware (docs/int8.md):

- QDQ format, so the file stays a standard ONNX graph that onnxruntime runs as it is built;
- weights int8, symmetric (zero point 0), per output channel;
- activations uint8 (or int8) with a zero point, ranges from the calibration data;
- biases int32 in units of input scale times weight scale (onnxruntime's default);
- onnxruntime's pre-processing first (shape inference, batch norm folded into the convolution).
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import HdlgenError

__all__ = ["METHODS", "ACTIVATION_TYPES", "TensorRange", "quantize_model", "quantized_ranges"]

METHODS = ("minmax", "percentile", "entropy")
ACTIVATION_TYPES = ("uint8", "int8")
BATCH = 32                   # calibration samples per onnxruntime run
# TensorRT's entropy calibration: a 2048-bin histogram, thresholds searched over 128 quantized bins.
# (quantize_static would run onnxruntime's entropy calibrator with 128 bins of each, which leaves
# one candidate threshold, the maximum: min/max by another name.)
ENTROPY_BINS, ENTROPY_QUANTIZED_BINS = 2048, 128


@dataclass(frozen=True)
class TensorRange:
    """An activation tensor's quantizer: the real range its integers cover, as calibrated."""

    tensor: str
    lo: float
    hi: float
    scale: float
    zero_point: int
    dtype: str


def _float_input(path: Path, proto):
    graph = proto.graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise HdlgenError(f"{path}: the model has {len(inputs)} inputs; hdlgen quantizes models with exactly one")
    tensor = inputs[0].type.tensor_type
    if tensor.elem_type != 1:
        raise HdlgenError(f"{path}: input {inputs[0].name!r} must be float32")
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear", "Quant", "BipolarQuant", "MultiThreshold")
           for n in graph.node):
        raise HdlgenError(f"{path}: the model is already quantized; give hdlgen quantize a float model, or build "
                          f"this one directly")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    return inputs[0].name, dims


def _calibration(path: Path, data: np.ndarray, name: str, dims: list) -> np.ndarray:
    data = np.asarray(data)
    if not np.issubdtype(data.dtype, np.number) or not np.all(np.isfinite(data)):
        raise HdlgenError(f"{path}: calibration data must be finite numbers")
    wanted = tuple(dims[1:])
    if data.ndim == len(wanted) and data.shape == wanted:
        data = data[None]
    if data.shape[1:] != wanted or len(data) == 0:
        raise HdlgenError(f"{path}: calibration data has shape {data.shape}; input {name!r} takes "
                          f"(samples, {', '.join(map(str, wanted))})")
    return data.astype(np.float32)


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
    with contextlib.redirect_stdout(io.StringIO()):
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


def quantize_model(model: Path, calibration: np.ndarray, output: Path, *, method: str = "minmax",
                   activations: str = "uint8", percentile: float = 99.999, progress=None) -> list[TensorRange]:
    """Quantize the float ONNX ``model`` with ``calibration`` samples into the QDQ file ``output``
    (written whole or not at all). Returns the calibrated activation ranges."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from ..builddir import write_file
    from ..frontend.qdq import load_qdq
    from .streamline import streamline
    from ..frontend.qonnx import read_onnx

    if method not in METHODS:
        raise HdlgenError(f"calibration method {method!r} is not one of {', '.join(METHODS)}")
    if activations not in ACTIVATION_TYPES:
        raise HdlgenError(f"activation type {activations!r} is not one of {', '.join(ACTIVATION_TYPES)}")
    model, output = Path(model), Path(output)
    proto = read_onnx(model)
    name, dims = _float_input(model, proto)
    data = _calibration(model, calibration, name, dims)
    # equal batches: onnxruntime's histogram calibrators stack them into one array
    batch = max(d for d in range(1, BATCH + 1) if len(data) % d == 0) if dims[0] is None else 1
    calibrate = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                 "entropy": CalibrationMethod.Entropy}[method]
    extra = {"ActivationSymmetric": False, "WeightSymmetric": True, "CalibPercentile": float(percentile)}
    with tempfile.TemporaryDirectory(prefix="hdlgen-quantize-") as work:
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
            with contextlib.redirect_stdout(io.StringIO()):      # onnxruntime prints its own progress
                quantize_static(prepared, quantized, _reader(name, data, batch), quant_format=QuantFormat.QDQ,
                                per_channel=True, activation_type=QuantType.QUInt8 if activations == "uint8"
                                else QuantType.QInt8, weight_type=QuantType.QInt8, calibrate_method=calibrate,
                                extra_options=extra, **({} if cache is None else {"calibration_cache_path": cache}))
        except HdlgenError:
            raise
        except Exception as e:              # noqa: BLE001 - onnxruntime refuses the model or the data
            raise HdlgenError(f"{model}: onnxruntime's quantizer failed ({type(e).__name__}: {str(e).strip()[:300]})") from None
        result = onnx.load(str(quantized))
        try:
            streamline(load_qdq(output, result))     # it must build: refuse to write what hdlgen cannot lower
        except HdlgenError as e:
            raise HdlgenError(f"the quantized model is not one hdlgen builds, so {output} was not written: "
                              f"{str(e).removeprefix(str(output) + ': ')}") from None
        write_file(output, result.SerializeToString())
    return quantized_ranges(result)
