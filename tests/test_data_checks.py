"""chunk_bounds, prepare_labels and check_finite."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from mpigc.data import check_finite, chunk_bounds, prepare_labels
from mpigc.errors import UsageError


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 10**7), st.integers(1, 500))
def test_chunk_bounds_are_contiguous_and_balanced(n_rows, n_chunks):
    if n_rows < n_chunks:
        with pytest.raises(UsageError, match=f"has {n_rows} rows, fewer than the {n_chunks}"):
            chunk_bounds(n_rows, n_chunks)
        return
    b = chunk_bounds(n_rows, n_chunks)
    sizes = np.diff(b)
    assert b[0] == 0 and b[-1] == n_rows and b.size == n_chunks + 1
    assert sizes.min() >= 1 and sizes.max() - sizes.min() <= 1
    # the same multiset of sizes as NumPy's split into near-equal parts
    q, r = divmod(n_rows, n_chunks)
    assert np.count_nonzero(sizes == q + 1) == r and np.count_nonzero(sizes == q) == n_chunks - r


def test_chunk_bounds_rejects_zero_chunks():
    with pytest.raises(UsageError, match="number of chunks must be at least 1, got 0"):
        chunk_bounds(10, 0)


@pytest.mark.parametrize("y, expect", [
    ([0, 1, 1, 0], [-1, 1, 1, -1]),
    ([-1, 1, -1], [-1, 1, -1]),
    ([1, 1], [1, 1]),
    ([0.0], [-1.0]),
])
def test_logistic_labels(y, expect):
    out = prepare_labels(np.array(y), "logistic")
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, expect)


@pytest.mark.parametrize("y, message", [
    ([0, 1, 2], r"got 2$"),
    ([-1, 0, 1], r"got -1, 0, 1"),
    ([0.5, 1], r"got 0.5"),
    (np.arange(10.0) + 2, r"got 2, 3, 4, 5, 6, \.\.\. \(10 distinct values\)"),
    ([1, np.nan], r"label of row 1 is NaN"),
])
def test_logistic_rejects_other_labels(y, message):
    with pytest.raises(UsageError, match=message):
        prepare_labels(np.array(y, dtype=float), "logistic")


def test_linear_labels_and_unknown_model():
    y = np.array([3.5, -2.0, 1e9])
    np.testing.assert_array_equal(prepare_labels(y, "linear"), y)
    with pytest.raises(UsageError, match=r"label of row 0 is \+inf"):
        prepare_labels([np.inf], "linear")
    with pytest.raises(UsageError, match="unknown model 'svm'"):
        prepare_labels(y, "svm")
    with pytest.raises(UsageError, match="1-D"):
        prepare_labels(np.ones((2, 2)), "linear")


def test_check_finite_names_the_first_bad_entry():
    X = np.ones((5, 4))
    X[3, 1] = -np.inf
    X[2, 3] = np.nan
    with pytest.raises(UsageError, match="data.npz: X has NaN at row 2, feature 3"):
        check_finite(X, np.ones(5), "data.npz")
    with pytest.raises(UsageError, match="d: X has NaN at row 102, feature 3"):
        check_finite(X, np.ones(5), "d", rows=np.arange(100, 105))
    S = sp.csr_matrix(X[3:])
    with pytest.raises(UsageError, match="s: X has -inf at row 0, feature 1"):
        check_finite(S, np.ones(2), "s")
    with pytest.raises(UsageError, match="y has NaN at row 7"):
        check_finite(np.ones((2, 2)), np.array([1, np.nan]), "f", rows=[6, 7])
    check_finite(np.ones((2, 2)), np.ones(2), "fine")
    check_finite(sp.csr_matrix((2, 2)), np.ones(2), "fine")
