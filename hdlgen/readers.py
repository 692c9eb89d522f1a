"""Reading the files a user hands to hdlgen: JSON checked against a schema, NPY arrays, NPZ archives.

Whatever a file holds, a reader returns validated data or raises one ``HdlgenError`` that names
the file and, where there is one, the field: truncated or non-UTF-8 files, ``NaN`` and
``Infinity`` literals, integers too large for a float, nesting deep enough to exhaust the parser,
values of the wrong type (no float is taken as an integer, no bool as a number, no string as a
list), complex or non-numeric arrays, and an NPZ archive given where an array is expected.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .errors import HdlgenError

__all__ = ["read_json", "parse_json", "validate", "schema_problem", "read_npy", "read_npz", "numeric_array", "INT_LIMIT"]

INT_LIMIT = 2 ** 53         # larger integers do not survive a float, so no file needs them


class _Unreadable(ValueError):
    pass


def _reject_constant(name: str):
    raise _Unreadable(f"{name} is not a number JSON allows; write a finite number")


def _parse_int(text: str) -> int:
    if len(text) > 20 or abs(int(text)) > INT_LIMIT:
        raise _Unreadable(f"the integer {text[:20]}{'...' if len(text) > 20 else ''} is out of range "
                          f"(at most {INT_LIMIT} in magnitude)")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not np.isfinite(value):
        raise _Unreadable(f"the number {text[:20]} is too large for a float")
    return value


def _unique_keys(pairs):
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        duplicate = next(key for key in keys if keys.count(key) > 1)
        raise _Unreadable(f"the key {duplicate!r} appears twice in one object")
    return dict(pairs)


def parse_json(text: str, path: Path, what: str):
    """The document in ``text`` (from ``path``), with every number finite, every integer in range
    and no key given twice in one object."""
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int, parse_float=_parse_float,
                          object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        raise HdlgenError(f"{path}: {what} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    except _Unreadable as e:
        raise HdlgenError(f"{path}: {what}: {e}") from None
    except RecursionError:
        raise HdlgenError(f"{path}: {what} is nested too deeply to be a {what}") from None


def read_json(path: Path, what: str, schema: dict | None = None):
    """Read ``path`` as JSON and check it against ``schema``; ``what`` names the file for the user."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise HdlgenError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise HdlgenError(f"{path}: is a directory, not a {what}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise HdlgenError(f"{path}: {what} is not UTF-8 text (byte {e.start})") from None
    doc = parse_json(text, path, what)
    if schema is not None:
        validate(doc, schema, path)
    return doc


def _strict_types():
    from jsonschema import Draft202012Validator, validators

    def is_integer(_checker, value):
        return isinstance(value, int) and not isinstance(value, bool)

    def is_number(_checker, value):
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    checker = Draft202012Validator.TYPE_CHECKER.redefine_many({"integer": is_integer, "number": is_number})
    return validators.extend(Draft202012Validator, type_checker=checker)


_VALIDATOR = None


def _location(error) -> str:
    where = ""
    for part in error.absolute_path:
        where += f"[{part}]" if isinstance(part, int) else f".{part}" if where else str(part)
    return where


def schema_problem(doc, schema: dict) -> str | None:
    """The first way ``doc`` breaks a JSON Schema, as ``field: message``, or None.

    Integers are Python ints only (``8.0`` is not an integer) and booleans are never numbers.
    """
    global _VALIDATOR
    if _VALIDATOR is None:
        _VALIDATOR = _strict_types()
    from jsonschema.exceptions import best_match

    error = best_match(_VALIDATOR(schema).iter_errors(doc))
    if error is None:
        return None
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    if description:
        shown = repr(error.instance)
        text = f"{shown if len(shown) <= 60 else shown[:60] + '...'} {description}"
    else:
        text = error.message if len(error.message) <= 200 else error.message[:200] + "..."
    field = _location(error)
    return f"{field}: {text}" if field else text


def validate(doc, schema: dict, path: Path) -> None:
    """Check ``doc`` against a JSON Schema; the first violation becomes ``path: field: message``."""
    problem = schema_problem(doc, schema)
    if problem is not None:
        raise HdlgenError(f"{path}: {problem}")


def numeric_array(array, path: Path, what: str, *, finite: bool = True) -> np.ndarray:
    """``array`` if it holds real numbers (integer or float; not bool), finite unless told otherwise."""
    array = np.asarray(array)
    if np.issubdtype(array.dtype, np.complexfloating):
        raise HdlgenError(f"{path}: {what} holds complex numbers; store real values")
    if not np.issubdtype(array.dtype, np.number):
        raise HdlgenError(f"{path}: {what} holds {array.dtype} values, not numbers")
    if finite and np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise HdlgenError(f"{path}: {what} holds {array[bad]} at index {bad}; every value must be a finite number")
    return array


# What numpy raises for damaged files: truncated or corrupt zip members, bad headers, short reads.
_DAMAGED = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError, NotImplementedError, MemoryError)


def _check_npy_size(f, path: Path) -> None:
    """A .npy header must not promise more data than the file holds (numpy would allocate it first)."""
    start = f.tell()
    try:
        major, _ = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(f)
    except (ValueError, OSError, EOFError):
        f.seek(start)
        return                         # not a .npy header: np.load says what it is
    need = math.prod(shape) * dtype.itemsize
    have = os.fstat(f.fileno()).st_size - f.tell()
    f.seek(start)
    if need > have:
        raise HdlgenError(f"{path}: its header promises {need:,} bytes of data, but the file holds {have:,}; "
                          f"the file is truncated or damaged")


def _load(path: Path, what: str, kind: str):
    """An array (``.npy``) or a dict of arrays (``.npz``); the file is closed whatever it holds."""
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
            if magic == b"\x93NUMPY":
                f.seek(0)
                _check_npy_size(f, path)
            elif not magic.startswith(b"PK\x03\x04"):      # numpy would try it as a pickle
                raise HdlgenError(f"{path}: not a {kind} file (it starts with neither numpy's nor zip's header; "
                                  f"{what} are written with numpy's np.save or np.savez)")
            f.seek(0)
            loaded = np.load(f, allow_pickle=False)
            if isinstance(loaded, np.lib.npyio.NpzFile):
                with loaded:
                    return {key: loaded[key] for key in loaded.files}
            return loaded
    except FileNotFoundError:
        raise HdlgenError(f"{path}: {what} file not found") from None
    except IsADirectoryError:
        raise HdlgenError(f"{path}: is a directory, not a {what} file") from None
    except _DAMAGED as e:
        raise HdlgenError(f"{path}: not a readable {kind} file ({type(e).__name__}: {str(e)[:200]})") from None


def read_npy(path: Path, what: str) -> np.ndarray:
    """One array from a ``.npy`` file (``np.save``), real and finite."""
    path = Path(path)
    loaded = _load(path, what, ".npy")
    if isinstance(loaded, dict):
        raise HdlgenError(f"{path}: is an NPZ archive; {what} must be one array in a .npy file (np.save)")
    return numeric_array(loaded, path, what)


def read_npz(path: Path, what: str, *, finite: bool = True) -> dict[str, np.ndarray]:
    """Every array of an NPZ archive (``np.savez``), each real (and finite unless told otherwise)."""
    path = Path(path)
    loaded = _load(path, what, "NPZ")
    if not isinstance(loaded, dict):
        raise HdlgenError(f"{path}: is a single array, not an NPZ archive ({what} arrays are written with np.savez)")
    for key, array in loaded.items():
        numeric_array(array, path, f"array {key!r}", finite=finite)
    return loaded
