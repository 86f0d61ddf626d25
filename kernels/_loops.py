"""Per-row losses and the fused row loops: per row one dot with ``w``, one axpy into ``grad``.

Every byte of X is read once (the row is still in L1 for the axpy), where NumPy/SciPy
read it twice (``X @ w`` then ``X.T @ r``). ``fastmath`` is limited to ``reassoc`` and
``contract``, so LLVM may vectorise the dense dot-product reduction and fuse
multiply-adds (the CSR dot keeps four explicit partial sums instead). This changes
rounding only, by about ``d * 2**-53`` times the sum of ``|x_j w_j|``, and keeps IEEE
semantics for inf and nan. float32 rows are widened to float64 before the multiply, so
every layout accumulates in float64.

The losses live in this file on purpose: Numba's cache is invalidated by the timestamp
of the file that defines a jitted function, not by those of the functions it inlines.
"""

import math

import numpy as np
from numba import njit

LOGISTIC = 0
LINEAR = 1
MODEL_CODES = {"logistic": LOGISTIC, "linear": LINEAR}


@njit(inline="always")
def logistic(t, y):
    """``log(1 + exp(-y t))`` and its derivative in ``t``, without overflow for any ``|y t|``.

    With ``z = y t`` and ``e = exp(-|z|)`` in (0, 1]: ``loss = log1p(e) + max(-z, 0)`` and
    ``sigmoid(-z) = e / (1 + e)`` for ``z > 0``, ``1 / (1 + e)`` otherwise. Written with
    selects rather than branches: the sign of the margin is unpredictable from row to row.
    """
    z = y * t
    e = math.exp(-abs(z))
    p = e if z > 0.0 else 1.0
    return math.log1p(e) + max(-z, 0.0), -y * (p / (1.0 + e))


@njit(inline="always")
def linear(t, y):
    """``0.5 (t - y)^2`` and its derivative ``t - y``."""
    r = t - y
    return 0.5 * r * r, r


@njit(inline="always")
def row_loss(model, t, y):
    """``(loss, slope)`` of one row, ``slope = d loss / d t`` at the margin ``t = x.w``.

    Dispatches on the model code: one predictable branch per row.
    """
    if model == LOGISTIC:
        return logistic(t, y)
    return linear(t, y)


_FASTMATH = {"reassoc", "contract"}
_JIT = dict(nogil=True, fastmath=_FASTMATH, error_model="numpy")
_CSR_JIT = dict(_JIT, fastmath={"contract"})


@njit(inline="always", **_JIT)
def _dense_dot(X, r, w):
    t = 0.0
    for j in range(X.shape[1]):
        t += X[r, j] * w[j]
    return t


@njit(inline="always", **_CSR_JIT)
def _csr_dot(data, indices, indptr, r, w):
    # four independent sums hide the add latency; measured faster here than letting
    # LLVM vectorise with gathers (reassoc): 250k rows x 32 nnz, linear 19.8 -> 16.0 ms
    lo, hi = indptr[r], indptr[r + 1]
    t0 = t1 = t2 = t3 = 0.0
    k = lo
    while k + 4 <= hi:
        # unsigned indices: no negative-index wraparound test
        t0 += data[k] * w[np.uintp(indices[k])]
        t1 += data[k + 1] * w[np.uintp(indices[k + 1])]
        t2 += data[k + 2] * w[np.uintp(indices[k + 2])]
        t3 += data[k + 3] * w[np.uintp(indices[k + 3])]
        k += 4
    for k in range(k, hi):
        t0 += data[k] * w[np.uintp(indices[k])]
    return (t0 + t1) + (t2 + t3)


# Both loops compute the dot product of row r + 1 before the loss and axpy of row r: the
# two are independent, so the CPU overlaps the next row's memory reads with this row's
# exp/log1p (measured on 250k x 128 float64, logistic: 44.6 ms -> 35.9 ms).


@njit(cache=True, **_JIT)
def dense(model, X, y, w, start, stop, grad):
    """Rows ``[start, stop)`` of a C-contiguous 2-D ``X``: add the gradient, return the loss sum."""
    d = X.shape[1]
    total = 0.0
    t_next = _dense_dot(X, start, w) if start < stop else 0.0
    for r in range(start, stop):
        t = t_next
        if r + 1 < stop:
            t_next = _dense_dot(X, r + 1, w)
        loss, slope = row_loss(model, t, y[r])
        total += loss
        for j in range(d):
            grad[j] += slope * X[r, j]
    return total


@njit(cache=True, **_CSR_JIT)
def csr(model, data, indices, indptr, y, w, start, stop, grad):
    """Rows ``[start, stop)`` of a CSR matrix given by its three arrays (scipy.sparse layout)."""
    total = 0.0
    t_next = _csr_dot(data, indices, indptr, start, w) if start < stop else 0.0
    for r in range(start, stop):
        t = t_next
        if r + 1 < stop:
            t_next = _csr_dot(data, indices, indptr, r + 1, w)
        loss, slope = row_loss(model, t, y[r])
        total += loss
        for k in range(indptr[r], indptr[r + 1]):
            grad[np.uintp(indices[k])] += slope * data[k]
    return total
