"""``mpigc train`` reaches the optimum on real data sets shipped with scikit-learn.

The reference optimum comes from scikit-learn (logistic) and a direct solve of the normal
equations (linear), with the objective evaluated by NumPy here, independently of mpigc.
"""

import numpy as np
import pytest

from mpiutil import train

L2 = 1e-3


def _objective(model, X, y, w):
    z = X @ w
    loss = np.logaddexp(0.0, -y * z) if model == "logistic" else 0.5 * (z - y) ** 2
    return loss.mean() + 0.5 * L2 * w @ w


def _breast_cancer():
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    X, y = StandardScaler().fit_transform(X), 2.0 * y - 1.0
    clf = LogisticRegression(C=1.0 / (len(y) * L2), fit_intercept=False, tol=1e-14,
                             max_iter=100000).fit(X, y)
    return X, y, clf.coef_.ravel()


def _diabetes():
    from sklearn.datasets import load_diabetes
    from sklearn.preprocessing import StandardScaler

    X, y = load_diabetes(return_X_y=True)
    X = np.c_[StandardScaler().fit_transform(X), np.ones(len(y))]  # with an intercept
    y = (y - y.mean()) / y.std()
    n, d = X.shape
    return X, y, np.linalg.solve(X.T @ X / n + L2 * np.eye(d), X.T @ y / n)


@pytest.mark.parametrize("model, make, iterations", [
    ("logistic", _breast_cancer, 700),
    ("linear", _diabetes, 300),
])
def test_reaches_the_reference_optimum(model, make, iterations, tmp_path):
    from mpigc.data import save_npz

    X, y, w_ref = make()
    save_npz(tmp_path / "data.npz", X, y)
    summary, records = train(4, ["--model", model, "--data", tmp_path / "data.npz",
                                 "--scheme", "psgc", "--optimizer", "nesterov", "--l2", L2,
                                 "--iterations", iterations,
                                 "--stragglers", "bimodal:p=0.25,slowdown=4"],
                             tmp_path / "run", timeout=150)
    best = _objective(model, X, y, w_ref)
    w = np.load(tmp_path / "run" / "model.npz")["coef"]
    assert _objective(model, X, y, w) == pytest.approx(summary["final_loss"], rel=1e-12)
    assert abs(summary["final_loss"] - best) <= 1e-6 * best
    assert summary["final_loss"] >= best * (1 - 1e-12)  # the reference is the optimum


@pytest.mark.parametrize("name", ["breast_cancer", "diabetes"])
def test_lbfgs_reaches_scipys_optimum_with_the_distributed_feature_scale(name, tmp_path):
    # bench convergence's problems (a) and (c); the optimum of SciPy's L-BFGS-B (gtol
    # 1e-12), the feature scale of the checkpoint against NumPy's column statistics
    from scipy.optimize import minimize

    from mpigc import models
    from mpigc.bench.convergence import problem
    from mpigc.data import save_npz
    from mpigc.runtime import checkpoint
    from mpigc.scaling import column_stats, feature_scale

    model, X, y, l2 = problem(name)
    save_npz(tmp_path / "data.npz", X, y)
    ref = minimize(lambda w: (models.objective(model, X, y, w, l2),
                              models.gradient(model, X, y, w, l2)), np.zeros(X.shape[1]),
                   jac=True, method="L-BFGS-B", options=dict(gtol=1e-12, ftol=0.0,
                                                              maxiter=100000))
    tol = 1e-7 * np.abs(models.gradient(model, X, y, np.zeros(X.shape[1]), l2)).max()
    summary, records = train(4, ["--model", model, "--data", tmp_path / "data.npz",
                                 "--optimizer", "lbfgs", "--l2", l2, "--tol", tol,
                                 "--iterations", 200, "--checkpoint-every", 1,
                                 "--stragglers", "bimodal:p=0.25,slowdown=4"],
                             tmp_path / "run", timeout=150)
    assert summary["stop_reason"] == "converged"
    assert summary["evaluations"] == len(records) < 100
    assert abs(summary["final_loss"] - ref.fun) <= 1e-6 * abs(ref.fun)
    w = np.load(tmp_path / "run" / "model.npz")["coef"]
    assert np.abs(models.gradient(model, X, y, w, l2)).max() <= tol
    np.testing.assert_allclose(w, ref.x, rtol=0, atol=1e-4 * np.abs(ref.x).max())
    # every record's loss is the exact objective at its point (here: the last one)
    assert records[-1]["loss"] == pytest.approx(summary["final_loss"], rel=1e-12)
    np.testing.assert_allclose(checkpoint.load(tmp_path / "run").scale,
                               feature_scale(column_stats([X], X.shape[1])), rtol=1e-12)
