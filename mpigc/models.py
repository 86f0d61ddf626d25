"""NumPy/SciPy reference objective, gradient and Lipschitz bound (independent of the
Numba kernels; used by ``--verify``, the tests and ``--lr auto``).

Objective (docs/ARCHITECTURE.md): ``F(w) = (1/n) sum_r loss_r(w) + (l2/2) ||w||^2`` with
``loss_r = log(1 + exp(-y_r x_r.w))`` (logistic, labels +-1) or
``loss_r = 0.5 (x_r.w - y_r)^2`` (linear). With ``fit_intercept`` the last entry ``b`` of
``w`` is added to every margin ``x_r.w`` and is not penalised.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

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
        from scipy.special import expit

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


def lanczos_steps(dim: int, rtol: float, failure: float) -> int:
    """Lanczos steps after which the top Ritz value is below ``(1 - rtol) lambda_max`` with
    probability at most ``failure`` over a random start, for any PSD matrix of size ``dim``.

    From the bound ``1.648 sqrt(dim) exp(-sqrt(rtol) (2k - 1))`` on that probability after
    k products (Kuczynski and Wozniakowski, SIAM J. Matrix Anal. Appl. 13, 1992, Thm 4.2).
    """
    return math.ceil((math.log(1.648 * math.sqrt(dim) / failure) / math.sqrt(rtol) + 1) / 2)


def top_eigenvalue(apply: Callable[[np.ndarray], np.ndarray], dim: int, rtol: float = 0.02,
                   failure: float = 1e-6, seed: int = 0) -> float:
    """Upper bound on the largest eigenvalue of a symmetric positive semidefinite operator.

    Meant for ``X^T X / n`` held in pieces: ``apply`` may sum the products of several
    ranks' chunks (a distributed matrix-vector product). Lanczos from a Gaussian start,
    :func:`lanczos_steps` products whatever the spectrum (a power iteration needs the gap
    between the two largest eigenvalues); the top eigenvalue of the tridiagonal matrix
    it builds is the top Ritz value.

    The three-term recurrence without reorthogonalization against older vectors: lost
    orthogonality only repeats Ritz values that have converged (Paige), and the top Ritz
    value stays below ``lambda_max`` up to rounding. ARPACK (``scipy.sparse.linalg.eigsh``)
    reorthogonalizes every vector against all earlier ones, on rank 0 while every worker
    waits (docs/results.md, "Lanczos without ARPACK, a faster exit").

    Parameters
    ----------
    apply : callable
        ``apply(v) -> A v`` for a float64 vector of length ``dim``.
    dim : int
    rtol : float
        The bound is at most ``1 / (1 - rtol)`` times the eigenvalue.
    failure : float
        Largest probability, over start vectors, that the bound is below the eigenvalue.
    seed : int
        Seed of the start vector: the same seed, the same products and the same result.

    Returns
    -------
    float
        ``theta / (1 - rtol)`` for the top Ritz value ``theta``; ``lr = 1/L`` stays stable.
    """
    if dim == 0:
        return 0.0
    steps = lanczos_steps(dim, rtol, failure)
    if dim <= steps + 1:  # the Krylov space would be the whole space: the exact eigenvalue
        A = np.column_stack([apply(e) for e in np.eye(dim)])
        return float(max(np.linalg.eigvalsh((A + A.T) / 2)[-1], 0.0))
    q = np.random.default_rng(seed).standard_normal(dim)
    q /= np.linalg.norm(q)
    q_prev, beta, norm = np.zeros(dim), 0.0, 0.0  # norm: a lower estimate of ||A||
    alphas, betas = [], []
    for _ in range(steps):
        r = np.array(apply(q), dtype=np.float64)  # a copy: r is updated in place
        alpha = float(q @ r)
        r -= alpha * q + beta * q_prev
        # q's component again: the subtraction above cancels, and leaves some of it
        c = float(q @ r)
        r -= c * q
        alpha += c
        alphas.append(alpha)
        beta = float(np.linalg.norm(r))
        norm = max(norm, abs(alpha) + beta)
        if beta <= 1e-12 * norm:
            break  # an invariant subspace: its Ritz values are eigenvalues
        betas.append(beta)
        q_prev, q = q, r / beta
    k = len(alphas)
    T = np.diag(alphas) + np.diag(betas[:k - 1], 1) + np.diag(betas[:k - 1], -1)
    theta = float(np.linalg.eigvalsh(T)[-1])
    return max(theta, 0.0) / (1.0 - rtol)


def spectral_norm_sq(X) -> float:
    """``lambda_max(X^T X)`` (squared largest singular value) of a local matrix.

    When the smaller side has at most 2000 entries, the largest eigenvalue of the smaller
    Gram matrix (``X^T X`` or ``X X^T``, LAPACK); otherwise ``scipy.sparse.linalg.svds``
    (ARPACK, k = 1).
    """
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

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
