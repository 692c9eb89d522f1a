"""Amaranth hardware generators."""

from .adder_tree import AdderTree
from .argmax import ArgmaxUnit
from .dot_array import DotProductArray
from .global_pool import GlobalSum
from .mvu import MatrixVectorUnit
from .padding import Padding
from .pooling import MaxPool
from .sliding_window import SlidingWindow
from .sparse_mvu import SparseMatrixVectorUnit
from .stream_fifo import StreamFifo
from .threshold_search import ThresholdSearch
from .thresholds import Thresholding, threshold_latency, threshold_unit
from .vvu import VectorVectorUnit
from .width_converter import WidthConverter
from .window_max import WindowMax

__all__ = ["AdderTree", "ArgmaxUnit", "DotProductArray", "GlobalSum", "MatrixVectorUnit", "Padding", "MaxPool", "SlidingWindow", "Thresholding",
           "SparseMatrixVectorUnit", "StreamFifo", "ThresholdSearch", "threshold_latency", "threshold_unit",
           "VectorVectorUnit", "WidthConverter", "WindowMax"]
