"""Label and finiteness checks shared by every data reader."""

import numpy as np
import scipy.sparse as sp

from mpigc.errors import UsageError
from mpigc.models import _check_model


def _format_values(values, limit=5):
    shown = ", ".join(f"{v:g}" for v in values[:limit])
    return shown + (f", ... ({len(values)} distinct values)" if len(values) > limit else "")


def _bad_name(v):
    return "NaN" if np.isnan(v) else f"{v:+}"


def prepare_labels(y, model):
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


def row_of_entry(indptr, k):
    """The row of a CSR matrix (row pointers ``indptr``) that holds stored entry ``k``."""
    return int(np.searchsorted(indptr, k, side="right") - 1)


def check_finite(X, y, where, rows=None):
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

    if sp.issparse(X):
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
