"""Every MPI call of mpigc (the only module that imports mpi4py).

Messages of one training iteration (SPEC section 6):

* ``bcast_iteration``: a collective ``Bcast`` from rank 0 of one float64 buffer
  ``[iteration, command, w...]``. One message instead of a header plus the model: the
  command (continue / stop / checkpoint-and-stop) travels with the point at which the
  workers evaluate the gradient, and a stop carries the final model for the evaluation.
* progress (tag :data:`TAG_PROGRESS`): worker -> PS, float64
  ``[iteration, count, seconds of each chunk finished since the previous report...]``.
* the state signal: ``Ibcast`` from rank 0 of int64 ``[state_0..state_{N-1}, trigger]``.
* transmission (tag :data:`TAG_TRANSMIT`): worker -> PS, float64
  ``[iteration, n_times, n_losses, times..., chunk losses..., y...]``.

Both point-to-point messages start with the iteration, so the PS can recognise and drop
anything that belongs to an earlier one. Point-to-point sends are nonblocking; their
buffers are kept until the request completes, and :meth:`Comm.finish` waits for every
one of them before the run ends.
"""

import time

import numpy as np
from mpi4py import MPI

TAG_PROGRESS = 11
TAG_TRANSMIT = 12

# Commands of the per-iteration broadcast. Workers leave the iteration loop on any command
# but CONTINUE; CHECKPOINT_STOP is reserved for stopping at an iteration boundary with a
# checkpoint (rank 0 writes it; the workers' side is the same as STOP).
CONTINUE, STOP, CHECKPOINT_STOP = 0, 1, 2


class Comm:
    """The communicator of a training run and the messages of SPEC section 6.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm, optional
        Default ``MPI.COMM_WORLD``.
    """

    def __init__(self, comm=None):
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self._sends = []        # (request, buffer): buffers live until the send completes
        self._status = MPI.Status()
        self.sent_progress = 0  # progress messages this rank sent (for the final flush)
        self.received_progress = np.zeros(self.size, dtype=np.int64)

    # -- collectives -------------------------------------------------------------------
    def bcast_iteration(self, d, iteration=0, command=CONTINUE, w=None):
        """Rank 0 sends ``(iteration, command, w)``; every rank returns it.

        ``w`` (length ``d``) is read on rank 0 only; other ranks get a fresh array.
        """
        buf = np.empty(d + 2)
        if self.rank == 0:
            buf[0], buf[1] = iteration, command
            buf[2:] = w
        self.comm.Bcast(buf, root=0)
        return int(buf[0]), int(buf[1]), buf[2:]

    def bcast(self, array):
        """Blocking ``Bcast`` of a NumPy array from rank 0 (in place)."""
        self.comm.Bcast(array, root=0)
        return array

    def allreduce_sum(self, array):
        """Element-wise sum over all ranks (a new array)."""
        out = np.empty_like(array)
        self.comm.Allreduce(array, out, op=MPI.SUM)
        return out

    def reduce_sum(self, array):
        """Element-wise sum over all ranks, on rank 0 (None elsewhere)."""
        out = np.empty_like(array) if self.rank == 0 else None
        self.comm.Reduce(array, out, op=MPI.SUM, root=0)
        return out

    def allgather(self, obj):
        """Small Python objects from every rank, in rank order."""
        return self.comm.allgather(obj)

    def agree(self, error):
        """Collective: the first non-None error message over the ranks (rank order), or None.

        Each rank passes what its own checks found (e.g. a bad row in the data it read);
        every rank gets the same answer, so all of them can stop together.
        """
        for message in self.comm.allgather(error):
            if message is not None:
                return message
        return None

    def barrier(self):
        self.comm.Barrier()

    # -- the state signal ------------------------------------------------------------------
    def post_state(self, n_workers, state=None, trigger=0):
        """Start the ``Ibcast`` of ``[state..., trigger]``; returns ``(request, buffer)``.

        Rank 0 passes the state; workers post the receive right after the model broadcast
        and test the request while they compute.
        """
        buf = np.zeros(n_workers + 1, dtype=np.int64)
        if self.rank == 0:
            buf[:n_workers] = state
            buf[n_workers] = trigger
        return self.comm.Ibcast(buf, root=0), buf

    @staticmethod
    def done(request):
        """Nonblocking test of a request (True once complete)."""
        return request.Test()

    @staticmethod
    def wait(request):
        request.Wait()

    # -- point to point ------------------------------------------------------------------
    def _isend(self, buf, tag):
        self._sends.append((self.comm.Isend(buf, dest=0, tag=tag), buf))

    def send_progress(self, iteration, count, seconds):
        """Nonblocking progress report to the PS: ``count`` chunks done in ``iteration``."""
        buf = np.empty(2 + len(seconds))
        buf[0], buf[1] = iteration, count
        buf[2:] = seconds
        self._isend(buf, TAG_PROGRESS)
        self.sent_progress += 1
        self.progress_sends()

    def send_transmission(self, iteration, times, losses, y):
        """Nonblocking transmission of the encoded vector ``y`` (with chunk times and losses)."""
        buf = np.concatenate(([iteration, len(times), len(losses)], times, losses, y))
        self._isend(buf, TAG_TRANSMIT)
        self.progress_sends()

    def progress_sends(self):
        """Forget the sends that have completed (their buffers can go)."""
        if self._sends:
            self._sends = [(r, b) for r, b in self._sends if not r.Test()]

    def _poll(self, tag, source=MPI.ANY_SOURCE):
        message = self.comm.Improbe(source=source, tag=tag, status=self._status)
        if message is None:
            return None
        buf = np.empty(self._status.Get_count(MPI.DOUBLE))
        src = self._status.Get_source()
        message.Recv(buf)
        return src, buf

    def poll_progress(self, source=MPI.ANY_SOURCE):
        """One pending progress message as ``(rank, array)``, or None (nonblocking)."""
        got = self._poll(TAG_PROGRESS, source)
        if got is not None:
            self.received_progress[got[0]] += 1
        return got

    def poll_transmission(self):
        """One pending transmission as ``(rank, array)``, or None (nonblocking)."""
        return self._poll(TAG_TRANSMIT)

    @staticmethod
    def unpack_transmission(buf):
        """``(iteration, chunk times, chunk losses, y)`` of a transmission message."""
        n_times, n_losses = int(buf[1]), int(buf[2])
        a = 3 + n_times
        return int(buf[0]), buf[3:a], buf[a:a + n_losses], buf[a + n_losses:]

    def finish(self):
        """Collective end of the run: rank 0 receives every progress message still in
        flight (their count comes from a gather), then every rank completes its sends."""
        sent = self.comm.gather(self.sent_progress, root=0)
        if self.rank == 0:
            for rank in range(1, self.size):
                while self.received_progress[rank] < sent[rank]:
                    got = self._poll(TAG_PROGRESS, rank)
                    if got is None:
                        time.sleep(1e-4)
                    else:
                        self.received_progress[rank] += 1
        MPI.Request.Waitall([r for r, _ in self._sends])
        self._sends = []
        self.comm.Barrier()

    def abort(self, code=1):
        self.comm.Abort(code)


def library_version():
    """First line of ``MPI_Get_library_version`` (e.g. ``MPICH Version: 4.2.0``)."""
    return MPI.Get_library_version().strip().splitlines()[0].strip()


def world():
    """A :class:`Comm` on ``MPI.COMM_WORLD`` (initialises MPI on first use)."""
    return Comm()
