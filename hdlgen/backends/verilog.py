"""Verilog emission through Amaranth's bundled Yosys."""

from __future__ import annotations

import re

from amaranth.back import verilog

from ..assemble import DataflowTop
from ..ir.lowered import Folding, LoweredModel
from ..targets import DEFAULT_TARGET


def top_name(model: LoweredModel) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", model.name).strip("_")[:64] or "model"
    return f"{'m_' if name[0].isdigit() else ''}{name}_top"


# Amaranth writes arithmetic whose result is wider than its operands (a + b is one bit wider than
# either) and lets Verilog extend the operands; Verilator's lint flags every such line. The
# extension is the intended semantics, so the file says so to Verilator.
LINT_HEADER = "/* verilator lint_off WIDTHEXPAND */\n/* verilator lint_off WIDTHTRUNC */\n"


def emit(component, name: str) -> str:
    """Verilog text of one component as a module ``name`` (deterministic for the same input)."""
    return LINT_HEADER + verilog.convert(component, name=name, emit_src=False)


def emit_model(model: LoweredModel, foldings: dict[str, Folding], *, target: str = DEFAULT_TARGET) -> tuple[str, DataflowTop]:
    top = DataflowTop(model=model, foldings=foldings, target=target)
    return emit(top, top_name(model)), top
