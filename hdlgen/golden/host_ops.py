"""A model's final Softmax, LogSoftmax or ArgMax, applied on the host exactly as the executor does.

qonnx's executor runs standard ONNX ops through onnxruntime, one node at a time; so does this, on a
one-node model with the node's own attributes and opset, so ``hdlgen sim`` gives the model's output
bit for bit.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..ir.model import HostOp

__all__ = ["apply_host_op"]


@lru_cache(maxsize=8)
def _session(host: HostOp, features: int):
    import onnxruntime
    from onnx import TensorProto, helper

    out_type = TensorProto.INT64 if host.op == "ArgMax" else TensorProto.FLOAT
    node = helper.make_node(host.op, ["y"], ["out"], **dict(host.attributes))
    graph = helper.make_graph([node], "host", [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, features])],
                              [helper.make_tensor_value_info("out", out_type, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", host.opset)])
    model.ir_version = 8
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def apply_host_op(host: HostOp | None, y: np.ndarray) -> np.ndarray:
    """``host`` on the logits ``y`` (batch, features), float32 in; float32 out (int64 for ArgMax)."""
    if host is None:
        return y
    y = np.ascontiguousarray(y, dtype=np.float32)
    return _session(host, y.shape[1]).run(None, {"y": y})[0]
