"""The ``allreduce`` scheme: what users run today (SPEC section 5, last row).

No parameter server protocol: every worker computes the gradient of its one chunk (with
the same straggler injection as the other schemes) and all ranks sum the gradients with
``MPI_Allreduce``, so the slowest worker sets the pace. Rank 0 holds no data and
contributes zeros; it keeps the model, broadcasts it like the other schemes do, and logs.

One buffer is reduced per iteration: ``[gradient (d), loss sum, chunk seconds (N)]``,
worker i filling slot i of the seconds, so the timings reach rank 0 in the same call.
"""

import numpy as np

from mpigc.runtime.ps import Gathered


class AllreduceRoot:
    """Rank 0's side of an allreduce iteration."""

    def __init__(self, comm, n_workers, n_rows, d):
        self.comm, self.n, self.n_rows, self.d = comm, n_workers, n_rows, d

    def gather(self, iteration, w):
        """Sum every worker's gradient, loss and chunk time (one Allreduce)."""
        total = self.comm.allreduce_sum(np.zeros(self.d + 1 + self.n), blocking=True)
        state = np.ones(self.n, dtype=np.int64)
        times = [[float(t)] for t in total[self.d + 1:]]
        return Gathered(grad=total[:self.d], data_loss=total[self.d] / self.n_rows, state=state,
                        trigger="allreduce", recovered=1.0, chunk_times=times)

    def record(self, seconds):
        """Nothing to adapt: an allreduce has no timeout."""

    @staticmethod
    def uncovered(dead):
        """Chunks without a live holder: a dead worker's own (one chunk each, no copies)."""
        return sorted(dead)

    @staticmethod
    def survives(dead):
        """An allreduce needs every worker."""
        return not dead

    def connect(self):
        """Collective before the first iteration: a barrier (no PS-worker connections)."""
        self.comm.barrier()


class AllreduceWorker:
    """Worker ``worker``'s side: its chunk, its delay, the Allreduce."""

    def __init__(self, comm, worker, chunk, runner, stragglers, n_workers, d):
        self.comm, self.worker, self.chunk = comm, worker, chunk
        self.runner, self.stragglers = runner, stragglers
        self.buf = np.zeros(d + 1 + n_workers)
        self.d = d

    def iterate(self, iteration, w):
        """Compute this worker's chunk at ``w`` and take part in the Allreduce."""
        self.buf[:] = 0.0
        factor = self.stragglers.factors(iteration)[self.worker]
        loss, seconds = self.runner.run(self.chunk, w, factor, self.buf[:self.d], _never)
        self.buf[self.d] = loss
        self.buf[self.d + 1 + self.worker] = seconds
        self.comm.allreduce_sum(self.buf, blocking=True)

    def connect(self):
        """Collective before the first iteration: a barrier (no PS-worker connections)."""
        self.comm.barrier()


def _never():
    return False
