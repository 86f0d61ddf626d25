"""Hypothesis strategies and independent references shared by the coding tests."""

import numpy as np
from hypothesis import strategies as st

from mpigc.coding import Assignment


@st.composite
def assignments(draw, max_workers=6, max_chunks=6, max_load=None):
    """A random assignment (every chunk held) with random orderings."""
    n = draw(st.integers(1, max_workers))
    m = draw(st.integers(1, max_chunks))
    matrix = np.array(draw(st.lists(st.lists(st.booleans(), min_size=n, max_size=n),
                                    min_size=m, max_size=m)), dtype=bool).reshape(m, n)
    for j in range(m):
        matrix[j, draw(st.integers(0, n - 1))] = True
    if max_load is not None:
        for i in range(n):
            held = np.flatnonzero(matrix[:, i])
            for j in held[max_load:]:
                if matrix[j].sum() > 1:
                    matrix[j, i] = False
    orderings = [draw(st.permutations(np.flatnonzero(col).tolist())) for col in matrix.T]
    return Assignment.from_matrix(matrix, orderings)


def direct_coverage(a, state):
    """Per chunk, how many workers processed it: straight from the ordering prefixes."""
    cov = np.zeros(a.n_chunks, dtype=int)
    for i, order in enumerate(a.orderings):
        for j in order[: int(state[i])]:
            cov[j] += 1
    return cov


def states(draw, a):
    """A random state vector of ``a``."""
    return np.array([draw(st.integers(0, int(load))) for load in a.loads], dtype=np.int64)


def make_decodable(a, state, ell, rng):
    """Raise counts of random holders until every chunk is covered ell times."""
    s = np.array(state)
    for j in range(a.n_chunks):
        while direct_coverage(a, s)[j] < ell:
            missing = [i for i in a.holders(j) if s[i] < a.position(i, j)]
            i = missing[rng.integers(len(missing))]
            s[i] = a.position(i, j)
    return s
