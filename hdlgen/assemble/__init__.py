"""Assembling cores into one dataflow top."""

from .dataflow import DataflowTop, CycleModel

__all__ = ["DataflowTop", "CycleModel"]
