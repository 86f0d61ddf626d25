"""``--validation-fraction``: which training rows are held out (no MPI, no data read).

Each row is held out by its own coin, drawn from blocks of :data:`BLOCK_ROWS` rows seeded by
``(seed, block)``: any rank computes the coins of any row range on its own, and the
hold-out is the same for every number of workers, chunks and schemes.
"""

from __future__ import annotations

import numpy as np

BLOCK_ROWS = 4096
_STREAM = 0x686F6C64  # keeps these coins apart from the other uses of --seed


def holdout_mask(start: int, stop: int, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of rows ``[start, stop)``: True for a held-out row.

    Parameters
    ----------
    start, stop : int
        Global row range.
    fraction : float
        Probability that a row is held out, in [0, 1).
    seed : int
    """
    if stop <= start or fraction <= 0.0:
        return np.zeros(max(stop - start, 0), dtype=bool)
    first, last = start // BLOCK_ROWS, (stop - 1) // BLOCK_ROWS
    coins = np.concatenate([np.random.default_rng([seed, _STREAM, k]).random(BLOCK_ROWS)
                            for k in range(first, last + 1)])
    offset = start - first * BLOCK_ROWS
    return coins[offset:offset + stop - start] < fraction
