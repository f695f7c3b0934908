"""SipHash-2-4 of every string of an Arrow column at once, in numpy, the same 64-bit values as pandas'
`hash_array(values, categorize=False, hash_key=key)` gives for the column as Python strings.

pandas hashes one Python string at a time (and needs the column as Python objects); here the strings' UTF-8 bytes
are read from the Arrow buffers as little-endian 64-bit words, grouped by length, and the rounds run on whole arrays
of rows (numpy releases the GIL, so a helper thread hashes while the model predicts). Rows that share their leading
words (ids with a common prefix) share the rounds over them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

BLOCK_ROWS = 16_384
"""Rows hashed per pass: the state arrays of one pass stay in the CPU cache."""
INIT = (0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573)
SHIFTS = {bits: (np.uint64(bits), np.uint64(64 - bits)) for bits in (13, 16, 17, 21, 32)}


def keys_of(hash_key: str) -> tuple[int, int]:
    """The two 64-bit halves of a 16-character key, as pandas reads it (UTF-8, little-endian)."""
    raw = hash_key.encode("utf8")
    if len(raw) != 16:
        raise ValueError(f"a SipHash key is 16 bytes, not {len(raw)}")
    return int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:], "little")


def _rotate(value: np.ndarray, bits: int, spare: np.ndarray) -> None:
    left, right = SHIFTS[bits]
    np.left_shift(value, left, out=spare)
    np.right_shift(value, right, out=value)
    np.bitwise_or(value, spare, out=value)


def _rounds(state: list[np.ndarray], spare: np.ndarray, count: int) -> None:
    v0, v1, v2, v3 = state
    for _ in range(count):
        v0 += v1
        _rotate(v1, 13, spare)
        v1 ^= v0
        _rotate(v0, 32, spare)
        v2 += v3
        _rotate(v3, 16, spare)
        v3 ^= v2
        v0 += v3
        _rotate(v3, 21, spare)
        v3 ^= v0
        v2 += v1
        _rotate(v1, 17, spare)
        v1 ^= v2
        _rotate(v2, 32, spare)


def _siphash(words: np.ndarray, keys: Sequence[tuple[int, int]]) -> np.ndarray:
    """(keys, rows) SipHash-2-4 values of messages given as (rows, words) little-endian words, the last word holding
    the tail bytes and the length in its top byte."""
    rows = words.shape[0]
    k0 = np.array([key[0] for key in keys], dtype=np.uint64)[:, np.newaxis]
    k1 = np.array([key[1] for key in keys], dtype=np.uint64)[:, np.newaxis]
    state = [k0 ^ np.uint64(INIT[0]), k1 ^ np.uint64(INIT[1]), k0 ^ np.uint64(INIT[2]), k1 ^ np.uint64(INIT[3])]
    spare = np.empty_like(state[0])
    shared = True
    for position in range(words.shape[1]):
        word = words[:, position]
        if shared and rows and not (word == word[0]).all():
            shared = False
            state = [np.repeat(part, rows, axis=1) for part in state]
            spare = np.empty_like(state[0])
        message = word[:1] if shared else word
        state[3] ^= message
        _rounds(state, spare, 2)
        state[0] ^= message
    if shared:
        state = [np.repeat(part, rows, axis=1) for part in state]
        spare = np.empty_like(state[0])
    state[2] ^= np.uint64(0xFF)
    _rounds(state, spare, 4)
    return np.asarray(state[0] ^ state[1] ^ state[2] ^ state[3])


def _finish(values: np.ndarray) -> np.ndarray:
    """pandas' redistribution of the 64-bit values after hashing (`_hash_ndarray`)."""
    values ^= values >> np.uint64(30)
    values *= np.uint64(0xBF58476D1CE4E5B9)
    values ^= values >> np.uint64(27)
    values *= np.uint64(0x94D049BB133111EB)
    values ^= values >> np.uint64(31)
    return values


def _words(data: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """(rows, length // 8 + 1) message words of the strings of one byte length starting at `starts`."""
    count = length // 8 + 1
    padded = np.zeros((len(starts), count * 8), dtype=np.uint8)
    if length:
        if len(starts) > 1 and (np.diff(starts) == length).all():
            padded[:, :length] = data[starts[0] : starts[0] + len(starts) * length].reshape(len(starts), length)
        else:
            padded[:, :length] = data[starts[:, np.newaxis] + np.arange(length)]
    padded[:, -1] = length & 0xFF
    return padded.view("<u8")


def hash_strings(values: pa.Array, keys: Sequence[tuple[int, int]]) -> np.ndarray:
    """(keys, rows) uint64: pandas' `hash_array` of the strings with each key. The array must hold no nulls."""
    if values.null_count:
        raise ValueError("hash_strings takes a column without nulls")
    offset_type: type[np.signedinteger[Any]]
    if pa.types.is_large_string(values.type):
        offset_type = np.int64
    elif pa.types.is_string(values.type):
        offset_type = np.int32
    else:
        raise TypeError(f"hash_strings takes strings, not {values.type}")
    rows = len(values)
    result = np.empty((len(keys), rows), dtype=np.uint64)
    if rows == 0:
        return result
    _, offsets_buffer, data_buffer = values.buffers()
    offsets = np.frombuffer(
        offsets_buffer, dtype=offset_type, count=rows + 1, offset=values.offset * np.dtype(offset_type).itemsize
    )
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, dtype=np.uint8)
    lengths = np.diff(offsets)
    found = np.unique(lengths)
    for length in found:
        where = np.arange(rows) if len(found) == 1 else np.flatnonzero(lengths == length)
        for start in range(0, len(where), BLOCK_ROWS):
            chosen: slice | np.ndarray = where[start : start + BLOCK_ROWS]
            words = _words(data, offsets[chosen].astype(np.int64), int(length))
            if len(found) == 1:
                chosen = slice(start, start + BLOCK_ROWS)
            result[:, chosen] = _finish(_siphash(words, keys))
    return result
