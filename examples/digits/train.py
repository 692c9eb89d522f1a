"""Train the bundled example: a binarized MLP on scikit-learn's 8x8 digits, exported as a native model.

    python examples/digits/train.py            # writes model.json, model.npz, test_x.npy, test_y.npy here

The network is 64 inputs (pixels 0..16, quantized to 4 bits) -> 64 -> 64 -> 10, bipolar weights
everywhere, batch norm and sign activations on the hidden layers, and an output layer whose
integer dot products are scaled per class. Training uses latent float weights and the
straight-through estimator (Courbariaux et al. 2016), in plain numpy; it takes a few seconds.
The data ships inside scikit-learn, so nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from hdlgen.golden import run_reference
from hdlgen.frontend import save_model
from hdlgen.ir import BIPOLAR, BatchNorm, Dense, InputQuantizer, Model, QuantType, Quantizer
from hdlgen.ir.semantics import quantize

HERE = Path(__file__).resolve().parent
HIDDEN = (64, 64)
EPS = 1e-4
INPUT = InputQuantizer(64, QuantType.uint(4), scale=16 / 15)


def binarize(w):
    return np.where(w >= 0, 1.0, -1.0)


class Hidden:
    def __init__(self, rng, n_in, n_out):
        self.w = rng.uniform(-1, 1, size=(n_out, n_in)) * np.sqrt(3 / n_in)
        self.gamma, self.beta = np.ones(n_out), np.zeros(n_out)
        self.run_mean, self.run_var = np.zeros(n_out), np.ones(n_out)

    def forward(self, a, train):
        wb = binarize(self.w)
        z = a @ wb.T
        if train:
            mu, var = z.mean(0), z.var(0)
            self.run_mean = 0.9 * self.run_mean + 0.1 * mu
            self.run_var = 0.9 * self.run_var + 0.1 * var
        else:
            mu, var = self.run_mean, self.run_var
        inv = 1 / np.sqrt(var + EPS)
        zhat = (z - mu) * inv
        y = self.gamma * zhat + self.beta
        self.cache = (a, wb, zhat, inv, y)
        return binarize(y)

    def backward(self, da):
        a, wb, zhat, inv, y = self.cache
        dy = da * (np.abs(y) <= 1)
        grads = {"gamma": (dy * zhat).sum(0), "beta": dy.sum(0)}
        dzhat = dy * self.gamma
        n = len(a)
        dz = inv / n * (n * dzhat - dzhat.sum(0) - zhat * (dzhat * zhat).sum(0))
        grads["w"] = dz.T @ a
        return dz @ wb, grads


class Output:
    def __init__(self, rng, n_in, n_out):
        self.w = rng.uniform(-1, 1, size=(n_out, n_in)) * np.sqrt(3 / n_in)
        self.log_scale, self.bias = np.full(n_out, np.log(1 / n_in)), np.zeros(n_out)

    def forward(self, a, train):
        wb = binarize(self.w)
        self.cache = (a, wb, a @ wb.T)
        return self.cache[2] * np.exp(self.log_scale) + self.bias

    def backward(self, dlogits):
        a, wb, dot = self.cache
        scale = np.exp(self.log_scale)
        grads = {"w": (dlogits * scale).T @ a, "log_scale": (dlogits * dot).sum(0) * scale, "bias": dlogits.sum(0)}
        return (dlogits * scale) @ wb, grads


def bnn_layers(rng, n_in):
    sizes = (n_in,) + HIDDEN
    return [Hidden(rng, a, b) for a, b in zip(sizes[:-1], sizes[1:])] + [Output(rng, sizes[-1], 10)]


def train(x, y, *, epochs=120, batch=64, lr=3e-3, seed=0, make_layers=bnn_layers):
    """Adam on the softmax cross-entropy; ``make_layers(rng, n_in)`` gives the network."""
    rng = np.random.default_rng(seed)
    layers = make_layers(rng, x.shape[1])
    moments = {}
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            a = x[idx]
            for layer in layers:
                a = layer.forward(a, train=True)
            p = np.exp(a - a.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            p[np.arange(len(idx)), y[idx]] -= 1
            grad = p / len(idx)
            step += 1
            for k, layer in reversed(list(enumerate(layers))):
                grad, grads = layer.backward(grad)
                for name, g in grads.items():
                    m, v = moments.get((k, name), (0.0, 0.0))
                    m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
                    moments[(k, name)] = (m, v)
                    update = lr * (m / (1 - 0.9 ** step)) / (np.sqrt(v / (1 - 0.999 ** step)) + 1e-8)
                    setattr(layer, name, getattr(layer, name) - update)
                layer.w = np.clip(layer.w, -1, 1)
        if epoch % 20 == 19:
            print(f"epoch {epoch + 1}: train accuracy {accuracy(layers, x, y):.4f}")
    return layers


def accuracy(layers, x, y):
    a = x
    for layer in layers:
        a = layer.forward(a, train=False)
    return float(np.mean(a.argmax(1) == y))


def export(layers) -> Model:
    model_layers = []
    for k, layer in enumerate(layers[:-1]):
        model_layers += [
            Dense(f"fc{k}", binarize(layer.w), BIPOLAR),
            BatchNorm(f"bn{k}", layer.gamma, layer.beta, layer.run_mean, layer.run_var, EPS),
            Quantizer(f"act{k}", BIPOLAR),
        ]
    out = layers[-1]
    model_layers.append(Dense("fc_out", binarize(out.w), BIPOLAR, np.exp(out.log_scale), out.bias))
    return Model("digits_bnn", INPUT, model_layers)


def load_split():
    """scikit-learn's digits, pixels 0..16, split 3:1 (the test split is test_x.npy, test_y.npy)."""
    digits = load_digits()
    return train_test_split(digits.data, digits.target, test_size=0.25, random_state=0, stratify=digits.target)


def main():
    x_train, x_test, y_train, y_test = load_split()
    # the network trains on the values the hardware sees: the input quantizer's output
    def prepare(x):
        return quantize(x, INPUT.quant, INPUT.scale) * INPUT.scale
    layers = train(prepare(x_train), y_train)
    print(f"float-path test accuracy {accuracy(layers, prepare(x_test), y_test):.4f}")
    model = export(layers)
    save_model(model, HERE / "model.json")
    np.save(HERE / "test_x.npy", x_test.astype(np.float32))
    np.save(HERE / "test_y.npy", y_test.astype(np.int64))
    predictions = run_reference(model, x_test).argmax(1)
    print(f"exported model, test accuracy {np.mean(predictions == y_test):.4f} on {len(y_test)} images")


if __name__ == "__main__":
    main()
