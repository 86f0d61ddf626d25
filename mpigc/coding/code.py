"""The adaptive gradient code of SPEC section 3: min-norm coefficients, encode, decode.

Every chunk j with processors S = S_j(s) gets ``X_j = pinv(beta[:, S])`` (|S| x ell), the
minimum l2-norm solution of ``beta[:, S] X = I`` (least squares when |S| < ell). Worker i
sends ``y_i = sum_{j in P_i(s)} sum_k X_j[row of i, k] g_j^(k)``; the PS decodes block k
as ``sum_i beta[k, i] y_i``. Exact when every chunk is processed by at least ell workers,
otherwise each chunk's blocks are orthogonally projected onto what its processors span.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike

from mpigc.coding.assignment import Assignment
from mpigc.coding.ordering import check_ell
from mpigc.errors import UsageError, require
from mpigc.sparse import csr_matrix

# Distinct processor sets kept per code; states repeat across iterations, so a few
# thousand sets cover the common patterns of a run while bounding memory.
COEFFICIENT_CACHE_SIZE = 4096


def make_beta(n_workers: int, ell: int, kind: str = "gaussian", seed: int = 0) -> np.ndarray:
    """The ell x N decoding matrix beta, identical on every rank for the same arguments.

    Parameters
    ----------
    kind : {"gaussian", "vandermonde"}
        ``"gaussian"``: i.i.d. standard normal entries from
        ``numpy.random.default_rng(seed)`` (every ell columns independent with
        probability one, and well conditioned). ``"vandermonde"``: row k holds the k-th
        powers of N equispaced nodes in [-1, 1] (node i = -1 + 2i/(N-1)); kept as the
        numerically unstable comparison of SPEC section 8. For ``ell == 1`` beta is all
        ones whatever the kind (SPEC section 3).
    """
    require(kind in ("gaussian", "vandermonde"),
            f"beta must be 'gaussian', 'vandermonde' or an ell x N array, got {kind!r}")
    if ell == 1:
        return np.ones((1, n_workers))
    if kind == "gaussian":
        return np.random.default_rng(seed).standard_normal((ell, n_workers))
    nodes = np.linspace(-1.0, 1.0, n_workers)
    return np.vander(nodes, ell, increasing=True).T


class GradientCode:
    """Gradient code with communication parameter ``ell`` on an assignment (SPEC section 3).

    Parameters
    ----------
    assignment : Assignment
        Matrix and orderings; the orderings define which chunks a state count means.
    ell : int
        1..min replication. Each worker sends ``ceil(d / ell)`` numbers.
    seed : int
        Seed of the Gaussian beta.
    beta : {"gaussian", "vandermonde"} or array_like (ell, N)
        The decoding matrix (see :func:`make_beta`), or an explicit one.

    Notes
    -----
    ``X_j`` is computed with :func:`numpy.linalg.pinv` (SVD; singular values below
    ``max(|S|, ell) * eps * sigma_max`` count as zero, the cutoff of
    :func:`numpy.linalg.matrix_rank`), cached per processor set
    (:data:`COEFFICIENT_CACHE_SIZE` sets, least recently used dropped). Workers that share a
    chunk compute bit-identical ``X_j`` because the set is passed in ascending order.
    """

    def __init__(self, assignment: Assignment, ell: int, seed: int = 0,
                 beta: str | ArrayLike = "gaussian"):
        require(isinstance(assignment, Assignment),
                f"assignment must be an mpigc.coding.Assignment, got {type(assignment).__name__}")
        self.assignment = assignment
        self.ell = check_ell(assignment, ell)
        n = assignment.n_workers
        if isinstance(beta, str):
            self.beta = make_beta(n, self.ell, beta, seed)
        else:
            b = np.array(beta, dtype=float)
            require(b.shape == (self.ell, n), f"beta must have shape ({self.ell}, {n}), got {b.shape}")
            require(np.all(np.isfinite(b)), "beta has non-finite entries")
            self.beta = b
        self.beta.setflags(write=False)
        self._pinv = functools.lru_cache(maxsize=COEFFICIENT_CACHE_SIZE)(self._solve)

    def _solve(self, processors: tuple) -> np.ndarray:
        sub = self.beta[:, list(processors)]
        x = np.linalg.pinv(sub, rcond=max(sub.shape) * np.finfo(float).eps)
        x.setflags(write=False)
        return x

    def block_len(self, d: int) -> int:
        """Length of one block and of every transmission: ``ceil(d / ell)``."""
        require(isinstance(d, (int, np.integer)) and d >= 1, f"gradient length d must be a positive integer, got {d!r}")
        return -(-int(d) // self.ell)

    def processors(self, chunk: int, state: ArrayLike) -> np.ndarray:
        """S_j(s): the workers that processed ``chunk`` in ``state`` (ascending)."""
        s = self.assignment.check_state(state)
        return self._processors(chunk, s)

    def _processors(self, chunk, s):
        h = self.assignment.holders(chunk)
        return h[self.assignment.holder_positions(chunk) <= s[h]]

    def decodable(self, state: ArrayLike) -> bool:
        """True when every chunk is processed by at least ell workers (exact decode); O(nnz)."""
        return bool(np.all(self.assignment.coverage(state) >= self.ell))

    def recovered_fraction(self, state: ArrayLike) -> float:
        """Fraction of chunks processed by at least ell workers (recovered exactly); O(nnz)."""
        return float(np.mean(self.assignment.coverage(state) >= self.ell))

    def coefficients(self, worker: int, state: ArrayLike) -> dict[int, np.ndarray]:
        """Worker's encoding coefficients: chunk j -> ``X_j[row of worker, :]`` (ell,).

        Only the chunks the worker processed in ``state`` appear; the cost is that of
        its own chunks, not of the whole assignment.
        """
        s = self.assignment.check_state(state)
        self._check_worker(worker)
        out = {}
        for j in self.assignment.orderings[worker][: s[worker]]:
            procs = self._processors(j, s)
            row = int(np.searchsorted(procs, worker))
            out[j] = self._pinv(tuple(procs.tolist()))[row]
        return out

    def encode(self, worker: int, state: ArrayLike,
               chunk_grads: Mapping[int, np.ndarray]) -> np.ndarray:
        """The transmission ``y_i`` of worker ``i`` for ``state`` (length ``ceil(d/ell)``).

        Parameters
        ----------
        worker : int
        state : array_like of int, shape (N,)
            The broadcast state; ``state[worker] >= 1`` (a worker with state 0 sends
            nothing, SPEC section 3, so encoding for it is an error).
        chunk_grads : mapping int -> 1-D array
            Gradient of every chunk the worker processed in ``state`` (all of length d);
            extra entries (chunks finished after the state was fixed) are ignored.

        Raises
        ------
        UsageError
            State out of range, worker with state 0, a missing chunk gradient or
            gradients of different lengths.
        """
        coefs = self.coefficients(worker, state)
        require(coefs, f"worker {worker} has state 0: it sends nothing, there is nothing to encode")
        grads = []
        for j in coefs:
            require(j in chunk_grads, f"chunk_grads lacks chunk {j}, which worker {worker} processed in this state")
            grads.append(np.asarray(chunk_grads[j]))
        d = grads[0].shape[0] if grads[0].ndim == 1 else -1
        for j, g in zip(coefs, grads):
            require(g.ndim == 1 and g.shape[0] == d and d >= 1,
                    f"gradient of chunk {j} has shape {g.shape}; every gradient must be 1-D of the same length")
        b = self.block_len(d)
        y = np.zeros(b, dtype=np.result_type(*grads, np.float64))
        pad = None if d == self.ell * b else np.zeros(self.ell * b, dtype=y.dtype)
        for c, g in zip(coefs.values(), grads):
            if pad is None:
                blocks = g.reshape(self.ell, b)
            else:
                pad[:d] = g
                blocks = pad.reshape(self.ell, b)
            y += c @ blocks
        return y

    def encode_all(self, state: ArrayLike, chunk_grads: ArrayLike) -> np.ndarray:
        """Every sender's transmission at once: row r is ``encode(senders[r], state, ...)``.

        ``senders`` are the workers with ``state[i] > 0`` in ascending order, so the
        result is the 2-D ``transmissions`` argument of :meth:`decode`. One batched
        ``pinv`` per processor-set size and one sparse product: O(nnz ell^2 + nnz d) time,
        O(nnz + N d / ell + m d) memory (the simulator's path; a worker uses :meth:`encode`).
        ``X_j`` is computed once per chunk (not through the per-set cache), so it may differ
        from :meth:`encode`'s in the last bits.

        Parameters
        ----------
        state : array_like of int, shape (N,)
        chunk_grads : array_like, shape (m, d)
            Row j is the gradient of chunk j (rows of unprocessed chunks are ignored).

        Returns
        -------
        ndarray, shape (number of senders, ceil(d / ell))
        """
        a = self.assignment
        s = a.check_state(state)
        done = a.holder_pos <= s[a.holders_idx]  # processed_entries, state checked once
        G = np.asarray(chunk_grads)
        require(G.ndim == 2 and G.shape[0] == a.n_chunks and G.shape[1] >= 1,
                f"chunk_grads must have shape ({a.n_chunks}, d) with d >= 1, got {G.shape}")
        d, ell = G.shape[1], self.ell
        b = self.block_len(d)
        dtype = np.result_type(G, np.float64)
        if d == ell * b:
            blocks = G.astype(dtype, copy=False).reshape(a.n_chunks * ell, b)
        else:
            padded = np.zeros((a.n_chunks, ell * b), dtype=dtype)
            padded[:, :d] = G
            blocks = padded.reshape(a.n_chunks * ell, b)
        # Processed entries stay chunk-major with ascending workers: S_j is contiguous.
        workers = a.holders_idx[done]
        chunks = a.entry_chunk[done]
        size = a.segment_sums(done)
        start = np.cumsum(size) - size
        coef = np.empty((len(workers), ell))
        for k in np.unique(size[size > 0]):
            js = np.flatnonzero(size == k)
            idx = start[js][:, None] + np.arange(k)[None, :]          # (n_k, k) entries
            sub = self.beta[:, workers[idx]].transpose(1, 0, 2)       # (n_k, ell, k)
            x = np.linalg.pinv(sub, rcond=max(k, ell) * np.finfo(float).eps)  # (n_k, k, ell)
            coef[idx] = x
        senders = np.flatnonzero(s > 0)
        row = np.cumsum(s > 0) - 1
        cols = chunks[:, None] * ell + np.arange(ell)[None, :]
        mix = csr_matrix((coef.ravel(), (np.repeat(row[workers], ell), cols.ravel())),
                         shape=(len(senders), a.n_chunks * ell))
        return np.asarray(mix @ blocks)

    def decode_weights(self, state: ArrayLike) -> np.ndarray:
        """The decode as weights: :meth:`decode` is ``(W @ Y).reshape(-1)[:d]``, Y the vectors.

        ``W = beta`` on the workers with ``state[i] > 0``, zero elsewhere (ell x N).
        """
        s = self.assignment.check_state(state)
        return np.where(s > 0, self.beta, 0.0)

    def decode(self, state: ArrayLike, transmissions: Mapping[int, np.ndarray] | np.ndarray,
               d: int) -> np.ndarray:
        """Recover the gradient sum (exact when decodable) from the transmissions.

        Parameters
        ----------
        state : array_like of int, shape (N,)
        transmissions : mapping int -> 1-D array of length ``ceil(d/ell)``, or 2-D array
            One entry for every worker with ``state[i] > 0``, and only those. A 2-D array
            of shape (number of senders, ``ceil(d/ell)``) holds them as rows in ascending
            worker order (a receive buffer the PS can fill in place: no copy).
        d : int
            Gradient length.

        Returns
        -------
        ndarray, shape (d,)
            ``sum_j g_j`` when decodable; otherwise each chunk's blocks projected onto
            the span of its processors' beta columns (chunks nobody processed are lost).
        """
        s = self.assignment.check_state(state)
        b = self.block_len(d)
        senders = np.flatnonzero(s > 0)
        if isinstance(transmissions, np.ndarray):
            require(transmissions.shape == (len(senders), b),
                    f"transmissions array has shape {transmissions.shape}, expected "
                    f"({len(senders)}, {b}): one row per worker with state > 0")
            stacked = transmissions
        else:
            extra = sorted(set(transmissions) - set(senders.tolist()))
            if extra:
                raise UsageError(f"transmission from worker {extra[0]!r}, whose state is 0 (or not a worker)")
            ys = []
            for i in senders:
                require(int(i) in transmissions, f"missing transmission of worker {i} (state {s[i]})")
                y = np.asarray(transmissions[int(i)])
                require(y.shape == (b,), f"transmission of worker {i} has shape {y.shape}, expected ({b},)")
                ys.append(y)
            stacked = np.stack(ys) if ys else np.zeros((0, b))
        return (self.beta[:, senders] @ stacked).reshape(-1)[:d]

    def _check_worker(self, worker):
        n = self.assignment.n_workers
        if not (isinstance(worker, (int, np.integer)) and 0 <= worker < n):
            raise UsageError(f"worker {worker!r} is not in 0..{n - 1}")
