"""Which worker holds which chunk, and in which order it processes them (SPEC section 2).

An :class:`Assignment` is the m x N boolean matrix ``A[j, i] = worker i holds chunk j``
together with one processing order per worker. Constructors: :func:`cyclic`, :func:`frc`,
:func:`regular`, :meth:`Assignment.from_matrix`, :meth:`Assignment.from_orderings`, and the
file readers :func:`load_assignment` / :func:`load_orderings`.

Storage is sparse (O(nnz), nnz = sum of the loads): the orderings, plus per chunk its
holders in CSR form (``holders_ptr``, ``holders_idx``, ``holder_pos``). The dense views
``matrix`` and ``positions`` are built on first access and cached; they cost O(m N) memory
(``positions`` is 800 MB at N = m = 10,000), so code meant for large N avoids them.

Choices where the specification is silent:

* A worker that holds no chunk is allowed (a spare worker): its load is 0, its state is
  always 0 and it never transmits. A chunk that nobody holds is an error, because the
  gradient could never be recovered.
* The default ("natural") ordering is ascending chunk ids, except for :func:`cyclic`,
  whose natural order is ``i, i+1, ..., i+delta-1 (mod N)`` (SPEC section 4).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from mpigc.errors import UsageError, require
from mpigc.sparse import csr_matrix


def _readonly(arr):
    arr.setflags(write=False)
    return arr


class Assignment:
    """Chunks held by each worker, and the order each worker processes them in.

    Build one with :meth:`from_matrix`, :meth:`from_orderings` or a constructor
    (:func:`cyclic`, :func:`frc`, :func:`regular`); instances are immutable (arrays are
    read-only).

    Attributes
    ----------
    orderings : list of list of int
        ``orderings[i]`` lists worker ``i``'s chunks in processing order.
    n_chunks, n_workers : int
        m and N.
    loads : ndarray of int, shape (N,)
        delta_i, the number of chunks of each worker.
    replication : ndarray of int, shape (m,)
        gamma_j, the number of holders of each chunk.
    holders_ptr : ndarray of int, shape (m + 1,)
        The holders of chunk ``j`` are entries ``holders_ptr[j]:holders_ptr[j+1]`` of
        ``holders_idx`` / ``holder_pos`` (CSR layout; nnz entries in all).
    holders_idx : ndarray of int, shape (nnz,)
        Holding workers, ascending within each chunk.
    holder_pos : ndarray of int, shape (nnz,)
        1-based position of the chunk in that holder's ordering.
    entry_chunk : ndarray of int, shape (nnz,)
        The chunk of every CSR entry (``j`` repeated ``replication[j]`` times), for
        per-chunk work over the entries.
    groups : ndarray of int, shape (N,), or None
        The group of every worker of a fractional repetition assignment (see
        :attr:`groups`), None otherwise. Built on first access.
    matrix : ndarray of bool, shape (m, N)
        ``matrix[j, i]`` is True when worker ``i`` holds chunk ``j``. Dense view, built
        on first access (O(m N) memory).
    positions : ndarray of int, shape (m, N)
        ``positions[j, i]`` = 1-based position of chunk ``j`` in ``orderings[i]``, 0 where
        worker ``i`` does not hold chunk ``j``. Dense view, built on first access
        (O(m N) memory, 8 bytes an entry).
    """

    def __init__(self, n_chunks: int, orderings: Sequence[Sequence[int]]):
        # Private: orderings must already be valid (distinct ids in 0..m-1, every chunk
        # held); the public constructors validate.
        self.orderings = [list(o) for o in orderings]
        self.n_chunks, self.n_workers = int(n_chunks), len(self.orderings)
        self.loads = _readonly(np.fromiter(map(len, self.orderings), dtype=np.int64, count=self.n_workers))
        nnz = int(self.loads.sum())
        chunk = np.fromiter((j for o in self.orderings for j in o), dtype=np.int64, count=nnz)
        worker = np.repeat(np.arange(self.n_workers, dtype=np.int64), self.loads)
        start = np.cumsum(self.loads) - self.loads
        pos = np.arange(1, nnz + 1, dtype=np.int64) - np.repeat(start, self.loads)
        by_chunk = np.lexsort((worker, chunk))  # chunk-major, ascending workers within a chunk
        self.replication = _readonly(np.bincount(chunk, minlength=self.n_chunks).astype(np.int64))
        self.holders_ptr = _readonly(np.concatenate(([0], np.cumsum(self.replication))))
        self.holders_idx = _readonly(worker[by_chunk])
        self.holder_pos = _readonly(pos[by_chunk])
        self.entry_chunk = _readonly(chunk[by_chunk])

    @functools.cached_property
    def matrix(self) -> np.ndarray:
        """The dense (m, N) 0/1 matrix, built on first use (O(m N) memory)."""
        m = np.zeros((self.n_chunks, self.n_workers), dtype=bool)
        m[self.entry_chunk, self.holders_idx] = True
        return _readonly(m)

    @functools.cached_property
    def groups(self) -> np.ndarray | None:
        """Group of every worker when the assignment is a fractional repetition, else None.

        Fractional repetition (Tandon et al.): the workers split into groups that hold the
        same chunks, and no chunk is held by two groups (:func:`frc`, but also a matrix file
        of that shape). Then ``groups`` is an int array (N,) numbering the groups 0, 1, ...
        in order of first worker; None for any other assignment, or one with a worker that
        holds no chunk. O(nnz log load), cached.
        """
        if not self.loads.all():
            return None
        ids = {}
        groups = np.fromiter((ids.setdefault(tuple(sorted(o)), len(ids)) for o in self.orderings),
                             dtype=np.int64, count=self.n_workers)
        # distinct chunk sets that together hold m chunks (each held) are disjoint
        if sum(map(len, ids)) != self.n_chunks:
            return None
        return _readonly(groups)

    @functools.cached_property
    def positions(self) -> np.ndarray:
        """Dense (m, N) 1-based positions of each chunk in its holders' orderings (0: not held)."""
        p = np.zeros((self.n_chunks, self.n_workers), dtype=np.int64)
        p[self.entry_chunk, self.holders_idx] = self.holder_pos
        return _readonly(p)

    @classmethod
    def from_matrix(cls, A: ArrayLike,
                    orderings: Sequence[Sequence[int]] | None = None) -> Assignment:
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
        workers, chunks = np.nonzero(matrix.T)  # worker-major, ascending chunks
        held = _split(chunks, np.bincount(workers, minlength=matrix.shape[1]))
        a = cls(matrix.shape[0], held if orderings is None else _check_orderings(held, orderings))
        a.__dict__["matrix"] = _readonly(matrix)  # already built: seed the cached view
        return a

    @classmethod
    def from_orderings(cls, n_chunks: int, orderings: Sequence[Sequence[int]]) -> Assignment:
        """Build an assignment from the per-worker processing orders alone (O(nnz)).

        The orders determine the matrix: worker ``i`` holds exactly the chunks of
        ``orderings[i]``. The sparse counterpart of :meth:`from_matrix` for large N.

        Raises
        ------
        UsageError
            A chunk id outside 0..n_chunks-1 or repeated in one ordering, or a chunk
            that no ordering contains.
        """
        m = _check_positive_int(n_chunks, "n_chunks")
        checked = []
        for i, order in enumerate(orderings):
            ids = _int_ids(i, order)
            require(all(0 <= j < m for j in ids),
                    f"ordering of worker {i} has a chunk id outside 0..{m - 1}: got {ids}")
            require(len(set(ids)) == len(ids), f"ordering of worker {i} repeats a chunk: got {ids}")
            checked.append(ids)
        require(checked, "need at least one worker")
        seen = np.zeros(m, dtype=bool)
        seen[[j for ids in checked for j in ids]] = True
        orphans = np.flatnonzero(~seen)
        if len(orphans):
            raise UsageError(f"chunk {orphans[0]} is held by no worker")
        return cls(m, checked)

    def with_orderings(self, orderings: Sequence[Sequence[int]]) -> Assignment:
        """The same matrix with other processing orders (validated like :meth:`from_matrix`)."""
        return Assignment(self.n_chunks, _check_orderings(self._held(), orderings))

    def _held(self):
        """Each worker's chunks in ascending order (list of lists)."""
        return [sorted(o) for o in self.orderings]

    def chunks(self, worker: int) -> list[int]:
        """Worker's chunks in processing order (``orderings[worker]``)."""
        return self.orderings[worker]

    def holders(self, chunk: int) -> np.ndarray:
        """Workers holding ``chunk``, ascending (read-only array)."""
        return self.holders_idx[self.holders_ptr[chunk]:self.holders_ptr[chunk + 1]]

    def owners(self, live=None) -> list:
        """One holder per chunk, each worker owning as few chunks as it can.

        The owner evaluates the chunk for the set-up reductions and the exact losses; with
        the first holder as owner, cyclic load 3 gave worker 0 three chunks and two workers
        none, and the set-up products waited on worker 0. Greedy over the chunks in order:
        the live holder that owns the fewest so far, ties to the first (the same list on
        every rank). ``live``: the workers that may own (default all); a chunk with no live
        holder gets None.
        """
        counts = np.zeros(self.n_workers, dtype=np.int64)
        owners = []
        for j in range(self.n_chunks):
            holders = [int(i) for i in self.holders(j) if live is None or int(i) in live]
            if not holders:
                owners.append(None)
                continue
            best = min(holders, key=lambda i: counts[i])
            counts[best] += 1
            owners.append(best)
        return owners

    def holder_positions(self, chunk: int) -> np.ndarray:
        """Positions of ``chunk`` in its holders' orderings, aligned with :meth:`holders`."""
        return self.holder_pos[self.holders_ptr[chunk]:self.holders_ptr[chunk + 1]]

    def position(self, worker: int, chunk: int) -> int:
        """1-based position p_i(j) of ``chunk`` in worker's ordering; 0 if not held."""
        h = self.holders(chunk)
        k = int(np.searchsorted(h, worker))
        return int(self.holder_positions(chunk)[k]) if k < len(h) and h[k] == worker else 0

    def check_state(self, state: ArrayLike) -> np.ndarray:
        """Validate a state vector (length N, ``0 <= state[i] <= loads[i]``); return it as int64.

        O(N); messages are built only on failure.

        Raises
        ------
        UsageError
            Naming the first bad entry.
        """
        s = np.asarray(state)
        if s.shape != (self.n_workers,):
            raise UsageError(f"state must have length {self.n_workers} (one count per worker), got shape {s.shape}")
        if s.dtype.kind not in "iu":
            whole = np.isfinite(s) & (s == np.round(s)) if s.dtype.kind == "f" else np.zeros(s.shape, bool)
            if not whole.all():
                i = int(np.flatnonzero(~whole)[0])
                raise UsageError(f"state must hold integer counts, got state[{i}] = {s.tolist()[i]!r}")
        s = s.astype(np.int64)
        bad = (s < 0) | (s > self.loads)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise UsageError(f"state[{i}] = {s[i]} is outside 0..{self.loads[i]} (the load of worker {i})")
        return s

    def processed_entries(self, state: ArrayLike) -> np.ndarray:
        """Boolean (nnz,), aligned with ``holders_idx``: that holder processed that chunk.

        The O(nnz) form of :meth:`processed` (``holder_pos <= state[holder]``).
        """
        s = self.check_state(state)
        return self.holder_pos <= s[self.holders_idx]

    def processed(self, state: ArrayLike) -> np.ndarray:
        """Boolean (m, N): worker ``i`` has processed chunk ``j`` in ``state`` (O(m N) memory)."""
        out = np.zeros((self.n_chunks, self.n_workers), dtype=bool)
        done = self.processed_entries(state)
        out[self.entry_chunk[done], self.holders_idx[done]] = True
        return out

    def coverage(self, state: ArrayLike) -> np.ndarray:
        """Per chunk, the number of workers that processed it in ``state`` (|S_j(s)|); O(nnz)."""
        return self.segment_sums(self.processed_entries(state))

    def segment_sums(self, values: ArrayLike) -> np.ndarray:
        """Per chunk, the sum of ``values`` (nnz,) over its CSR entries; shape (m,)."""
        cum = np.concatenate(([0], np.cumsum(values)))
        return cum[self.holders_ptr[1:]] - cum[self.holders_ptr[:-1]]

    def __repr__(self):
        return (f"Assignment(n_chunks={self.n_chunks}, n_workers={self.n_workers}, "
                f"loads={_span(self.loads)}, replication={_span(self.replication)})")


def _span(values):
    lo, hi = int(values.min()), int(values.max())
    return str(lo) if lo == hi else f"{lo}..{hi}"


def _split(values, counts):
    """Split a flat array into consecutive lists of the given lengths."""
    return [part.tolist() for part in np.split(values, np.cumsum(counts)[:-1])]


def _int_ids(worker, order):
    try:
        return [int(c) for c in order]
    except (TypeError, ValueError):
        raise UsageError(f"ordering of worker {worker} must be a list of chunk ids, got {order!r}") from None


def _check_orderings(held, orderings):
    """Check every ordering is a permutation of the worker's chunks (``held``, ascending)."""
    orderings = list(orderings)
    require(len(orderings) == len(held),
            f"need one ordering per worker: got {len(orderings)} for {len(held)} workers")
    checked = []
    for i, order in enumerate(orderings):
        ids = _int_ids(i, order)
        require(sorted(ids) == held[i],
                f"ordering of worker {i} is not a permutation of its chunks {held[i]}: got {ids}")
        checked.append(ids)
    return checked


def _check_positive_int(value, name):
    require(isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1,
            f"{name} must be a positive integer, got {value!r}")
    return int(value)


def cyclic(n_workers: int, load: int) -> Assignment:
    """Cyclic assignment: m = N, worker ``i`` holds chunks ``i, ..., i+load-1 (mod N)``.

    The natural ordering is that cyclic order (not ascending ids), which already reaches
    the Q_max lower bound for every ell (SPEC section 4). O(N load).

    Raises
    ------
    UsageError
        If ``load`` is not in 1..n_workers.
    """
    n = _check_positive_int(n_workers, "n_workers")
    load = _check_positive_int(load, "load")
    require(load <= n, f"load {load} exceeds the number of workers {n} (cyclic: m = N chunks)")
    return Assignment(n, ((np.arange(n)[:, None] + np.arange(load)[None, :]) % n).tolist())


def frc(n_workers: int, load: int) -> Assignment:
    """Fractional repetition: m = N chunks, N/load groups of ``load`` workers.

    The workers of group ``g`` (``g*load, ..., g*load+load-1``) all hold chunks
    ``g*load, ..., g*load+load-1``; natural ordering is ascending ids. Use
    :func:`~mpigc.coding.optimal_ordering` to stagger the orders within a group. O(N load).

    Raises
    ------
    UsageError
        If ``load`` does not divide ``n_workers``.
    """
    n = _check_positive_int(n_workers, "n_workers")
    load = _check_positive_int(load, "load")
    require(n % load == 0, f"fractional repetition needs load | n_workers: load {load} does not divide {n}")
    first = (np.arange(n) // load) * load
    return Assignment(n, (first[:, None] + np.arange(load)[None, :]).tolist())


def regular(n_workers: int, load: int, seed: int) -> Assignment:
    """Random ``load``-regular bipartite assignment (m = N), deterministic from ``seed``.

    Built as a union of ``load`` disjoint perfect matchings: each one is a maximum
    matching (scipy) of the still-unused worker/chunk pairs after a random relabelling.
    The unused pairs always form an (N-k)-regular bipartite graph, which has a perfect
    matching (Konig/Hall), so the construction never fails or resamples. It is random
    but not uniform over all regular graphs. Each matching works on the dense N x N
    complement graph: O(N^2) time and memory per unit of load (seconds at N = 2,000; for
    N = 10,000 use :func:`cyclic` or :meth:`Assignment.from_orderings`).

    Raises
    ------
    UsageError
        If ``load`` is not in 1..n_workers.
    """
    # with scipy.sparse.linalg and scipy.linalg: 0.2 s of every rank's start-up otherwise
    from scipy.sparse.csgraph import maximum_bipartite_matching

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


def load_assignment(path: str | PathLike) -> Assignment:
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
    except OSError as exc:  # strerror: the path is already in the message
        raise UsageError(f"cannot read assignment file {p}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"cannot read assignment file {p}: {exc}") from None
    try:
        return Assignment.from_matrix(A)
    except UsageError as exc:
        raise UsageError(f"assignment file {p}: {exc}") from None


def load_orderings(path: str | PathLike, assignment: Assignment) -> Assignment:
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
    except OSError as exc:
        raise UsageError(f"cannot read orderings file {p}: {exc.strerror or exc}") from None
    except ValueError as exc:
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
            raise UsageError(f"orderings file {p}: line {lineno} has a non-integer chunk id: "
                             f"{line.strip()!r}") from None
    try:
        return assignment.with_orderings(orderings)
    except UsageError as exc:
        raise UsageError(f"orderings file {p}: {exc}") from None
