"""Reference network topologies with random weights, for sizing, benchmarks and tests.

``cnv`` is BNN-PYNQ's CNV (Umuroglu et al., FINN, 2017): a 3 x 32 x 32 image quantized to 8 bits,
six 3 x 3 convolutions without padding (64, 64, max pool 2, 128, 128, max pool 2, 256, 256), then
dense layers 256 -> 512 -> 512 -> 10; batch norm and a quantized activation after every layer but
the last.
"""

from __future__ import annotations

import numpy as np

from .ir import BIPOLAR, BatchNorm, Conv2d, Dense, Flatten, InputQuantizer, MaxPool2d, Model, QuantType, Quantizer

__all__ = ["cnv", "BNN_PYNQ_CNV_FOLDING"]

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
