"""Train a block-pruned ternary MLP on scikit-learn's 8x8 digits for hdlgen's zero-skip mode, and its dense twin.

    pip install torch==2.13.0 brevitas onnxoptimizer qonnx
    python examples/pruned_digits/train.py   # writes mlp_dense.onnx, mlp_pruned.onnx here

The test split is brevitas_digits' (``examples/brevitas_digits/test_x.npy``, ``test_y.npy``).

A layer folded by ``(pe, simd)`` multiplies one block of ``pe x simd`` weights a cycle; in zero-skip
mode it spends no cycle on a block whose weights are all zero, so cycles per frame follow the number
of non-zero blocks. Unstructured pruning leaves almost no such block, so this prunes whole blocks of
the folding the hardware will use (``PE`` x ``SIMD``): Deep Compression's magnitude pruning at block
granularity.

The model is ``w2a2`` of ``examples/brevitas_digits`` at width ``HIDDEN``: 8-bit input, ternary
weights (2-bit narrow fixed point), batch norm, 2-bit signed activations, 64 -> HIDDEN -> HIDDEN -> 10.
The recipe:

1. Train it dense for ``EPOCHS`` epochs, as ``brevitas_digits`` trains (seed 0, Adam, lr 0.01); this
   is ``mlp_dense.onnx``, the baseline.
2. For each sparsity in ``SCHEDULE``: rank the blocks of each hidden layer by the L1 norm of their
   float (pre-quantization) weights, zero the smallest until that share of blocks is zero (pruned
   blocks have norm 0, so they stay pruned), and retrain for ``RETRAIN_EPOCHS`` epochs at ``RETRAIN_LR``
   with the pruned weights held at zero. The result is ``mlp_pruned.onnx``.

The output layer (10 rows, not a multiple of ``PE``) stays dense. A float weight of 0 quantizes to 0,
so a pruned block is all zero after ternary quantization; the script checks that on the exported
weights, and that qonnx's executor agrees with PyTorch on the exported files. Training is seeded and
takes well under a minute on a CPU.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import torch
from brevitas.export import export_qonnx
from brevitas.nn import QuantIdentity, QuantLinear
from brevitas.quant import Uint8ActPerTensorFixedPoint

HERE = Path(__file__).resolve().parent
PE, SIMD = 4, 16                          # the folding the hardware will use: a block is PE rows x SIMD columns
HIDDEN = 128
EPOCHS = 40
SCHEDULE = (0.5, 0.7, 0.8, 0.85)          # share of zero blocks in each hidden layer after each round
RETRAIN_EPOCHS = 15
RETRAIN_LR = 0.003


def _brevitas_digits():
    # quantizers and data split of the brevitas_digits fixtures, loaded by path (both scripts are train.py)
    spec = importlib.util.spec_from_file_location("brevitas_digits_train", HERE.parent / "brevitas_digits" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


brevitas_digits = _brevitas_digits()


class MLP(torch.nn.Module):
    """``brevitas_digits``' ``w2a2`` MLP at width ``HIDDEN``."""

    def __init__(self):
        super().__init__()
        self.inp = QuantIdentity(act_quant=Uint8ActPerTensorFixedPoint, return_quant_tensor=True)
        layers = []
        for n_in in (64, HIDDEN):
            layers += [QuantLinear(n_in, HIDDEN, bias=False, weight_quant=brevitas_digits.TernaryWeight),
                       torch.nn.BatchNorm1d(HIDDEN), brevitas_digits.act("int2")]
        self.hidden = torch.nn.Sequential(*layers)
        self.out = QuantLinear(HIDDEN, 10, bias=False, weight_quant=brevitas_digits.TernaryWeight)

    def forward(self, x):
        return self.out(self.hidden(self.inp(x.reshape(x.shape[0], -1))))

    def prunable(self) -> list[QuantLinear]:
        return [m for m in self.hidden if isinstance(m, QuantLinear)]


def blocks(weight: np.ndarray) -> np.ndarray:
    """``(MH, MW)`` weights as ``(MH / PE, MW / SIMD, PE * SIMD)``: one row per block of the folding."""
    mh, mw = weight.shape
    return weight.reshape(mh // PE, PE, mw // SIMD, SIMD).transpose(0, 2, 1, 3).reshape(mh // PE, mw // SIMD, -1)


def block_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Mask (1 keeps, 0 prunes) of ``weight``'s shape zeroing the ``sparsity`` share of blocks of least L1 norm."""
    norms = np.abs(blocks(weight.detach().numpy())).sum(-1)
    keep = np.ones(norms.size, dtype=np.float32)
    keep[np.argsort(norms, axis=None, kind="stable")[:round(sparsity * norms.size)]] = 0
    keep = keep.reshape(norms.shape).repeat(PE, 0).repeat(SIMD, 1)
    return torch.from_numpy(keep)


def fit(model: MLP, x, y, *, epochs: int, lr: float, masks: dict[QuantLinear, torch.Tensor]) -> MLP:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(xt)).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
            with torch.no_grad():         # Adam's momentum moves a pruned weight again: hold it at zero
                for layer, mask in masks.items():
                    layer.weight.mul_(mask)
    return model.eval()


def accuracy(model: MLP, x, y) -> float:
    with torch.no_grad():
        return float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


def export(model: MLP, x, path: Path):
    export_qonnx(model, torch.from_numpy(x[:1]), str(path))
    path.with_name(path.name + ".data").unlink(missing_ok=True)   # Brevitas re-saves inline: torch's data file is stale


def exported_weights(path: Path) -> list[np.ndarray]:
    """The quantized weights of each Gemm or MatMul in ``path``, as ``(MH, MW)``, read by qonnx after cleanup."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.util.cleanup import cleanup_model

    model = cleanup_model(ModelWrapper(str(path))).transform(FoldConstants(exclude_op_types=[]))
    weights = []
    for node in model.graph.node:
        if node.op_type in ("Gemm", "MatMul"):      # Gemm's B is (MH, MW) when transposed, MatMul's (MW, MH)
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            weight = model.get_initializer(node.input[1])
            weights.append(weight if attrs.get("transB", 0) else weight.T)
    return weights


def qonnx_argmax(path: Path, x: np.ndarray) -> np.ndarray:
    """Classes qonnx's executor computes for ``x`` after qonnx's cleanup, one image at a time."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model

    model = cleanup_model(ModelWrapper(str(path)))
    inp, out = model.graph.input[0].name, model.graph.output[0].name
    return np.array([execute_onnx(model, {inp: image[None]})[out].argmax() for image in x])


def report(name: str, model: MLP, x, y, path: Path, masks: dict[QuantLinear, torch.Tensor]):
    """Print accuracy and, per hidden layer, zero weights and zero blocks; check the exported file against
    PyTorch: quantized weights, pruned blocks all zero, and qonnx's classes on a few images."""
    print(f"{name}: test accuracy {accuracy(model, x, y):.4f} (PyTorch) -> {path.name}")
    onnx_weights = exported_weights(path)
    for i, layer in enumerate(model.prunable()):
        weight = layer.quant_weight().value.detach().numpy()
        if not np.array_equal(weight, onnx_weights[i]):
            raise RuntimeError(f"{path.name}: layer {i}'s exported weights differ from Brevitas' quantized weights")
        zero_blocks = ~blocks(weight).any(-1)
        line = (f"  layer {i} ({weight.shape[0]} x {weight.shape[1]}): {np.mean(weight == 0):6.1%} zero weights, "
                f"{zero_blocks.mean():6.1%} zero {PE} x {SIMD} blocks ({zero_blocks.sum()} of {zero_blocks.size})")
        if layer in masks:
            pruned = ~blocks(masks[layer].numpy()).any(-1)
            if not zero_blocks[pruned].all():
                raise RuntimeError(f"{path.name}: layer {i} has a pruned block that is not all zero after quantization")
            line += f", {pruned.mean():.1%} pruned"
        print(line)
    with torch.no_grad():
        expected = model(torch.from_numpy(x[:8])).argmax(1).numpy()
    if not np.array_equal(qonnx_argmax(path, x[:8]), expected):
        raise RuntimeError(f"{path.name}: qonnx's executor and PyTorch classify the first test images differently")


def main():
    x_train, x_test, y_train, y_test = brevitas_digits.data()
    torch.manual_seed(0)
    model = fit(MLP(), x_train, y_train, epochs=EPOCHS, lr=0.01, masks={})
    export(model, x_test, HERE / "mlp_dense.onnx")
    report("mlp_dense", model, x_test, y_test, HERE / "mlp_dense.onnx", {})

    masks = {}
    for sparsity in SCHEDULE:
        with torch.no_grad():
            for layer in model.prunable():
                masks[layer] = block_mask(layer.weight, sparsity)
                layer.weight.mul_(masks[layer])
        fit(model, x_train, y_train, epochs=RETRAIN_EPOCHS, lr=RETRAIN_LR, masks=masks)
        print(f"  {sparsity:.0%} of blocks pruned: test accuracy {accuracy(model, x_test, y_test):.4f}")
    export(model, x_test, HERE / "mlp_pruned.onnx")
    report("mlp_pruned", model, x_test, y_test, HERE / "mlp_pruned.onnx", masks)


if __name__ == "__main__":
    main()
