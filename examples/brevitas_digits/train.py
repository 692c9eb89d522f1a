"""Train tiny quantized MLPs on scikit-learn's 8x8 digits with Brevitas and export them as QONNX.

    pip install torch==2.13.0 brevitas onnxoptimizer
    python examples/brevitas_digits/train.py [NAME ...]   # writes the .onnx files, test_x.npy, test_y.npy here

These are the QONNX fixtures hdlgen's tests build and compare with qonnx's executor; the exported
files are committed, so the tests need neither torch nor Brevitas. Each model takes the digit image
as (batch, 1, 8, 8) with pixels scaled to [0, 1] and quantized to 8 bits, and returns 10 class scores:

* ``w1a1``: binary weights, binary activations, batch norm (the BNN-PYNQ recipe).
* ``w1a2``: binary weights, 2-bit unsigned ReLU activations.
* ``w2a2``: ternary weights (2-bit narrow signed), 2-bit signed activations.
* ``cnn_w1a1``, ``cnn_w2a2``: the same quantizers in a small CNN: three 3 x 3 convolutions (the
  first two zero-padded), batch norm, max pooling, a dense classifier.
* ``mlp_w3a3``: 3-bit weights, 3-bit unsigned ReLU activations, 8-bit input (the precisions of
  finn-examples' keyword-spotting MLP).
* ``cnn_w4a4``, ``cnn_w8a8``: the CNN with 4-bit weights and 4-bit unsigned activations, and with
  8-bit weights and 8-bit unsigned activations (INT8).

Integer weights use Brevitas' fixed-point weight quantizer (``Int8WeightPerTensorFixedPoint`` at the
bit width, narrow range as Brevitas defaults to).

Quantizers use Brevitas' constant and fixed-point (power-of-two) scales, as BNN-PYNQ's models do: a
float32 executor then computes every dot product exactly, so its outputs and the hardware's can be
compared bit for bit. ``w2a2`` keeps its tensors in ``w2a2.onnx.data`` beside it, as torch's own
exporter writes them. The data ships inside scikit-learn, so nothing is downloaded. Training is
seeded and takes a few seconds per model on a CPU.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from brevitas.export import export_qonnx
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import (Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, SignedBinaryActPerTensorConst,
                            SignedBinaryWeightPerTensorConst, Uint8ActPerTensorFixedPoint)
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
HIDDEN = 64
EPOCHS = 40


class BinaryWeight(SignedBinaryWeightPerTensorConst):
    scaling_const = 1.0


class BinaryAct(SignedBinaryActPerTensorConst):
    scaling_const = 1.0


class TernaryWeight(Int8WeightPerTensorFixedPoint):
    bit_width = 2
    narrow_range = True


class Int2Act(Int8ActPerTensorFixedPoint):
    bit_width = 2


def int_weight(bits: int):
    return type(f"Int{bits}Weight", (Int8WeightPerTensorFixedPoint,), {"bit_width": bits})


def uint_act(bits: int):
    return type(f"Uint{bits}Act", (Uint8ActPerTensorFixedPoint,), {"bit_width": bits})


def act(kind: str):
    if kind == "binary":
        return QuantIdentity(act_quant=BinaryAct, return_quant_tensor=True)
    if kind.startswith("uint"):
        return QuantReLU(act_quant=uint_act(int(kind[4:])), return_quant_tensor=True)
    return QuantIdentity(act_quant=Int2Act, return_quant_tensor=True)


class MLP(torch.nn.Module):
    def __init__(self, weight_quant, act_kind: str):
        super().__init__()
        self.inp = QuantIdentity(act_quant=Uint8ActPerTensorFixedPoint, return_quant_tensor=True)
        layers = []
        for n_in in (64, HIDDEN):
            layers += [QuantLinear(n_in, HIDDEN, bias=False, weight_quant=weight_quant),
                       torch.nn.BatchNorm1d(HIDDEN), act(act_kind)]
        self.hidden = torch.nn.Sequential(*layers)
        self.out = QuantLinear(HIDDEN, 10, bias=False, weight_quant=weight_quant)

    def forward(self, x):
        return self.out(self.hidden(self.inp(x.reshape(x.shape[0], -1))))


EXTERNAL_DATA = {"w2a2"}     # saved with its tensors in w2a2.onnx.data, the layout torch's exporter writes
class CNN(torch.nn.Module):
    """8x8 image -> conv 3x3 (zero padding 1) 16 -> conv 3x3 (padding 1) 16 -> max pool 2 -> conv 3x3 32
    -> max pool 2 -> dense 10 (the second convolution pads quantized activations with zeros)."""

    def __init__(self, weight_quant, act_kind: str):
        super().__init__()
        self.inp = QuantIdentity(act_quant=Uint8ActPerTensorFixedPoint, return_quant_tensor=True)
        blocks = []
        for n_in, n_out, pad, pool in ((1, 16, 1, False), (16, 16, 1, True), (16, 32, 0, True)):
            blocks += [QuantConv2d(n_in, n_out, 3, padding=pad, bias=False, weight_quant=weight_quant),
                       torch.nn.BatchNorm2d(n_out), act(act_kind)]
            if pool:
                blocks.append(torch.nn.MaxPool2d(2))
        self.features = torch.nn.Sequential(*blocks)
        self.out = QuantLinear(32, 10, bias=False, weight_quant=weight_quant)

    def forward(self, x):
        return self.out(torch.flatten(self.features(self.inp(x)), 1))


MODELS = {"w1a1": (MLP, BinaryWeight, "binary"), "w1a2": (MLP, BinaryWeight, "uint2"),
          "w2a2": (MLP, TernaryWeight, "int2"), "cnn_w1a1": (CNN, BinaryWeight, "binary"),
          "cnn_w2a2": (CNN, TernaryWeight, "int2"), "mlp_w3a3": (MLP, int_weight(3), "uint3"),
          "cnn_w4a4": (CNN, int_weight(4), "uint4"), "cnn_w8a8": (CNN, int_weight(8), "uint8")}


def data():
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    return train_test_split(x, digits.target, test_size=450, random_state=0, stratify=digits.target)


def train(name: str, x_train, y_train) -> torch.nn.Module:
    torch.manual_seed(0)
    cls, weight_quant, act_kind = MODELS[name]
    model = cls(weight_quant, act_kind)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train).long()
    for _ in range(EPOCHS):
        model.train()
        for idx in torch.randperm(len(xt)).split(64):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    return model.eval()


def main():
    x_train, x_test, y_train, y_test = data()
    np.save(HERE / "test_x.npy", x_test)
    np.save(HERE / "test_y.npy", y_test.astype(np.int64))
    names = sys.argv[1:] or list(MODELS)
    unknown = set(names) - set(MODELS)
    if unknown:
        sys.exit(f"unknown model(s) {', '.join(sorted(unknown))}; choose from {', '.join(MODELS)}")
    for name in names:
        model = train(name, x_train, y_train)
        with torch.no_grad():
            accuracy = (model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean()
        path = HERE / f"{name}.onnx"
        export_qonnx(model, torch.from_numpy(x_test[:1]), str(path))
        proto = onnx.load(str(path))            # Brevitas re-saves the graph inline: drop torch's stale data file
        path.with_name(path.name + ".data").unlink(missing_ok=True)
        if name in EXTERNAL_DATA:
            onnx.save_model(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                            location=path.name + ".data", size_threshold=0)
        print(f"{name}: test accuracy {accuracy:.4f} (PyTorch) -> {path.name}")


if __name__ == "__main__":
    main()
