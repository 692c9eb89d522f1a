"""Random source models and designs for tests: every parameter comes from a seeded generator."""

from __future__ import annotations

import numpy as np

from hdlgen.backends.cocotb_run import CocotbDesign
from hdlgen.ir import BIPOLAR, TERNARY, BatchNorm, Dense, InputQuantizer, Model, QuantType, Quantizer


def random_dense(rng, name, n_in, n_out, weight_quant, *, scale=True, bias=True):
    w = rng.choice(weight_quant.values(), size=(n_out, n_in))
    return Dense(name, w, weight_quant, rng.uniform(0.25, 2.0, size=n_out) if scale else 1.0,
                 rng.normal(0, 2, size=n_out) if bias else None)


def random_batchnorm(rng, name, n, *, spread):
    gamma = rng.normal(0, 1, size=n)
    gamma[rng.random(n) < 0.15] = 0.0          # constant channels
    return BatchNorm(name, gamma, rng.normal(0, 1, size=n), rng.normal(0, spread, size=n),
                     rng.uniform(0.2, 3.0, size=n) * spread, 1e-5)


def random_model(rng, *, sizes, input_quant, act_quant, weight_quant=BIPOLAR, output_act=False, name="rand"):
    """A chain dense -> batchnorm -> quantizer ..., ending in dense (-> batchnorm) or a quantizer."""
    layers = []
    in_scale = 0.1
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(random_dense(rng, f"fc{k}", n_in, n_out, weight_quant))
        last = k == len(sizes) - 2
        spread = np.sqrt(n_in) * in_scale * 2
        layers.append(random_batchnorm(rng, f"bn{k}", n_out, spread=spread))
        if not last or output_act:
            layers.append(Quantizer(f"act{k}", act_quant, 0.5 if not act_quant.is_bipolar else 1.0))
        in_scale = 0.5
    return Model(name, InputQuantizer(sizes[0], input_quant, 0.1), layers)


def random_inputs(rng, model: Model, count: int) -> np.ndarray:
    """Inputs that cover the whole input code range, ends included."""
    q = model.input.quant
    span = (max(abs(q.lo), abs(q.hi)) + 1) * model.input.scale
    return rng.uniform(-span, span, size=(count, model.input.features))


UINT = QuantType.uint
INT = QuantType.int
__all__ = ["random_model", "random_dense", "random_batchnorm", "random_inputs", "BIPOLAR", "TERNARY", "UINT", "INT",
           "CocotbDesign"]
