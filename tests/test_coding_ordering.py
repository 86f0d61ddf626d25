"""Q_max against brute force, and optimal orderings against all orderings."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpigc.coding import Assignment, cyclic, frc, optimal_ordering, q_max, random_ordering, regular
from strategies import assignments, direct_coverage


def brute_q_max(a, ell):
    """1 + the largest total work of a progress vector that does not decode."""
    worst = max(sum(s) for s in itertools.product(*(range(int(d) + 1) for d in a.loads))
                if (direct_coverage(a, s) < ell).any())
    return worst + 1


@settings(max_examples=150, deadline=None)
@given(assignments(max_workers=4, max_chunks=4, max_load=3), st.data())
def test_q_max_matches_brute_force(a, data):
    ell = data.draw(st.integers(1, int(a.replication.min())))
    assert q_max(a, ell) == brute_q_max(a, ell)


def all_orderings(a):
    per_worker = [list(itertools.permutations(np.flatnonzero(col).tolist())) for col in a.matrix.T]
    for combo in itertools.product(*per_worker):
        yield a.with_orderings(combo)


SMALL_REGULAR = [cyclic(4, 2), cyclic(4, 3), cyclic(5, 2), frc(4, 2), frc(6, 2),
                 regular(5, 2, 0), regular(6, 2, 1), regular(4, 3, 2)]


@pytest.mark.parametrize("a", SMALL_REGULAR, ids=repr)
def test_optimal_ordering_beats_every_ordering(a):
    opt = optimal_ordering(a)
    ells = range(1, int(a.replication.min()) + 1)
    best = {ell: min(q_max(b, ell) for b in all_orderings(a)) for ell in ells}
    delta = int(a.loads[0])
    for ell in ells:
        assert q_max(opt, ell) == best[ell]
        # The lower bound of SPEC section 4: w takes each value 1..delta once per chunk.
        assert best[ell] == delta * a.n_workers + 1 - (delta - ell + 1) * (delta - ell + 2) // 2


@pytest.mark.parametrize("a", [regular(30, 6, 7), frc(12, 4), cyclic(9, 9)], ids=repr)
def test_matching_ordering_places_every_chunk_at_every_position_once(a):
    opt = optimal_ordering(a)
    assert np.array_equal(opt.matrix, a.matrix)
    for j in range(a.n_chunks):
        assert sorted(opt.positions[j, a.holders(j)].tolist()) == list(range(1, int(a.loads[0]) + 1))


def test_natural_cyclic_order_is_already_optimal():
    a = cyclic(7, 4)
    for ell in range(1, 5):
        assert q_max(a, ell) == q_max(optimal_ordering(a), ell)


@settings(max_examples=40, deadline=None)
@given(assignments(max_workers=5, max_chunks=7))
def test_optimal_ordering_never_worse_than_input(a):
    opt = optimal_ordering(a)
    assert np.array_equal(opt.matrix, a.matrix)
    for ell in range(1, int(a.replication.min()) + 1):
        assert q_max(opt, ell) <= q_max(a, ell)


def test_local_search_improves_an_irregular_assignment():
    # Chunks 0..3 on workers {0,1}, {0,1,2}, {1,2}, {2,0}; every worker starts ascending.
    A = np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1], [1, 0, 1]])
    a = Assignment.from_matrix(A)
    opt = optimal_ordering(a)
    best = min(q_max(b, 1) for b in all_orderings(a))
    assert q_max(opt, 1) == best < q_max(a, 1)


def test_random_ordering_is_seeded_permutation():
    a = regular(8, 3, 0)
    r1, r2 = random_ordering(a, 5), random_ordering(a, 5)
    assert r1.orderings == r2.orderings
    assert r1.orderings != random_ordering(a, 6).orderings
    for i in range(8):
        assert sorted(r1.orderings[i]) == sorted(a.orderings[i])


@pytest.mark.parametrize("ell,message", [(4, r"ell = 4 must be in 1..3"), (0, r"ell = 0 must be in 1..3"),
                                         (1.5, r"ell must be an integer, got 1.5")])
def test_q_max_rejects_bad_ell(ell, message):
    with pytest.raises(ValueError, match=message):
        q_max(cyclic(5, 3), ell)
