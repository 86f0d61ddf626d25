"""Reference objective and gradient, Lipschitz bound, spectral norm and the Lanczos bound."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import approx_fprime, check_grad

from mpigc.errors import UsageError
from mpigc.models import (
    gradient,
    lanczos_steps,
    lipschitz_bound,
    objective,
    spectral_norm_sq,
    top_eigenvalue,
)


def problem(model, sparse=False, n=80, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if sparse:
        X = sp.csr_matrix(X * (rng.random((n, d)) < 0.4))
    y = np.where(rng.random(n) < 0.5, 1.0, -1.0) if model == "logistic" else rng.standard_normal(n)
    return X, y, rng.standard_normal(d)


def brute_objective(model, X, y, w, l2):
    X = X.toarray() if sp.issparse(X) else X
    total = 0.0
    for x, t in zip(X, y):
        z = float(np.dot(x, w))
        total += np.log1p(np.exp(-t * z)) if model == "logistic" else 0.5 * (z - t) ** 2
    return total / len(y) + 0.5 * l2 * float(np.dot(w, w))


@pytest.mark.parametrize("model", ["logistic", "linear"])
@pytest.mark.parametrize("sparse", [False, True])
def test_objective_and_gradient(model, sparse):
    X, y, w = problem(model, sparse)
    l2 = 0.3
    assert objective(model, X, y, w, l2) == pytest.approx(brute_objective(model, X, y, w, l2),
                                                          rel=1e-12)
    assert check_grad(lambda v: objective(model, X, y, v, l2),
                      lambda v: gradient(model, X, y, v, l2), w) < 1e-6
    fd = approx_fprime(w, lambda v: objective(model, X, y, v, l2), 1e-7)
    np.testing.assert_allclose(gradient(model, X, y, w, l2), fd, rtol=1e-5, atol=1e-6)


def test_logistic_is_stable_at_extreme_margins():
    X = np.array([[1.0], [1.0], [-1.0]])
    y = np.array([1.0, -1.0, 1.0])
    for scale in (1e3, 1e6, 1e150):
        w = np.array([scale])
        f = objective("logistic", X, y, w)
        g = gradient("logistic", X, y, w)
        # rows 2 and 3 have margin -scale: loss ~ scale each, gradient -> (0 + 1 + 1)/3
        assert np.isfinite(f) and f == pytest.approx(2 * scale / 3, rel=1e-12)
        np.testing.assert_allclose(g, [2 / 3], rtol=1e-12)
    assert 0.0 <= objective("logistic", X[:1], y[:1], np.array([800.0])) < 1e-300
    np.testing.assert_array_equal(gradient("logistic", X[:1], y[:1], np.array([1e300])), [0.0])


@pytest.mark.parametrize("model", ["logistic", "linear"])
@pytest.mark.parametrize("sparse", [False, True])
def test_lipschitz_bound_covers_the_curvature(model, sparse):
    X, y, w = problem(model, sparse, n=200, d=8, seed=3)
    l2 = 0.05
    L = lipschitz_bound(model, spectral_norm_sq(X) / X.shape[0], l2)
    Xd = X.toarray() if sparse else X
    rng = np.random.default_rng(1)
    worst = 0.0
    for v in [np.zeros(8), w, 10 * w] + [rng.standard_normal(8) for _ in range(20)]:
        # exact Hessian: X^T diag(s) X / n + l2 I
        if model == "logistic":
            p = 1.0 / (1.0 + np.exp(-Xd @ v))
            s = p * (1 - p)
        else:
            s = np.ones(Xd.shape[0])
        H = (Xd.T * s) @ Xd / Xd.shape[0] + l2 * np.eye(8)
        worst = max(worst, np.linalg.eigvalsh(H)[-1])
    assert worst <= L * (1 + 1e-12)
    if model == "linear":
        assert worst == pytest.approx(L, rel=1e-10)      # the bound is tight for least squares
    else:
        assert worst == pytest.approx(L, rel=0.05)       # tight at w = 0, where p = 1/2


@pytest.mark.parametrize("shape, sparse", [((300, 20), False), ((50, 3000), False),
                                           ((400, 300), True), ((2, 5), True)])
def test_spectral_norm_sq_matches_svd(shape, sparse):
    rng = np.random.default_rng(7)
    X = rng.standard_normal(shape)
    if sparse:
        X = sp.csr_matrix(X * (rng.random(shape) < 0.05))
    dense = X.toarray() if sparse else X
    assert spectral_norm_sq(X) == pytest.approx(np.linalg.norm(dense, 2) ** 2, rel=1e-9)


def test_spectral_norm_sq_of_a_large_sparse_matrix():
    # one entry per column, in distinct rows: X^T X = diag(values^2), known exactly
    rng = np.random.default_rng(3)
    values = rng.standard_normal(2100)
    rows = rng.permutation(2500)[:2100]
    X = sp.csr_matrix((values, (rows, np.arange(2100))), shape=(2500, 2100))
    assert spectral_norm_sq(X) == pytest.approx(np.max(values ** 2), rel=1e-9)


def _wishart(rng, n, d):
    return rng.standard_normal((n, d)) / np.sqrt(n)


@pytest.mark.parametrize("name", ["wishart", "wide", "rank-3", "dense-top", "tiny"])
def test_lanczos_bound_is_above_the_top_eigenvalue_from_chunked_products(name):
    rng = np.random.default_rng(len(name))
    X = {"wishart": lambda: _wishart(rng, 900, 300),
         "wide": lambda: _wishart(rng, 150, 400),            # rank-deficient, X^T X singular
         "rank-3": lambda: rng.standard_normal((3, 250)),
         # the 40 largest eigenvalues within 0.1%: no gap for a power iteration
         "dense-top": lambda: np.linalg.qr(rng.standard_normal((300, 300)))[0]
         * np.sqrt(np.r_[1 + 1e-3 * rng.random(40), rng.random(260)]),
         "tiny": lambda: rng.standard_normal((5, 2))}[name]()
    chunks = np.array_split(np.arange(X.shape[0]), 7)
    calls = []

    def apply(v):   # the way the runtime sums the chunks' X_j^T X_j v
        calls.append(1)
        return sum(X[c].T @ (X[c] @ v) for c in chunks)

    d = X.shape[1]
    exact = np.linalg.eigvalsh(X.T @ X)[-1]
    est = top_eigenvalue(apply, d, rtol=0.02, seed=5)
    assert exact * (1 - 1e-12) <= est <= exact / 0.98 * (1 + 1e-12)
    # one Krylov space of lanczos_steps vectors (fewer where it becomes invariant: rank 3),
    # or d products of the basis vectors where that is no more
    steps = lanczos_steps(d, 0.02, 1e-6)
    assert len(calls) == d if d <= steps + 1 else 3 < len(calls) <= steps
    assert top_eigenvalue(apply, d, rtol=0.02, seed=5) == est   # the seed fixes the result


def test_lanczos_steps_follow_the_probability_bound():
    # 1.648 sqrt(n) exp(-sqrt(rtol) (2k - 1)) <= failure at k, not at k - 1
    for n, rtol, failure in [(1000, 0.02, 1e-6), (50_000, 0.02, 1e-6), (10**8, 0.05, 1e-9)]:
        k = lanczos_steps(n, rtol, failure)
        bound = 1.648 * np.sqrt(n) * np.exp(-np.sqrt(rtol) * (2 * np.array([k, k - 1]) - 1))
        assert bound[0] <= failure < bound[1]


def test_top_eigenvalue_of_the_zero_operator_and_of_no_dimension():
    assert top_eigenvalue(lambda v: np.zeros_like(v), 400) == 0.0
    assert top_eigenvalue(lambda v: np.zeros_like(v), 0) == 0.0


def test_bad_arguments():
    X, y, w = problem("linear")
    for call in (lambda: objective("probit", X, y, w), lambda: gradient("svm", X, y, w),
                 lambda: lipschitz_bound("hinge", 1.0)):
        with pytest.raises(UsageError, match="unknown model"):
            call()
    with pytest.raises(UsageError, match="squared spectral norm must be finite"):
        lipschitz_bound("linear", np.nan)
