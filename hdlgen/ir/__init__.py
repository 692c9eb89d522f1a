"""Intermediate representations: the source model (float scales) and the lowered integer model."""

from .lowered import Folding, LoweredModel, MatrixVectorLayer, OutputStage
from .model import BatchNorm, Dense, InputQuantizer, Model, Quantizer
from .quant import BIPOLAR, TERNARY, QuantKind, QuantType

__all__ = ["QuantKind", "QuantType", "BIPOLAR", "TERNARY", "InputQuantizer", "Dense", "BatchNorm", "Quantizer",
           "Model", "Folding", "MatrixVectorLayer", "OutputStage", "LoweredModel"]
