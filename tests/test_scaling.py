"""Column statistics and the optimizer's feature-scale coordinates against NumPy."""

import numpy as np
import pytest
import scipy.sparse as sp

from mpigc.models import gradient, objective
from mpigc.scaling import column_stats, feature_scale, from_user, scaled, to_user


def test_column_stats_of_blocks_equal_numpys_over_the_whole_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, 5)) * [1e-3, 1.0, 10.0, 1.0, 0.0] + [0, 1e6, -3, 0, 7]
    blocks = [X[:10], X[10:600], X[600:]]
    stats = column_stats(blocks, 5)
    assert stats.n_rows == 1000
    np.testing.assert_allclose(stats.mean, X.mean(0), rtol=1e-14)
    # the 1e6-mean column keeps its unit std (one pass of sums of squares would not)
    np.testing.assert_allclose(stats.std, X.std(0), rtol=1e-9, atol=1e-12)
    f32 = column_stats([b.astype(np.float32) for b in blocks], 5)
    np.testing.assert_allclose(f32.std, X.astype(np.float32).astype(float).std(0), rtol=1e-6,
                               atol=1e-9)


def test_sparse_columns_count_their_zeros():
    X = sp.random(400, 6, density=0.05, format="csr", random_state=1) * 5.0
    stats = column_stats([X[:150], X[150:]], 6)
    dense = X.toarray()
    np.testing.assert_allclose(stats.mean, dense.mean(0), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(stats.std, dense.std(0), rtol=1e-12, atol=1e-15)


def test_an_empty_rank_contributes_nothing():
    X = np.arange(12.0).reshape(6, 2)
    assert column_stats([], 2).n_rows == 0
    np.testing.assert_array_equal(column_stats([X[:0], X], 2).mean, X.mean(0))


def test_scale_is_the_std_with_constant_columns_kept_in_their_units():
    X = np.column_stack([np.arange(10.0), np.ones(10), np.zeros(10), np.full(10, -4.0),
                         3.0 + 1e-12 * np.arange(10)])
    scale = feature_scale(column_stats([X], 5))
    np.testing.assert_allclose(scale, [np.arange(10.0).std(), 1.0, 1.0, 4.0, 3.0],
                               rtol=1e-10)


@pytest.mark.parametrize("model", ["logistic", "linear"])
def test_scaled_objective_is_the_same_function_with_the_chain_rule_gradient(model):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((50, 3)) * [0.01, 1.0, 100.0]
    y = np.where(rng.random(50) < 0.5, 1.0, -1.0)
    scale = feature_scale(column_stats([X], 3))
    w = rng.standard_normal(3)
    v = from_user(w, scale)
    np.testing.assert_allclose(to_user(v, scale), w, rtol=1e-15)
    f, g = scaled(lambda u: (objective(model, X, y, u, 0.1), gradient(model, X, y, u, 0.1)),
                  scale)(v)
    assert f == pytest.approx(objective(model, X, y, w, 0.1), rel=1e-14)
    h = 1e-6
    numeric = [(objective(model, X, y, to_user(v + h * e, scale), 0.1)
                - objective(model, X, y, to_user(v - h * e, scale), 0.1)) / (2 * h)
               for e in np.eye(3)]
    np.testing.assert_allclose(g, numeric, rtol=1e-6)
