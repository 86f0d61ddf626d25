"""Sparse (CSR) storage of assignments and the batched encoder, against dense references."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpigc.coding import (
    Assignment,
    CoverageTracker,
    GradientCode,
    cyclic,
    frc,
    optimal_ordering,
    q_max,
    random_ordering,
    regular,
)
from mpigc.errors import UsageError
from strategies import assignments, direct_coverage, make_decodable, states


def dense_positions(a):
    """positions[j, i] straight from the orderings (independent of the CSR arrays)."""
    p = np.zeros((a.n_chunks, a.n_workers), dtype=np.int64)
    for i, order in enumerate(a.orderings):
        for k, j in enumerate(order, start=1):
            p[j, i] = k
    return p


def dense_q_max(a, ell):
    """Q_max of SPEC section 4 from the dense weight matrix, chunk by chunk."""
    pos = dense_positions(a)
    worst = min(np.sort(a.loads[pos[j] > 0] - pos[j][pos[j] > 0] + 1)[: a.replication[j] - ell + 1].sum()
                for j in range(a.n_chunks))
    return int(a.loads.sum() + 1 - worst)


@settings(max_examples=60, deadline=None)
@given(assignments(), st.data())
def test_csr_views_match_the_orderings(a, data):
    pos = dense_positions(a)
    assert np.array_equal(a.positions, pos) and np.array_equal(a.matrix, pos > 0)
    for j in range(a.n_chunks):
        h = a.holders_idx[a.holders_ptr[j]:a.holders_ptr[j + 1]]
        assert h.tolist() == np.flatnonzero(pos[j]).tolist()
        assert np.array_equal(a.holder_positions(j), pos[j, h])
        for i in range(a.n_workers):
            assert a.position(i, j) == pos[j, i]
    state = states(data.draw, a)
    assert np.array_equal(a.coverage(state), direct_coverage(a, state))
    assert np.array_equal(a.processed(state), (pos >= 1) & (pos <= state[None, :]))
    assert a.processed_entries(state).sum() == state.sum()
    for ell in range(1, int(a.replication.min()) + 1):
        assert q_max(a, ell) == dense_q_max(a, ell)


def test_from_orderings_equals_from_matrix():
    orderings = [[2, 0], [1], [], [0, 1, 2]]
    a = Assignment.from_orderings(3, orderings)
    b = Assignment.from_matrix(a.matrix, orderings)
    assert a.orderings == b.orderings and np.array_equal(a.positions, b.positions)
    assert a.loads.tolist() == [2, 1, 0, 3] and a.replication.tolist() == [2, 2, 2]


@pytest.mark.parametrize("m,orderings,message", [
    (3, [[0, 1], [1]], r"chunk 2 is held by no worker"),
    (2, [[0, 2]], r"chunk id outside 0..1"),
    (2, [[0, 0, 1]], r"worker 0 repeats a chunk"),
    (0, [[0]], r"n_chunks must be a positive integer, got 0"),
    (1, [["x"]], r"ordering of worker 0 must be a list of chunk ids"),
])
def test_from_orderings_rejects(m, orderings, message):
    with pytest.raises(UsageError, match=message):
        Assignment.from_orderings(m, orderings)


def test_check_state_names_a_non_integer_entry():
    a = cyclic(4, 2)
    assert a.check_state(np.array([0.0, 1.0, 2.0, 2.0])).tolist() == [0, 1, 2, 2]
    with pytest.raises(UsageError, match=r"integer counts, got state\[1\] = 1.5"):
        a.check_state([0.0, 1.5, 0.0, 0.0])


@pytest.mark.parametrize("a", [cyclic(12, 4), frc(12, 4), regular(10, 4, 3), random_ordering(cyclic(9, 4), 1)],
                         ids=repr)
@pytest.mark.parametrize("d", [1, 7, 12])
def test_encode_all_equals_per_worker_encode(a, d):
    rng = np.random.default_rng(d)
    for ell in range(1, 5):
        code = GradientCode(a, ell, seed=ell)
        grads = rng.standard_normal((a.n_chunks, d))
        for state in (rng.integers(0, a.loads + 1), a.loads.copy(), make_decodable(a, np.zeros(a.n_workers), ell, rng)):
            if not state.any():
                continue
            senders = np.flatnonzero(state > 0)
            ref = np.stack([code.encode(int(i), state, {j: grads[j] for j in a.chunks(i)}) for i in senders])
            got = code.encode_all(state, grads)
            assert got.shape == ref.shape
            np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
            if code.decodable(state):
                np.testing.assert_allclose(code.decode(state, got, d), grads.sum(axis=0), rtol=1e-9, atol=1e-10)


def test_encode_all_rejects_bad_gradients():
    code = GradientCode(cyclic(5, 3), 2)
    with pytest.raises(UsageError, match=r"chunk_grads must have shape \(5, d\)"):
        code.encode_all([1, 1, 1, 1, 1], np.zeros((4, 3)))
    with pytest.raises(UsageError, match=r"state\[0\] = 4 is outside"):
        code.encode_all([4, 1, 1, 1, 1], np.zeros((5, 3)))


def test_large_cyclic_stays_sparse():
    # N = 10,000: the dense views would take 900 MB; nothing here may build them.
    a = cyclic(10_000, 10)
    code = GradientCode(optimal_ordering(a), 4)
    full = code.assignment.loads
    assert code.decodable(full) and code.recovered_fraction(full) == 1.0
    half = full // 2
    assert np.array_equal(code.assignment.coverage(half), np.full(10_000, 5))
    assert not code.decodable(np.minimum(full, 3))
    grads = np.random.default_rng(0).standard_normal((10_000, 8))
    np.testing.assert_allclose(code.decode(full, code.encode_all(full, grads), 8), grads.sum(axis=0), rtol=1e-8)
    assert q_max(code.assignment, 4) == 10 * 10_000 + 1 - (10 - 4 + 1) * (10 - 4 + 2) // 2
    assert "matrix" not in vars(code.assignment) and "positions" not in vars(code.assignment)


def test_matching_ordering_at_scale():
    # A shuffled cyclic ordering is not optimal: the Konig split must restore the bound.
    a = random_ordering(cyclic(3000, 8), 0)
    opt = optimal_ordering(a)
    assert q_max(a, 3) > q_max(opt, 3) == 8 * 3000 + 1 - 6 * 7 // 2
    assert opt.orderings != a.orderings and optimal_ordering(cyclic(50, 5)).orderings == cyclic(50, 5).orderings


@settings(max_examples=60, deadline=None)
@given(assignments(), st.data())
def test_report_all_equals_one_report_per_worker(a, data):
    ell = data.draw(st.integers(1, int(a.replication.min())))
    bulk, single = CoverageTracker(a, ell), CoverageTracker(a, ell)
    for _ in range(3):  # later states may lower some counts: those reports are stale
        counts = [data.draw(st.integers(0, int(load))) for load in a.loads]
        bulk.report_all(counts)
        for i, c in enumerate(counts):
            single.report(i, c)
        assert np.array_equal(bulk.state, single.state) and np.array_equal(bulk.coverage, single.coverage)
        assert (bulk.n_covered, bulk.n_finished, bulk.decodable) == (
            single.n_covered, single.n_finished, single.decodable)
        assert np.array_equal(bulk.coverage, direct_coverage(a, bulk.state))


def test_report_all_rejects_bad_counts():
    with pytest.raises(UsageError, match=r"state\[1\] = 3 is outside 0..2"):
        CoverageTracker(cyclic(4, 2), 1).report_all([0, 3, 0, 0])
