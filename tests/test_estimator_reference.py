"""load_model and LinearModel against scikit-learn's LogisticRegression and Ridge with the
same coefficients set by hand, on dense and CSR data.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge

import mpigc
from mpigc.errors import UsageError

TOL = 1e-12


def _coef(X, seed=0):
    """Coefficients of realistic size: margins of a few units on these data sets."""
    return np.random.default_rng(seed).standard_normal(X.shape[1]) / X.std(axis=0) / 3.0


def _fitted(X, y):
    """A good model (fitted on standardized features), in the original units."""
    mean, std = X.mean(axis=0), X.std(axis=0)
    fit = LogisticRegression(max_iter=1000).fit((X - mean) / std, y)
    coef = fit.coef_[0] / std
    return coef, float(fit.intercept_[0] - coef @ mean)


def _save(path, coef, model, intercept=None, classes=None, layout="new"):
    arrays = {"model": model, "n_features": len(coef), "scheme": "psgc", "iterations": 50,
              "lr": 0.1, "l2": 1e-3, "optimizer": "lbfgs"}
    if layout == "new":
        arrays.update(coef=np.asarray(coef, float), intercept=np.float64(intercept or 0.0))
    else:   # files written before the intercept existed
        arrays.update(w=np.asarray(coef, float))
    if classes is not None:
        arrays["classes"] = np.asarray(classes, float)
    np.savez(path, **arrays)
    return path


def _sklearn(est, coef, intercept, classes=None):
    est.coef_ = coef[None, :] if classes is not None else coef
    est.intercept_ = np.array([intercept]) if classes is not None else intercept
    est.n_features_in_ = len(coef)
    if classes is not None:
        est.classes_ = np.asarray(classes, float)
    return est


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("classes", [None, [0.0, 1.0]])
def test_logistic_equals_sklearn(tmp_path, sparse, classes):
    X, y01 = load_breast_cancer(return_X_y=True)
    coef, intercept = _fitted(X, y01)
    m = mpigc.load_model(_save(tmp_path / "model.npz", coef, "logistic", intercept, classes))
    ref = _sklearn(LogisticRegression(), coef, intercept, [-1.0, 1.0] if classes is None
                   else classes)
    y = y01 if classes else 2.0 * y01 - 1.0
    Xin = sp.csr_matrix(X) if sparse else X
    assert m.n_features_in_ == 30 and m.intercept_ == intercept and m.model == "logistic"
    np.testing.assert_array_equal(m.classes_, ref.classes_)
    np.testing.assert_allclose(m.decision_function(Xin), ref.decision_function(X),
                               rtol=0, atol=TOL)
    np.testing.assert_allclose(m.predict_proba(Xin), ref.predict_proba(X), rtol=0, atol=TOL)
    np.testing.assert_array_equal(m.predict(Xin), ref.predict(X))
    assert m.score(Xin, y) == ref.score(X, y)
    assert 0.95 < m.score(Xin, y) < 1.0   # a good model, but not every row right
    # labels in the other encoding (0/1 against classes -1/+1, or the reverse) count by class
    other = y01 if classes is None else 2.0 * y01 - 1.0
    assert m.score(Xin, other) == m.score(Xin, y)


def test_linear_equals_ridge(tmp_path):
    X, y = load_diabetes(return_X_y=True)
    coef, intercept = 400.0 * _coef(X, seed=2) * X.std(axis=0), 152.0
    m = mpigc.load_model(_save(tmp_path / "model.npz", coef, "linear", intercept))
    ref = _sklearn(Ridge(), coef, intercept)
    for Xin in (X, sp.csr_matrix(X)):
        np.testing.assert_allclose(m.predict(Xin), ref.predict(X), rtol=TOL, atol=0)
        assert m.score(Xin, y) == pytest.approx(ref.score(X, y), rel=TOL, abs=TOL)
    assert not hasattr(m, "predict_proba") and not hasattr(m, "classes_")
    with pytest.raises(AttributeError, match="logistic models; this model is linear"):
        m.predict_proba(X)


def test_old_files_without_intercept_are_read(tmp_path):
    X, _ = load_breast_cancer(return_X_y=True)
    coef = _coef(X)
    m = mpigc.load_model(_save(tmp_path / "old.npz", coef, "logistic", layout="old"))
    assert m.intercept_ == 0.0 and m.metadata_["scheme"] == "psgc"
    np.testing.assert_array_equal(m.coef_, coef)
    np.testing.assert_array_equal(m.decision_function(X), X @ coef)


def test_wrong_inputs_name_the_problem(tmp_path):
    m = mpigc.LinearModel(np.ones(4), 0.5, "logistic")
    with pytest.raises(ValueError, match="X has 5 features, but the model expects n_features=4"):
        m.predict(np.ones((3, 5)))
    with pytest.raises(ValueError, match="2-D array"):
        m.predict(np.ones(4))
    with pytest.raises(ValueError, match="NaN or infinity"):
        m.predict(np.full((1, 4), np.nan))
    with pytest.raises(ValueError, match="logistic regression needs labels"):
        m.score(np.ones((3, 4)), [0, 1, 2])
    with pytest.raises(ValueError, match="unknown model 'svm'"):
        mpigc.LinearModel(np.ones(4), model="svm")


def _not_a_model(tmp_path, kind):
    path = tmp_path / f"{kind}.npz"
    if kind == "text":
        path.write_text("coef 1 2 3\n")
    elif kind == "npy":
        np.save(tmp_path / "a.npy", np.ones(3))
        (tmp_path / "a.npy").rename(path)
    elif kind == "data":
        np.savez(path, X=np.ones((2, 3)), y=np.ones(2))
    elif kind == "count":
        np.savez(path, coef=np.ones(3), model="logistic", n_features=4)
    return path


@pytest.mark.parametrize("kind, match", [
    ("text", r"text\.npz is not an mpigc model file \(not an \.npz archive\)"),
    ("npy", r"npy\.npz is not an mpigc model file \(a \.npy array"),
    ("data", r"data\.npz is not an mpigc model file \(no 'coef' or 'w' array"),
    ("count", r"count\.npz is not an mpigc model file: n_features=4 but 3 coefficients"),
    ("missing", r"model file not found: .*missing\.npz"),
])
def test_files_that_are_not_models(tmp_path, kind, match):
    with pytest.raises(UsageError, match=match):
        mpigc.load_model(_not_a_model(tmp_path, kind))
