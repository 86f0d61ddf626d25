"""`DataSource`: the interface every reader implements (rows on demand)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import DTypeLike

from mpigc.data.checks import check_finite, prepare_labels
from mpigc.errors import UsageError
from mpigc.sparse import csr_matrix, issparse

if TYPE_CHECKING:
    import scipy.sparse as sp

DTYPES = ("float64", "float32")


class DataSource:
    """A data set whose rows are read on demand.

    Attributes
    ----------
    n_rows, n_features : int
    name : str
        For messages (a file name, or the synthetic spec).
    is_sparse : bool
        ``read_rows`` returns a ``scipy.sparse.csr_matrix`` (else a dense ndarray).
    features_origin : str or None
        Where ``n_features`` comes from (a line of a file, an option), for messages.
    parses : bool
        Reading rows means parsing text, the costly part of a job's start-up: a job then
        parses each chunk once, on its owner, and sends the rows to the chunk's other
        holders (:func:`mpigc.runtime.rows.read`). Such sources are sparse.

    Subclasses implement ``_read(start, stop) -> (X, y)`` for one row range (X float64,
    dense or CSR with ``n_features`` columns) and ``labels()``.
    """

    n_rows: int
    n_features: int
    name: str
    is_sparse: bool
    features_origin = None   # where n_features comes from, for messages (set by readers)
    parses = False

    def _read(self, start, stop):
        raise NotImplementedError

    def labels(self) -> np.ndarray:
        """All raw labels of the data set (float64); cheap: features are not read."""
        raise NotImplementedError

    def validate(self, model: str) -> None:
        """Check, before any distributed work, that the labels of the whole data set fit
        ``model`` (see :func:`prepare_labels`). Raises UsageError naming the file.
        """
        try:
            prepare_labels(self.labels(), model)
        except UsageError as exc:
            raise UsageError(f"{self.name}: {exc}") from None

    def read_rows(self, ranges: Sequence[tuple[int, int]], dtype: DTypeLike = "float64"
                  ) -> tuple[np.ndarray | sp.csr_matrix, np.ndarray]:
        """Read the rows of ``ranges`` (and only those), concatenated in the given order.

        Parameters
        ----------
        ranges : list of (int, int)
            Half-open row ranges ``[start, stop)`` with ``0 <= start <= stop <= n_rows``.
        dtype : {"float64", "float32"}
            Dtype of dense X (CSR is always float64).

        Returns
        -------
        X : numpy.ndarray or scipy.sparse.csr_matrix
            C-contiguous ``(rows, n_features)``.
        y : numpy.ndarray
            float64 raw labels (convert with :func:`prepare_labels`).

        Raises
        ------
        UsageError
            Bad ranges, or rows that hold NaN/inf or malformed entries (the message names
            the file and the row or line).
        """
        if dtype not in DTYPES:
            raise UsageError(f"unknown dtype '{dtype}' (expected float64 or float32)")
        parts, rows = [], []
        for rng in ranges:
            try:
                start, stop = (int(v) for v in rng)
            except (TypeError, ValueError):
                raise UsageError(f"row range must be a pair of integers, got {rng!r}") from None
            if not 0 <= start <= stop <= self.n_rows:
                raise UsageError(
                    f"row range [{start}, {stop}) is outside {self.name} ({self.n_rows} rows)")
            if stop > start:
                try:
                    parts.append(self._read(start, stop))
                except OSError as exc:   # e.g. a node that cannot see the file
                    raise UsageError(f"cannot read data file {self.name}: "
                                     f"{exc.strerror or exc}") from None
                rows.append(np.arange(start, stop))
        if not parts:
            X = (csr_matrix((0, self.n_features)) if self.is_sparse
                 else np.empty((0, self.n_features)))
            return _as_dtype(X, dtype), np.empty(0)
        X, y = stack_rows(parts, self.is_sparse)
        # check after the cast: a float64 value beyond the float32 range becomes inf
        X, y = _as_dtype(X, dtype), np.ascontiguousarray(y, dtype=np.float64)
        check_finite(X, y, self.name, rows=np.concatenate(rows))
        return X, y


def stack_rows(parts: Sequence[tuple[np.ndarray | sp.csr_matrix, np.ndarray]], sparse: bool
               ) -> tuple[np.ndarray | sp.csr_matrix, np.ndarray]:
    """One ``(X, y)`` from ``(X, y)`` parts in row order (a single part as it is).

    X is stacked into CSR when ``sparse`` (every part CSR), else concatenated (every part
    dense); y is concatenated.
    """
    if len(parts) == 1:
        return parts[0]
    Xs = [p[0] for p in parts]
    if sparse:
        import scipy.sparse as sp

        X = sp.vstack(Xs, format="csr")
    else:
        X = np.concatenate(Xs)
    return X, np.concatenate([p[1] for p in parts])


def _as_dtype(X, dtype):
    if issparse(X):
        X = csr_matrix(X, dtype=np.float64)
        X.sort_indices()
        return X
    with np.errstate(over="ignore"):   # read_rows reports the overflow, naming the entry
        return np.ascontiguousarray(X, dtype=dtype)
