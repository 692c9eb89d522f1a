"""Cases generated from the command line's own parser, so the next option added is covered by construction.

Every option of every command declares what it takes (``hdlgen.options`` for numbers, whole numbers
and words; a tag for paths, ports and names). From that declaration come:

- each number and word option through its range edges, refused by the command line and, where the
  Python API takes the option too, by the API with the same message;
- each path option through the directory tricks: a folder where a file belongs, a file where a
  folder belongs, a missing path, an empty file, a loop of links, the current directory, a folder
  of the user's files, the inside of a build directory.

An option that declares nothing fails ``test_every_option_declares_what_it_takes``.
"""

from __future__ import annotations

import argparse
import os
import shutil

import numpy as np
import pytest

import hdlgen
from hdlgen.cli import parser
from hdlgen.errors import HdlgenError
from hdlgen.options import Choice, Number, Whole
from robustness.harness import DIGITS, assert_refused, copy_native_model, working_copy

FLOAT = DIGITS.parent / "float_digits"


def _actions():
    """(command, action) for every option and positional of every command."""
    top = parser()
    commands = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    for command, sub in sorted(commands.choices.items()):
        for action in sub._actions:
            if not isinstance(action, argparse._HelpAction):
                yield command, action


def _flag(action) -> str:
    return action.option_strings[-1] if action.option_strings else action.dest


def _declared(action):
    return getattr(action.type, "kind", None) or getattr(action.type, "names", None)


def test_every_option_declares_what_it_takes():
    undeclared = [f"{command} {_flag(action)}" for command, action in _actions()
                  if _declared(action) is None and not isinstance(action, argparse._StoreTrueAction)]
    assert not undeclared, f"declare these in hdlgen.options or with cli._given: {undeclared}"


# -- numbers and words through their range edges ---------------------------------------------------------

def _step(x: float) -> float:
    return (abs(x) or 1.0) * 1e-3


def _edges(kind) -> tuple[list[str], list[str]]:
    """(refused, accepted) texts at and around the edges of ``kind``."""
    junk = ["", "abc", "True", "0x10"]
    if isinstance(kind, Number):
        below = repr(kind.lo - _step(kind.lo)) if kind.lo_included else repr(kind.lo)
        accepted = [repr(kind.hi)] + ([repr(kind.lo)] if kind.lo_included else [repr(kind.lo + _step(kind.lo))])
        return [below, repr(kind.hi + _step(kind.hi)), "nan", "inf", "-inf", "1e400", *junk], accepted
    if isinstance(kind, Whole):
        return [str(kind.lo - 1), str(kind.hi + 1), "2.5", "1e3", *junk], [str(kind.lo), str(kind.hi)]
    if isinstance(kind, Choice):
        return ["", "nope", kind.choices[0].upper() + "X", " " + kind.choices[0]], list(kind.choices)
    raise AssertionError(f"no edges for {kind!r}")


def _valued():
    for command, action in _actions():
        kind = getattr(action.type, "kind", None)
        if kind is not None:
            yield command, action, kind


def _edge_cases():
    for command, action, kind in _valued():
        for text in _edges(kind)[0]:
            yield pytest.param(command, _flag(action), text, id=f"{command} {_flag(action)}={text!r}")


REQUIRED = {"build": ["m.json", "-o", "o"], "sim": ["o", "--inputs", "x.npy"], "synth": ["o"],
            "quantize": ["m.onnx", "--calibration", "c.npy", "-o", "q.onnx"], "explore": ["m.json"],
            "inspect": ["m.json"], "demo": [], "boards": [], "bitstream": ["o", "--board", "icebreaker"],
            "run": ["o", "--port", "sim", "--inputs", "x.npy"]}


@pytest.mark.parametrize("command, flag, text", list(_edge_cases()))
def test_range_edges_refused_on_the_command_line(tmp_path, capsys, command, flag, text):
    assert_refused([command, *REQUIRED[command], f"{flag}={text}"], tmp_path, capsys, f"argument {flag}: ")


@pytest.mark.parametrize("command, action, kind", list(_valued()), ids=lambda v: getattr(v, "dest", None))
def test_range_edges_accepted(command, action, kind):
    for text in _edges(kind)[1]:
        action.type(text)


# -- the same cases through the Python API ------------------------------------------------------------------

X = np.load(DIGITS / "test_x.npy")[:2]


def _build(**options):
    return lambda design, work: hdlgen.build(work / "m" / "model.json", work / "n", **options)


API = {   # (command, flag): how the API takes the option, as a function of the value
    ("build", "--clock-mhz"): lambda v: _build(clock_mhz=v),
    ("build", "--target-fps"): lambda v: _build(target_fps=v),
    ("build", "--target"): lambda v: _build(target=v),
    ("build", "--requant"): lambda v: _build(requant=v),
    ("build", "--bn"): lambda v: _build(bn=v),
    ("build", "--output"): lambda v: _build(output=v),
    ("sim", "--idle"): lambda v: lambda d, w: d.simulate(X, idle=v),
    ("sim", "--backpressure"): lambda v: lambda d, w: d.simulate(X, backpressure=v),
    ("sim", "--seed"): lambda v: lambda d, w: d.simulate(X, seed=v),
    ("synth", "--clock-mhz"): lambda v: lambda d, w: d.synthesize(clock_mhz=v),
    ("synth", "--target"): lambda v: lambda d, w: d.synthesize(target=v),
    ("bitstream", "--board"): lambda v: lambda d, w: d.bitstream(v),
    ("bitstream", "--clock-mhz"): lambda v: lambda d, w: d.bitstream("icebreaker", clock_mhz=v),
    ("bitstream", "--baud"): lambda v: lambda d, w: d.bitstream("icebreaker", baud=v),
    ("run", "--board"): lambda v: lambda d, w: d.run_on_board(X, port=str(w / "tty"), board=v),
    ("run", "--baud"): lambda v: lambda d, w: d.run_on_board(X, port=str(w / "tty"), baud=v),
    ("run", "--timeout"): lambda v: lambda d, w: d.run_on_board(X, port=str(w / "tty"), timeout=v),
    ("run", "--retries"): lambda v: lambda d, w: d.run_on_board(X, port=str(w / "tty"), retries=v),
}
COMMAND_LINE_ONLY = {("build", "--max-weight-bits"), ("build", "--max-lanes"), ("quantize", "--method"),
                     ("quantize", "--percentile"), ("quantize", "--activations"), ("explore", "--target"),
                     ("explore", "--clock-mhz"), ("explore", "--max-lanes"), ("demo", "--board"),
                     ("demo", "--clock-mhz")}


def test_every_valued_option_is_mapped_to_the_api_or_said_to_have_none():
    options = {(command, _flag(action)) for command, action, _ in _valued()}
    assert options == set(API) | COMMAND_LINE_ONLY


def _python_value(kind, text: str):
    """What an API caller would hand over for ``text``: the number where it reads as one, else the text."""
    for convert in ((int, float) if isinstance(kind, Whole) else (float,) if isinstance(kind, Number) else ()):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _problem(message: str) -> str:
    """The explanation after the option's name, without the value it quotes."""
    return message.split(": ", 1)[1].rsplit(" not ", 1)[0] if ": " in message else message


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("generated")
    model = copy_native_model(root / "m")
    hdlgen.build(model, root / "out", target="ice40-up5k", output="class", clock_mhz=12, target_fps=20000)
    return root


@pytest.fixture(scope="module")
def design(built):
    return hdlgen.open_design(built / "out")


def _api_cases():
    for command, action, kind in _valued():
        if (command, _flag(action)) in API:
            for text in _edges(kind)[0]:
                yield pytest.param(command, _flag(action), kind, text, id=f"{command} {_flag(action)}={text!r}")


@pytest.mark.parametrize("command, flag, kind, text", list(_api_cases()))
def test_range_edges_refused_by_the_api_with_the_command_lines_message(built, design, capsys, command, flag, kind,
                                                                       text):
    line = assert_refused([command, *REQUIRED[command], f"{flag}={text}"], built / "m", capsys)
    value = _python_value(kind, text)
    with pytest.raises(HdlgenError) as raised:
        API[(command, flag)](value)(design, built)
    assert _problem(str(raised.value)) == _problem(line.split(f"argument {flag}", 1)[1]), (line, str(raised.value))


# -- paths through the directory tricks ---------------------------------------------------------------------

def _loop(w):
    os.symlink(w / "loop", w / "loop")
    return w / "loop"


def _empty(w):
    (w / "empty.bin").write_bytes(b"")
    return w / "empty.bin"


def _users_folder(w):
    (w / "mine").mkdir()
    (w / "mine" / "notes.txt").write_text("mine")
    return w / "mine"


def _link_to_folder(w):
    (w / "real").mkdir()
    os.symlink(w / "real", w / "link")
    return w / "link"


TRICKS = {
    "input-file": {"a folder": lambda w: w / "m", "missing": lambda w: w / "absent.bin", "empty": _empty,
                   "a loop of links": _loop},
    "output-dir": {"a file": lambda w: w / "x.npy", "the current directory": lambda w: ".",
                   "a folder of the user's files": _users_folder, "a link": _link_to_folder,
                   "the model's folder": lambda w: w / "m"},
    "output-file": {"a folder": lambda w: w / "m", "a missing folder": lambda w: w / "nowhere" / "r.npy",
                    "inside the build": lambda w: w / "out" / "r.npy", "an input": lambda w: w / "x.npy"},
    "build-dir": {"a file": lambda w: w / "m" / "model.json", "missing": lambda w: w / "absent",
                  "a folder of the user's files": _users_folder, "a loop of links": _loop},
    "port": {"a folder": lambda w: w / "m", "a plain file": lambda w: w / "x.npy", "missing": lambda w: w / "ttyUSB9"},
    "fold": {"a folder": lambda w: w / "m", "missing": lambda w: w / "absent.json", "broken JSON": lambda w: "{\"fc0\":"},
    "datatype": {"empty": lambda w: "", "a float": lambda w: "FLOAT32", "no type": lambda w: "INT0",
                 "not a name": lambda w: "NOPE"},
    "points": {"empty": lambda w: "", "out of range": lambda w: "999", "words": lambda w: "abc"},
}
SUFFIX = {("quantize", "-o"): ".onnx"}      # an output file of another kind is refused for its name alone


def _base(command: str, w) -> list:
    return {"build": [w / "m" / "model.json", "-o", w / "new"], "sim": [w / "out", "--inputs", w / "x.npy"],
            "synth": [w / "out", "--target", "xc7"],
            "quantize": [w / "cnn.onnx", "--calibration", w / "calibration.npy", "-o", w / "q.onnx"],
            "explore": [w / "m" / "model.json", "-o", w / "ex"], "inspect": [w / "m" / "model.json"],
            "demo": ["-o", w / "demo"], "bitstream": [w / "out", "--board", "icebreaker"],
            "run": [w / "out", "--port", w / "tty", "--inputs", w / "x.npy", "--board", "icebreaker", "--baud",
                    "115200"]}[command]


COMPANIONS = {("build", "--check-inputs"): ["--bn", "shift", "--check-labels", "{y}"],
              ("build", "--check-labels"): ["--bn", "shift", "--check-inputs", "{x}"]}


def _path_cases():
    for command, action in _actions():
        names = getattr(action.type, "names", None)
        if names is None:
            continue
        for trick in TRICKS[names]:
            yield pytest.param(command, _flag(action), bool(action.option_strings), names, trick,
                               id=f"{command} {_flag(action)} {trick}")


@pytest.fixture
def work(tmp_path, built):
    working_copy(built, tmp_path)
    shutil.copy(FLOAT / "cnn.onnx", tmp_path / "cnn.onnx")
    shutil.copy(FLOAT / "calibration.npy", tmp_path / "calibration.npy")
    return tmp_path


@pytest.mark.parametrize("command, flag, optional, names, trick", list(_path_cases()))
def test_path_tricks_refused(work, capsys, monkeypatch, command, flag, optional, names, trick):
    monkeypatch.chdir(work)
    given = TRICKS[names][trick](work)
    if (command, flag) in SUFFIX and str(given).endswith(".npy"):
        given = str(given)[:-4] + SUFFIX[(command, flag)]
    argv = _base(command, work)
    if optional and flag in argv:
        argv[argv.index(flag) + 1] = given
    elif optional:
        argv += [flag, given] + [a.format(x=work / "x.npy", y=work / "y.npy") for a in COMPANIONS.get((command, flag), [])]
    else:
        argv[0] = given
    line = assert_refused([command, *argv], work, capsys)
    assert flag in line or str(given) in line or os.path.basename(str(given)) in line or trick == "empty", line


def test_the_generated_tricks_cover_every_path_kind():
    kinds = {getattr(action.type, "names", None) for _, action in _actions()} - {None}
    assert kinds == set(TRICKS)
