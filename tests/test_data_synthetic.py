"""The built-in synthetic problem: determinism, row-subset equality, labels, spec parsing."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import expit

from mpigc.data import BLOCK_ROWS, chunk_bounds, parse_data_spec, prepare_labels
from mpigc.errors import UsageError


def dense(X):
    return X.toarray() if sp.issparse(X) else X


@pytest.mark.parametrize("spec", [
    "synthetic:n=3000,d=7,seed=4",
    "synthetic:n=2500,d=300,density=0.05,seed=9",
    "synthetic:n=2100,d=5,model=linear,noise=0.1",
])
def test_any_row_subset_equals_the_full_data(spec):
    src = parse_data_spec(spec)
    X, y = src.read_rows([(0, src.n_rows)])
    assert X.shape == (src.n_rows, src.n_features) and y.shape == (src.n_rows,)
    # ranges that cross block boundaries, out of order, single rows, and empty ranges
    ranges = [(BLOCK_ROWS - 3, BLOCK_ROWS + 5), (17, 18), (src.n_rows - 40, src.n_rows),
              (5, 5), (0, 2 * BLOCK_ROWS + 1)]
    Xs, ys = src.read_rows(ranges)
    idx = np.concatenate([np.arange(a, b) for a, b in ranges])
    np.testing.assert_array_equal(dense(Xs), dense(X)[idx])
    np.testing.assert_array_equal(ys, y[idx])
    # a fresh source (another rank) generates the same rows
    Xb, yb = parse_data_spec(spec).read_rows([(1000, 1100)])
    np.testing.assert_array_equal(dense(Xb), dense(X)[1000:1100])
    np.testing.assert_array_equal(yb, y[1000:1100])


def test_chunks_cover_the_data_exactly_once():
    src = parse_data_spec("synthetic:n=4099,d=3,seed=1")
    X, y = src.read_rows([(0, src.n_rows)])
    b = chunk_bounds(src.n_rows, 7)
    parts = [src.read_rows([(b[j], b[j + 1])]) for j in range(7)]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), X)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), y)


def test_seed_changes_the_data_and_dtype_float32():
    a = parse_data_spec("synthetic:n=50,d=4,seed=1").read_rows([(0, 50)])[0]
    b = parse_data_spec("synthetic:n=50,d=4,seed=2").read_rows([(0, 50)])[0]
    assert not np.array_equal(a, b)
    c, _ = parse_data_spec("synthetic:n=50,d=4,seed=1").read_rows([(0, 50)], dtype="float32")
    assert c.dtype == np.float32 and c.flags.c_contiguous
    np.testing.assert_array_equal(c, a.astype(np.float32))


def test_default_problem_and_logistic_labels_follow_the_planted_model():
    src = parse_data_spec(None)
    assert (src.n_rows, src.n_features, src.is_sparse) == (20000, 100, False)
    X, y = src.read_rows([(0, src.n_rows)])
    assert set(np.unique(y)) == {-1.0, 1.0}
    p = expit(X @ src.w_star)
    # empirical P(y = 1) matches sigmoid(x.w*) (calibration within sampling error)
    assert abs(np.mean(y == 1.0) - np.mean(p)) < 0.02
    assert abs(np.mean((y == 1.0) == (p > 0.5)) - np.mean(np.maximum(p, 1 - p))) < 0.02
    np.testing.assert_array_equal(prepare_labels(y, "logistic"), y)


def test_sparse_density_and_linear_noise():
    src = parse_data_spec("synthetic:n=4000,d=500,density=0.02,seed=3,model=linear,noise=0.3")
    X, y = src.read_rows([(0, src.n_rows)])
    assert sp.isspmatrix_csr(X) and X.dtype == np.float64
    assert 0.018 < X.nnz / (4000 * 500) < 0.0205
    resid = y - X @ src.w_star
    assert abs(resid.std() - 0.3) < 0.02


def test_model_default_comes_from_the_caller():
    src = parse_data_spec("synthetic:n=100,d=3", model="linear")
    y = src.read_rows([(0, 100)])[1]
    assert len(np.unique(y)) == 100
    with pytest.raises(UsageError, match="logistic regression needs labels"):
        src.validate("logistic")
    src.validate("linear")
    parse_data_spec("synthetic:n=100,d=3").validate("linear")   # +-1 labels fit both


@pytest.mark.parametrize("spec, message", [
    ("synthetic:n=0,d=3", "n=0 in the synthetic data spec: must be a positive integer"),
    ("synthetic:n=abc", "n in the synthetic data spec must be a positive integer"),
    ("synthetic:n=10,d=3,density=1.5", "density=1.5"),
    ("synthetic:n=10,d=3,density=0", "density=0.0"),
    ("synthetic:n=10,seed=-1", "seed=-1"),
    ("synthetic:n=10,model=poisson", "model=poisson"),
    ("synthetic:n=10,rows=3", "unknown option 'rows'"),
    ("synthetic:n=10,n=3", "option 'n' given twice"),
    ("synthetic:n=10,d", "malformed option 'd'"),
    ("synthetic:n=10,noise=-1", "noise=-1.0"),
])
def test_bad_synthetic_specs(spec, message):
    with pytest.raises(UsageError, match=message):
        parse_data_spec(spec)
