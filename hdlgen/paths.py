"""Locations of the project's non-Python folders (RTL templates, board definitions, simulation)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RTL_TEMPLATES = REPO_ROOT / "rtl_templates"
BOARDS = REPO_ROOT / "boards"
SIM = REPO_ROOT / "sim"
EXAMPLES = REPO_ROOT / "examples"
