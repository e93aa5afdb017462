"""Seeded mutations for the fuzz tests: bytes (flips, inserts, cuts, numbers made huge),
JSON (a value of the wrong type, huge, negative or NaN; a key dropped), ``.npy`` arrays
(a lying header, a wrong dtype or shape, NaNs, huge values), and a GLB whose JSON chunk is
mutated but still framed. Every mutation draws from a :class:`numpy.random.Generator`, so a
case is fixed by its seed; :func:`run_cases` runs a case function over many seeds and
collects what was not a typed error."""

from __future__ import annotations

import contextlib
import io
import json
import re
import resource
import struct
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from bipart_cli.errors import BipartError

NUMBER = re.compile(rb"-?\d+(\.\d+)?([eE][-+]?\d+)?")
HUGE_TEXT = [
    b"-1",
    b"0",
    b"4294967295",
    b"30000000",
    b"1e308",
    b"nan",
    b"inf",
    b"-9223372036854775809",
    b"18446744073709551616",
]
# values a JSON field may be swapped for: every JSON type, huge and negative counts, NaN,
# paths out of a folder
WRONG_VALUES: list[object] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2**31,
    2**63,
    2**64,
    10**30,
    -(10**30),
    1.5,
    1e308,
    float("nan"),
    float("inf"),
    float("-inf"),
    "",
    "x",
    "../../x",
    "/dev/zero",
    "\x00",
    "a\nb",
    [],
    [1, 2],
    ["a", "a"],
    [None],
    {},
    {"a": 1},
    {"name": None},
]


def mutate_bytes(rng: np.random.Generator, data: bytes, edits: int | None = None) -> bytes:
    """``data`` with 1 to 4 edits: a bit flipped, bytes inserted or deleted, the rest cut,
    or a number replaced by a huge, negative or NaN one."""
    data = bytearray(data)
    for _ in range(int(rng.integers(1, 5)) if edits is None else edits):
        kind = rng.choice(["flip", "insert", "delete", "cut", "number", "number"])
        at = int(rng.integers(0, max(len(data), 1)))
        if kind == "flip" and data:
            data[at] ^= 1 << int(rng.integers(0, 8))
        elif kind == "insert":
            data[at:at] = rng.bytes(int(rng.integers(1, 17)))
        elif kind == "delete":
            del data[at : at + int(rng.integers(1, 33))]
        elif kind == "cut":
            del data[at:]
        else:
            numbers = list(NUMBER.finditer(bytes(data)))
            if numbers:
                match = numbers[int(rng.integers(0, len(numbers)))]
                data[match.start() : match.end()] = HUGE_TEXT[int(rng.integers(0, len(HUGE_TEXT)))]
    return bytes(data)


def _paths(value: object, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path (keys and indices) into a JSON value, the root ``()`` included."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value[:8]):  # a few items of a long list are enough
            yield from _paths(item, (*prefix, i))


def mutate_json_value(rng: np.random.Generator, value: object) -> object:
    """A copy of the JSON ``value`` with 1 to 3 edits: a value (any depth) replaced by one of
    :data:`WRONG_VALUES`, a key dropped, or a list item repeated."""
    value = json.loads(json.dumps(value))
    for _ in range(int(rng.integers(1, 4))):
        paths = list(_paths(value))
        path = paths[int(rng.integers(0, len(paths)))]
        kind = rng.choice(["replace", "replace", "drop", "repeat"])
        if not path:
            if kind == "replace":
                value = WRONG_VALUES[int(rng.integers(0, len(WRONG_VALUES)))]
            continue
        parent = value
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        if kind == "drop" and isinstance(parent, dict):
            del parent[key]
        elif kind == "repeat" and isinstance(parent, list):
            parent.insert(key, json.loads(json.dumps(parent[key])))
        else:
            parent[key] = json.loads(
                json.dumps(WRONG_VALUES[int(rng.integers(0, len(WRONG_VALUES)))])
            )
    return value


def mutate_json(rng: np.random.Generator, text: bytes) -> bytes:
    """JSON ``text`` mutated as a value (:func:`mutate_json_value`, 3 times in 4) or as bytes."""
    if rng.random() < 0.25:
        return mutate_bytes(rng, text)
    return json.dumps(mutate_json_value(rng, json.loads(text))).encode()


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=array.dtype.hasobject)
    return buffer.getvalue()


def mutate_npy(rng: np.random.Generator, array: np.ndarray) -> bytes:
    """An ``.npy`` file made from ``array``: its header lying about the shape, another dtype
    or shape, NaNs or huge values, a pickled object array, or its bytes mutated."""
    kind = rng.choice(["header", "dtype", "shape", "values", "object", "bytes"])
    if kind == "header":
        data = npy_bytes(array)
        header_end = data.index(b"\n") + 1
        header = data[:header_end].decode("latin1")
        shape = rng.choice(["(1000000000000,)", "(-1,)", "(3, 0)", "()", "(2, 2, 2)"])
        header = re.sub(r"\(.*?\)", shape, header, count=1)
        return header.encode("latin1") + data[header_end:]
    if kind == "dtype":
        dtype = rng.choice(["<f8", "<f2", "<u1", "<i2", "|b1", "<U3", "<c8", ">i8"])
        return npy_bytes(array.astype(dtype) if dtype != "<U3" else array.astype(str))
    if kind == "shape":
        reshaped = [array[:-1], array[:1], array.reshape(-1, 1), np.concatenate([array, array])]
        return npy_bytes(reshaped[int(rng.integers(0, len(reshaped)))])
    if kind == "values":
        values = array.astype(np.float64 if rng.random() < 0.5 else array.dtype)
        at = rng.integers(0, len(values), int(rng.integers(1, 4)))
        fill = [np.nan, np.inf, -1, 2**62, -(2**62), 10**12]
        with np.errstate(all="ignore"), contextlib.suppress(OverflowError, ValueError):
            values[at] = fill[int(rng.integers(0, len(fill)))]
        return npy_bytes(values)
    if kind == "object":
        return npy_bytes(np.array([1, "a", None], dtype=object))
    return mutate_bytes(rng, npy_bytes(array))


def glb_chunks(data: bytes) -> tuple[dict, bytes]:
    """The JSON and binary chunks of a GLB."""
    json_length = struct.unpack_from("<I", data, 12)[0]
    document = json.loads(data[20 : 20 + json_length])
    rest = data[20 + json_length :]
    binary = rest[8:] if len(rest) >= 8 else b""
    return document, binary


def glb_bytes(document: object, binary: bytes) -> bytes:
    """A well-framed GLB of a JSON document and a binary chunk (each padded to 4 bytes)."""
    text = json.dumps(document).encode()
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    body = struct.pack("<I4s", len(text), b"JSON") + text
    body += struct.pack("<I4s", len(binary), b"BIN\0") + binary
    return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body


@contextlib.contextmanager
def address_space_cap(extra: int = 3 << 30):
    """Cap this process's address space at its current size plus ``extra`` bytes: a memory
    bomb fails the case (``MemoryError``) instead of swapping."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as handle:
        used = int(handle.read().split()[0]) * resource.getpagesize()
    cap = used + extra if hard == resource.RLIM_INFINITY else min(used + extra, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def run_cases(
    make_case: Callable[[int], tuple[str, Callable[[], object]]], seeds: range
) -> tuple[dict[str, int], list[str]]:
    """For every seed, ``make_case(seed)`` gives a case's kind (a short label) and what to
    run; running it must return or raise a :class:`BipartError` of one line. Returns the
    count of each outcome (``ok`` or the error's class), and one line for each case that
    raised anything else or a message of several lines, with its kind and seed (to run it
    again alone)."""
    outcomes: dict[str, int] = {}
    failures: list[str] = []
    for seed in seeds:
        kind, run = make_case(seed)
        try:
            run()
            outcome = "ok"
        except BipartError as exc:
            outcome = type(exc).__name__
            message = str(exc).strip()
            if not message or "\n" in message:
                failures.append(f"{kind} seed {seed}: {outcome} not one line: {message!r}")
        except Exception as exc:  # noqa: BLE001 - what the fuzz is looking for
            where = traceback.extract_tb(exc.__traceback__)[-1]
            failures.append(
                f"{kind} seed {seed}: untyped {type(exc).__name__}: {str(exc)[:200]!r} "
                f"(at {Path(where.filename).name}:{where.lineno})"
            )
            outcome = "untyped"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes, failures
