"""The lowered model: only what hardware needs, all integers.

Each ``MatrixVectorLayer`` multiplies a stream of input *codes* ``u`` (see ``quant``) by integer
weights ``w``. Hardware computes an unsigned accumulator ``P`` per output channel, each weight
adding its magnitude times the code, or times the inverted code ``~u = u_max - u`` where the weight
is negative:

    ``P = sum(|w[i]| * (u[i] if w[i] > 0 else ~u[i]))``, where ``u_max`` is 1 for a bipolar input

so with bipolar weights and inputs ``P`` is an XNOR-popcount, with ternary weights zeros are
skipped, and ``P`` is never negative. The signed dot product of values is
``acc_gain * P + acc_offset[row]``. Thresholds are kept in the ``P`` domain: the output code is
``sum_j [P >= thresholds[row, j]]``. Rows of weights whose activation falls with the dot product
(negative batch-norm gamma) are stored negated, which is why a layer's weights are bounded by their
type's ``magnitude`` on both sides (an int8 weight of -128 negates to 128).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..errors import HdlgenError
from .model import HostOp, InputQuantizer
from .quant import QuantType

__all__ = ["Folding", "RequantUnit", "MatrixVectorLayer", "PadStage", "WindowStage", "PoolStage", "WindowMaxStage", "GlobalPoolStage", "Stage", "OutputStage", "ClassOutput",
           "LoweredModel"]


@dataclass(frozen=True)
class Folding:
    """How a matrix-vector layer is folded in time: ``pe`` output rows and ``simd`` inputs per cycle;
    ``zero_skip``: the unit spends no cycle on an all-zero ``pe x simd`` block of weights
    (``cores.sparse_mvu``, chosen by ``transforms.zero_skip``); ``fifo_depth``: the depth of the
    FIFO in front of the layer's padding stage, in place of the cycle model's (``assemble.dataflow
    .edge_fifos``), never below it."""

    pe: int
    simd: int
    zero_skip: bool = False
    fifo_depth: int | None = None

    def __post_init__(self):
        for what in ("pe", "simd"):
            value = getattr(self, what)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise HdlgenError(f"folding {what} must be a positive integer, not {value!r}")
        if not isinstance(self.zero_skip, bool):
            raise HdlgenError(f"folding zero_skip must be true or false, not {self.zero_skip!r}")
        if self.fifo_depth is not None and (not isinstance(self.fifo_depth, int) or isinstance(self.fifo_depth, bool)
                                            or self.fifo_depth < 1):
            raise HdlgenError(f"folding fifo_depth must be a positive integer, not {self.fifo_depth!r}")


@dataclass(frozen=True, eq=False)
class RequantUnit:
    """A requantization unit that replaces a layer's threshold table (``cores/requant.py``); the
    thresholds stay as the exact reference. ``kind`` is ``shift`` (``offset``, ``shift`` per row,
    ``half_even``) or ``fixed`` (gemmlowp: ``offset``, ``m0``, ``shift`` per row, output values
    ``lo .. hi``). ``differing`` counts, over all rows, the (accumulator, level) pairs where the
    unit's code differs from the thresholds': 0 for an exact unit.

    ``scores`` ends a model whose last layer has no quantizer: it emits the model's outputs in fixed
    point, ``Y = sign * (P << shift) + offset`` per row, a signed ``width``-bit integer worth
    ``Y * 2^-fraction``, where the output map is exactly that (power-of-two scales, shift-based
    batch norm)."""

    kind: str
    offset: np.ndarray
    shift: np.ndarray
    half_even: bool = False
    m0: np.ndarray | None = None
    lo: int = 0
    hi: int = 0
    differing: int = 0
    sign: np.ndarray | None = None
    fraction: int = 0
    width: int = 0

    KINDS = ("shift", "fixed", "scores")

    def __post_init__(self):
        if self.kind not in self.KINDS:
            raise HdlgenError(f"requantization unit {self.kind!r} is not one of {', '.join(self.KINDS)}")
        extra = {"fixed": ("m0",), "scores": ("sign",)}.get(self.kind, ())
        for name in ("offset", "shift") + extra:
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.int64).reshape(-1))


@dataclass(frozen=True, eq=False)
class MatrixVectorLayer:
    name: str
    in_type: QuantType
    weight_type: QuantType
    weights: np.ndarray                 # (MH, MW) integers, |w| <= weight_type.magnitude
    thresholds: np.ndarray | None       # (MH, levels - 1), P domain; None: emit P itself
    out_type: QuantType | None
    spatial: tuple[int, ...] = ()       # (OH, OW) for a convolution: one MW-vector per output pixel
    requant: RequantUnit | None = None  # a unit in place of the threshold table

    def __post_init__(self):
        weights = np.asarray(self.weights, dtype=np.int64)
        if weights.ndim != 2:
            raise HdlgenError(f"layer {self.name!r}: lowered weights must be a matrix")
        wt, magnitude = self.weight_type, np.abs(weights)
        if np.any(magnitude > wt.magnitude) or wt.is_bipolar and not np.all(weights) \
                or wt.is_pow2 and not wt.contains(magnitude):
            raise HdlgenError(f"layer {self.name!r}: lowered weights must be {self.weight_type} values or their negations")
        object.__setattr__(self, "weights", weights)
        if (self.thresholds is None) != (self.out_type is None):
            raise HdlgenError(f"layer {self.name!r}: thresholds and out_type go together")
        if self.thresholds is not None:
            thresholds = np.asarray(self.thresholds, dtype=np.int64)
            if thresholds.shape != (self.mh, self.out_type.levels - 1):
                raise HdlgenError(f"layer {self.name!r}: thresholds have shape {thresholds.shape}, "
                                  f"expected ({self.mh}, {self.out_type.levels - 1})")
            object.__setattr__(self, "thresholds", thresholds)

    @property
    def mw(self) -> int:
        return self.weights.shape[1]

    @cached_property
    def depthwise(self) -> bool:
        """Whether each row takes only its own channel at each window position: a convolution whose
        ``MW = taps * MH`` columns are in (tap, channel) order and whose row ``r`` is zero outside
        channel ``r`` (a depthwise convolution with a depth multiplier of 1, or average pooling)."""
        mh, mw = self.weights.shape
        if not self.spatial or mw % mh:
            return False
        off = self.weights.reshape(mh, mw // mh, mh).copy()
        rows = np.arange(mh)
        off[rows, :, rows] = 0
        return not off.any()

    @property
    def vectors(self) -> int:
        """Input vectors per frame: 1 for a dense layer, OH * OW for a convolution."""
        return int(np.prod(self.spatial)) if self.spatial else 1

    @property
    def out_shape(self) -> tuple[int, ...]:
        return tuple(self.spatial) + (self.mh,)

    @property
    def mh(self) -> int:
        return self.weights.shape[0]

    @property
    def in_code_max(self) -> int:
        """The all-ones code of the input width, used for ``~u``."""
        return (1 << self.in_type.bits) - 1

    @property
    def code_max(self) -> int:
        """``u_max``: the largest input code, 1 for a bipolar input."""
        return 1 if self.in_type.is_bipolar else self.in_code_max

    @property
    def term_max(self) -> int:
        """Largest term one input adds to ``P``."""
        return self.code_max * self.weight_type.magnitude

    @property
    def acc_max(self) -> int:
        """Worst-case bound of ``P`` whatever the weights: the accumulator's width comes from it."""
        return self.mw * self.term_max

    @property
    def acc_gain(self) -> int:
        return 2 if self.in_type.is_bipolar else 1

    @property
    def acc_offset(self) -> np.ndarray:
        w = self.weights
        if self.in_type.is_bipolar:
            return -np.abs(w).sum(axis=1)
        return np.minimum(w, 0).sum(axis=1) * self.in_code_max + self.in_type.lo * w.sum(axis=1)

    @property
    def row_p_max(self) -> np.ndarray:
        """Largest accumulator each row can reach."""
        return np.abs(self.weights).sum(axis=1) * self.code_max

    @property
    def p_max(self) -> int:
        """Largest accumulator any row can reach (at least 1, so widths stay positive)."""
        return max(1, int(self.row_p_max.max()))

    def check_folding(self, folding: Folding) -> None:
        if self.mh % folding.pe:
            raise HdlgenError(f"layer {self.name!r}: pe={folding.pe} does not divide its {self.mh} output rows; "
                              f"choose a divisor of {self.mh}")
        if self.mw % folding.simd:
            raise HdlgenError(f"layer {self.name!r}: simd={folding.simd} does not divide its {self.mw} inputs; "
                              f"choose a divisor of {self.mw}")


@dataclass(frozen=True, eq=False)
class PadStage:
    """Adds ``padding`` (top, left, bottom, right) pixels of value ``pad_code`` around an (H, W, C) image.

    A bipolar image padded with zeros (what ONNX's Conv does) has no code for 0, so the stage widens
    it to ternary codes (``out_type``): -1 -> 0, +1 -> 2, padding -> 1. Other types pad with the code
    of 0 (or of the value a Pad op asks for) and pass codes through.
    """

    name: str
    in_shape: tuple[int, int, int]
    padding: tuple[int, int, int, int]
    in_type: QuantType
    out_type: QuantType
    pad_code: int

    @property
    def out_shape(self) -> tuple[int, int, int]:
        h, w, c = self.in_shape
        top, left, bottom, right = self.padding
        return h + top + bottom, w + left + right, c

    @property
    def widens(self) -> bool:
        return self.in_type != self.out_type

    def convert(self, codes: np.ndarray) -> np.ndarray:
        """Input codes to output codes."""
        return 2 * np.asarray(codes) if self.widens else np.asarray(codes)


@dataclass(frozen=True, eq=False)
class WindowStage:
    """Sliding window over an (H, W, C) image: for each output pixel in raster order, the
    ``kh * kw * C`` codes of its window in (ky, kx, c) order (the convolution's weight columns)."""

    name: str
    in_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    in_type: QuantType

    @property
    def span(self) -> tuple[int, int]:
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))

    @property
    def out_spatial(self) -> tuple[int, int]:
        h, w, _ = self.in_shape
        return tuple((size - span) // s + 1 for size, span, s in zip((h, w), self.span, self.stride))

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return self.out_spatial + (self.kernel[0] * self.kernel[1] * self.in_shape[2],)

    @property
    def out_type(self) -> QuantType:
        return self.in_type


@dataclass(frozen=True, eq=False)
class PoolStage:
    """Max pooling of codes over ``kernel`` windows with stride equal to the kernel (codes order like
    values for every quant type, so the max of codes is the code of the max); trailing rows and
    columns that fill no window are dropped, as ONNX's floor mode does.

    ``minimum`` names, per channel, where the window's minimum is taken instead: a source model's
    max pool on real values moved after its activation, for channels whose activation falls as the
    value rises (batch-norm gamma < 0), where ``act(max(x)) = min(act(x))``. Empty means all maxima.
    """

    name: str
    in_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    in_type: QuantType
    minimum: tuple[bool, ...] = ()

    def __post_init__(self):
        minimum = tuple(bool(v) for v in self.minimum)
        if minimum and len(minimum) != self.in_shape[2]:
            raise HdlgenError(f"pool {self.name!r}: minimum has {len(minimum)} entries for {self.in_shape[2]} channels")
        object.__setattr__(self, "minimum", minimum if any(minimum) else ())

    @property
    def out_shape(self) -> tuple[int, int, int]:
        h, w, c = self.in_shape
        return h // self.kernel[0], w // self.kernel[1], c

    @property
    def out_type(self) -> QuantType:
        return self.in_type


@dataclass(frozen=True, eq=False)
class WindowMaxStage:
    """Max pooling after a sliding window (``WindowStage``): for each output pixel, the window's
    ``taps * C`` codes in (tap, c) order in, the ``C`` maxima out. This is max pooling where windows
    overlap (stride below the kernel) or are padded: the window stage holds the rows, and a padding
    stage before it pads with code 0, the lowest value of every type, which never wins."""

    name: str
    in_shape: tuple[int, int, int]      # (OH, OW, taps * C): the window stage's output
    taps: int
    in_type: QuantType

    def __post_init__(self):
        if self.taps < 1 or self.in_shape[2] % self.taps:
            raise HdlgenError(f"pool {self.name!r}: {self.taps} taps do not divide {self.in_shape[2]} window values")

    @property
    def channels(self) -> int:
        return self.in_shape[2] // self.taps

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return self.in_shape[0], self.in_shape[1], self.channels

    @property
    def out_type(self) -> QuantType:
        return self.in_type


@dataclass(frozen=True, eq=False)
class GlobalPoolStage:
    """Global average pooling with its activation: per channel the sum ``S`` of the (H, W) codes, then
    ``code = sum_j [S >= thresholds[c, j]]``. The thresholds fold the mean (``sum / (H * W)``), the
    elementwise layers after it and the quantizer, found by bisection like a layer's."""

    name: str
    in_shape: tuple[int, int, int]
    in_type: QuantType
    thresholds: np.ndarray          # (C, levels - 1), in the S domain
    out_type: QuantType

    @property
    def pixels(self) -> int:
        return self.in_shape[0] * self.in_shape[1]

    @property
    def acc_max(self) -> int:
        return self.pixels * self.in_type.code_max

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return 1, 1, self.in_shape[2]

    def value_sums(self, sums: np.ndarray) -> np.ndarray:
        """Sums of codes to sums of values."""
        if self.in_type.is_bipolar:
            return 2 * sums - self.pixels
        return sums + self.pixels * self.in_type.lo


Stage = MatrixVectorLayer | PadStage | WindowStage | PoolStage | WindowMaxStage | GlobalPoolStage


@dataclass(frozen=True, eq=False)
class OutputStage:
    """Maps the last layer's hardware output back to the model's units.

    With ``quant`` set, the hardware emits codes and ``y = decode(code) * scale``. Otherwise it emits
    accumulators ``P`` and ``y = tail(dense_affine(acc_gain * P + acc_offset, multiplier, bias))``,
    ``tail`` being the source model's elementwise layers after its last dense layer.
    """

    quant: QuantType | None = None
    scale: float = 1.0
    multiplier: np.ndarray | None = None
    bias: np.ndarray | None = None
    tail: tuple = ()


@dataclass(frozen=True, eq=False)
class ClassOutput:
    """An argmax after the last stage: the hardware emits one class index per frame.

    Each output word ``w`` of feature ``f`` gets an unsigned key that orders exactly as the model's
    output ``y_f(w)`` does, ties included, and the class is the first feature with the largest key
    (numpy's argmax). ``key`` says how:

    * ``direct``: the word itself, when every feature maps words to outputs by one strictly monotone
      function. ``signed`` words (fixed-point scores) have their sign bit flipped, ``invert`` words
      (a falling function) all their bits, so that unsigned comparison orders them.
    * ``rank``: ``table[f, w]``, the rank of ``y_f(w)`` among every output value the features can
      reach (equal values, equal ranks).
    """

    features: int
    word_bits: int
    key: str                       # direct or rank
    key_bits: int
    signed: bool = False
    invert: bool = False
    table: np.ndarray | None = None    # (features, 2 ** word_bits) ranks, for key == "rank"

    @property
    def index_bits(self) -> int:
        return max(1, (self.features - 1).bit_length())

    @property
    def table_bits(self) -> int:
        return 0 if self.table is None else int(self.table.size) * self.key_bits


@dataclass(frozen=True, eq=False)
class LoweredModel:
    """The pipeline's stages in order (``layers``), the input quantizer and the output stage.

    ``arithmetic`` is the source model's float type, used for the input quantizer and the output stage.
    Images stream with channels innermost (H, W, C); a dense layer after an image takes it in that
    order (its weight columns are permuted from ONNX's C, H, W order when lowering).
    """

    name: str
    input: InputQuantizer
    layers: tuple[Stage, ...]
    output: OutputStage
    arithmetic: str = "float64"
    host: HostOp | None = None          # the source model's final Softmax/LogSoftmax/ArgMax, run on the host
    classes: ClassOutput | None = None  # an argmax in hardware after the last stage

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))

    @property
    def dtype(self):
        return np.dtype(self.arithmetic)

    def layer(self, name: str) -> MatrixVectorLayer:
        for layer in self.mvus:
            if layer.name == name:
                return layer
        raise HdlgenError(f"no layer named {name!r}; the layers are {', '.join(l.name for l in self.mvus)}")

    @property
    def mvus(self) -> tuple[MatrixVectorLayer, ...]:
        """The matrix-vector layers: the stages that take a folding."""
        return tuple(stage for stage in self.layers if isinstance(stage, MatrixVectorLayer))

    @property
    def in_shape(self) -> tuple[int, ...]:
        """The input stream's shape: (H, W, C) for images (channels innermost), else (features,)."""
        shape = self.input.shape
        return (shape[1], shape[2], shape[0]) if len(shape) == 3 else shape

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.layers[-1].out_shape

    @property
    def out_features(self) -> int:
        return int(np.prod(self.out_shape))
