"""Label and finiteness checks shared by every data reader."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from mpigc.errors import UsageError
from mpigc.models import _check_model
from mpigc.sparse import issparse

if TYPE_CHECKING:
    import scipy.sparse as sp

    from mpigc.data.source import DataSource


def _format_values(values, limit=5):
    shown = ", ".join(f"{v:g}" for v in values[:limit])
    return shown + (f", ... ({len(values)} distinct values)" if len(values) > limit else "")


def _bad_name(v):
    return "NaN" if np.isnan(v) else f"{v:+}"


def prepare_labels(y: ArrayLike, model: str) -> np.ndarray:
    """Check that the labels fit ``model`` and convert them to its convention.

    Parameters
    ----------
    y : array_like
        Raw labels (1-D).
    model : {"logistic", "linear"}
        Logistic regression accepts labels in {0, 1} or {-1, 1} (mixing the two sets is
        an error) and maps them to -1/+1. Linear regression accepts any finite target.

    Returns
    -------
    numpy.ndarray
        float64 labels, C-contiguous.

    Raises
    ------
    UsageError
        Unknown model, non-finite labels, or labels outside the model's set (the message
        names the offending values).
    """
    _check_model(model)
    y = np.ascontiguousarray(y, dtype=np.float64)
    if y.ndim != 1:
        raise UsageError(f"labels must be a 1-D array, got shape {y.shape}")
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise UsageError(f"label of row {bad[0]} is {_bad_name(y[bad[0]])}")
    if model == "linear":
        return y
    values = np.unique(y)
    if not (set(values) <= {0.0, 1.0} or set(values) <= {-1.0, 1.0}):
        offending = values[~np.isin(values, (-1.0, 0.0, 1.0))]
        what = _format_values(offending if offending.size else values)
        raise UsageError(
            f"logistic regression needs labels in {{0, 1}} or {{-1, 1}}; got {what}")
    return np.where(y > 0.0, 1.0, -1.0)


def row_of_entry(indptr: np.ndarray, k: int) -> int:
    """The row of a CSR matrix (row pointers ``indptr``) that holds stored entry ``k``."""
    return int(np.searchsorted(indptr, k, side="right") - 1)


def check_finite(X: np.ndarray | sp.csr_matrix, y: np.ndarray, where: str,
                 rows: ArrayLike | None = None) -> None:
    """Raise if ``X`` or ``y`` holds NaN or an infinity.

    Parameters
    ----------
    X : numpy.ndarray or scipy.sparse.csr_matrix
        Features (2-D).
    y : numpy.ndarray
        Labels (1-D).
    where : str
        Name of the data set, the start of the message (e.g. the file name).
    rows : array_like of int, optional
        Global row number of each local row, so the message names the row of the whole
        data set; default ``0..len(y)-1``.

    Raises
    ------
    UsageError
        Naming the first bad row and feature (0-based), e.g.
        ``"data.npz: X has NaN at row 17, feature 3"``.
    """
    def row_name(r):
        return int(rows[r]) if rows is not None else int(r)

    if issparse(X):
        bad = np.flatnonzero(~np.isfinite(X.data))
        if bad.size:
            k = bad[0]
            r = row_of_entry(X.indptr, k)
            raise UsageError(f"{where}: X has {_bad_name(X.data[k])} at row {row_name(r)}, "
                             f"feature {int(X.indices[k])}")
    else:
        finite = np.isfinite(X)
        if not finite.all():
            r, c = np.argwhere(~finite)[0]
            raise UsageError(
                f"{where}: X has {_bad_name(X[r, c])} at row {row_name(r)}, feature {c}")
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise UsageError(f"{where}: y has {_bad_name(y[bad[0]])} at row {row_name(bad[0])}")


def available_memory() -> int:
    """Bytes of memory this node can still give to new allocations (Linux MemAvailable;
    elsewhere the physical memory).
    """
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def format_bytes(n: float) -> str:
    """``n`` bytes as a short text in powers of 1024 (``"745 GiB"``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024


def check_memory(source: DataSource, vectors: int, rows: int, dtype: DTypeLike = "float64",
                 available: int | None = None) -> None:
    """Refuse, before anything is allocated, a data set whose sizes cannot fit in memory.

    Parameters
    ----------
    source : DataSource
        Its ``n_features`` (and, for dense data, the bytes of its rows) set the sizes.
    vectors : int
        float64 vectors of ``n_features`` entries that one rank holds at once (the model,
        gradients, received vectors).
    rows : int
        The most rows one rank reads (dense rows cost ``n_features`` values each; CSR rows
        are bounded by the file they come from, not checked here).
    dtype : {"float64", "float32"}
        Of dense rows.
    available : int, optional
        Bytes available (default :func:`available_memory`).

    Raises
    ------
    UsageError
        Naming where the feature count comes from (a file's line and index, an option),
        the memory the rank would need and the memory available.
    """
    avail = available_memory() if available is None else int(available)
    d = int(source.n_features)
    model = int(vectors) * d * 8
    origin = source.features_origin or f"{source.name}: {d} features"
    if model > avail:
        raise UsageError(f"{origin}: a model of {d} features needs {format_bytes(model)} per "
                         f"rank ({vectors} vectors of {format_bytes(8 * d)}), more than the "
                         f"{format_bytes(avail)} of memory available")
    if not source.is_sparse:
        data = int(rows) * d * np.dtype(dtype).itemsize
        if model + data > avail:
            raise UsageError(f"{source.name}: the {rows} x {d} rows of one rank and the model "
                             f"need {format_bytes(model + data)}, more than the "
                             f"{format_bytes(avail)} of memory available")


def check_output_file(out: str) -> str:
    """Refuse an output path that cannot be written as a file (UsageError naming it);
    returns its directory, absolute.
    """
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise UsageError(f"cannot write {out}: {os.path.dirname(out)} is not a directory")
    if os.path.isdir(out):
        raise UsageError(f"cannot write {out}: it is a directory")
    return parent
