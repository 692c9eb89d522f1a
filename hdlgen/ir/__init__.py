"""Intermediate representations: the source model (float scales) and the lowered integer model."""

from .lowered import Folding, LoweredModel, MatrixVectorLayer, OutputStage
from .model import (AvgPool2d, BatchNorm, Clip, Conv2d, Dense, Elementwise, Flatten, GlobalAvgPool, InputQuantizer, MaxPool2d, Model, MultiThreshold,
                    Quantizer, Requantize, ShiftBatchNorm, Trunc)
from .quant import BIPOLAR, TERNARY, QuantKind, QuantType

__all__ = ["QuantKind", "QuantType", "BIPOLAR", "TERNARY", "InputQuantizer", "Dense", "Conv2d", "BatchNorm",
           "Elementwise", "Flatten", "AvgPool2d", "GlobalAvgPool", "Clip", "Quantizer", "MultiThreshold", "Trunc", "MaxPool2d",
           "Requantize", "ShiftBatchNorm", "Model", "Folding", "MatrixVectorLayer", "OutputStage", "LoweredModel"]
