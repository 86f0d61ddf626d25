"""mpigc.metrics against sklearn.metrics, whole and in pieces."""

import numpy as np
import pytest
from scipy.special import expit
from sklearn.metrics import (
    accuracy_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)

from mpigc import metrics
from mpigc.errors import UsageError

TOL = 1e-12


def _logistic(n=2000, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    z = 3.0 * rng.standard_normal(n)
    if ties:
        z = np.round(z)   # a dozen distinct scores: many ties within and across classes
    y = np.where(rng.random(n) < expit(z + rng.standard_normal(n)), 1.0, -1.0)
    return z, y


def _linear(n=2000, seed=1):
    rng = np.random.default_rng(seed)
    y = 150.0 + 70.0 * rng.standard_normal(n)
    return y + 30.0 * rng.standard_normal(n), y


@pytest.mark.parametrize("ties", [False, True])
def test_logistic_metrics_equal_sklearn(ties):
    z, y = _logistic(ties=ties)
    got = metrics.compute("logistic", z, y)
    proba = np.column_stack([expit(-z), expit(z)])
    assert abs(got["log_loss"] - log_loss(y, proba, labels=[-1, 1])) < TOL
    assert abs(got["accuracy"] - accuracy_score(y, np.where(z > 0, 1.0, -1.0))) < TOL
    assert abs(got["roc_auc"] - roc_auc_score(y, z)) < TOL
    assert abs(metrics.roc_auc(z, (y > 0).astype(float)) - roc_auc_score(y, z)) < TOL  # 0/1


def test_auc_all_tied_is_one_half():
    assert metrics.roc_auc(np.zeros(6), [1, -1, 1, -1, -1, 1]) == 0.5


def test_log_loss_is_finite_at_any_margin():
    z = np.array([1e3, -1e3, 1e300, -1e300])
    y = np.array([1.0, 1.0, -1.0, -1.0])
    # -log P = log(1 + exp(-y z)): 0, 1000, 1e300, 0 (1 - exp(-1000) is 1 in float64)
    n, total, correct = metrics.partial_sums("logistic", z, y)
    assert (n, correct) == (4, 2) and total == pytest.approx(1e300, rel=TOL)
    assert metrics.partial_sums("logistic", z[:2], y[:2])[1] == 1e3


def test_linear_metrics_equal_sklearn():
    z, y = _linear()
    got = metrics.compute("linear", z, y)
    assert got["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, z)), rel=TOL)
    assert got["mae"] == pytest.approx(mean_absolute_error(y, z), rel=TOL)
    assert got["r2"] == pytest.approx(r2_score(y, z), rel=TOL)


@pytest.mark.parametrize("model, data", [("logistic", _logistic(ties=True)),
                                         ("linear", _linear())])
def test_pieces_combine_to_the_whole(model, data):
    z, y = data
    cuts = [0, 0, 137, 1000, 1999, len(z)]   # an empty piece and a one-row piece
    pieces = [metrics.partial_sums(model, z[a:b], y[a:b]) for a, b in zip(cuts, cuts[1:])]
    assert all(p.shape == (len(metrics.SUMS[model]),) for p in pieces)
    auc = metrics.roc_auc(z, y) if model == "logistic" else None
    combined = metrics.from_sums(model, np.sum(pieces, axis=0), auc=auc)
    whole = metrics.compute(model, z, y)
    assert combined.keys() == whole.keys() == set(metrics.METRICS[model])
    for key in whole:
        assert combined[key] == pytest.approx(whole[key], rel=TOL), key


def test_undefined_metrics_are_nan():
    assert np.isnan(metrics.roc_auc([0.1, 0.7, 0.3], [1, 1, 1]))
    assert np.isnan(metrics.compute("logistic", [0.2, -0.4], [-1, -1])["roc_auc"])
    assert np.isnan(metrics.from_sums("logistic", [2, 1.0, 1])["roc_auc"])  # no auc given
    # constant targets: no variance to explain, whether or not the predictions are right
    for z in ([0.1] * 5, [0.1, 0.1, 0.1, 0.1, 0.2]):
        assert np.isnan(metrics.compute("linear", z, [0.1] * 5)["r2"])
    for model in metrics.METRICS:
        assert all(np.isnan(v) for v in metrics.compute(model, [], []).values())


def test_bad_arguments_name_the_problem():
    with pytest.raises(UsageError, match="labels -1 and \\+1"):
        metrics.partial_sums("logistic", [0.5, 1.0], [0.0, 1.0])
    with pytest.raises(UsageError, match="same length, got 2 and 3"):
        metrics.compute("linear", [1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(UsageError, match="5 entries, got shape \\(3,\\)"):
        metrics.from_sums("linear", [1.0, 2.0, 3.0])
    with pytest.raises(UsageError, match="unknown model 'svm'"):
        metrics.compute("svm", [1.0], [1.0])
