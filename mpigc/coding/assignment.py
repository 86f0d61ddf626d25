"""Which worker holds which chunk, and in which order it processes them (SPEC section 2).

An :class:`Assignment` is the m x N boolean matrix ``A[j, i] = worker i holds chunk j``
together with one processing order per worker. Constructors: :func:`cyclic`, :func:`frc`,
:func:`regular`, :meth:`Assignment.from_matrix`, and the file readers
:func:`load_assignment` / :func:`load_orderings`.

Choices where the specification is silent:

* A worker that holds no chunk is allowed (a spare worker): its load is 0, its state is
  always 0 and it never transmits. A chunk that nobody holds is an error, because the
  gradient could never be recovered.
* The default ("natural") ordering is ascending chunk ids, except for :func:`cyclic`,
  whose natural order is ``i, i+1, ..., i+delta-1 (mod N)`` (SPEC section 4).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from mpigc.errors import UsageError, require


class Assignment:
    """Chunks held by each worker, and the order each worker processes them in.

    Build one with :meth:`from_matrix` or a constructor (:func:`cyclic`, :func:`frc`,
    :func:`regular`); instances are immutable (arrays are read-only).

    Attributes
    ----------
    matrix : ndarray of bool, shape (m, N)
        ``matrix[j, i]`` is True when worker ``i`` holds chunk ``j``.
    orderings : list of list of int
        ``orderings[i]`` lists worker ``i``'s chunks in processing order.
    n_chunks, n_workers : int
        m and N.
    loads : ndarray of int, shape (N,)
        delta_i, the number of chunks of each worker.
    replication : ndarray of int, shape (m,)
        gamma_j, the number of holders of each chunk.
    positions : ndarray of int, shape (m, N)
        ``positions[j, i]`` = 1-based position of chunk ``j`` in ``orderings[i]``,
        0 where worker ``i`` does not hold chunk ``j``.
    """

    def __init__(self, matrix, orderings):
        # Private: use from_matrix, which validates.
        self.matrix = matrix
        self.matrix.setflags(write=False)
        self.n_chunks, self.n_workers = matrix.shape
        self.loads = matrix.sum(axis=0).astype(np.int64)
        self.replication = matrix.sum(axis=1).astype(np.int64)
        self.loads.setflags(write=False)
        self.replication.setflags(write=False)
        self.orderings = [list(o) for o in orderings]
        positions = np.zeros(matrix.shape, dtype=np.int64)
        for i, order in enumerate(self.orderings):
            positions[order, i] = np.arange(1, len(order) + 1)
        positions.setflags(write=False)
        self.positions = positions
        self._holders = [np.flatnonzero(row) for row in matrix]
        for h in self._holders:
            h.setflags(write=False)

    @classmethod
    def from_matrix(cls, A, orderings=None) -> "Assignment":
        """Validate a 0/1 matrix (m x N: chunks x workers) and build an assignment.

        Parameters
        ----------
        A : array_like, shape (m, N)
            Entries exactly 0 or 1 (bool, integer or float); ``A[j, i] = 1`` when
            worker ``i`` holds chunk ``j``. Every chunk needs at least one holder.
        orderings : sequence of sequences of int, optional
            One processing order per worker, each a permutation of that worker's chunks.
            Default: ascending chunk ids.

        Raises
        ------
        UsageError
            (a ValueError) naming the problem: not 2-D, empty, an entry other than 0/1,
            a chunk nobody holds, or a bad ordering.
        """
        try:
            arr = np.asarray(A)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"assignment matrix is not a numeric array: {exc}") from None
        require(arr.ndim == 2, f"assignment matrix must be 2-D (chunks x workers), got shape {arr.shape}")
        require(arr.shape[0] > 0 and arr.shape[1] > 0,
                f"assignment matrix must have at least one chunk and one worker, got shape {arr.shape}")
        if arr.dtype != bool:
            require(np.issubdtype(arr.dtype, np.number),
                    f"assignment matrix must hold 0/1 numbers, got dtype {arr.dtype}")
            bad = np.argwhere((arr != 0) & (arr != 1))
            if len(bad):
                j, i = bad[0]
                raise UsageError(f"assignment matrix must be 0/1: entry [{j}, {i}] is {arr[j, i].item():g}")
        matrix = np.array(arr, dtype=bool)
        orphans = np.flatnonzero(~matrix.any(axis=1))
        if len(orphans):
            raise UsageError(f"chunk {orphans[0]} is held by no worker")
        if orderings is None:
            orderings = [np.flatnonzero(col).tolist() for col in matrix.T]
        else:
            orderings = _check_orderings(matrix, orderings)
        return cls(matrix, orderings)

    def with_orderings(self, orderings) -> "Assignment":
        """The same matrix with other processing orders (validated like :meth:`from_matrix`)."""
        return Assignment(self.matrix.copy(), _check_orderings(self.matrix, orderings))

    def chunks(self, worker) -> list[int]:
        """Worker's chunks in processing order (``orderings[worker]``)."""
        return self.orderings[worker]

    def holders(self, chunk) -> np.ndarray:
        """Workers holding ``chunk``, ascending (read-only array)."""
        return self._holders[chunk]

    def position(self, worker, chunk) -> int:
        """1-based position p_i(j) of ``chunk`` in worker's ordering; 0 if not held."""
        return int(self.positions[chunk, worker])

    def check_state(self, state) -> np.ndarray:
        """Validate a state vector (length N, ``0 <= state[i] <= loads[i]``); return it as int64.

        Raises
        ------
        UsageError
            Naming the first bad entry.
        """
        s = np.asarray(state)
        require(s.shape == (self.n_workers,),
                f"state must have length {self.n_workers} (one count per worker), got shape {s.shape}")
        require(np.issubdtype(s.dtype, np.integer) or (s.dtype.kind == "f" and np.all(s == np.round(s))),
                f"state must hold integer counts, got {s.tolist()}")
        s = s.astype(np.int64)
        bad = np.flatnonzero((s < 0) | (s > self.loads))
        if len(bad):
            i = bad[0]
            raise UsageError(f"state[{i}] = {s[i]} is outside 0..{self.loads[i]} (the load of worker {i})")
        return s

    def processed(self, state) -> np.ndarray:
        """Boolean (m, N): worker ``i`` has processed chunk ``j`` in ``state``."""
        s = self.check_state(state)
        return (self.positions >= 1) & (self.positions <= s[None, :])

    def coverage(self, state) -> np.ndarray:
        """Per chunk, the number of workers that processed it in ``state`` (|S_j(s)|)."""
        return self.processed(state).sum(axis=1)

    def __repr__(self):
        return (f"Assignment(n_chunks={self.n_chunks}, n_workers={self.n_workers}, "
                f"loads={_span(self.loads)}, replication={_span(self.replication)})")


def _span(values):
    lo, hi = int(values.min()), int(values.max())
    return str(lo) if lo == hi else f"{lo}..{hi}"


def _check_orderings(matrix, orderings):
    n_workers = matrix.shape[1]
    orderings = list(orderings)
    require(len(orderings) == n_workers,
            f"need one ordering per worker: got {len(orderings)} for {n_workers} workers")
    checked = []
    for i, order in enumerate(orderings):
        try:
            ids = [int(c) for c in order]
        except (TypeError, ValueError):
            raise UsageError(f"ordering of worker {i} must be a list of chunk ids, got {order!r}") from None
        held = np.flatnonzero(matrix[:, i]).tolist()
        require(sorted(ids) == held,
                f"ordering of worker {i} is not a permutation of its chunks {held}: got {ids}")
        checked.append(ids)
    return checked


def _check_positive_int(value, name):
    require(isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1,
            f"{name} must be a positive integer, got {value!r}")
    return int(value)


def cyclic(n_workers, load) -> Assignment:
    """Cyclic assignment: m = N, worker ``i`` holds chunks ``i, ..., i+load-1 (mod N)``.

    The natural ordering is that cyclic order (not ascending ids), which already reaches
    the Q_max lower bound for every ell (SPEC section 4).

    Raises
    ------
    UsageError
        If ``load`` is not in 1..n_workers.
    """
    n = _check_positive_int(n_workers, "n_workers")
    load = _check_positive_int(load, "load")
    require(load <= n, f"load {load} exceeds the number of workers {n} (cyclic: m = N chunks)")
    orderings = [[(i + k) % n for k in range(load)] for i in range(n)]
    matrix = np.zeros((n, n), dtype=bool)
    for i, order in enumerate(orderings):
        matrix[order, i] = True
    return Assignment(matrix, orderings)


def frc(n_workers, load) -> Assignment:
    """Fractional repetition: m = N chunks, N/load groups of ``load`` workers.

    The workers of group ``g`` (``g*load, ..., g*load+load-1``) all hold chunks
    ``g*load, ..., g*load+load-1``; natural ordering is ascending ids. Use
    :func:`~mpigc.coding.optimal_ordering` to stagger the orders within a group.

    Raises
    ------
    UsageError
        If ``load`` does not divide ``n_workers``.
    """
    n = _check_positive_int(n_workers, "n_workers")
    load = _check_positive_int(load, "load")
    require(n % load == 0, f"fractional repetition needs load | n_workers: load {load} does not divide {n}")
    group = np.arange(n) // load
    return Assignment.from_matrix(group[:, None] == group[None, :])


def regular(n_workers, load, seed) -> Assignment:
    """Random ``load``-regular bipartite assignment (m = N), deterministic from ``seed``.

    Built as a union of ``load`` disjoint perfect matchings: each one is a maximum
    matching (scipy) of the still-unused worker/chunk pairs after a random relabelling.
    The unused pairs always form an (N-k)-regular bipartite graph, which has a perfect
    matching (Konig/Hall), so the construction never fails or resamples. It is random
    but not uniform over all regular graphs.

    Raises
    ------
    UsageError
        If ``load`` is not in 1..n_workers.
    """
    n = _check_positive_int(n_workers, "n_workers")
    load = _check_positive_int(load, "load")
    require(load <= n, f"load {load} exceeds the number of workers {n} (regular: m = N chunks)")
    rng = np.random.default_rng(seed)
    matrix = np.zeros((n, n), dtype=bool)
    for _ in range(load):
        rows, cols = rng.permutation(n), rng.permutation(n)
        free = ~matrix[np.ix_(rows, cols)]
        match = maximum_bipartite_matching(csr_matrix(free), perm_type="column")
        matrix[rows, cols[match]] = True
    return Assignment.from_matrix(matrix)


def load_assignment(path) -> Assignment:
    """Read a 0/1 assignment matrix (m chunks x N workers) from a file.

    ``.npy`` is read with :func:`numpy.load`; any other suffix (``.txt``, ``.csv``) as text
    with whitespace- or comma-separated entries, one chunk per line (``#`` starts a comment).

    Raises
    ------
    UsageError
        Naming the file and the problem (missing, unreadable, not a 0/1 matrix, ...).
    """
    p = Path(path)
    try:
        if p.suffix.lower() == ".npy":
            A = np.load(p, allow_pickle=False)
        else:
            text = p.read_text()
            A = np.loadtxt(text.replace(",", " ").splitlines(), ndmin=2)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read assignment file {p}: {exc}") from None
    try:
        return Assignment.from_matrix(A)
    except UsageError as exc:
        raise UsageError(f"assignment file {p}: {exc}") from None


def load_orderings(path, assignment) -> Assignment:
    """Read processing orders from a text file and attach them to ``assignment``.

    One line per worker (worker 0 first) with its chunk ids, whitespace- or
    comma-separated; an empty line is a worker without chunks; lines starting with
    ``#`` are comments; trailing empty lines are ignored.

    Raises
    ------
    UsageError
        Naming the file and the problem (wrong number of lines, a non-integer id,
        an ordering that is not a permutation of the worker's chunks).
    """
    p = Path(path)
    try:
        text = p.read_text()
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read orderings file {p}: {exc}") from None
    lines = [(n, ln) for n, ln in enumerate(text.splitlines(), start=1) if not ln.lstrip().startswith("#")]
    while lines and not lines[-1][1].strip():
        lines.pop()
    orderings = []
    for lineno, line in lines:
        fields = line.replace(",", " ").split()
        try:
            orderings.append([int(f) for f in fields])
        except ValueError:
            raise UsageError(f"orderings file {p}: line {lineno} has a non-integer chunk id: {line.strip()!r}") from None
    try:
        return assignment.with_orderings(orderings)
    except UsageError as exc:
        raise UsageError(f"orderings file {p}: {exc}") from None
