"""CoverageTracker: agreement with a direct count, stale reports, O(1) updates."""

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpigc.coding import Assignment, CoverageTracker, cyclic
from mpigc.errors import UsageError
from strategies import assignments, direct_coverage


@settings(max_examples=150, deadline=None)
@given(assignments(max_workers=6, max_chunks=6), st.data())
def test_tracker_agrees_with_direct_count(a, data):
    ell = data.draw(st.integers(1, int(a.replication.min())))
    tracker = CoverageTracker(a, ell)
    state = np.zeros(a.n_workers, dtype=int)
    reports = data.draw(st.lists(st.integers(0, a.n_workers - 1), max_size=30))
    for i in reports:
        count = data.draw(st.integers(0, int(a.loads[i])))  # may be stale (lower)
        tracker.report(i, count)
        state[i] = max(state[i], count)
        cov = direct_coverage(a, state)
        assert np.array_equal(tracker.state, state)
        assert np.array_equal(tracker.coverage, cov)
        assert tracker.n_covered == int((cov >= ell).sum())
        assert tracker.decodable == bool((cov >= ell).all())
        assert tracker.n_finished == int((state == a.loads).sum())


def test_stale_reports_and_reset():
    t = CoverageTracker(cyclic(4, 2), 1)
    t.report(0, 2)
    t.report(0, 1)
    assert t.state.tolist() == [2, 0, 0, 0] and t.n_finished == 1
    t.report(2, 2)
    assert t.decodable and t.n_covered == 4
    snapshot = t.state
    snapshot[1] = 2  # a copy: the tracker is unchanged
    assert t.state[1] == 0
    t.reset()
    assert t.state.tolist() == [0] * 4 and t.n_covered == 0 and not t.decodable and t.n_finished == 0


def count_lines(fn):
    """Python lines executed while calling fn (C code such as NumPy counts as one call)."""
    lines = 0

    def tracer(frame, event, arg):
        nonlocal lines
        lines += event == "line"
        return tracer

    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(None)
    return lines


def half_reported(n):
    tracker = CoverageTracker(cyclic(n, 3), 2)
    for i in range(n // 2):
        tracker.report(i, 1)
    return tracker


def test_report_cost_does_not_grow_with_n():
    small, large = half_reported(10), half_reported(2000)
    assert count_lines(lambda: small.report(5, 1)) == count_lines(lambda: large.report(1000, 1))
    assert count_lines(lambda: small.report(5, 2)) == count_lines(lambda: large.report(1000, 2))


def test_queries_are_constant_time():
    small, large = half_reported(10), half_reported(2000)

    def queries(t):
        return lambda: (t.decodable, t.n_finished, t.n_covered)

    assert count_lines(queries(small)) == count_lines(queries(large))


def test_worker_without_chunks_counts_as_finished():
    t = CoverageTracker(Assignment.from_matrix([[1, 0], [1, 0]]), 1)
    assert t.n_finished == 1
    t.report(0, 2)
    assert t.n_finished == 2 and t.decodable


@pytest.mark.parametrize("worker,count,message", [
    (4, 1, r"worker 4 is not in 0..3"),
    (-1, 1, r"worker -1 is not in 0..3"),
    (1, 3, r"count 3 of worker 1 is outside 0..2"),
    (1, -1, r"count -1 of worker 1 is outside 0..2"),
    (1, 1.5, r"count 1.5 of worker 1"),
])
def test_bad_reports(worker, count, message):
    with pytest.raises(UsageError, match=message):
        CoverageTracker(cyclic(4, 2), 1).report(worker, count)


def test_bad_ell():
    with pytest.raises(ValueError, match=r"ell = 3 must be in 1..2"):
        CoverageTracker(cyclic(4, 2), 3)
