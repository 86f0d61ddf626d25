"""NumPy/SciPy reference objective, gradient and Lipschitz bound (independent of the
Numba kernels; used by ``--verify``, the tests and ``--lr auto``).

Objective (docs/ARCHITECTURE.md): ``F(w) = (1/n) sum_r loss_r(w) + (l2/2) ||w||^2`` with
``loss_r = log(1 + exp(-y_r x_r.w))`` (logistic, labels +-1) or
``loss_r = 0.5 (x_r.w - y_r)^2`` (linear). With ``fit_intercept`` the last entry ``b`` of
``w`` is added to every margin ``x_r.w`` and is not penalised.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.special import expit

from mpigc.errors import UsageError

# Largest second derivative of each loss in the margin x.w: the curvature of the
# objective is at most CURVATURE * lambda_max(X^T X / n) + l2.
CURVATURE = {"logistic": 0.25, "linear": 1.0}
MODELS = tuple(CURVATURE)


def _check_model(model):
    if model not in MODELS:
        raise UsageError(f"unknown model '{model}' (expected one of: {', '.join(MODELS)})")


def _margins(X, w, fit_intercept):
    """``X w`` (or ``X w[:d] + w[d]``) and the penalised part of ``w``."""
    if not fit_intercept:
        return X @ w, w
    coef = w[:-1]
    return X @ coef + w[-1], coef


def objective(model: str, X, y: np.ndarray, w: np.ndarray, l2: float = 0.0,
              fit_intercept: bool = False) -> float:
    """``F(w)``: mean loss over the rows of ``X`` plus ``l2/2 ||w||^2``.

    Parameters
    ----------
    model : {"logistic", "linear"}
    X : numpy.ndarray or scipy.sparse matrix, (n, d)
    y : numpy.ndarray, (n,)
        +-1 for logistic.
    w : numpy.ndarray, (d,), or (d + 1,) with ``fit_intercept`` (the intercept last)
    l2 : float
    fit_intercept : bool

    Returns
    -------
    float
        Stable at any margin (logistic uses ``logaddexp``).
    """
    _check_model(model)
    z, coef = _margins(X, w, fit_intercept)
    if model == "logistic":
        losses = np.logaddexp(0.0, -y * z)
    else:
        losses = 0.5 * (z - y) ** 2
    # skip a zero penalty: 0 * inf would turn a huge but finite loss into NaN
    return float(np.mean(losses) + (0.5 * l2 * np.dot(coef, coef) if l2 else 0.0))


def gradient(model: str, X, y: np.ndarray, w: np.ndarray, l2: float = 0.0,
             fit_intercept: bool = False) -> np.ndarray:
    """Gradient of :func:`objective` with respect to ``w`` (the shape of ``w``, float64)."""
    _check_model(model)
    z, coef = _margins(X, w, fit_intercept)
    if model == "logistic":
        slope = -y * expit(-y * z)   # d/dz log(1 + exp(-y z)), stable for any z
    else:
        slope = z - y
    n = X.shape[0]
    g = np.asarray(X.T @ slope, dtype=np.float64).ravel() / n + l2 * coef
    return np.append(g, np.sum(slope) / n) if fit_intercept else g


def lipschitz_bound(model: str, sq_norm_over_n: float, l2: float = 0.0) -> float:
    """Upper bound L on the curvature of the objective (the gradient's Lipschitz constant).

    Parameters
    ----------
    model : {"logistic", "linear"}
    sq_norm_over_n : float
        ``lambda_max(X^T X) / n`` = squared spectral norm of X over the number of rows.
    l2 : float

    Returns
    -------
    float
        ``0.25 * sq_norm_over_n + l2`` (logistic) or ``sq_norm_over_n + l2`` (linear).
    """
    _check_model(model)
    if not (np.isfinite(sq_norm_over_n) and sq_norm_over_n >= 0):
        raise UsageError(f"squared spectral norm must be finite and >= 0, got {sq_norm_over_n}")
    return CURVATURE[model] * float(sq_norm_over_n) + float(l2)


def top_eigenvalue(apply: Callable[[np.ndarray], np.ndarray], dim: int, tol: float = 1e-8,
                   max_iter: int = 1000, seed: int = 0) -> float:
    """Largest eigenvalue of a symmetric positive semidefinite operator by power iteration.

    Meant for ``X^T X / n`` held in pieces: ``apply`` may sum the products of several
    ranks' chunks (a distributed matrix-vector product), so it is called once per step.

    Parameters
    ----------
    apply : callable
        ``apply(v) -> A v`` for a float64 vector of length ``dim``.
    dim : int
    tol : float
        Stop when the residual ``||A v - theta v||`` is at most ``tol * theta``.
    max_iter : int
    seed : int
        Seed of the start vector (every rank that mirrors the iteration must agree).

    Returns
    -------
    float
        ``theta + ||A v - theta v||``, the Rayleigh quotient plus the residual: an upper
        bound on the eigenvalue the iteration converged to, so ``lr = 1/L`` stays stable.
    """
    v = np.random.default_rng(seed).standard_normal(dim)
    v /= np.linalg.norm(v)
    theta, resid = 0.0, np.inf
    for _ in range(max_iter):
        av = np.asarray(apply(v), dtype=np.float64)
        theta = float(v @ av)
        resid = float(np.linalg.norm(av - theta * v))
        norm = np.linalg.norm(av)
        if norm == 0.0 or resid <= tol * theta:
            break
        v = av / norm
    return theta + resid


def spectral_norm_sq(X) -> float:
    """``lambda_max(X^T X)`` (squared largest singular value) of a local matrix.

    When the smaller side has at most 2000 entries, the largest eigenvalue of the smaller
    Gram matrix (``X^T X`` or ``X X^T``, LAPACK); otherwise ``scipy.sparse.linalg.svds``
    (ARPACK, k = 1).
    """
    n, d = X.shape
    if min(n, d) == 0:
        return 0.0
    if min(n, d) <= 2000:
        gram = X.T @ X if d <= n else X @ X.T
        gram = gram.toarray() if sp.issparse(gram) else gram
        return float(max(np.linalg.eigvalsh(gram)[-1], 0.0))
    s = spla.svds(sp.csr_matrix(X, dtype=np.float64), k=1, return_singular_vectors=False,
                  random_state=0)
    return float(s[0] ** 2)
