"""Every MPI call of mpigc (the only module that imports mpi4py).

The messages of an iteration, their buffers and their order are described once, in
docs/ARCHITECTURE.md ("The runtime's messages"); the tags below name them.

Process failure (ULFM, MPI 4 fault tolerance; :attr:`Comm.fault_tolerant`). When a rank
dies, the MPI calls that involve it return MPI_ERR_PROC_FAILED (the PS's ``ANY_SOURCE``
probes see it at the next poll) and every call of this class raises
:class:`~mpigc.errors.ProcessFailure`. The engines let it propagate to the loop, whose
every surviving rank calls :meth:`Comm.recover`: revoke the communicator (the ranks still
waiting in a broadcast get MPI_ERR_REVOKED, so every survivor comes to
:meth:`~Comm.recover` at its next poll), shrink it to the survivors and go on there.
Shrinking keeps the rank order, so the original ranks are recovered by translating the
groups; every rank and message of this class's interface is in *original* ranks (worker i
is rank i + 1 for the whole run). Messages in flight on the old communicator are lost with
it, so the interrupted iteration is redone. Without ULFM (MPICH, Open MPI without
``--with-ft ulfm``) the launcher ends the job when a process dies and nothing here changes.
"""

import os
import signal
import sys
import time
import traceback

import numpy as np
from mpi4py import MPI

from mpigc.errors import ProcessFailure
from mpigc.runtime.commands import Command
from mpigc.runtime.poll import Backoff

TAG_PROGRESS = 11
TAG_TRANSMIT = 12
TAG_REENCODE = 13
TAG_CONNECT = 14
TAG_ROWS = 15

# Error classes of a dead process (ULFM). MPIs without ULFM give all three one placeholder.
_FAILURE_CLASSES = (MPI.ERR_PROC_FAILED, MPI.ERR_PROC_FAILED_PENDING, MPI.ERR_REVOKED)
ULFM = len(set(_FAILURE_CLASSES)) == 3
# Launchers that end the whole job on SIGTERM (see Comm.abort).
_LAUNCHERS = ("prterun", "prted", "mpirun", "mpiexec")


def fault_tolerance_enabled(env=None):
    """True when this MPI reports dead processes instead of ending the job: ULFM error
    classes, and for Open MPI its ``mpi_ft_enable`` parameter (``mpiexec --with-ft ulfm``
    sets it; under ``srun`` export ``OMPI_MCA_mpi_ft_enable=1``).
    """
    env = os.environ if env is None else env
    if not ULFM:
        return False
    if "Open MPI" in MPI.Get_library_version():
        return env.get("OMPI_MCA_mpi_ft_enable", "").lower() in ("1", "true", "yes", "on")
    return True


def _revoked(comm):
    try:
        return bool(comm.comm.Is_revoked())
    except (MPI.Exception, AttributeError, NotImplementedError):
        return False


def _guarded(method):
    """``method`` with the MPI errors of a dead or revoked peer raised as ProcessFailure."""
    def call(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except MPI.Exception as exc:
            cls = exc.Get_error_class()
            if ULFM and cls in _FAILURE_CLASSES:
                raise ProcessFailure(str(exc)) from None
            # Open MPI's nonblocking collectives (libnbc) report a revoke met inside their
            # schedule as MPI_ERR_OTHER: on a revoked communicator it is the same failure
            if ULFM and cls == MPI.ERR_OTHER and args and _revoked(args[0]):
                raise ProcessFailure(str(exc)) from None
            raise
    call.__name__, call.__doc__ = method.__name__, method.__doc__
    return call


class Comm:
    """The communicator of a training run and the messages of SPEC section 6.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm, optional
        Default ``MPI.COMM_WORLD``.

    Attributes
    ----------
    rank, size : int
        This rank and the size of the communicator at the start (original ranks; after a
        :meth:`recover` the survivors keep their numbers).
    dead : list of int
        Original ranks found dead so far, ascending.
    fault_tolerant : bool
        See :func:`fault_tolerance_enabled`.
    """

    def __init__(self, comm=None):
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self._group = self.comm.Get_group()  # of the original communicator
        self.fault_tolerant = fault_tolerance_enabled()
        if self.fault_tolerant:
            self.comm.Set_errhandler(MPI.ERRORS_RETURN)  # mpi4py then raises MPI.Exception
        self.dead = []
        self._lost = []         # requests and buffers of a revoked communicator (see recover)
        self._reset(list(range(self.size)))

    def _reset(self, ranks):
        """Start over on a communicator whose rank r is original rank ``ranks[r]``."""
        self._original = np.asarray(ranks, dtype=np.int64)
        self._current = {int(o): r for r, o in enumerate(ranks)}
        self._sends = []        # (request, buffer): buffers live until the send completes
        self._status = MPI.Status()
        self.sent_progress = 0  # progress messages this rank sent (for the final flush)
        self.received_progress = np.zeros(self.size, dtype=np.int64)
        # Counted so that finish() can receive every late vector and re-encode request.
        self.sent_transmissions = 0
        self.received_transmissions = np.zeros(self.size, dtype=np.int64)
        self.sent_reencodes = np.zeros(self.size, dtype=np.int64)
        self.received_reencodes = 0
        self._next = None       # (request, buffer) of a model broadcast posted early

    @property
    def alive(self):
        """Original ranks of the current communicator, ascending."""
        return self._original.tolist()

    def recover(self):
        """Collective over the survivors after a :class:`ProcessFailure`: revoke, shrink,
        go on with the survivors. Returns the original ranks that died since the last call.

        Pending requests of the old communicator are abandoned (the revoke completes them
        in error), their buffers kept until the run ends in case MPI still touches them.
        """
        old = self.comm
        old.Revoke()  # idempotent: the first rank to notice releases all the others
        self.comm = old.Shrink()
        self.comm.Set_errhandler(MPI.ERRORS_RETURN)
        ranks = MPI.Group.Translate_ranks(self.comm.Get_group(), list(range(self.comm.Get_size())),
                                          self._group)
        self._lost.append((self._sends, self._next))
        died = sorted(set(self._original.tolist()) - set(ranks))
        self.dead = sorted(self.dead + died)
        self._reset(ranks)
        return died

    # -- collectives -------------------------------------------------------------------
    @_guarded
    def bcast_iteration(self, d, iteration=0, command=Command.CONTINUE, w=None):
        """Rank 0 sends ``(iteration, command, w)``; every rank returns it.

        ``w`` (length ``d``) is read on rank 0 only; other ranks get a fresh array.
        """
        if self._next is not None:
            (request, buf), self._next = self._next, None
        else:
            buf = np.empty(d + 2)
            if self.rank == 0:
                buf[0], buf[1] = iteration, command
                buf[2:] = w
            request = self.comm.Ibcast(buf, root=0)
        if self.rank == 0:
            request.Wait()
        else:
            # Workers wait here while the PS decodes and logs: a blocking Bcast would poll
            # MPI at full speed and, with more ranks than cores, take the PS's core.
            self.wait_polling(request)
        return int(buf[0]), Command(int(buf[1])), buf[2:]

    @_guarded
    def post_next_iteration(self, d):
        """Worker: post the receive of the next :meth:`bcast_iteration` now.

        The next ``bcast_iteration`` completes this request instead of posting its own
        (same collective order on every rank); :meth:`next_iteration_arrived` tests it.
        """
        buf = np.empty(d + 2)
        self._next = (self.comm.Ibcast(buf, root=0), buf)

    @_guarded
    def next_iteration_arrived(self):
        """Nonblocking test of the request of :meth:`post_next_iteration`."""
        return _test(self._next[0])

    @staticmethod
    @_guarded
    def wait_polling(request, longest=None):
        """Wait for ``request`` (or a list of requests, all of them) in a sleeping poll
        (:class:`~mpigc.runtime.poll.Backoff`, its sleeps capped at ``longest`` seconds if
        given).

        Ranks blocked in MPI poll at full speed; with more ranks than cores the ones that
        wait (for the open of a file, for a Lanczos product, for the decode) take
        the cores from the ranks that compute. So the set-up collectives are nonblocking
        (flat trees when oversubscribed: runtime/launch.py) and waited for here.
        """
        backoff = Backoff() if longest is None else Backoff(longest=longest)
        while not _test(request):
            backoff.wait()

    def _arrive(self):
        # Before a blocking collective that has no nonblocking form here (pickled objects)
        self.wait_polling(self.comm.Ibarrier())

    @_guarded
    def bcast(self, array):
        """``Bcast`` of a NumPy array from rank 0 (in place); returns when it is done."""
        self.wait_polling(self.comm.Ibcast(array, root=0))
        return array

    @_guarded
    def bcast_object(self, obj):
        """A picklable object from rank 0 to every rank (``obj`` is read on rank 0 only)."""
        self._arrive()
        return self.comm.bcast(obj, root=0)

    @_guarded
    def allreduce_sum(self, array, blocking=False):
        """Element-wise sum over all ranks (a new array).

        Waited for in a sleeping poll, like :meth:`bcast`, unless ``blocking`` (MPI's own
        wait: the allreduce scheme's iterations, measured that way).
        """
        out = np.empty_like(array)
        if blocking:
            self.comm.Allreduce(array, out, op=MPI.SUM)
        else:
            self.wait_polling(self.comm.Iallreduce(array, out, op=MPI.SUM))
        return out

    @_guarded
    def reduce_sum(self, array):
        """Element-wise sum over all ranks, on rank 0 (None elsewhere)."""
        out = np.empty_like(array) if self.rank == 0 else None
        self.wait_polling(self.comm.Ireduce(array, out, op=MPI.SUM, root=0))
        return out

    @_guarded
    def start_reduce(self, array):
        """Nonblocking element-wise sum of ``array`` over all ranks onto rank 0 (``Ireduce``).

        Returns ``(request, out)``; ``out`` (rank 0 only, else None) holds the sum once the
        request completes. A worker's request is kept with its sends (progressed by
        :meth:`progress_sends`, completed by :meth:`finish`).
        """
        out = np.empty_like(array) if self.rank == 0 else None
        request = self.comm.Ireduce(array, out, op=MPI.SUM, root=0)
        if self.rank != 0:
            self._sends.append((request, array))
        return request, out

    @_guarded
    def gather(self, obj):
        """Python objects from every rank, in rank order, on rank 0 (None elsewhere)."""
        return self.comm.gather(obj, root=0)

    @_guarded
    def allgather(self, obj):
        """Small Python objects from every rank, in rank order."""
        self._arrive()
        return self.comm.allgather(obj)

    @_guarded
    def exchange(self, sends, recvs):
        """Point-to-point NumPy arrays, all posted at once, waited for in a sleeping poll.

        ``sends``: ``(dest, array)`` pairs; ``recvs``: ``(source, array)`` pairs, filled in
        place. Between two ranks the arrays match in the order they are given.
        """
        requests = [self.comm.Isend(a, dest=self._current[d], tag=TAG_ROWS) for d, a in sends]
        requests += [self.comm.Irecv(a, source=self._current[s], tag=TAG_ROWS)
                     for s, a in recvs]
        self.wait_polling(requests)

    @_guarded
    def agree(self, error):
        """Collective: the first non-None error message over the ranks (rank order), or None.

        Each rank passes what its own checks found (e.g. a bad row in the data it read);
        every rank gets the same answer, so all of them can stop together.
        """
        for message in self.allgather(error):
            if message is not None:
                return message
        return None

    @_guarded
    def barrier(self):
        """``MPI_Barrier``."""
        self.comm.Barrier()

    @_guarded
    def connect(self, n_workers):
        """Collective, before the first iteration: open every PS-worker connection in both
        directions and run one state broadcast, then a barrier.

        MPI connects a pair of ranks lazily, on its first message, and sets up a
        collective on its first use: left to the first iteration, that would slow it down
        (docs/results.md, "Runtime tuning constants").
        """
        token = np.zeros(1)
        if self.rank == 0:
            for rank in range(1, self.size):
                self.comm.Send(token, dest=rank, tag=TAG_CONNECT)
            for rank in range(1, self.size):
                self.comm.Recv(token, source=rank, tag=TAG_CONNECT)
        else:
            self.comm.Recv(token, source=0, tag=TAG_CONNECT)
            self.comm.Send(token, dest=0, tag=TAG_CONNECT)
        request, _ = self.post_state(n_workers, np.zeros(n_workers, dtype=np.int64))
        request.Wait()
        self.comm.Barrier()

    # -- the state signal ------------------------------------------------------------------
    @_guarded
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
    @_guarded
    def done(request):
        """Nonblocking test of a request (True once complete)."""
        return _test(request)

    @staticmethod
    @_guarded
    def wait(request):
        """Complete a request (``MPI_Wait``)."""
        request.Wait()

    # -- point to point ------------------------------------------------------------------
    def _isend(self, buf, tag, dest=0):
        self._sends.append((self.comm.Isend(buf, dest=self._current[dest], tag=tag), buf))

    @_guarded
    def send_progress(self, iteration, count, seconds):
        """Nonblocking progress report to the PS: ``count`` chunks done in ``iteration``."""
        buf = np.empty(2 + len(seconds))
        buf[0], buf[1] = iteration, count
        buf[2:] = seconds
        self._isend(buf, TAG_PROGRESS)
        self.sent_progress += 1
        self.progress_sends()

    @_guarded
    def send_transmission(self, iteration, times, losses, y, round_=1):
        """Nonblocking transmission of the encoded vector ``y`` (with chunk times and losses)
        for encode round ``round_`` of ``iteration``.
        """
        buf = np.concatenate((y, [iteration, round_, len(times), len(losses)], times, losses))
        self._isend(buf, TAG_TRANSMIT)
        self.sent_transmissions += 1
        self.progress_sends()

    @_guarded
    def send_reencode(self, worker_rank, iteration, round_, state, trigger):
        """PS: ask ``worker_rank`` to encode again for the corrected ``state``."""
        buf = np.concatenate(([iteration, round_, trigger], state)).astype(np.float64)
        self._isend(buf, TAG_REENCODE, dest=worker_rank)
        self.sent_reencodes[worker_rank] += 1

    @_guarded
    def poll_reencode(self):
        """Worker: one pending re-encode request as ``(iteration, round, trigger, state)``,
        or None (nonblocking).
        """
        got = self._poll(TAG_REENCODE, 0)
        if got is None:
            return None
        self.received_reencodes += 1
        buf = got[1]
        return int(buf[0]), int(buf[1]), int(buf[2]), buf[3:].astype(np.int64)

    @_guarded
    def progress_sends(self):
        """Forget the sends that have completed (their buffers can go)."""
        if self._sends:
            self._sends = [(r, b) for r, b in self._sends if not r.Test()]

    def _poll(self, tag, source=MPI.ANY_SOURCE, into=None):
        if source != MPI.ANY_SOURCE:
            source = self._current[source]
        message = self.comm.Improbe(source=source, tag=tag, status=self._status)
        if message is None:  # see _test: the first call may only have made progress
            message = self.comm.Improbe(source=source, tag=tag, status=self._status)
        if message is None:
            return None
        count = self._status.Get_count(MPI.DOUBLE)
        src = int(self._original[self._status.Get_source()])
        if into is None:
            buf = np.empty(count)
        else:
            row = into(src)
            if count > len(row):
                raise RuntimeError(f"message of {count} values from rank {src} (tag {tag}) "
                                   f"does not fit its receive row of {len(row)}")
            buf = row[:count]
        message.Recv(buf)
        return src, buf

    @_guarded
    def poll_progress(self, source=MPI.ANY_SOURCE):
        """One pending progress message as ``(rank, array)``, or None (nonblocking)."""
        got = self._poll(TAG_PROGRESS, source)
        if got is not None:
            self.received_progress[got[0]] += 1
        return got

    @_guarded
    def poll_transmission(self, source=MPI.ANY_SOURCE, into=None):
        """One pending transmission as ``(rank, array)``, or None (nonblocking).

        ``into(rank)``, when given, returns the 1-D float64 buffer that receives the
        message of ``rank``; the array returned is then its first values (no allocation).
        """
        got = self._poll(TAG_TRANSMIT, source, into)
        if got is not None:
            self.received_transmissions[got[0]] += 1
        return got

    @staticmethod
    def unpack_transmission(buf, block_len):
        """``(iteration, round, chunk times, chunk losses, y)`` of a transmission whose
        vector has ``block_len`` values (views of ``buf``).
        """
        h = buf[block_len:]
        n_times, n_losses = int(h[2]), int(h[3])
        a = 4 + n_times
        return int(h[0]), int(h[1]), h[4:a], h[a:a + n_losses], buf[:block_len]

    @_guarded
    def finish(self):
        """Collective end of the run: rank 0 receives every progress message and late
        vector still in flight, each worker every re-encode request (their counts come from
        a gather and a scatter), then every rank completes its sends.
        """
        sent = self.comm.gather((self.sent_progress, self.sent_transmissions), root=0)
        if self.rank == 0:
            sent = dict(zip(self.alive, sent))
            for rank in self.alive[1:]:
                _drain(lambda r=rank: self.received_progress[r] < sent[r][0],
                       lambda r=rank: self.poll_progress(r))
                _drain(lambda r=rank: self.received_transmissions[r] < sent[r][1],
                       lambda r=rank: self.poll_transmission(r))
        reencodes = self.comm.scatter(self.sent_reencodes[self.alive].tolist()
                                      if self.rank == 0 else None, root=0)
        _drain(lambda: self.received_reencodes < reencodes, self.poll_reencode)
        self.wait_sends()
        self.comm.Barrier()

    @_guarded
    def wait_sends(self):
        """Complete every point-to-point send of this rank (blocking)."""
        MPI.Request.Waitall([r for r, _ in self._sends])
        self._sends = []

    def exit_if_survived(self, status):
        """After a survived failure, end this process with ``status`` without MPI_Finalize.

        Open MPI 5.0's finalize then waits for a fence that includes the dead ranks, in one
        run of four here forever. Call it after :meth:`finish`, whose barrier every survivor
        has passed, so nothing is lost. Without a failure it returns.
        """
        if self.dead:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)

    def abort(self, code=1):
        """``MPI_Abort``: end every rank of the job with ``code``."""
        if self.fault_tolerant:
            # With ULFM on, Open MPI's MPI_Abort ends only the calling process (measured: the
            # others went on waiting for it); its launcher ends the whole job on SIGTERM.
            _stop_launcher()
        self.comm.Abort(code)

    def abort_on_exception(self, code=1):
        """In an ``except`` block: report the exception on stderr, then :meth:`abort`."""
        # MPI_Abort makes the launcher kill every process, the forwarders of our output
        # too: the traceback goes out in one write (the forwarder reads it whole, not line
        # by line) and they get a moment to pass it on (under load, a crashed worker's job
        # once ended with an empty stderr, another with its traceback cut)
        sys.stderr.write(f"{traceback.format_exc()}mpigc: rank {self.rank} failed: "
                         f"aborting the job\n")
        sys.stderr.flush()
        time.sleep(0.2)
        self.abort(code)


def _test(request):
    """``MPI_Test``, called a second time when the first finds the request incomplete.

    MPICH's ``MPI_Test`` and ``MPI_Improbe`` look for a completion or a match *before*
    they make progress, not after: a message that arrived while the rank slept is pulled
    in by the first call and seen only by the next. Every poll loop here sleeps between
    tests, so testing once per wake would cost a whole extra sleep per message. A list of
    requests is tested together (``MPI_Testall``).
    """
    if isinstance(request, list):
        return MPI.Request.Testall(request) or MPI.Request.Testall(request)
    return request.Test() or request.Test()


def _stop_launcher():
    """SIGTERM to this process's parent when it is an MPI launcher (mpiexec, prterun's
    daemon): the way to end a whole Open MPI job whose fault tolerance is on.
    """
    parent = os.getppid()
    try:
        with open(f"/proc/{parent}/comm") as f:
            name = f.read().strip()
    except OSError:
        return
    if name in _LAUNCHERS:
        os.kill(parent, signal.SIGTERM)


def _drain(missing, poll):
    """Call ``poll`` (a nonblocking receive) until ``missing()`` is False."""
    while missing():
        if poll() is None:
            time.sleep(1e-4)


def library_version():
    """First line of ``MPI_Get_library_version`` (e.g. ``MPICH Version: 4.2.0``)."""
    return MPI.Get_library_version().strip().splitlines()[0].strip()


def world_size():
    """Size of MPI_COMM_WORLD (what the launcher started)."""
    return MPI.COMM_WORLD.Get_size()


def world():
    """A :class:`Comm` on ``MPI.COMM_WORLD`` (initialises MPI on first use)."""
    return Comm()
