"""Train a binarized MLP with shift-based batch norm, as the BNN paper does (Courbariaux et al. 2016,
arXiv 1602.02830, Alg. 3), and export it as a native model:

    python examples/digits/train_shift_bn.py     # writes shift_bn.json, shift_bn.npz, shift_bn_scores.npy here

The network is the bundled example's (64 inputs quantized to 4 bits -> 64 -> 64 -> 10, bipolar
weights, sign activations), with every batch norm shift-based, the output layer's too:
``y = AP2(gamma) * ((x - mean) * AP2(1 / sqrt(var + eps))) + beta``, AP2(v) being
``sign(v) * 2^round(log2|v|)``. Gradients pass AP2 straight through. Means and betas are kept on a
grid of 1/16, so the exported scores are exact binary fractions: the hardware emits them in fixed
point and ``shift_bn_scores.npy`` (this script's own float64 forward pass on the test images) is
what it must reproduce bit for bit. Numpy only; a few seconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from train import EPS, HIDDEN, INPUT, binarize, load_split, train  # noqa: E402

from hdlgen.frontend import save_model  # noqa: E402
from hdlgen.golden import run_reference  # noqa: E402
from hdlgen.ir import BIPOLAR, Dense, Model, Quantizer, ShiftBatchNorm  # noqa: E402
from hdlgen.ir.semantics import quantize  # noqa: E402

GRID = 16          # means and betas are multiples of 1/GRID


def ap2(v):
    """sign(v) * 2^round(log2|v|), 0 for 0."""
    v = np.asarray(v, dtype=np.float64)
    return np.where(v == 0, 0.0, np.sign(v) * np.exp2(np.round(np.log2(np.where(v == 0, 1.0, np.abs(v))))))


def on_grid(v):
    return np.round(np.asarray(v) * GRID) / GRID


class ShiftBN:
    """A binarized dense layer and its shift-based batch norm; ``sign`` applies the activation."""

    def __init__(self, rng, n_in, n_out, sign: bool, in_scale: float = 1.0):
        self.in_scale = in_scale            # the dot product of integers, then one multiplication, as hdlgen computes it
        self.w = rng.uniform(-1, 1, size=(n_out, n_in)) * np.sqrt(3 / n_in)
        self.gamma, self.beta = np.ones(n_out), np.zeros(n_out)
        self.run_mean, self.run_var = np.zeros(n_out), np.ones(n_out)
        self.sign = sign

    def forward(self, a, train):
        wb = binarize(self.w)
        z = (a @ wb.T) * self.in_scale
        if train:
            mu, var = z.mean(0), z.var(0)
            self.run_mean = 0.9 * self.run_mean + 0.1 * mu
            self.run_var = 0.9 * self.run_var + 0.1 * var
            beta = self.beta
        else:
            mu, var, beta = on_grid(self.run_mean), self.run_var, on_grid(self.beta)
        inv = ap2(1 / np.sqrt(var + EPS))
        zhat = (z - mu) * inv
        y = ap2(self.gamma) * zhat + beta
        self.cache = (a, wb, zhat, inv, y)
        return binarize(y) if self.sign else y

    def backward(self, dout):
        a, wb, zhat, inv, y = self.cache
        dy = dout * (np.abs(y) <= 1) if self.sign else dout
        grads = {"gamma": (dy * zhat).sum(0), "beta": dy.sum(0)}
        dzhat = dy * ap2(self.gamma)
        n = len(a)
        dz = inv / n * (n * dzhat - dzhat.sum(0) - zhat * (dzhat * zhat).sum(0))
        grads["w"] = dz.T @ a * self.in_scale
        return dz @ wb * self.in_scale, grads


def forward(layers, x, train=False):
    for layer in layers:
        x = layer.forward(x, train)
    return x


def shift_bn_layers(rng, n_in):
    sizes = (n_in,) + HIDDEN + (10,)
    return [ShiftBN(rng, a, b, sign=k < len(HIDDEN), in_scale=INPUT.scale if k == 0 else 1.0)
            for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]


def export(layers) -> Model:
    model_layers = []
    for k, layer in enumerate(layers):
        inv = ap2(1 / np.sqrt(layer.run_var + EPS))
        name = f"fc{k}" if layer.sign else "fc_out"
        model_layers += [
            Dense(name, binarize(layer.w), BIPOLAR),
            ShiftBatchNorm(f"bn{k}", on_grid(layer.run_mean), on_grid(layer.beta), np.log2(inv),
                           np.log2(np.where(layer.gamma == 0, 1.0, np.abs(ap2(layer.gamma)))), np.sign(layer.gamma)),
        ]
        if layer.sign:
            model_layers.append(Quantizer(f"act{k}", BIPOLAR))
    return Model("digits_shift_bn", INPUT, model_layers)


def main():
    x_train, x_test, y_train, y_test = load_split()

    def prepare(x):             # the integers the hardware sees: the input quantizer's output (its scale is in layer 0)
        return quantize(x, INPUT.quant, INPUT.scale).astype(np.float64)

    layers = train(prepare(x_train), y_train, lr=1e-3, make_layers=shift_bn_layers)
    scores = forward(layers, prepare(x_test))
    print(f"trained network, shift-based batch norm: test accuracy {np.mean(scores.argmax(1) == y_test):.4f}")
    model = export(layers)
    save_model(model, HERE / "shift_bn.json")
    np.save(HERE / "shift_bn_scores.npy", scores)
    same = np.array_equal(run_reference(model, x_test), scores)
    print(f"exported model reproduces the trained scores exactly: {same}")


if __name__ == "__main__":
    main()
