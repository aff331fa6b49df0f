"""64-bit hashes of Arrow rows, computed on the columns' buffers with NumPy.

Duplicates and conflicts are found by comparing hashes of natural keys and of whole rows with
what the lake holds. A row's hash depends only on its values (never on its batch or position),
so a file ingested again, split differently, finds its rows. Missing values hash apart from
empty strings and from zero.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_MULTIPLIER = np.uint64(0x100000001B3)  # FNV-64 prime: the per-byte polynomial base
_MIX = np.uint64(0x9E3779B97F4A7C15)
_NULL = np.uint64(0xA5A5A5A5A5A5A5A5)
_POWERS = np.ones(1, dtype=np.uint64)


def _powers(length: int) -> np.ndarray:
    """_MULTIPLIER ** i for i < length, modulo 2**64 (grown and cached on demand)."""
    global _POWERS
    if len(_POWERS) < length:
        size = max(length, 2 * len(_POWERS))
        powers = np.empty(size, dtype=np.uint64)
        powers[0] = 1
        with np.errstate(over="ignore"):
            for i in range(1, size):
                powers[i] = powers[i - 1] * _MULTIPLIER
        _POWERS = powers
    return _POWERS[:length]


def _string_hash(values: pa.Array) -> np.ndarray:
    values = values.cast(pa.large_string()) if values.type != pa.large_string() else values
    n = len(values)
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64)[values.offset: values.offset + n + 1]
    data = values.buffers()[2]
    raw = (np.frombuffer(data, dtype=np.uint8)[offsets[0]: offsets[-1]] if data is not None and offsets[-1] > offsets[0]
           else np.zeros(0, dtype=np.uint8))
    starts = offsets[:-1] - offsets[0]
    lengths = np.diff(offsets)
    out = np.zeros(n, dtype=np.uint64)
    if raw.size:
        position = np.arange(raw.size, dtype=np.int64) - np.repeat(starts, lengths)
        with np.errstate(over="ignore"):
            weighted = raw.astype(np.uint64) * _powers(int(lengths.max()))[position]
            filled = lengths > 0
            out[filled] = np.add.reduceat(weighted, starts[filled])
    with np.errstate(over="ignore"):
        out = out ^ (lengths.astype(np.uint64) * _MIX)
    return out


def column_hash(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """One uint64 per value; equal values (and types) give equal hashes."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    valid = pc.is_valid(values).to_numpy(zero_copy_only=False)
    if pa.types.is_null(values.type):
        return np.full(len(values), _NULL, dtype=np.uint64)
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        raw = _string_hash(pc.fill_null(values, ""))
    elif pa.types.is_timestamp(values.type) or pa.types.is_integer(values.type):
        raw = pc.fill_null(values.cast(pa.int64()), 0).to_numpy().view(np.uint64)
    elif pa.types.is_floating(values.type):
        raw = pc.fill_null(values.cast(pa.float64()), 0.0).to_numpy().view(np.uint64)
    else:
        raise TypeError(f"no hash for Arrow type {values.type}")
    return np.where(valid, pd.util.hash_array(raw), _NULL)


def row_hash(table: pa.Table, columns: list[str]) -> np.ndarray:
    """One uint64 per row over ``columns``, in order."""
    acc = np.zeros(table.num_rows, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for name in columns:
            acc = acc * _MULTIPLIER + column_hash(table.column(name))
    return pd.util.hash_array(acc)
