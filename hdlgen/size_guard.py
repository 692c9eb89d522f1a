"""The size guard: stops a build that would take too long or too much memory to generate.

Generating Verilog costs time and memory in proportion to two figures, both known before any is
spent: the weight bits (every weight becomes initialised memory) and the parallel lanes (each PE
row times SIMD input is a slice of the datapath, and each threshold a comparator).
``benchmarks/generation_cost.py`` measures it on this project's 2-core machine: 10 Mbit of weights
took 52 s and 1.34 GB, 8,960 lanes 17 s and 0.32 GB, against 0.9 s and 0.21 GB for the digits
model at its default folding. Extrapolated linearly, the defaults (8 Mbit, 65,536 lanes) keep a build within a
couple of minutes and a few gigabytes there; 8 Mbit is also more than the block RAM of any ECP5
or iCE40 part. ``hdlgen build --max-weight-bits / --max-lanes`` (or ``SizeGuard``) move the limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import HdlgenError
from .ir.lowered import Folding, LoweredModel
from .cores.thresholds import threshold_comparators
from .cores.vvu import vector_unit_applies
from .ir.model import Conv2d, Dense, Model

__all__ = ["SizeGuard"]


@dataclass(frozen=True)
class SizeGuard:
    max_weight_bits: int = 1 << 23
    max_lanes: int = 1 << 16
    max_features: int = 1 << 24         # values in one frame's activation at any layer

    def __post_init__(self):
        for name in ("max_weight_bits", "max_lanes", "max_features"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise HdlgenError(f"{name.replace('_', '-')} must be a positive integer, not {value!r}")

    @staticmethod
    def weight_bits(model: Model) -> int:
        return sum(layer.weight.size * layer.weight_quant.bits for layer in model.layers if isinstance(layer, (Dense, Conv2d)))

    def check_model(self, model: Model) -> None:
        """Right after reading: the weights and the activations' sizes."""
        bits = self.weight_bits(model)
        if bits > self.max_weight_bits:
            raise HdlgenError(f"the model holds {bits:,} weight bits, over the size guard of {self.max_weight_bits:,} "
                              f"(--max-weight-bits): generating it would take a long time and many gigabytes; "
                              f"raise --max-weight-bits if this machine has the memory")
        for layer, shape in zip((model.input,) + model.layers, model.shapes()):
            if math.prod(shape) > self.max_features:
                raise HdlgenError(f"layer {layer.name!r} gives {math.prod(shape):,} values per frame ({shape}), over "
                                  f"the size guard of {self.max_features:,}; check its padding, stride and kernel")

    @staticmethod
    def lanes(model: LoweredModel, foldings: dict[str, Folding]) -> int:
        total = 0
        for layer in model.mvus:
            fold = foldings[layer.name]
            comparators = 0 if layer.thresholds is None else threshold_comparators(layer.out_type)
            products = 1 if vector_unit_applies(layer, fold) else fold.simd      # (cores.vvu: pe products)
            total += fold.pe * (products + comparators)
        return total

    def check_folding(self, model: LoweredModel, foldings: dict[str, Folding]) -> None:
        """Before generating Verilog: the parallel lanes the folding asks for."""
        lanes = self.lanes(model, foldings)
        if lanes > self.max_lanes:
            raise HdlgenError(f"the folding asks for {lanes:,} parallel lanes (PE x SIMD, plus threshold comparators), "
                              f"over the size guard of {self.max_lanes:,} (--max-lanes): fold further (smaller pe/simd in "
                              f"a folding file, or a lower --target-fps), or raise --max-lanes")
