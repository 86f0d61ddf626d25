"""The original fixed gradient codes (Tandon, Lei, Dimakis, Karampatziakis 2017), ell = 1.

An N x m encoding matrix B with the support of the assignment (``B[i, j] != 0`` only when
worker i holds chunk j) such that the rows of any N - s workers span the all-ones vector,
s = min replication - 1. A finished worker sends ``sum_j B[i, j] g_j``.

Fractional repetition (``Assignment.groups`` is not None): ``B = A^T``, every worker sends
the plain sum of its group's chunks, and the PS adds the vector of one finished worker of
every group, as the master of Tandon et al.'s ``replication.py`` does: exact as soon as
every group has a finished worker, no least squares.

Any other assignment (cyclic, regular, a matrix file): Tandon et al.'s Algorithm 2 on the
support. Draw ``H`` (s x m) Gaussian with ``H 1 = 0``; each worker's row is a random vector
of the null space of ``H`` restricted to its chunks. All rows lie in ``null(H)`` (dimension
m - s, containing 1), and on the cyclic support any N - s of them span it with probability
one. The PS solves ``B_F^T a = 1`` by least squares and returns ``sum_{i in F} a_i y_i``
(exact when the finished set F tolerates the stragglers, the best approximation in the l2
sense otherwise). Should that construction fail on some support, ``B = A^T`` is tried too;
a candidate is kept once it passes a check of the straggler sets (all of them when there
are at most the number checked, else that many random ones); if none does, the assignment
has no fixed code here and :class:`UsageError` says so.

Cost: one check is a dense least-squares solve, O(m (N-s)^2). The number of sets checked
is :data:`CHECKED_SETS`, lowered so that their total stays within :data:`CHECK_BUDGET`
(at least one set): about 1 s at N = 300 or N = 1,000 on the 2-core development machine. B itself is dense
(N x m), so the fixed code is meant for N up to a few thousand.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping

import numpy as np

from mpigc.coding.assignment import Assignment
from mpigc.errors import UsageError, require

CHECKED_SETS = 100
# Bound on sum over checked sets of m (N - s)^2, the cost of one check (~1 s of LAPACK).
CHECK_BUDGET = 2e9
_RESIDUAL_TOL = 1e-8


class FixedCode:
    """Tandon et al.'s fixed gradient code for ell = 1 (used by the ``gc`` scheme).

    Parameters
    ----------
    assignment : Assignment
    seed : int
        Seed of the random construction (the same on every rank).

    Attributes
    ----------
    B : ndarray, shape (N, m)
        Encoding matrix; row i has the support of worker i's chunks.
    stragglers : int
        s = min replication - 1, the number of stragglers any decode tolerates.
    groups : ndarray of int, shape (N,), or None
        ``assignment.groups``: on a fractional repetition the code is the group sums, and
        :meth:`decode` adds one finished worker of every group.

    Raises
    ------
    UsageError
        If neither construction tolerates s stragglers on this assignment.
    """

    def __init__(self, assignment: Assignment, seed: int = 0):
        require(isinstance(assignment, Assignment),
                f"assignment must be an mpigc.coding.Assignment, got {type(assignment).__name__}")
        self.assignment = assignment
        self.stragglers = int(assignment.replication.min()) - 1
        self.groups = assignment.groups
        if self.groups is not None:  # tolerant by construction: every group has s + 1 workers
            self.B = self._support_code()
            self.B.setflags(write=False)
            return
        rng = np.random.default_rng(seed)
        # Built lazily: the second candidate (dense, O(m N)) only when the first fails.
        candidates = (build() for build in (lambda: self._null_space_code(rng), self._support_code))
        for B in candidates:
            if self._tolerates(B, rng):
                self.B = B
                self.B.setflags(write=False)
                return
        raise UsageError(
            f"no fixed gradient code found on this assignment that tolerates "
            f"s = {self.stragglers} stragglers (cyclic, regular and fractional repetition assignments have one)")

    def _null_space_code(self, rng):
        import scipy.linalg  # 0.1 s of imports, paid only by the schemes with a fixed code

        a = self.assignment
        H = rng.standard_normal((self.stragglers, a.n_chunks))
        if self.stragglers:
            H[:, -1] = -H[:, :-1].sum(axis=1)  # H 1 = 0: the all-ones vector is in null(H)
        B = np.zeros((a.n_workers, a.n_chunks))
        for i in range(a.n_workers):
            chunks = np.sort(a.orderings[i])
            if len(chunks) == 0:
                continue
            K = scipy.linalg.null_space(H[:, chunks])
            if K.shape[1]:
                B[i, chunks] = K @ rng.standard_normal(K.shape[1])
        return B

    def _support_code(self):
        """``B = A^T``: every worker sums its chunks (from the CSR entries, no dense A)."""
        a = self.assignment
        B = np.zeros((a.n_workers, a.n_chunks))
        B[a.holders_idx, a.entry_chunk] = 1.0
        return B

    def _tolerates(self, B, rng):
        import scipy.linalg

        n, s, m = self.assignment.n_workers, self.stragglers, self.assignment.n_chunks
        n_sets = max(1, min(CHECKED_SETS, int(CHECK_BUDGET // (m * (n - s) ** 2))))
        if math.comb(n, s) <= n_sets:
            straggler_sets = itertools.combinations(range(n), s)
        else:
            straggler_sets = (rng.choice(n, s, replace=False) for _ in range(n_sets))
        ones = np.ones(m)
        for stragglers in straggler_sets:
            rows = B[np.setdiff1d(np.arange(n), stragglers)]
            # QR with pivoting (gelsy): rank-revealing like the SVD, three times faster.
            a = scipy.linalg.lstsq(rows.T, ones, lapack_driver="gelsy")[0]
            if np.linalg.norm(rows.T @ a - 1.0) / math.sqrt(m) > _RESIDUAL_TOL:
                return False
        return True

    def decode_weights(self, finished: Iterable[int]) -> np.ndarray:
        """(1, N) weights ``a`` of :meth:`decode` (zero outside ``finished``): the decode is
        ``sum_i a_i y_i``. Least squares ``B_F^T a = 1``; on a fractional repetition 1 for
        the lowest-numbered finished worker of every group.
        """
        W = np.zeros((1, self.assignment.n_workers))
        F = sorted({int(i) for i in finished})
        if not F:
            return W
        if self.groups is not None:
            first = {}
            for i in F:
                first.setdefault(int(self.groups[i]), i)
            W[0, list(first.values())] = 1.0
        else:
            W[0, F] = np.linalg.lstsq(self.B[F].T, np.ones(self.B.shape[1]), rcond=None)[0]
        return W

    def encode(self, worker: int, chunk_grads: Mapping[int, np.ndarray]) -> np.ndarray:
        """``y_i = sum_j B[i, j] g_j`` over all chunks of a (finished) worker.

        Raises
        ------
        UsageError
            Bad worker, a worker without chunks, a missing gradient or unequal lengths.
        """
        a = self.assignment
        if not (isinstance(worker, (int, np.integer)) and 0 <= worker < a.n_workers):
            raise UsageError(f"worker {worker!r} is not in 0..{a.n_workers - 1}")
        chunks = a.orderings[worker]
        require(chunks, f"worker {worker} holds no chunk: it sends nothing")
        grads = []
        for j in chunks:
            require(j in chunk_grads, f"chunk_grads lacks chunk {j} of worker {worker} (the fixed code needs all)")
            grads.append(np.asarray(chunk_grads[j]))
        shape = grads[0].shape
        for j, g in zip(chunks, grads):
            require(g.ndim == 1 and g.shape == shape,
                    f"gradient of chunk {j} has shape {g.shape}; every gradient must be 1-D of the same length")
        return self.B[worker, chunks] @ np.stack(grads)

    def decode(self, finished: Iterable[int], transmissions: Mapping[int, np.ndarray],
               d: int) -> np.ndarray:
        """Least-squares decode ``sum_i a_i y_i`` with ``B_F^T a = 1`` (best fit if inexact).

        On a fractional repetition: the sum of the vectors of the lowest-numbered finished
        worker of every group (a group without one is missing, which is also the least-squares
        fit).

        Parameters
        ----------
        finished : iterable of int
            Workers whose transmissions are used.
        transmissions : mapping int -> 1-D array of length d
            Must contain every finished worker (other entries are ignored).
        d : int
        """
        n = self.assignment.n_workers
        require(isinstance(d, (int, np.integer)) and d >= 1, f"gradient length d must be a positive integer, got {d!r}")
        F = sorted({int(i) for i in finished})
        for i in F:
            require(0 <= i < n, f"finished worker {i} is not in 0..{n - 1}")
            require(i in transmissions, f"missing transmission of finished worker {i}")
            require(np.shape(transmissions[i]) == (d,),
                    f"transmission of worker {i} has shape {np.shape(transmissions[i])}, expected ({d},)")
        if not F:
            return np.zeros(d)
        a = self.decode_weights(F)[0, F]
        return a @ np.stack([np.asarray(transmissions[i], dtype=float) for i in F])
