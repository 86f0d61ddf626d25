"""The PS's decode, done while the vectors arrive (SPEC section 3, ``g^(k) = sum_i beta[k, i] y_i``).

Every decode of this project is linear in the transmissions with weights fixed by the
broadcast state: ``g = (W @ Y).reshape(-1)[:d]`` with ``W`` (ell x N) zero outside the
senders (:meth:`mpigc.schemes.Protocol.decode_weights`). So the PS can decode as vectors
land instead of after the last one. :class:`StreamingDecoder` owns one preallocated row per
worker, into which the transport writes the whole message (vector first); no message is
allocated and nothing is stacked.

The sum is formed in a fixed order, whatever order the vectors arrive in: the workers are
cut into groups of :data:`GROUP` consecutive ones, a group is reduced (one ``W @ rows``
product) as soon as all of its senders have arrived, and group results are added pairwise
along a fixed binary tree as soon as both halves are done. The result is bit-identical for
every arrival order (checkpoint/resume reproduces a run exactly), all but the last group's
work overlaps the receiving, and the last vector leaves one group product and log2(N/GROUP)
additions of length d: the decode tail.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from mpigc.errors import UsageError, require

# Workers per group: big enough that one product streams several rows (BLAS at memory
# speed, a few Python calls per group), small enough that the last group's product, the
# tail, stays short: at d = 1e5 a group is 6.4 MB, about 0.5 ms.
GROUP = 8

_PENDING = -2  # tree node not complete yet
_EMPTY = -1    # complete, contributes nothing (no sender below it)


class StreamingDecoder:
    """Rows to receive into, and the decode accumulated as they fill.

    Parameters
    ----------
    n_workers : int
    block_len : int
        Length of every transmitted vector, ``ceil(d / ell)``.
    ell : int
    d : int
        Gradient length (the decoded ``ell * block_len`` values are cut to ``d``).
    extra : int
        Values a message carries after its vector (headers, chunk times, losses); each row
        has ``block_len + extra`` entries.
    group : int
        Workers per group (:data:`GROUP`).

    Attributes
    ----------
    rows : ndarray, shape (n_workers, block_len + extra)
        Row i receives worker i's message; ``rows[i, :block_len]`` is its vector.
    """

    def __init__(self, n_workers: int, block_len: int, ell: int, d: int, extra: int = 0,
                 group: int = GROUP):
        require(n_workers >= 1 and block_len >= 1 and ell >= 1 and extra >= 0 and group >= 1,
                "StreamingDecoder needs n_workers, block_len, ell, group >= 1 and extra >= 0")
        require(1 <= d <= ell * block_len, f"d = {d} does not fit ell x block_len = "
                f"{ell} x {block_len}")
        self.n, self.b, self.ell, self.d, self.group = n_workers, block_len, ell, d, group
        self.rows = np.empty((n_workers, block_len + extra))
        self.vectors = self.rows[:, :block_len]
        self.n_groups = -(-n_workers // group)
        # one (ell, b) partial sum per group; tree nodes live in the buffer of their
        # leftmost complete group (holder), so no partial is ever copied
        self.partials = np.empty((self.n_groups, ell, block_len))
        self.levels = (self.n_groups - 1).bit_length()
        self.weights = None

    def start(self, weights: ArrayLike, senders: ArrayLike) -> None:
        """Begin a decode with ``weights`` (ell x N) of the vectors of ``senders``.

        Every sender's row must be :meth:`add`-ed before :meth:`result`; the rows of the
        other workers are never read.
        """
        W = np.asarray(weights, dtype=np.float64)
        require(W.shape == (self.ell, self.n), f"decode weights have shape {W.shape}, expected "
                f"({self.ell}, {self.n})")
        self.weights = W
        sends = np.zeros(self.n, dtype=bool)
        sends[np.asarray(senders, dtype=np.int64)] = True
        self.expected = sends.copy()
        self.arrived = np.zeros(self.n, dtype=bool)
        self.missing = np.add.reduceat(sends.astype(np.int64), np.arange(0, self.n, self.group))
        # holder[level][k]: group whose buffer holds node k of that level, or a status
        width = 1 << self.levels
        self.holder = [np.full(width >> lv, _PENDING, dtype=np.int64)
                       for lv in range(self.levels + 1)]
        self.holder[0][self.n_groups:] = _EMPTY  # padding leaves of the tree
        self.root = _PENDING
        for g in range(self.n_groups):
            if self.missing[g] == 0:
                self._complete(g, _EMPTY)
        for g in range(self.n_groups, width):
            self._propagate(0, g)

    def row(self, worker: int) -> np.ndarray:
        """The row that receives ``worker``'s message (vector first)."""
        return self.rows[worker]

    def add(self, worker: int) -> None:
        """Worker's row now holds its vector: reduce what became complete."""
        # called once per vector: the check builds its message only when it fails
        if not self.expected[worker] or self.arrived[worker]:
            raise UsageError(f"worker {worker} is not an outstanding sender of this decode")
        self.arrived[worker] = True
        g = worker // self.group
        self.missing[g] -= 1
        if self.missing[g] == 0:
            lo, hi = g * self.group, min((g + 1) * self.group, self.n)
            out = self.partials[g]
            # consecutive senders form one product, the first written straight into the
            # group's partial (no temporary: 6-18 % faster in mpigc bench ps, docs/results.md);
            # workers that send nothing are skipped (their rows hold stale data, never read)
            runs = _runs(self.expected[lo:hi])  # a zip: an iterator
            a, z = next(runs)
            np.matmul(self.weights[:, lo + a:lo + z], self.vectors[lo + a:lo + z], out=out)
            for a, z in runs:
                out += self.weights[:, lo + a:lo + z] @ self.vectors[lo + a:lo + z]
            self._complete(g, g)

    @property
    def done(self) -> bool:
        """Whether every sender's vector has been added."""
        return self.root != _PENDING

    def result(self) -> np.ndarray:
        """The decoded gradient, a new array of length d (zeros when nobody sent)."""
        require(self.done, "decode result requested before every sender's vector arrived")
        if self.root == _EMPTY:
            return np.zeros(self.d)
        return self.partials[self.root].reshape(-1)[:self.d].copy()

    def _complete(self, g, holder):
        self.holder[0][g] = holder
        self._propagate(0, g)

    def _propagate(self, level, k):
        """Node ``k`` of ``level`` is complete: combine up the tree while siblings are."""
        while level < self.levels:
            if self.holder[level + 1][k >> 1] != _PENDING:
                return  # combined already (start() revisits padding leaves)
            nodes = self.holder[level]
            left, right = nodes[k & ~1], nodes[k | 1]
            if left == _PENDING or right == _PENDING:
                return
            if left >= 0 and right >= 0:
                self.partials[left] += self.partials[right]
                merged = left
            else:
                merged = left if left >= 0 else right
            level, k = level + 1, k >> 1
            self.holder[level][k] = merged
        self.root = self.holder[self.levels][0]


def _runs(mask):
    """``(start, stop)`` of every run of True in a 1-D boolean array."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return zip(edges[::2], edges[1::2])
