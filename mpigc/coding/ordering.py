"""Processing orders and the worst-case work bound Q_max (SPEC section 4).

``q_max(a, ell)`` is the smallest total number of processed chunks that guarantees an
exact decode whatever the progress pattern. ``optimal_ordering`` minimises it:

* when every load and every replication equal the same delta (hence m = N), the
  worker/chunk graph is delta-regular bipartite and splits into delta perfect matchings
  (Konig); putting matching k at position k gives every chunk each position 1..delta
  exactly once among its holders, which reaches the lower bound of Q_max for every ell;
* otherwise a local search from the given ordering (swaps of adjacent chunks in one
  worker's order) keeps every swap that makes no ell worse and some ell better, so the
  result is never worse than the input ordering for any ell (a local optimum, not a
  proven global one).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from mpigc.coding.assignment import Assignment
from mpigc.errors import require

# Bound on local-search sweeps over all adjacent pairs for irregular assignments.
_MAX_SWEEPS = 50


def check_ell(a: Assignment, ell) -> int:
    """Validate the communication parameter: an integer in 1..min replication."""
    gmin = int(a.replication.min())
    require(isinstance(ell, (int, np.integer)) and not isinstance(ell, bool),
            f"ell must be an integer, got {ell!r}")
    require(1 <= ell <= gmin,
            f"ell = {ell} must be in 1..{gmin} (the smallest replication of a chunk)")
    return int(ell)


def _weights(a: Assignment) -> np.ndarray:
    """w_ij = delta_i - p_i(j) + 1 for holders, +inf elsewhere; shape (m, N)."""
    w = (a.loads[None, :] - a.positions + 1).astype(float)
    w[a.positions == 0] = np.inf
    return w


def _chunk_sums(w_sorted_cum, replication, ells):
    """S[j, e] = sum of the (gamma_j - ell_e + 1) smallest w_ij, for each ell in ells."""
    idx = replication[:, None] - np.asarray(ells)[None, :]
    return np.take_along_axis(w_sorted_cum, idx, axis=1)


def q_max(a: Assignment, ell) -> int:
    """Q_max(ell) of SPEC section 4 for the assignment and its orderings.

    ``sum_i delta_i + 1 - min_j (sum of the gamma_j - ell + 1 smallest w_ij over H_j)``
    with ``w_ij = delta_i - p_i(j) + 1``: any progress with at least this many processed
    chunks in total is decodable, and some progress with one chunk fewer is not.

    Raises
    ------
    UsageError
        If ``ell`` is not in 1..min replication.
    """
    ell = check_ell(a, ell)
    cum = np.cumsum(np.sort(_weights(a), axis=1), axis=1)
    worst = _chunk_sums(cum, a.replication, [ell]).min()
    return int(a.loads.sum() + 1 - worst)


def random_ordering(a: Assignment, seed) -> Assignment:
    """Each worker's chunks in a random order drawn from ``numpy.random.default_rng(seed)``.

    Depends only on the matrix and the seed (not on the current orderings).
    """
    rng = np.random.default_rng(seed)
    return a.with_orderings([rng.permutation(np.flatnonzero(col)).tolist() for col in a.matrix.T])


def optimal_ordering(a: Assignment) -> Assignment:
    """Orderings that minimise Q_max (see the module docstring for the guarantee).

    Parameters
    ----------
    a : Assignment
        Its orderings are the starting point for irregular assignments.

    Returns
    -------
    Assignment
        Same matrix, new orderings.
    """
    loads, repl = a.loads, a.replication
    delta = int(loads[0])
    if np.all(loads == delta) and np.all(repl == delta):
        return a.with_orderings(_matching_orderings(a.matrix, delta))
    return a.with_orderings(_local_search(a))


def _matching_orderings(matrix, delta):
    """Split a delta-regular bipartite graph into delta perfect matchings, one per position."""
    remaining = matrix.copy()
    orderings = [[] for _ in range(matrix.shape[1])]
    for _ in range(delta):
        # Rows are chunks, columns workers: chunk_of[i] = chunk matched to worker i.
        chunk_of = maximum_bipartite_matching(csr_matrix(remaining), perm_type="row")
        # A k-regular bipartite graph always has a perfect matching (Hall's theorem).
        assert np.all(chunk_of >= 0)
        for i, j in enumerate(chunk_of):
            orderings[i].append(int(j))
        remaining[chunk_of, np.arange(matrix.shape[1])] = False
    return orderings


def _local_search(a: Assignment):
    """Adjacent-swap hill climbing that improves the Q_max of some ell and worsens none.

    The score of one ell is (min_j S_j, -#chunks attaining the min): raising the count
    of non-minimal chunks lets the search cross plateaus where the min itself is flat.
    """
    ells = np.arange(1, int(a.replication.min()) + 1)
    orderings = [list(o) for o in a.orderings]
    w = _weights(a)
    sums = _chunk_sums(np.cumsum(np.sort(w, axis=1), axis=1), a.replication, ells)

    def score(s):
        low = s.min(axis=0)
        return low, (s == low).sum(axis=0)

    def row_sums(j):
        cum = np.cumsum(np.sort(w[j]))
        return cum[a.replication[j] - ells]

    best_low, best_count = score(sums)
    for _ in range(_MAX_SWEEPS):
        improved = False
        for i, order in enumerate(orderings):
            for p in range(len(order) - 1):
                j1, j2 = order[p], order[p + 1]
                # Moving j1 one place later lowers w[j1, i]; j2 moves earlier.
                w[j1, i] -= 1
                w[j2, i] += 1
                old1, old2 = sums[j1].copy(), sums[j2].copy()
                sums[j1], sums[j2] = row_sums(j1), row_sums(j2)
                low, count = score(sums)
                no_worse = np.all((low > best_low) | ((low == best_low) & (count <= best_count)))
                better = np.any((low > best_low) | ((low == best_low) & (count < best_count)))
                if no_worse and better:
                    order[p], order[p + 1] = j2, j1
                    best_low, best_count = low, count
                    improved = True
                else:
                    w[j1, i] += 1
                    w[j2, i] -= 1
                    sums[j1], sums[j2] = old1, old2
        if not improved:
            break
    return orderings
