"""The parameter server's side of one iteration (SPEC section 6, steps 3, 4 and 6).

The PS polls for progress reports, feeds them to the protocol's coverage tracker and
stops when the scheme's trigger fires, when the deadline of approximate mode passes, or
when the iteration cannot finish (a safety timeout, see :meth:`ParameterServer.limit`).
It then broadcasts the state, receives one vector from every worker the state counts,
and decodes. Every message carries its iteration; anything older is dropped.
"""

import collections
import math
import statistics
import time
from dataclasses import dataclass, field

import numpy as np

from mpigc.runtime.poll import Backoff

TRIGGERS = ("exact", "deadline", "timeout")
# Safety timeout (see ParameterServer.limit): an iteration that cannot fire (e.g. uncoded
# with a failed worker) is decoded from what arrived after
# max(TIMEOUT_FLOOR, TIMEOUT_FACTOR x max(median iteration time, first report's time)).
TIMEOUT_FACTOR = 10.0
TIMEOUT_FLOOR = 1.0
TIMEOUT_WINDOW = 50  # the median is over this many recent iterations


@dataclass
class Gathered:
    """What the PS learnt in one iteration."""

    grad: np.ndarray            # decoded data gradient (sum of chunk gradients)
    data_loss: float            # mean loss over the rows of the recovered chunks
    state: np.ndarray           # broadcast state
    trigger: str                # "exact", "deadline", "timeout" (or "allreduce")
    recovered: float            # fraction of chunks recovered exactly
    chunk_times: list = field(default_factory=list)  # per worker, seconds of each chunk
    stale: int = 0              # messages of earlier iterations dropped


class ParameterServer:
    """Rank 0 of a parameter-server scheme.

    Parameters
    ----------
    comm : mpigc.runtime.comm.Comm
    protocol : mpigc.schemes.Protocol
    chunk_rows : ndarray
        Rows of every chunk (for the loss of partially recovered iterations).
    d : int
    timeout : float or None
        Fixed safety timeout in seconds, or None for the adaptive one of :meth:`limit`.
    """

    def __init__(self, comm, protocol, chunk_rows, d, timeout=None):
        self.comm, self.protocol, self.d = comm, protocol, d
        self.chunk_rows = np.asarray(chunk_rows)
        self.timeout = timeout
        self.tracker = protocol.new_tracker()
        self.durations = collections.deque(maxlen=TIMEOUT_WINDOW)
        self.orderings = protocol.assignment.orderings

    def limit(self, first_report=None):
        """Seconds after which an iteration that has not fired is decoded anyway.

        The fixed ``timeout`` when one was given. Otherwise TIMEOUT_FACTOR times the larger
        of the median duration of the last TIMEOUT_WINDOW iterations and the time at which this
        iteration's first progress report arrived (a live worker is rarely ten times slower
        than the first one), at least TIMEOUT_FLOOR seconds; unlimited while there is
        neither (the first iteration before any report: chunks may be long).
        """
        if self.timeout is not None:
            return self.timeout
        median = statistics.median(self.durations) if self.durations else 0.0
        scale = max(median, first_report or 0.0)
        return max(TIMEOUT_FLOOR, TIMEOUT_FACTOR * scale) if scale > 0 else math.inf

    def gather(self, iteration, w):
        """Run the PS side of ``iteration`` (the model is already broadcast)."""
        protocol, comm, tracker = self.protocol, self.comm, self.tracker
        start = time.perf_counter()
        n = protocol.n_workers
        tracker.reset()
        times = [[] for _ in range(n)]
        deadline = protocol.deadline
        limit = self.limit()
        first_report = None
        stale = 0
        backoff = Backoff()
        trigger = None
        while trigger is None:
            got = comm.poll_progress()
            if got is not None:
                rank, msg = got
                if int(msg[0]) != iteration:
                    stale += 1
                    continue
                backoff.reset()
                if first_report is None:
                    first_report = time.perf_counter() - start
                    limit = self.limit(first_report)
                tracker.report(rank - 1, int(msg[1]))
                times[rank - 1].extend(msg[2:].tolist())
                if protocol.fired(tracker):
                    trigger = "exact"
                continue
            elapsed = time.perf_counter() - start
            if deadline is not None and elapsed >= deadline:
                trigger = "deadline"
            elif elapsed >= limit:
                trigger = "timeout"
            else:
                backoff.wait((deadline if deadline is not None else limit) - elapsed)
        state = tracker.state
        request, _ = comm.post_state(n, state, TRIGGERS.index(trigger))
        transmissions, chunk_loss = {}, {}
        pending = set(protocol.senders(state).tolist())
        backoff.reset()
        while pending:
            got = comm.poll_transmission()
            if got is None:
                backoff.wait()
                continue
            backoff.reset()
            worker = got[0] - 1
            it, chunk_times, losses, y = comm.unpack_transmission(got[1])
            if it != iteration:
                stale += 1
                continue
            transmissions[worker] = y
            times[worker] = chunk_times.tolist()
            for j, loss in zip(self.orderings[worker], losses):
                chunk_loss[j] = loss
            pending.discard(worker)
        comm.wait(request)
        grad, recovered = protocol.decode(state, transmissions, self.d)
        rows = sum(int(self.chunk_rows[j]) for j in chunk_loss)
        data_loss = math.fsum(chunk_loss.values()) / rows if rows else float("nan")
        return Gathered(grad, data_loss, state, trigger, recovered, times, stale)

    def record(self, seconds):
        """Duration of a finished iteration (for the safety timeout)."""
        self.durations.append(seconds)
