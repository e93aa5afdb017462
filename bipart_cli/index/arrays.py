"""How are a safetensors file's arrays read, and how are they checked? In memory
(:func:`arrays_from_bytes`) or from the file, each array from its own byte range
(:class:`FileArrays`), each made when first read and checked against the sha256 the file's
JSON metadata records for it; whatever malformed bytes raise becomes
:class:`ShardDecodeError`. The checksums written (:func:`array_digests`,
:func:`header_sha256`) are made here too.

NumPy + safetensors only (no torch).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def array_digests(tensors: dict[str, np.ndarray]) -> dict[str, str]:
    """sha256 of each (C-contiguous) array's bytes, as safetensors writes them."""
    return {name: hashlib.sha256(array.data).hexdigest() for name, array in tensors.items()}


def header_sha256(data: bytes) -> str:
    """sha256 of a safetensors file's header: its 8-byte length and its JSON."""
    return sha256_bytes(data[: 8 + int.from_bytes(data[:8], "little")])


def arrays_from_bytes(data: bytes, metadata_key: str) -> _LazyArrays:
    """A whole safetensors file's arrays (each made when first read), with the JSON its
    metadata holds under ``metadata_key`` as ``.metadata``: the in-memory twin of
    :class:`FileArrays`. Malformed bytes raise :class:`ShardDecodeError`."""
    from safetensors import deserialize

    def decode() -> _LazyArrays:
        size = int.from_bytes(data[:8], "little")
        _, metadata = _split_header(data[8 : 8 + size], metadata_key)
        return _LazyArrays(dict(deserialize(data)), metadata)

    return _decoded(decode)


def _split_header(body: bytes, metadata_key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A safetensors header's JSON ``body``: its array entries, and the JSON its metadata
    holds under ``metadata_key``."""
    header = json.loads(body)
    metadata = json.loads(header.pop("__metadata__")[metadata_key])
    if not isinstance(metadata, dict) or not isinstance(metadata.get("sha256", {}), dict):
        # read as a mapping (``metadata.get("sha256")``) outside any decoding step
        raise ShardDecodeError(f"its {metadata_key!r} metadata is not a JSON object")
    return header, metadata


# safetensors' dtype names that NumPy has
_DTYPES = {
    "BOOL": np.bool_,
    "U8": np.uint8,
    "I8": np.int8,
    "U16": np.uint16,
    "I16": np.int16,
    "U32": np.uint32,
    "I32": np.int32,
    "U64": np.uint64,
    "I64": np.int64,
    "F16": np.float16,
    "F32": np.float32,
    "F64": np.float64,
}


class _LazyArrays(Mapping):
    """Name -> array over ``safetensors.deserialize``'s raw tensors, viewed when read: a
    shard holds 64 records of ~12 arrays, and a retrieval reads one record."""

    def __init__(self, raw: dict[str, dict[str, Any]], metadata: dict[str, Any]) -> None:
        self._raw = raw
        self.metadata = metadata

    def __getitem__(self, name: str) -> np.ndarray:
        tensor = self._raw[name]
        if tensor["dtype"] not in _DTYPES:
            raise ShardDecodeError(f"{name}: unexpected dtype {tensor['dtype']}")
        return np.frombuffer(tensor["data"], dtype=_DTYPES[tensor["dtype"]]).reshape(
            tensor["shape"]
        )

    def __iter__(self):
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


class ShardDecodeError(ValueError):
    """A shard's bytes are not a valid shard (the caller names the file)."""


MAX_HEADER_BYTES = 100 << 20  # safetensors' own bound


class FileArrays(Mapping):
    """Name -> array of a safetensors file, each read from its own byte range when asked.

    The header is read first and, with ``checked``, must have the sha256 ``header_digest``
    (the manifest's); each array read must then have the sha256 the header's JSON
    ``metadata_key`` records for it. A mismatch, a truncated file or a malformed header
    raises :class:`ShardDecodeError`.
    """

    def __init__(
        self, path: str | os.PathLike, header_digest: str, metadata_key: str, checked=True
    ):
        self._path = path
        self._checked = checked
        with open(path, "rb") as handle:
            self._file_bytes = os.fstat(handle.fileno()).st_size
            head = handle.read(8)
            size = int.from_bytes(head, "little")
            if len(head) < 8 or size > min(MAX_HEADER_BYTES, self._file_bytes - 8):
                raise ShardDecodeError("the header is truncated or too large")
            body = handle.read(size)
        if len(body) < size:
            raise ShardDecodeError("the header is truncated")
        if checked and sha256_bytes(head + body) != header_digest:
            raise ShardDecodeError("sha256 mismatch in the header")
        self._arrays, self.metadata = _decoded(lambda: _split_header(body, metadata_key))
        self._offset = 8 + size
        self._digests = self.metadata.get("sha256") or {}

    def __getitem__(self, name: str) -> np.ndarray:
        info = self._arrays[name]  # a KeyError: no such array (``get`` gives None)
        dtype, shape, start, end = _decoded(lambda: _array_layout(info))
        if not 0 <= start <= end <= self._file_bytes - self._offset:  # never read past the file
            raise ShardDecodeError(f"{name}: its offsets lie outside the file")
        with open(self._path, "rb") as handle:
            handle.seek(self._offset + start)
            data = handle.read(end - start)
        if len(data) < end - start:
            raise ShardDecodeError(f"{name}: the file is truncated")
        if self._checked and sha256_bytes(data) != self._digests.get(name):
            raise ShardDecodeError(f"sha256 mismatch in {name}")
        return _decoded(lambda: np.frombuffer(data, dtype=dtype).reshape(shape))

    def __contains__(self, name: object) -> bool:
        return name in self._arrays  # without reading it

    def __iter__(self):
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)


def _array_layout(info: dict[str, Any]) -> tuple[type, tuple[int, ...], int, int]:
    """(dtype, shape, start, end) of one safetensors header entry."""
    start, end = (int(offset) for offset in info["data_offsets"])
    return _DTYPES[info["dtype"]], tuple(int(n) for n in info["shape"]), start, end


def _decoded(decode):
    """``decode()``, whatever it raises on corrupt bytes turned into :class:`ShardDecodeError`."""
    try:
        return decode()
    except ShardDecodeError:
        raise
    except Exception as exc:  # safetensors / json / a missing key, a bad shape or dtype
        raise ShardDecodeError(f"{type(exc).__name__}: {exc}") from exc
