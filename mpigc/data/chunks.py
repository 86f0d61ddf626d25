"""Contiguous row ranges of the chunks D_1..D_m."""

import numpy as np

from mpigc.errors import UsageError


def chunk_bounds(n_rows: int, n_chunks: int) -> np.ndarray:
    """Split ``n_rows`` rows into ``n_chunks`` contiguous, near-equal row ranges.

    Parameters
    ----------
    n_rows : int
        Rows of the data set.
    n_chunks : int
        Number of chunks m.

    Returns
    -------
    numpy.ndarray
        ``(m + 1,)`` int64 boundaries: chunk j holds rows ``[b[j], b[j+1])``. Chunk sizes
        differ by at most one row.

    Raises
    ------
    UsageError
        If ``n_chunks < 1`` or the data set has fewer rows than chunks.
    """
    n_rows, n_chunks = int(n_rows), int(n_chunks)
    if n_chunks < 1:
        raise UsageError(f"number of chunks must be at least 1, got {n_chunks}")
    if n_rows < n_chunks:
        raise UsageError(
            f"the data set has {n_rows} rows, fewer than the {n_chunks} chunks "
            f"it must be split into")
    # Integer floor of j * n / m: exact, unlike rounding a float linspace.
    return np.arange(n_chunks + 1, dtype=np.int64) * n_rows // n_chunks
