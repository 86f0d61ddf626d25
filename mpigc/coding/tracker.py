"""Incremental per-chunk coverage for the parameter server (SPEC section 6, step 3).

A progress report ``(worker, count)`` walks only the chunks between the worker's old and
new count, so a one-chunk report costs O(1) whatever N and m are; the number of chunks
covered at least ell times and the number of finished workers are kept up to date, so
``decodable`` and ``n_finished`` are O(1) too. Pure Python lists on purpose: at this size
indexing a list is several times cheaper than indexing a NumPy array. A whole state at
once (the simulator's case) goes through :meth:`CoverageTracker.report_all`, vectorised
over the assignment's CSR entries (O(N + nnz) NumPy instead of N Python calls).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from mpigc.coding.assignment import Assignment
from mpigc.coding.ordering import check_ell
from mpigc.errors import UsageError, require


class CoverageTracker:
    """Progress of every worker and coverage of every chunk during one iteration.

    Parameters
    ----------
    assignment : Assignment
    ell : int
        A chunk counts as covered once ``ell`` workers processed it.

    Attributes (read-only properties)
    ---------------------------------
    state : ndarray of int, shape (N,)
        A copy of the current counts.
    coverage : ndarray of int, shape (m,)
        A copy of the per-chunk processor counts.
    decodable : bool
        Every chunk covered at least ell times.
    n_covered : int
        Chunks covered at least ell times.
    n_finished : int
        Workers whose count equals their load (workers without chunks count as finished).
    """

    def __init__(self, assignment: Assignment, ell: int):
        require(isinstance(assignment, Assignment),
                f"assignment must be an mpigc.coding.Assignment, got {type(assignment).__name__}")
        self.assignment = assignment
        self.ell = check_ell(assignment, ell)
        self._orderings = assignment.orderings  # read only: the assignment is immutable
        self._loads = assignment.loads.tolist()
        # workers without chunks are finished from the start
        self._n_spare = self._loads.count(0)
        self.reset()

    def reset(self) -> None:
        """Back to the start of an iteration: nothing processed."""
        self._state = [0] * self.assignment.n_workers
        self._coverage = [0] * self.assignment.n_chunks
        self._n_covered = 0
        self._n_finished = self._n_spare

    def report(self, worker: int, count: int) -> None:
        """Worker ``worker`` has now finished ``count`` chunks (its new total).

        A count not above the current one is a stale or repeated message and is ignored.

        Raises
        ------
        UsageError
            Worker outside 0..N-1 or count outside 0..load.
        """
        try:
            old = self._state[worker]
            load = self._loads[worker]
        except (IndexError, TypeError):
            raise UsageError(f"worker {worker!r} is not in 0..{len(self._state) - 1}") from None
        if worker < 0:
            raise UsageError(f"worker {worker!r} is not in 0..{len(self._state) - 1}")
        if not (isinstance(count, (int, np.integer)) and 0 <= count <= load):
            raise UsageError(f"count {count!r} of worker {worker} is outside 0..{load} (its load)")
        if count <= old:
            return
        coverage, ell = self._coverage, self.ell
        for j in self._orderings[worker][old:count]:
            coverage[j] += 1
            if coverage[j] == ell:
                self._n_covered += 1
        self._state[worker] = count
        if count == load:
            self._n_finished += 1

    def report_all(self, counts: ArrayLike) -> None:
        """``report(i, counts[i])`` for every worker at once (stale counts ignored), vectorised.

        Parameters
        ----------
        counts : array_like of int, shape (N,)
            New totals, each in 0..load (a state vector).

        Raises
        ------
        UsageError
            A count outside 0..load, or the wrong length.
        """
        a, ell = self.assignment, self.ell
        old = np.array(self._state, dtype=np.int64)
        new = np.maximum(old, a.check_state(counts))
        held = old[a.holders_idx]
        fresh = (a.holder_pos > held) & (a.holder_pos <= new[a.holders_idx])
        cov_old = np.array(self._coverage, dtype=np.int64)
        cov = cov_old + a.segment_sums(fresh)
        self._n_covered += int(np.count_nonzero((cov >= ell) & (cov_old < ell)))
        self._n_finished += int(np.count_nonzero((new == a.loads) & (old < a.loads)))
        self._state, self._coverage = new.tolist(), cov.tolist()

    @property
    def state(self) -> np.ndarray:
        """Chunks finished by each worker (a copy)."""
        return np.array(self._state, dtype=np.int64)

    @property
    def coverage(self) -> np.ndarray:
        """Workers that processed each chunk (a copy)."""
        return np.array(self._coverage, dtype=np.int64)

    @property
    def decodable(self) -> bool:
        """Whether every chunk is covered ``ell`` times."""
        return self._n_covered == len(self._coverage)

    @property
    def n_covered(self) -> int:
        """Chunks covered ``ell`` times."""
        return self._n_covered

    @property
    def n_finished(self) -> int:
        """Workers that finished all their chunks."""
        return self._n_finished
