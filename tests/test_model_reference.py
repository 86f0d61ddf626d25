"""The model a user takes home (--fit-intercept, --standardize, held-out metrics) against
scikit-learn fitted on the same objective.

mpigc minimises ``(1/n) sum loss + l2/2 |coef|^2`` over the standardized features with an
unpenalised intercept; scikit-learn's LogisticRegression minimises ``C sum loss +
1/2 |coef|^2`` (so ``C = 1 / (n l2)``) and Ridge ``|y - Xw|^2 + alpha |w|^2`` (so
``alpha = n l2``), both with an unpenalised intercept. Their models, brought back to the
original units, must agree to 1e-6 relative.
"""

import numpy as np
import pytest

from mpiutil import train

L2 = 1e-2


def _sklearn_in_original_units(estimator, X, y):
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(X)
    fitted = estimator.fit(scaler.transform(X), y)
    coef = np.ravel(fitted.coef_) / scaler.scale_
    return coef, float(np.ravel([fitted.intercept_])[0] - coef @ scaler.mean_)


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - b)) / np.max(np.abs(b)))


def _run(tmp_path, data, test, model, workers=4):
    summary, _ = train(workers, ["--data", data, "--test-data", test, "--model", model,
                                 "--fit-intercept", "--standardize", "--optimizer", "lbfgs",
                                 "--tol", "1e-11", "--iterations", "300", "--l2", L2],
                       tmp_path / "run", timeout=150)
    with np.load(tmp_path / "run" / "model.npz") as z:
        return summary, z["coef"], float(z["intercept"])


def test_logistic_with_intercept_and_standardize_matches_sklearn(tmp_path):
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    from mpigc.data import save_npz

    X, y = load_breast_cancer(return_X_y=True)
    train_rows = np.arange(len(y)) % 5 != 0  # every fifth row held out
    save_npz(tmp_path / "train.npz", X[train_rows], y[train_rows])
    save_npz(tmp_path / "test.npz", X[~train_rows], y[~train_rows])
    summary, coef, intercept = _run(tmp_path, tmp_path / "train.npz", tmp_path / "test.npz",
                                    "logistic")
    n = int(train_rows.sum())
    ref = LogisticRegression(C=1.0 / (n * L2), tol=1e-13, max_iter=100000)
    ref_coef, ref_intercept = _sklearn_in_original_units(ref, X[train_rows], y[train_rows])
    assert _rel(coef, ref_coef) <= 1e-6
    assert abs(intercept - ref_intercept) <= 1e-6 * abs(ref_intercept)
    # the held-out metrics are those of the saved model's predictions
    z = X[~train_rows] @ coef + intercept
    held = summary["holdout"]
    assert held["n_rows"] == int((~train_rows).sum())
    assert held["roc_auc"] == pytest.approx(roc_auc_score(y[~train_rows], z), abs=1e-12)
    assert held["accuracy"] == pytest.approx(accuracy_score(y[~train_rows], z > 0), abs=1e-12)
    proba = 1.0 / (1.0 + np.exp(-z))
    assert held["log_loss"] == pytest.approx(log_loss(y[~train_rows], proba), rel=1e-9)


def test_linear_with_intercept_and_standardize_matches_ridge(tmp_path):
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    from mpigc.data import save_npz

    X, y = load_diabetes(return_X_y=True)
    save_npz(tmp_path / "data.npz", X, y)
    summary, coef, intercept = _run(tmp_path, tmp_path / "data.npz", tmp_path / "data.npz",
                                    "linear", workers=3)
    ref_coef, ref_intercept = _sklearn_in_original_units(
        Ridge(alpha=len(y) * L2, tol=1e-14, solver="cholesky"), X, y)
    assert _rel(coef, ref_coef) <= 1e-6
    assert abs(intercept - ref_intercept) <= 1e-6 * abs(ref_intercept)
    pred = X @ coef + intercept
    held = summary["holdout"]
    assert held["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, pred)), rel=1e-10)
    assert held["mae"] == pytest.approx(mean_absolute_error(y, pred), rel=1e-10)
    assert held["r2"] == pytest.approx(r2_score(y, pred), rel=1e-10)


@pytest.mark.parametrize("fmt", ["npz", "svm"])
def test_sparse_standardize_scales_without_densifying(tmp_path, fmt):
    """Sparse rows are scaled in place: the same nonzeros, divided by the column std, and
    the worker's allocations while standardizing stay within 2x the CSR size."""
    import tracemalloc

    import scipy.sparse as sp

    from mpigc.data import chunk_bounds, parse_data_spec, save_npz
    from mpigc.runtime.worker import ChunkData
    from mpigc.scaling import Standardization, column_stats

    X = sp.random(4000, 300, density=0.02, format="csr", random_state=1)
    X.data = np.round(X.data * 100) / 7.0
    y = np.arange(4000) % 2
    path = tmp_path / f"data.{fmt}"
    if fmt == "npz":
        save_npz(path, X, y)
    else:
        from sklearn.datasets import dump_svmlight_file

        dump_svmlight_file(X, y, str(path), zero_based=False)
    source = parse_data_spec(f"{path}:features=300" if fmt == "svm" else str(path))
    bounds = chunk_bounds(source.n_rows, 4)
    data = ChunkData(source, bounds, [0, 2])
    before = data.X.copy()
    size = data.X.data.nbytes + data.X.indices.nbytes + data.X.indptr.nbytes
    stats = column_stats(data.blocks([0, 2]), 300)
    tracemalloc.start()
    standard = Standardization.from_stats(stats, center=not source.is_sparse)
    out = standard.apply(data.X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert sp.issparse(out) and out.nnz == before.nnz
    assert peak <= 2 * size, (peak, size)
    expected = before.multiply(1.0 / standard.scale[None, :]).tocsr()
    assert abs(out - expected).max() <= 1e-15 * abs(expected).max()
    assert not np.any(standard.center)


def test_sparse_svmlight_standardized_model_matches_sklearn(tmp_path):
    """Sparse rows are scaled, not centred: scikit-learn's StandardScaler(with_mean=False)."""
    import scipy.sparse as sp
    from sklearn.datasets import dump_svmlight_file
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(4)
    X = sp.random(600, 20, density=0.2, format="csr", random_state=4)
    X.data = rng.uniform(0.5, 50.0, X.nnz)
    margin = X @ rng.standard_normal(20)
    y = (margin + 5.0 * rng.standard_normal(600) > np.median(margin)).astype(float)
    dump_svmlight_file(X, y, str(tmp_path / "d.svm"), zero_based=False)
    train(3, ["--data", f"{tmp_path / 'd.svm'}:features=20", "--fit-intercept",
              "--standardize", "--optimizer", "lbfgs", "--tol", "1e-11", "--iterations", "300",
              "--l2", L2], tmp_path / "run", timeout=150)
    with np.load(tmp_path / "run" / "model.npz") as z:
        coef, intercept = z["coef"], float(z["intercept"])
    scaler = StandardScaler(with_mean=False).fit(X)
    ref = LogisticRegression(C=1.0 / (600 * L2), tol=1e-13, max_iter=100000).fit(
        scaler.transform(X), y)
    assert _rel(coef, ref.coef_.ravel() / scaler.scale_) <= 1e-6
    assert abs(intercept - ref.intercept_[0]) <= 1e-6 * max(abs(ref.intercept_[0]), 1.0)
