"""Train a small float CNN on scikit-learn's 8x8 digits and export it as a float ONNX model, the
starting point of hdlgen's INT8 flow (docs/int8.md):

    pip install torch==2.13.0
    python examples/float_digits/train.py        # writes cnn.onnx, calibration.npy, test_x.npy, test_y.npy here

    hdlgen quantize examples/float_digits/cnn.onnx --calibration examples/float_digits/calibration.npy \\
        --method entropy -o cnn_int8.onnx
    hdlgen build cnn_int8.onnx -o build/cnn_int8
    hdlgen sim build/cnn_int8 --inputs examples/float_digits/test_x.npy --labels examples/float_digits/test_y.npy

The network is trained without any quantization: two 3 x 3 convolutions with batch norm, ReLU and
2 x 2 max pooling, then two dense layers (64 -> 32 -> 10). The input is the digit image as
(batch, 1, 8, 8) with pixels scaled to [0, 1]; the output is 10 class scores. ``calibration.npy``
holds 256 training images for the range calibration; the test split (450 images) is the one the
other digits examples use. The files are committed, so hdlgen's tests need no torch. Training is
seeded and takes a few seconds on a CPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

HERE = Path(__file__).resolve().parent
EPOCHS = 40
CALIBRATION = 256


def data():
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    return train_test_split(x, digits.target, test_size=450, random_state=0, stratify=digits.target)


def network() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int = EPOCHS, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.tensor(x), torch.tensor(y)
    for _ in range(epochs):
        order = torch.randperm(len(xt))
        model.train()
        for i in range(0, len(xt), 64):
            batch = order[i:i + 64]
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xt[batch]), yt[batch]).backward()
            optimizer.step()
    return model.eval()


def export(model: nn.Module, path: Path, sample: np.ndarray) -> None:
    torch.onnx.export(model, torch.tensor(sample[:1]), str(path), input_names=["x"], output_names=["scores"],
                      dynamic_axes={"x": {0: "batch"}, "scores": {0: "batch"}}, opset_version=13, dynamo=False)


def main() -> None:
    x_train, x_test, y_train, y_test = data()
    torch.manual_seed(0)
    model = train(network(), x_train, y_train)
    with torch.no_grad():
        accuracy = float((model(torch.tensor(x_test)).argmax(1).numpy() == y_test).mean())
    print(f"float CNN: test accuracy {accuracy:.3f}")
    export(model, HERE / "cnn.onnx", x_test)
    np.save(HERE / "calibration.npy", x_train[:CALIBRATION])
    np.save(HERE / "test_x.npy", x_test)
    np.save(HERE / "test_y.npy", y_test.astype(np.int64))


if __name__ == "__main__":
    main()
