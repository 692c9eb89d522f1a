"""numpy golden models: the source model in floats, and the lowered model in integers."""

from .layers import matrix_vector, packed_sums, row_correction, thresholds, run_lowered, to_model_units, quantize_input_codes, predict
from .reference import run_reference

__all__ = ["matrix_vector", "packed_sums", "row_correction", "thresholds", "run_lowered", "to_model_units", "quantize_input_codes",
           "predict", "run_reference"]
