"""Join the reasons several checks give for the same rows: one '; '-joined string per failing row."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def join_reasons(positions: Sequence[np.ndarray], reasons: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The failing positions, ascending, each once, with its reasons joined in check order (vectorised per rank)."""
    found = np.concatenate([np.asarray(each, dtype=np.int64) for each in positions]) if positions else np.array([])
    if not len(found):
        return found.astype(np.int64), np.asarray([], dtype=object)
    texts = np.concatenate([np.asarray(each, dtype=object) for each in reasons])
    ranks = np.concatenate([np.full(len(each), rank) for rank, each in enumerate(positions)])
    order = np.lexsort((ranks, found))
    found, texts = found[order], texts[order]
    starts = np.r_[True, found[1:] != found[:-1]]
    row = np.cumsum(starts) - 1
    nth = np.arange(len(found)) - np.flatnonzero(starts)[row]
    joined = texts[starts].copy()
    for rank in range(1, int(nth.max()) + 1):
        chosen = nth == rank
        joined[row[chosen]] = joined[row[chosen]] + "; " + texts[chosen]
    return found[starts], joined
