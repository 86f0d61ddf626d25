"""``mpigc predict`` against scikit-learn's LogisticRegression and Ridge with the same
coefficients set by hand, on every data format ``train`` reads.
"""

import re

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import dump_svmlight_file, load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, log_loss, r2_score, roc_auc_score

from mpigc import cli
from mpigc.data import save_npz
from mpiutil import assert_ok, run_cli, train

TOL = 1e-12


def _logistic_model(tmp_path, X, y01):
    """A model fitted on standardized features, in the original units, with classes 0/1."""
    mean, std = X.mean(axis=0), X.std(axis=0)
    fit = LogisticRegression(max_iter=1000).fit((X - mean) / std, y01)
    coef = fit.coef_[0] / std
    intercept = float(fit.intercept_[0] - coef @ mean)
    np.savez(tmp_path / "model.npz", coef=coef, intercept=np.float64(intercept),
             model="logistic", n_features=X.shape[1], classes=np.array([0.0, 1.0]),
             scheme="psgc", iterations=100, lr=0.1, l2=1e-4, optimizer="lbfgs")
    ref = LogisticRegression()
    ref.coef_, ref.intercept_ = coef[None, :], np.array([intercept])
    ref.classes_, ref.n_features_in_ = np.array([0.0, 1.0]), X.shape[1]
    return tmp_path / "model.npz", ref


def _data_files(tmp_path, X, y):
    save_npz(tmp_path / "dense.npz", X, y)
    save_npz(tmp_path / "csr.npz", sp.csr_matrix(X), y)
    dump_svmlight_file(X, y, str(tmp_path / "data.svm"), zero_based=False)
    return {"dense": tmp_path / "dense.npz", "csr": tmp_path / "csr.npz",
            "svm": tmp_path / "data.svm"}


def _predict(capsys, *argv):
    assert cli.main(["predict", *map(str, argv)]) == 0
    out = capsys.readouterr()
    assert out.err == ""
    line, = out.out.splitlines()
    return {k: float(v) for k, v in re.findall(r"(\w+)=(\S+)", line.rpartition(": ")[2])}


@pytest.fixture(scope="module")
def breast_cancer():
    return load_breast_cancer(return_X_y=True)


def test_proba_equals_sklearn_on_every_format(tmp_path, capsys, breast_cancer):
    X, y = breast_cancer
    model, ref = _logistic_model(tmp_path, X, y)
    expected = ref.predict_proba(X)[:, 1]
    for kind, path in _data_files(tmp_path, X, y).items():
        out = tmp_path / f"proba-{kind}.npy"
        scores = _predict(capsys, model, path, "--proba", "--out", out)
        got = np.load(out)
        assert got.shape == (569,), kind
        assert np.max(np.abs(got - expected)) <= TOL, kind
        # the line's metrics are the data's (6 significant digits are shown)
        assert scores["accuracy"] == pytest.approx(accuracy_score(y, ref.predict(X)), rel=1e-5)
        assert scores["roc_auc"] == pytest.approx(roc_auc_score(y, expected), rel=1e-5)
        assert scores["log_loss"] == pytest.approx(log_loss(y, ref.predict_proba(X)), rel=1e-5)


def test_csv_output_parses_back_equal(tmp_path, capsys, breast_cancer):
    X, y = breast_cancer
    model, ref = _logistic_model(tmp_path, X, y)
    data = _data_files(tmp_path, X, y)["csr"]
    _predict(capsys, model, data, "--proba", "--out", tmp_path / "p.csv")
    _predict(capsys, model, data, "--proba", "--out", tmp_path / "p.npy")
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "p.csv"), np.load(tmp_path / "p.npy"))
    _predict(capsys, model, data, "--out", tmp_path / "labels.csv")
    labels = np.loadtxt(tmp_path / "labels.csv")
    np.testing.assert_array_equal(labels, ref.predict(X))   # in the model's classes, 0/1
    assert set(labels) == {0.0, 1.0}


def test_linear_predictions_equal_ridge(tmp_path, capsys):
    X, y = load_diabetes(return_X_y=True)
    rng = np.random.default_rng(3)
    coef, intercept = 300.0 * rng.standard_normal(X.shape[1]), 152.0
    np.savez(tmp_path / "model.npz", w=coef, model="linear", n_features=X.shape[1])  # old layout
    np.savez(tmp_path / "new.npz", coef=coef, intercept=np.float64(intercept), model="linear",
             n_features=X.shape[1])
    ref = Ridge()
    ref.coef_, ref.intercept_, ref.n_features_in_ = coef, intercept, X.shape[1]
    save_npz(tmp_path / "d.npz", X, y)
    scores = _predict(capsys, tmp_path / "new.npz", tmp_path / "d.npz", "--out", tmp_path / "p.npy")
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), ref.predict(X), rtol=TOL, atol=0)
    assert scores["r2"] == pytest.approx(r2_score(y, ref.predict(X)), rel=1e-5)
    _predict(capsys, tmp_path / "model.npz", tmp_path / "d.npz", "--out", tmp_path / "old.npy")
    np.testing.assert_allclose(np.load(tmp_path / "old.npy"), X @ coef, rtol=TOL, atol=0)


def test_svmlight_without_its_last_features_takes_the_models_count(tmp_path, capsys,
                                                                    breast_cancer):
    X, y = breast_cancer
    model, ref = _logistic_model(tmp_path, X, y)
    X = X.copy()
    X[:, -3:] = 0.0   # the file's largest index is then 27 of 30
    dump_svmlight_file(X, y, str(tmp_path / "short.svm"), zero_based=False)
    _predict(capsys, model, tmp_path / "short.svm", "--proba", "--out", tmp_path / "p.npy")
    assert np.max(np.abs(np.load(tmp_path / "p.npy") - ref.predict_proba(X)[:, 1])) <= TOL


def test_command_line_prints_one_line(tmp_path):
    X, y = load_breast_cancer(return_X_y=True)
    model, _ = _logistic_model(tmp_path, X, y)
    save_npz(tmp_path / "d.npz", X, y)
    res = assert_ok(run_cli(["predict", model, tmp_path / "d.npz"], cwd=tmp_path))
    assert re.fullmatch(r"mpigc predict: 569 rows of \S+d\.npz: log_loss=\S+ accuracy=0\.9\d+ "
                        r"roc_auc=0\.99\d+\n", res.stdout), res.stdout
    assert res.stderr == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz", "model.npz"]


def test_model_of_a_training_run(tmp_path, capsys):
    """The model.npz that mpigc train writes: predict on the training rows gives the run's
    own final loss and accuracy (l2 = 0: the loss is the mean log-loss).
    """
    data = "synthetic:n=600,d=5,seed=3"
    summary, _ = train(2, ["--data", data, "--iterations", "15", "--l2", "0"], tmp_path / "run")
    scores = _predict(capsys, tmp_path / "run" / "model.npz", data)
    assert scores["accuracy"] == pytest.approx(summary["accuracy"], rel=1e-5)
    assert scores["log_loss"] == pytest.approx(summary["final_loss"], rel=1e-5)
    assert 0.6 < summary["accuracy"] < 1.0
