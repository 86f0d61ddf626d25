"""Assignments: constructors, validation, file readers."""

import numpy as np
import pytest
from hypothesis import given, settings

from mpigc.coding import (
    Assignment,
    cyclic,
    frc,
    load_assignment,
    load_orderings,
    optimal_ordering,
    regular,
)
from mpigc.errors import UsageError
from strategies import assignments


def test_cyclic_structure_and_natural_order():
    a = cyclic(5, 3)
    for i in range(5):
        assert a.orderings[i] == [i, (i + 1) % 5, (i + 2) % 5]
        assert a.matrix[:, i].sum() == 3
    assert a.matrix[[4, 0, 1], 4].all()
    assert a.loads.tolist() == [3] * 5 and a.replication.tolist() == [3] * 5
    assert a.holders(0).tolist() == [0, 3, 4]
    assert a.position(4, 1) == 3 and a.position(4, 2) == 0
    assert a.chunks(4) == [4, 0, 1]


def test_frc_groups():
    a = frc(6, 3)
    expected = np.kron(np.eye(2, dtype=bool), np.ones((3, 3), dtype=bool))
    assert np.array_equal(a.matrix, expected)
    assert a.orderings[4] == [3, 4, 5]


def test_fractional_repetition_is_recognised_by_its_shape():
    assert frc(6, 3).groups.tolist() == [0, 0, 0, 1, 1, 1]
    assert optimal_ordering(frc(6, 2)).groups.tolist() == [0, 0, 1, 1, 2, 2]
    # a matrix file of that shape, workers interleaved: groups numbered by first worker
    A = np.array([[0, 1, 0, 1], [0, 1, 0, 1], [1, 0, 1, 0]])
    assert Assignment.from_matrix(A).groups.tolist() == [0, 1, 0, 1]
    assert cyclic(6, 6).groups.tolist() == [0] * 6 and cyclic(4, 1).groups.tolist() == [0, 1, 2, 3]
    assert cyclic(6, 3).groups is None and regular(8, 2, 0).groups is None
    overlapping = [[1, 1, 0], [1, 1, 1], [0, 0, 1]]  # {0, 1} twice and {1, 2}: not disjoint
    assert Assignment.from_matrix(overlapping).groups is None
    assert Assignment.from_matrix([[1, 0], [1, 0]]).groups is None  # a spare worker


@pytest.mark.parametrize("n,load,seed", [(10, 3, 0), (7, 7, 1), (12, 1, 2), (9, 5, 3)])
def test_regular_is_regular_and_deterministic(n, load, seed):
    a = regular(n, load, seed)
    assert a.matrix.shape == (n, n)
    assert (a.loads == load).all() and (a.replication == load).all()
    assert np.array_equal(a.matrix, regular(n, load, seed).matrix)


def test_regular_depends_on_seed():
    mats = {regular(10, 3, seed).matrix.tobytes() for seed in range(5)}
    assert len(mats) > 1


def test_from_matrix_accepts_numbers_and_keeps_orderings():
    A = [[1, 0, 1], [1.0, 1, 0]]
    a = Assignment.from_matrix(A, orderings=[[1, 0], [1], [0]])
    assert a.matrix.dtype == bool and a.matrix.shape == (2, 3)
    assert a.orderings == [[1, 0], [1], [0]]
    assert a.position(0, 1) == 1 and a.position(0, 0) == 2
    b = a.with_orderings([[0, 1], [1], [0]])
    assert b.orderings[0] == [0, 1] and a.orderings[0] == [1, 0]
    with pytest.raises(ValueError):
        a.matrix[0, 0] = False  # read-only


def test_worker_without_chunks_is_allowed():
    a = Assignment.from_matrix([[1, 0], [1, 0]])
    assert a.loads.tolist() == [2, 0] and a.orderings[1] == []


@pytest.mark.parametrize("A,orderings,message", [
    ([[1, 2], [0, 1]], None, r"must be 0/1: entry \[0, 1\] is 2"),
    ([[1, 0], [0, 0]], None, r"chunk 1 is held by no worker"),
    ([1, 0, 1], None, r"must be 2-D"),
    (np.zeros((0, 3)), None, r"at least one chunk"),
    ([["a", "b"]], None, r"0/1 numbers"),
    ([[1, 1], [1, 0]], [[0, 1], [0, 1]], r"ordering of worker 1 is not a permutation of its chunks \[0\]"),
    ([[1, 1], [1, 0]], [[0, 0], [0]], r"ordering of worker 0 is not a permutation"),
    ([[1, 1], [1, 0]], [[0, 1]], r"need one ordering per worker: got 1 for 2"),
])
def test_from_matrix_rejects(A, orderings, message):
    with pytest.raises(ValueError, match=message):
        Assignment.from_matrix(A, orderings)


@pytest.mark.parametrize("call,message", [
    (lambda: cyclic(3, 4), r"load 4 exceeds the number of workers 3"),
    (lambda: cyclic(0, 1), r"n_workers must be a positive integer, got 0"),
    (lambda: frc(6, 4), r"load 4 does not divide 6"),
    (lambda: regular(5, 0, 0), r"load must be a positive integer, got 0"),
])
def test_constructors_reject(call, message):
    with pytest.raises(UsageError, match=message):
        call()


def test_check_state():
    a = cyclic(4, 2)
    assert a.check_state([0, 1, 2, 2]).dtype == np.int64
    with pytest.raises(ValueError, match=r"state\[2\] = 3 is outside 0..2"):
        a.check_state([0, 0, 3, 0])
    with pytest.raises(ValueError, match=r"state must have length 4"):
        a.check_state([0, 0, 0])
    with pytest.raises(ValueError, match=r"state\[0\] = -1"):
        a.check_state([-1, 0, 0, 0])


@pytest.mark.parametrize("suffix", [".npy", ".txt", ".csv"])
def test_load_assignment_round_trip(tmp_path, suffix):
    A = regular(6, 2, 4).matrix
    path = tmp_path / f"a{suffix}"
    if suffix == ".npy":
        np.save(path, A)
    else:
        sep = "," if suffix == ".csv" else " "
        path.write_text("# chunks x workers\n" + "\n".join(sep.join(str(int(v)) for v in row) for row in A) + "\n")
    assert np.array_equal(load_assignment(path).matrix, A)


def test_load_assignment_errors(tmp_path):
    with pytest.raises(UsageError, match=r"cannot read assignment file .*nothere.npy"):
        load_assignment(tmp_path / "nothere.npy")
    bad = tmp_path / "bad.txt"
    bad.write_text("1 0\n0 3\n")
    with pytest.raises(UsageError, match=r"assignment file .*bad.txt: .*entry \[1, 1\] is 3"):
        load_assignment(bad)
    text = tmp_path / "text.csv"
    text.write_text("1,x\n")
    with pytest.raises(UsageError, match=r"cannot read assignment file .*text.csv"):
        load_assignment(text)
    ragged = tmp_path / "ragged.txt"
    ragged.write_text("1 0\n1\n")
    with pytest.raises(UsageError, match=r"ragged.txt"):
        load_assignment(ragged)


def test_load_orderings(tmp_path):
    a = cyclic(3, 2)
    path = tmp_path / "o.txt"
    path.write_text("# worker orders\n1 0\n2,1\n0 2\n\n")
    assert load_orderings(path, a).orderings == [[1, 0], [2, 1], [0, 2]]


@pytest.mark.parametrize("text,message", [
    ("1 0\n2 1\n", r"o.txt: need one ordering per worker: got 2 for 3"),
    ("1 0\n2 x\n0 2\n", r"o.txt: line 2 has a non-integer chunk id"),
    ("1 0\n2 1\n0 1\n", r"o.txt: ordering of worker 2 is not a permutation of its chunks \[0, 2\]"),
])
def test_load_orderings_errors(tmp_path, text, message):
    path = tmp_path / "o.txt"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        load_orderings(path, cyclic(3, 2))
    with pytest.raises(UsageError, match=r"cannot read orderings file"):
        load_orderings(tmp_path / "missing.txt", cyclic(3, 2))


@settings(max_examples=30, deadline=None)
@given(assignments())
def test_strategy_yields_valid_assignments(a):
    assert a.matrix.any(axis=1).all()
    for i in range(a.n_workers):
        assert sorted(a.orderings[i]) == np.flatnonzero(a.matrix[:, i]).tolist()


def test_owners_one_chunk_each_for_cyclic():
    # with the first holder as owner, worker 0 owned chunks 0-2 and workers 6, 7 none
    a = cyclic(8, 3)
    owners = a.owners()
    assert sorted(owners) == list(range(8))
    assert all(a.position(i, j) > 0 for j, i in enumerate(owners))


@settings(max_examples=60, deadline=None)
@given(assignments(max_workers=6, max_chunks=8))
def test_owners_hold_their_chunks_and_respect_live(a):
    owners = a.owners()
    assert all(a.position(i, j) > 0 for j, i in enumerate(owners))
    # the greedy never gives a worker more chunks than the chunks it could take
    counts = np.bincount(owners, minlength=a.n_workers)
    assert counts.max() <= int(np.ceil(a.n_chunks / np.count_nonzero(a.loads))) + max(a.loads)
    live = set(range(0, a.n_workers, 2))
    for j, i in enumerate(a.owners(live)):
        held = set(a.holders(j).tolist()) & live
        assert (i is None) == (not held) and (i is None or i in held)
