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

from mpigc.coding.assignment import Assignment, _split
from mpigc.errors import require
from mpigc.sparse import csr_matrix

# Bound on local-search sweeps over all adjacent pairs for irregular assignments.
_MAX_SWEEPS = 50


def check_ell(a: Assignment, ell: int) -> int:
    """Validate the communication parameter: an integer in 1..min replication."""
    gmin = int(a.replication.min())
    require(isinstance(ell, (int, np.integer)) and not isinstance(ell, bool),
            f"ell must be an integer, got {ell!r}")
    require(1 <= ell <= gmin,
            f"ell = {ell} must be in 1..{gmin} (the smallest replication of a chunk)")
    return int(ell)


def _weights(a: Assignment) -> np.ndarray:
    """w_ij = delta_i - p_i(j) + 1 for every CSR entry of the assignment; shape (nnz,)."""
    return a.loads[a.holders_idx] - a.holder_pos + 1


def _chunk_sums(a: Assignment, w, ells) -> np.ndarray:
    """S[j, e] = sum of the (gamma_j - ell_e + 1) smallest w_ij over H_j, for each ell; O(nnz log)."""
    cum = np.concatenate(([0], np.cumsum(w[np.lexsort((w, a.entry_chunk))])))
    start = a.holders_ptr[:-1]
    last = start[:, None] + a.replication[:, None] - np.asarray(ells)[None, :] + 1
    return cum[last] - cum[start][:, None]


def q_max(a: Assignment, ell: int) -> int:
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
    worst = _chunk_sums(a, _weights(a), [ell]).min()
    return int(a.loads.sum() + 1 - worst)


def random_ordering(a: Assignment, seed: int) -> Assignment:
    """Each worker's chunks in a random order drawn from ``numpy.random.default_rng(seed)``.

    Depends only on the matrix and the seed (not on the current orderings).
    """
    rng = np.random.default_rng(seed)
    return a.with_orderings([rng.permutation(held).tolist() for held in a._held()])


def optimal_ordering(a: Assignment) -> Assignment:
    """Orderings that minimise Q_max (see the module docstring for the guarantee).

    Regular assignments return ``a`` itself when its orderings already reach the bound
    (cyclic does: O(nnz)); otherwise delta sparse maximum matchings (scipy's
    Hopcroft-Karp), under a second at N = 10,000, delta = 10 for shuffled cyclic or
    fractional-repetition orders. Graphs whose augmenting paths are long (a circulant
    with relabelled workers and chunks) are scipy's slow case: ~7 s at N = 2,000, minutes
    at N = 10,000. Irregular ones run the local search (O(nnz m) per sweep: small N).

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
        if _every_position_once(a, delta):
            return a
        return a.with_orderings(_matching_orderings(a, delta))
    return a.with_orderings(_local_search(a))


def _every_position_once(a, delta):
    """Each chunk sits at every position 1..delta exactly once among its holders."""
    return bool(np.all(np.bincount(a.entry_chunk * delta + a.holder_pos - 1, minlength=a.n_chunks * delta) == 1))


def _matching_orderings(a, delta):
    """Split a delta-regular bipartite graph into delta perfect matchings, one per position."""
    from scipy.sparse.csgraph import maximum_bipartite_matching  # 0.2 s import: rare path

    rows = a.entry_chunk
    cols = a.holders_idx
    alive = np.ones(len(cols), dtype=bool)
    columns = []
    for _ in range(delta):
        graph = csr_matrix((np.ones(int(alive.sum())), (rows[alive], cols[alive])), shape=(a.n_chunks, a.n_workers))
        # Rows are chunks, columns workers: chunk_of[i] = chunk matched to worker i.
        chunk_of = maximum_bipartite_matching(graph, perm_type="row")
        # A k-regular bipartite graph always has a perfect matching (Hall's theorem).
        assert np.all(chunk_of >= 0)
        columns.append(chunk_of)
        alive &= rows != chunk_of[cols]
    return np.stack(columns, axis=1).tolist()


def _local_search(a: Assignment):
    """Adjacent-swap hill climbing that improves the Q_max of some ell and worsens none.

    The score of one ell is (min_j S_j, -#chunks attaining the min): raising the count
    of non-minimal chunks lets the search cross plateaus where the min itself is flat.
    """
    ells = np.arange(1, int(a.replication.min()) + 1)
    orderings = [list(o) for o in a.orderings]
    w = _weights(a).astype(float)
    sums = _chunk_sums(a, w, ells)
    ptr = a.holders_ptr
    # entries[i][p]: CSR entry of the chunk at position p + 1 of worker i.
    by_worker = np.lexsort((a.holder_pos, a.holders_idx))
    entries = _split(by_worker, a.loads)

    def score(s):
        low = s.min(axis=0)
        return low, (s == low).sum(axis=0)

    def row_sums(j):
        cum = np.cumsum(np.sort(w[ptr[j]:ptr[j + 1]]))
        return cum[a.replication[j] - ells]

    best_low, best_count = score(sums)
    for _ in range(_MAX_SWEEPS):
        improved = False
        for order, entry in zip(orderings, entries):
            for p in range(len(order) - 1):
                j1, j2 = order[p], order[p + 1]
                e1, e2 = entry[p], entry[p + 1]
                # Moving j1 one place later lowers its weight; j2 moves earlier.
                w[e1] -= 1
                w[e2] += 1
                old1, old2 = sums[j1].copy(), sums[j2].copy()
                sums[j1], sums[j2] = row_sums(j1), row_sums(j2)
                low, count = score(sums)
                no_worse = np.all((low > best_low) | ((low == best_low) & (count <= best_count)))
                better = np.any((low > best_low) | ((low == best_low) & (count < best_count)))
                if no_worse and better:
                    order[p], order[p + 1] = j2, j1
                    entry[p], entry[p + 1] = e2, e1
                    best_low, best_count = low, count
                    improved = True
                else:
                    w[e1] += 1
                    w[e2] -= 1
                    sums[j1], sums[j2] = old1, old2
        if not improved:
            break
    return orderings
