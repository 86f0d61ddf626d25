"""A worker rank: its chunks' rows, the chunk loop with straggler injection, the encode.

SPEC section 6, steps 2 and 5 (the messages: docs/ARCHITECTURE.md). Chunks run along the
worker's ordering with the Numba kernel in blocks of ``row_block`` rows, testing the state
broadcast between blocks and between slices of an injected delay. Injected faults
(:mod:`mpigc.faults`) act here.
"""

import functools
import math
import time

import numpy as np

from mpigc import kernels
from mpigc.data.split import holdout_mask
from mpigc.faults import FaultPlan, die
from mpigc.runtime.poll import Backoff

# Seconds between two tests of the state while a delay is slept, and the longest sleep
# of a worker waiting for the state or the next model: both are on the critical path.
SLEEP_SLICE = 2.5e-4
# The slice during a worker's first chunk: a state then counts nothing of this worker, so
# nobody waits for it; fewer wake-ups leave the cores to the ranks that are waited for.
FIRST_CHUNK_SLICE = 1e-3


class ChunkData:
    """The rows of the chunks one rank holds, and their loss/gradient.

    Parameters
    ----------
    source : mpigc.data.DataSource
    bounds : ndarray
        ``chunk_bounds(n_rows, m)``.
    chunks : iterable of int
        The chunks this rank holds; only their rows are read.
    dtype : {"float64", "float32"}
    fit_intercept : bool
        Whether the model vector ends with an intercept (the kernels add it to each margin).
    rows : (X, y), optional
        The rows of ``chunks``, already read (in ascending chunk order, as ``read_rows``
        returns them): :func:`mpigc.runtime.rows.read` assembles them from the chunks'
        owners. Default: read from ``source``.

    Attributes
    ----------
    X, y : the rows read (raw labels until :meth:`set_labels`).
    local : dict chunk -> (start, stop) rows of X.
    """

    def __init__(self, source, bounds, chunks, dtype="float64", fit_intercept=False,
                 rows=None):
        self.chunks = sorted({int(j) for j in chunks})
        self.fit_intercept = bool(fit_intercept)
        ranges = [(int(bounds[j]), int(bounds[j + 1])) for j in self.chunks]
        self.X, self.y = source.read_rows(ranges, dtype=dtype) if rows is None else rows
        self.local, offset = {}, 0
        for j, (a, b) in zip(self.chunks, ranges):
            self.local[j] = (offset, offset + b - a)
            offset += b - a

    def split_holdout(self, bounds, fraction, seed):
        """``--validation-fraction``: remove each chunk's held-out rows (coins of
        :func:`mpigc.data.split.holdout_mask`) from the training rows; returns them as
        ``{chunk: (X, y)}``.
        """
        keep, held, local, offset = [], {}, {}, 0
        for j in self.chunks:
            a, b = self.local[j]
            mask = holdout_mask(int(bounds[j]), int(bounds[j + 1]), fraction, seed)
            rows = np.arange(a, b)
            held[j] = (self.X[rows[mask]], self.y[rows[mask]])
            kept = rows[~mask]
            keep.append(kept)
            local[j] = (offset, offset + kept.size)
            offset += kept.size
        rows = np.concatenate(keep) if keep else np.empty(0, dtype=np.int64)
        self.X, self.y, self.local = self.X[rows], np.ascontiguousarray(self.y[rows]), local
        return held

    def set_labels(self, y):
        """Replace the labels by the model's (checked) ones."""
        self.y = np.ascontiguousarray(y, dtype=np.float64)

    def rows(self, chunk):
        """``(X, y)`` of ``chunk`` (views)."""
        a, b = self.local[chunk]
        return self.X[a:b], self.y[a:b]

    def blocks(self, chunks):
        """The row blocks ``X_j`` of ``chunks`` (views, for the column statistics)."""
        return [self.rows(j)[0] for j in chunks]

    def gram(self, chunks, d):
        """``sum_{j in chunks} X_j^T X_j`` as a dense d x d array."""
        out = np.zeros((d, d))
        for j in chunks:
            Xj, _ = self.rows(j)
            g = Xj.T @ Xj
            out += g.toarray() if hasattr(g, "toarray") else g
        return out

    def gram_apply(self, chunks, v):
        """``sum_{j in chunks} X_j^T (X_j v)`` (the Lanczos products of ``--lr auto``).

        The gradient of the linear loss at targets 0 is ``X^T X v``: the fused kernel reads
        each row once, in place, where ``X_j.T @ (X_j @ v)`` copied the chunk's rows and
        read them twice.
        """
        out = np.zeros_like(v)
        for j in chunks:
            a, b = self.local[j]
            kernels.loss_grad("linear", self.X, self._zero_targets, v, a, b, out)
        return out

    @functools.cached_property
    def _zero_targets(self):
        # the targets of gram_apply, allocated once for its ~70 products
        return np.zeros(self.X.shape[0])

    def evaluate(self, model, chunks, w):
        """Summed loss and number of correctly classified rows of ``chunks`` at ``w``."""
        loss, correct = 0.0, 0
        scratch = np.zeros_like(w)
        for j in chunks:
            a, b = self.local[j]
            loss += kernels.loss_grad(model, self.X, self.y, w, a, b, scratch,
                                      self.fit_intercept)
            if model == "logistic":
                Xj, yj = self.rows(j)
                correct += int(np.count_nonzero(self.margins(Xj, w) * yj > 0))
        return loss, correct

    def margins(self, X, w):
        """``X w`` (plus the intercept, the last entry of ``w``, when it has one)."""
        if self.fit_intercept:
            return np.asarray(X @ w[:-1]).ravel() + w[-1]
        return np.asarray(X @ w).ravel()

    def warm(self, model, w):
        """Compile (or load from the cache) the kernel for this data layout, outside timing."""
        kernels.loss_grad(model, self.X, self.y, w, 0, 0, np.zeros_like(w), self.fit_intercept)


class ChunkRunner:
    """Computes one chunk's gradient in row blocks with the injected straggler delay.

    ``interrupted`` is polled between row blocks and between sleep slices; when it returns
    True the chunk is abandoned. The chunk takes ``F * max(chunk_time, c)`` seconds, c its
    real compute time (SPEC section 7).
    """

    def __init__(self, data, model, chunk_time, row_block, inv_n):
        self.data, self.model = data, model
        self.chunk_time, self.row_block, self.inv_n = chunk_time, row_block, inv_n

    def run(self, chunk, w, factor, grad, interrupted, sleep_slice=SLEEP_SLICE):
        """Gradient (scaled by 1/n) into ``grad``; returns ``(loss_sum, seconds)`` or None.

        ``interrupted`` is tested at least every ``sleep_slice`` seconds of the delay.
        """
        t0 = time.perf_counter()
        grad[:] = 0.0
        a, b = self.data.local[chunk]
        X, y, loss = self.data.X, self.data.y, 0.0
        for start in range(a, b, self.row_block):
            loss += kernels.loss_grad(self.model, X, y, w, start, min(start + self.row_block, b),
                                      grad, self.data.fit_intercept)
            if interrupted():
                return None
        target = t0 + factor * max(self.chunk_time, time.perf_counter() - t0)
        while True:
            left = target - time.perf_counter()
            if left <= 0:
                break
            time.sleep(min(sleep_slice, left))
            if interrupted():
                return None
        grad *= self.inv_n
        return loss, time.perf_counter() - t0


class Worker:
    """Worker ``worker`` (MPI rank ``worker + 1``) of a parameter-server scheme.

    Parameters
    ----------
    comm : mpigc.runtime.comm.Comm
    protocol : mpigc.schemes.Protocol
    worker : int
    runner : ChunkRunner
    stragglers : mpigc.stragglers.StragglerModel
    d : int
        Model dimension.
    faults : mpigc.faults.FaultPlan, optional
    """

    def __init__(self, comm, protocol, worker, runner, stragglers, d, faults=None):
        self.comm, self.protocol, self.worker = comm, protocol, worker
        self.runner, self.stragglers = runner, stragglers
        self.d, self.faults = d, faults if faults is not None else FaultPlan()
        self.order = list(protocol.assignment.orderings[worker])
        self.n = protocol.n_workers
        self.grads = np.zeros((len(self.order), d))

    def iterate(self, iteration, w):
        """One iteration (SPEC section 6) at the broadcast point ``w``."""
        comm, protocol = self.comm, self.protocol
        request, buf = comm.post_state(self.n)
        signalled = [False]
        finished = [0]  # chunks done, for a kill fault
        kill = self.faults.kill_point(self.worker, iteration)
        start = time.perf_counter()

        def interrupted():
            if kill is not None and finished[0] >= kill[0] and \
                    time.perf_counter() - start >= kill[1]:
                die()
            if not signalled[0] and comm.done(request):
                signalled[0] = True
            return signalled[0]

        factor = self.stragglers.factors(iteration)[self.worker]
        if self.faults.fails(self.worker, iteration):
            factor = math.inf
        times, losses, reported = [], [], 0
        if not math.isinf(factor):
            for k, chunk in enumerate(self.order):
                done = self.runner.run(chunk, w, factor, self.grads[k], interrupted,
                                       SLEEP_SLICE if k else FIRST_CHUNK_SLICE)
                if done is None:
                    break
                losses.append(done[0])
                times.append(done[1])
                finished[0] = k + 1
                if protocol.reports_at(self.worker, k + 1):
                    comm.send_progress(iteration, k + 1, times[reported:])
                    reported = k + 1
                if interrupted():
                    break
        backoff = Backoff(longest=SLEEP_SLICE)
        while not interrupted():
            comm.progress_sends()
            backoff.wait()
        if kill is not None:
            die()  # the iteration ended before the kill point: die before transmitting
        # Collectives go in the PS's order: with a reduction, it comes before the next model
        reduce = protocol.decode_via == "reduce"
        if not reduce:
            comm.post_next_iteration(self.d)
        self._stall(iteration, reduce)
        self._transmit(iteration, buf[:self.n], times, losses, 1)
        if reduce:
            comm.post_next_iteration(self.d)
        self._serve_reencodes(iteration, times, losses)

    def _stall(self, iteration, reduce):
        """An injected stall before transmitting (``--faults stall``)."""
        stall = self.faults.stall_seconds(self.worker, iteration)
        if stall:
            # A stalled worker still makes MPI progress: the collectives reach the others.
            until = time.perf_counter() + stall
            backoff = Backoff(first=SLEEP_SLICE, longest=SLEEP_SLICE)
            while time.perf_counter() < until:
                self.comm.progress_sends() if reduce else self.comm.next_iteration_arrived()
                backoff.wait(until - time.perf_counter())

    def _serve_reencodes(self, iteration, times, losses):
        """Answer the PS's re-encode requests until the next model arrives."""
        comm = self.comm
        # the next model follows every vector and the decode: no fast first polls, which
        # would wake up all workers together just while the PS decodes
        backoff = Backoff(first=SLEEP_SLICE, longest=SLEEP_SLICE)
        while not comm.next_iteration_arrived():
            request = comm.poll_reencode()
            if request is None:
                backoff.wait()
            elif request[0] == iteration:
                self._transmit(iteration, request[3], times, losses, request[1])
                backoff.reset()

    def connect(self):
        """Collective before the first iteration: open the PS-worker connections."""
        self.comm.connect(self.n)

    def _transmit(self, iteration, state, times, losses, round_):
        """Encode and send this worker's vector for ``state`` (nothing when it counts 0)."""
        s = int(state[self.worker])
        if s > len(times):
            raise RuntimeError(f"worker {self.worker}: broadcast state counts {s} chunks in "
                               f"iteration {iteration}, only {len(times)} were finished")
        y = None
        if s > 0:
            grads = {self.order[k]: self.grads[k] for k in range(s)}
            y = self.protocol.encode(self.worker, state, grads)
            if self.faults.corrupts(self.worker, iteration):
                y = np.full_like(y, np.nan)
        if self.protocol.decode_via == "reduce":
            y = self._reduce(state, y)
        if s > 0:
            self.comm.send_transmission(iteration, times, losses[:s], y, round_)

    def _reduce(self, state, y):
        """Add ``beta_i (x) y`` (zeros without a vector) to the reduction onto the PS;
        returns the one-value vector the transmission carries instead (1, or NaN when the
        share is not finite).
        """
        ell = self.protocol.ell
        share = np.zeros(ell * -(-self.d // ell))
        if y is not None:
            weights = self.protocol.decode_weights(state)[0][:, self.worker]
            np.multiply.outer(weights, y, out=share.reshape(ell, -1))
        self.comm.start_reduce(share)
        return np.array([1.0 if np.isfinite(share).all() else np.nan])
