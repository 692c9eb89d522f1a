"""cocotb test: frames through any stream component, compared word by word with the golden model.

Reads its vectors from the JSON file named by ``HDLGEN_VECTORS`` (written by
``hdlgen.backends.cocotb_run``): input beats, expected output words, stall probabilities, a seed,
and optionally the expected initiation interval, checked in steady state without stalls.
"""

from __future__ import annotations

import json
import os

import cocotb

from streams import StreamBench


def _mismatch(index: int, expected: int, actual: int, cfg) -> str:
    per_frame = cfg["beats_per_frame"]
    frame = index // per_frame
    frames = len(cfg["expected"]) // per_frame
    in_per_frame = len(cfg["inputs"]) // max(1, frames)
    inputs = cfg["inputs"][frame * in_per_frame:(frame + 1) * in_per_frame]
    return (f"output word {index} (frame {frame}, beat {index % per_frame}): "
            f"expected {expected} ({expected:#x}), got {actual} ({actual:#x}); "
            f"the frame's input beats {', '.join(inputs)}; seed {cfg['seed']}")


@cocotb.test()
async def stream_frames(dut):
    cfg = json.loads(open(os.environ["HDLGEN_VECTORS"]).read())
    inputs = [int(v, 16) for v in cfg["inputs"]]
    expected = [int(v, 16) for v in cfg["expected"]]
    bench = StreamBench(dut, seed=cfg["seed"], idle=cfg["idle"], backpressure=cfg["backpressure"])
    await bench.reset()
    received = await bench.run(inputs, len(expected), timeout=cfg["timeout"])
    for index, ((_, actual), want) in enumerate(zip(received, expected)):
        assert actual == want, _mismatch(index, want, actual, cfg)
    ii = cfg.get("initiation_interval")
    per_frame = cfg["beats_per_frame"]
    ends = [cycle for k, (cycle, _) in enumerate(received) if k % per_frame == per_frame - 1]
    steady = [b - a for a, b in zip(ends[2:], ends[3:])]
    if ii is not None:
        assert steady and all(d == ii for d in steady), \
            f"cycles between frames {steady}, analytical initiation interval {ii}"
    with open(os.environ["HDLGEN_MEASURED"], "w") as f:
        json.dump({"frame_intervals": steady, "cycles": bench.cycle}, f)
