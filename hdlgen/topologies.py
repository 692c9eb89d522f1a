"""Reference network topologies with random weights, for sizing, benchmarks and tests.

``ds_cnn`` is MLPerf Tiny's keyword-spotting DS-CNN (Zhang et al., "Hello Edge", 2017; the MLPerf
Tiny reference model): a 49 x 10 MFCC input quantized to 8 bits, a 10 x 4 convolution of stride 2
("same" padding) to 64 channels, four depthwise-separable blocks (3 x 3 depthwise, 1 x 1
pointwise, 64 channels), the average over the 25 x 5 map, and a dense layer of 12 classes, with
batch norm and ReLU after every convolution; here with 4-bit weights and activations (w4a4).

``cnv`` is BNN-PYNQ's CNV (Umuroglu et al., FINN, 2017): a 3 x 32 x 32 image quantized to 8 bits,
six 3 x 3 convolutions without padding (64, 64, max pool 2, 128, 128, max pool 2, 256, 256), then
dense layers 256 -> 512 -> 512 -> 10; batch norm and a quantized activation after every layer but
the last.
"""

from __future__ import annotations

import numpy as np

from .ir import (BIPOLAR, AvgPool2d, BatchNorm, Clip, Conv2d, Dense, Flatten, InputQuantizer, MaxPool2d, Model, QuantType,
                 Quantizer)

__all__ = ["cnv", "ds_cnn", "BNN_PYNQ_CNV_FOLDING"]

CNV_CONVS = [(64, False), (64, True), (128, False), (128, True), (256, False), (256, False)]   # (channels, pool after)
CNV_DENSE = [512, 512, 10]

#: BNN-PYNQ's CNV-W1A1 folding, (PE, SIMD) per layer. BNN-PYNQ pads the last layer to 16 rows for its
#: PE of 4; with 10 rows hdlgen uses PE 5 there (that layer is far from the bottleneck either way).
BNN_PYNQ_CNV_FOLDING = [(16, 3), (32, 32), (16, 32), (16, 32), (4, 32), (1, 32), (1, 4), (1, 8), (5, 1)]


def _batchnorm(rng, name: str, n: int, fan_in: int) -> BatchNorm:
    spread = np.sqrt(fan_in)
    return BatchNorm(name, rng.uniform(0.5, 1.5, n) * rng.choice([-1, 1], n), rng.normal(0, 0.2, n),
                     rng.normal(0, spread * 0.3, n), rng.uniform(0.5, 1.5, n) * fan_in, 1e-4)


def cnv(rng: np.random.Generator, *, weight_quant: QuantType = BIPOLAR, act_quant: QuantType = BIPOLAR,
        name: str = "cnv") -> Model:
    """CNV with random bipolar (or ternary) weights and batch norm statistics that keep activations busy."""
    values = [-1, 1] if weight_quant.is_bipolar else [-1, 0, 1]
    act_scale = 1.0 if act_quant.is_bipolar else 0.5
    layers, channels, fan_in = [], 3, None
    for k, (out, pool) in enumerate(CNV_CONVS):
        fan_in = channels * 9
        layers += [Conv2d(f"conv{k}", rng.choice(values, size=(out, channels, 3, 3)), weight_quant),
                   _batchnorm(rng, f"bn_conv{k}", out, fan_in * (128 if k == 0 else 1)),
                   Quantizer(f"act_conv{k}", act_quant, act_scale)]
        if pool:
            layers.append(MaxPool2d(f"pool{k}", (2, 2)))
        channels = out
    layers.append(Flatten("flatten"))
    features = channels
    for k, out in enumerate(CNV_DENSE):
        layers.append(Dense(f"fc{k}", rng.choice(values, size=(out, features)), weight_quant))
        if k < len(CNV_DENSE) - 1:
            layers += [_batchnorm(rng, f"bn_fc{k}", out, features), Quantizer(f"act_fc{k}", act_quant, act_scale)]
        features = out
    return Model(name, InputQuantizer(3 * 32 * 32, QuantType.int(8), 2.0 ** -7, shape=(3, 32, 32)), layers)


def _calibrated(model_input: InputQuantizer, layers: list, conv: Conv2d, x: np.ndarray, act: Quantizer) -> list:
    """``conv``, then a batch norm whose statistics are its outputs' on ``x`` (as training would leave
    them: every channel busy), a ReLU and ``act``."""
    from .golden import run_reference

    out = run_reference(Model("probe", model_input, layers + [conv]), x)          # (batch, C, H, W)
    mean, var = out.mean(axis=(0, 2, 3)), out.var(axis=(0, 2, 3)) + 1e-3
    rng = np.random.default_rng(len(layers))
    n = len(mean)
    # centred a little above zero and spread over the activation's range (up to 15 * scale)
    bn = BatchNorm(f"bn_{conv.name}", rng.uniform(0.6, 1.0, n) * act.scale * 4, rng.uniform(0.5, 1.0, n) * act.scale * 4,
                   mean, var, 1e-5)
    return [conv, bn, Clip(f"relu_{conv.name}", 0.0), act]


def ds_cnn(rng: np.random.Generator, *, blocks: int = 4, channels: int = 64, calibration: int = 64,
           name: str = "ds_cnn") -> Model:
    """MLPerf Tiny's DS-CNN (see the module docstring) with random int4 weights, batch norm
    statistics measured on random inputs, uint4 activations."""
    w4, a4 = QuantType.int(4, narrow=True), QuantType.uint(4)
    model_input = InputQuantizer(49 * 10, QuantType.int(8), 2.0 ** -7, shape=(1, 49, 10))
    x = rng.uniform(-1, 1, size=(calibration, 1, 49, 10)) * rng.uniform(0.2, 1, size=(calibration, 1, 1, 1))

    def weights(shape):
        return rng.integers(-7, 8, size=shape)

    layers = _calibrated(model_input, [], Conv2d("conv0", weights((channels, 1, 10, 4)), w4, 2.0 ** -3, stride=(2, 2),
                                                 padding=(4, 1, 5, 1)), x, Quantizer("act0", a4, 0.25))
    for k in range(blocks):
        dw = Conv2d(f"dw{k}", weights((channels, 1, 3, 3)), w4, 2.0 ** -4, padding=(1, 1, 1, 1), groups=channels)
        layers += _calibrated(model_input, layers, dw, x, Quantizer(f"act_dw{k}", a4, 0.25))
        pw = Conv2d(f"pw{k}", weights((channels, channels, 1, 1)), w4, 2.0 ** -6)
        layers += _calibrated(model_input, layers, pw, x, Quantizer(f"act_pw{k}", a4, 0.25))
    layers += [AvgPool2d("pool", (25, 5)), Quantizer("act_pool", QuantType.uint(8), 2.0 ** -6), Flatten("flatten"),
               Dense("fc", weights((12, channels)), w4, 2.0 ** -4)]
    return Model(name, model_input, layers)
