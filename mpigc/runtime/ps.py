"""The parameter server's side of one iteration (SPEC section 6, steps 3, 4 and 6).

Poll the progress reports until the trigger fires (or the deadline, or the iteration
timeout), broadcast the state, receive and decode the vectors, with re-encode rounds for
dropped workers: the protocol is described in docs/ARCHITECTURE.md.
"""

import collections
import math
import statistics
import time
from dataclasses import dataclass, field

import numpy as np

from mpigc.coding.decode import StreamingDecoder
from mpigc.runtime.poll import Backoff

# Longest sleep of the PS's poll loops: every report and vector waits for the PS to look,
# and one process polling this often costs little (measured: docs/results.md).
PS_POLL_CAP = 1e-4

TRIGGERS = ("exact", "deadline", "timeout")
# Iteration timeout (see ParameterServer.iteration_timeout): an iteration that cannot fire
# (e.g. uncoded with a failed worker) is decoded from what arrived after max(FLOOR, FACTOR x
# max(median iteration time, first report's time)).
ITERATION_TIMEOUT_FACTOR = 10.0
ITERATION_TIMEOUT_FLOOR = 1.0
MEDIAN_WINDOW = 50  # both timeouts' median is over this many recent iterations
# Transmit timeout (see ParameterServer.transmit_timeout): a counted worker whose vector has
# not arrived max(TRANSMIT_FLOOR, TRANSMIT_FACTOR x median iteration time) after the state
# broadcast is dropped (encoding is cheap, so even a short wait means a stalled worker).
TRANSMIT_FACTOR = 5.0
TRANSMIT_FLOOR = 0.5


@dataclass
class Gathered:
    """What the PS learnt in one iteration."""

    grad: np.ndarray            # decoded data gradient (sum of chunk gradients)
    data_loss: float            # mean loss over the rows of the recovered chunks
    state: np.ndarray           # broadcast state
    trigger: str                # "exact", "deadline", "timeout" (or "allreduce")
    recovered: float            # fraction of chunks recovered exactly
    chunk_times: list = field(default_factory=list)  # per worker, seconds of each chunk
    stale: int = 0              # messages of earlier iterations (or rounds) dropped
    dropped: list = field(default_factory=list)  # workers dropped by the transmit timeout
    rounds: int = 1             # encode rounds
    waited: bool = False        # exact mode waited past the transmit timeout
    nonfinite: object = None    # first worker whose vector or loss was not finite


class ParameterServer:
    """Rank 0 of a parameter-server scheme.

    Parameters
    ----------
    comm : mpigc.runtime.comm.Comm
    protocol : mpigc.schemes.Protocol
    chunk_rows : ndarray
        Rows of every chunk (for the loss of partially recovered iterations).
    d : int
    iteration_timeout : float or None
        Fixed iteration timeout (``--iteration-timeout``) in seconds, or None for the
        adaptive one of :meth:`iteration_timeout`.
    transmit_timeout : float or None
        Fixed transmit timeout (``--transmit-timeout``) in seconds, or None for the
        adaptive one of :meth:`transmit_timeout`.
    """

    def __init__(self, comm, protocol, chunk_rows, d, iteration_timeout=None,
                 transmit_timeout=None):
        self.comm, self.protocol, self.d = comm, protocol, d
        self.chunk_rows = np.asarray(chunk_rows)
        self.fixed_iteration_timeout = iteration_timeout
        self.fixed_transmit_timeout = transmit_timeout
        self.tracker = protocol.new_tracker()
        self.corrected_tracker = protocol.new_tracker()  # the trigger on a corrected state
        self.durations = collections.deque(maxlen=MEDIAN_WINDOW)
        self.median = None  # of durations, kept by record(): both timeouts read it
        self.orderings = protocol.assignment.orderings
        # every vector is received into its worker's row and decoded as it lands; a
        # message is [vector, 4 header values, chunk times, chunk losses] (runtime/comm.py)
        slots = int(protocol.assignment.loads.max())
        if protocol.decode_via == "reduce":
            self.decoder = ReducedDecode(comm, protocol.n_workers, protocol.ell, d,
                                         extra=4 + 2 * slots)
        else:
            self.decoder = StreamingDecoder(protocol.n_workers, -(-d // protocol.ell),
                                            protocol.ell, d, extra=4 + 2 * slots)
        self.block_len = self.decoder.vectors.shape[1]  # what a transmission starts with

    def iteration_timeout(self, first_report=None):
        """Seconds after which an iteration that has not fired is decoded anyway.

        The fixed ``iteration_timeout`` when one was given. Otherwise
        ITERATION_TIMEOUT_FACTOR times the larger of the median duration of the last
        MEDIAN_WINDOW iterations and the time at which this iteration's first progress
        report arrived (a live worker is rarely ten times slower than the first one), at
        least ITERATION_TIMEOUT_FLOOR seconds; unlimited while there is
        neither (the first iteration before any report: chunks may be long).
        """
        if self.fixed_iteration_timeout is not None:
            return self.fixed_iteration_timeout
        scale = max(self.median or 0.0, first_report or 0.0)
        if scale == 0:
            return math.inf
        return max(ITERATION_TIMEOUT_FLOOR, ITERATION_TIMEOUT_FACTOR * scale)

    def transmit_timeout(self, to_broadcast):
        """Seconds after the state broadcast after which a missing vector's worker is dropped.

        The fixed ``transmit_timeout`` when one was given; otherwise TRANSMIT_FACTOR times
        the median duration of the recent iterations (in the first one: the time it took
        to reach the broadcast, ``to_broadcast``), at least TRANSMIT_FLOOR seconds.
        """
        if self.protocol.decode_via == "reduce":
            return math.inf  # a reduction cannot leave a worker out: wait for all of them
        if self.fixed_transmit_timeout is not None:
            return self.fixed_transmit_timeout
        scale = self.median if self.median is not None else to_broadcast
        return max(TRANSMIT_FLOOR, TRANSMIT_FACTOR * scale)

    def _fires(self, state):
        """The scheme's trigger on ``state`` (a fresh tracker fed the whole state)."""
        self.corrected_tracker.reset()
        self.corrected_tracker.report_all(state)
        return self.protocol.fired(self.corrected_tracker)

    def gather(self, iteration, w):
        """Run the PS side of ``iteration`` (the model is already broadcast)."""
        protocol, comm, tracker = self.protocol, self.comm, self.tracker
        start = time.perf_counter()
        n = protocol.n_workers
        tracker.reset()
        times = [[] for _ in range(n)]
        deadline = protocol.deadline
        limit = self.iteration_timeout()
        first_report = None
        stale = 0
        backoff = Backoff(longest=PS_POLL_CAP)
        trigger = None
        while trigger is None:
            report = comm.poll_progress()
            if report is not None:
                rank, msg = report
                if int(msg[0]) != iteration:
                    stale += 1
                    continue
                backoff.reset()
                if first_report is None:
                    first_report = time.perf_counter() - start
                    limit = self.iteration_timeout(first_report)
                if self.take_report(rank - 1, msg, times):
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
        received = self._receive(iteration, state, trigger, start, times)
        comm.wait(request)
        grad = self.decoded(received)
        rows = sum(int(self.chunk_rows[j]) for j in received.chunk_loss)
        data_loss = math.fsum(received.chunk_loss.values()) / rows if rows else float("nan")
        return received.gathered(grad, data_loss, received.recovered, times, stale)

    def take_report(self, worker, msg, times):
        """Feed one progress report of this iteration to the tracker; True when it fires."""
        self.tracker.report(worker, int(msg[1]))
        times[worker].extend(msg[2:].tolist())
        return self.protocol.fired(self.tracker)

    def receiving(self, state, trigger):
        """The receiving side of an iteration whose broadcast state is ``state``."""
        return _Rounds(self.protocol, self.decoder, state, trigger)

    def take_vector(self, got, iteration, worker, buf, times, pending):
        """One transmission ``buf`` (in ``worker``'s decoder row) for the rounds ``got``."""
        it, rnd, chunk_times, losses, _ = self.comm.unpack_transmission(buf, self.block_len)
        if it != iteration or rnd != got.rounds or worker not in pending:
            got.stale += 1  # its row is free again: the decode never reads it
            return
        self.decoder.add(worker)
        times[worker] = chunk_times.tolist()
        losses = losses.tolist()  # Python floats: the per-vector steps stay a few us
        got.chunk_loss.update(zip(self.orderings[worker], losses))
        if got.nonfinite is None and not all(map(math.isfinite, losses)):
            got.nonfinite = worker
        pending.discard(worker)

    def decoded(self, got):
        """The decoded gradient once every vector of ``got`` arrived (a new array)."""
        grad = self.decoder.result()
        if got.nonfinite is None and not np.isfinite(grad).all():
            got.nonfinite = next((int(i) for i in self.protocol.senders(got.state)
                                  if not np.isfinite(self.decoder.vectors[i]).all()), None)
        return grad

    def _receive(self, iteration, state, trigger, start, times):
        """Receive the vectors of the broadcast ``state``, in as many rounds as it takes."""
        protocol, comm = self.protocol, self.comm
        received = self.receiving(state, trigger)
        pending = set(protocol.senders(state).tolist())
        limit = self.transmit_timeout(time.perf_counter() - start)
        round_start = time.perf_counter()
        backoff = Backoff(longest=PS_POLL_CAP)
        while pending:
            message = comm.poll_transmission(into=self._row)
            if message is None:
                late = time.perf_counter() - round_start
                if received.waited or late < limit:
                    backoff.wait(None if received.waited else limit - late)
                    continue
                corrected = received.state.copy()
                corrected[sorted(pending)] = 0
                fires = self._fires(corrected)
                approximate = received.trigger != "exact" or protocol.deadline is not None
                if not fires:
                    if not approximate:
                        received.waited = True  # exact mode: only the late workers can complete it
                        continue
                    if received.trigger == "exact":
                        received.trigger = "deadline"  # deadline mode: decode approximately
                received.next_round(corrected, pending)
                pending = set(protocol.senders(corrected).tolist())
                for i in sorted(pending):
                    comm.send_reencode(i + 1, iteration, received.rounds, corrected,
                                       TRIGGERS.index(received.trigger))
                round_start = time.perf_counter()
                backoff.reset()
                continue
            backoff.reset()
            self.take_vector(received, iteration, message[0] - 1, message[1], times, pending)
        return received

    def _row(self, rank):
        """Receive row of ``rank``'s vector (anything else is received into its own array)."""
        return self.decoder.row(rank - 1)

    def uncovered(self, dead):
        """Chunks held by fewer than ell workers outside ``dead`` (ascending)."""
        a = self.protocol.assignment
        live = np.ones(a.n_workers, dtype=bool)
        live[list(dead)] = False
        holders = np.bincount(a.entry_chunk, weights=live[a.holders_idx], minlength=a.n_chunks)
        return np.flatnonzero(holders < self.protocol.ell).tolist()

    def survives(self, dead):
        """Whether the trigger can still fire without the workers ``dead``: the exact decode
        stays possible (a dead worker is one that never reports, so its state stays 0).
        """
        state = self.protocol.assignment.loads.copy()
        state[list(dead)] = 0
        return self._fires(state)

    def record(self, seconds):
        """Duration of a finished iteration (for both timeouts)."""
        self.durations.append(seconds)
        self.median = statistics.median(self.durations)

    def connect(self):
        """Collective before the first iteration: open the PS-worker connections."""
        self.comm.connect(self.protocol.n_workers)


class ReducedDecode:
    """The decode of ``--decode reduce``: the PS's side of the workers' reduction.

    The same calls as :class:`~mpigc.coding.decode.StreamingDecoder`. :meth:`start` posts
    the PS's (zero) share of the ``Ireduce`` right after the state broadcast, as every
    worker posts its weighted vector; the transmissions that still arrive point to point
    carry chunk times, losses and a one-value "vector": 1 when the worker's share was
    finite, NaN otherwise (so a non-finite share is still named).
    """

    def __init__(self, comm, n_workers, ell, d, extra=0):
        self.comm, self.d = comm, d
        self.rows = np.empty((n_workers, 1 + extra))
        self.vectors = self.rows[:, :1]
        self.zeros = np.zeros(ell * -(-d // ell))
        self.request = None
        self.abandoned = []  # reductions of revoked communicators: MPI may still write there

    def start(self, weights, senders):
        """Post the PS's share of this iteration's reduction.

        One still in flight was interrupted by a process failure (there is no second encode
        round: the transmit timeout is off): the iteration is redone on the survivors.
        """
        if self.request is not None:
            self.abandoned.append((self.request, self.out))
        self.request, self.out = self.comm.start_reduce(self.zeros)

    def row(self, worker):
        """Receive row of ``worker``'s transmission (times, losses, finiteness)."""
        return self.rows[worker]

    def add(self, worker):
        """Nothing to add: the vectors travel in the reduction."""

    def result(self):
        """Wait for the reduction; the decoded gradient (a new array of length d: every
        reduction has an output buffer of its own, so no copy).
        """
        self.comm.wait_polling(self.request, PS_POLL_CAP)
        self.request = None
        return self.out[:self.d]


class _Rounds:
    """The receiving side of one iteration: state, transmissions and what happened."""

    def __init__(self, protocol, decoder, state, trigger):
        self.protocol, self.decoder = protocol, decoder
        self.trigger = trigger
        self.dropped, self.rounds, self.waited, self.stale = [], 1, False, 0
        self._begin(np.array(state))

    def _begin(self, state):
        """Decode ``state`` from now on: weights fixed, vectors summed as they arrive."""
        self.state = state
        weights, self.recovered = self.protocol.decode_weights(state)
        self.decoder.start(weights, self.protocol.senders(state))
        self.chunk_loss = {}
        self.nonfinite = None

    def gathered(self, grad, data_loss, recovered, chunk_times, stale):
        """The iteration's :class:`Gathered`; ``stale``: messages dropped before the broadcast."""
        return Gathered(grad=grad, data_loss=data_loss, state=self.state, trigger=self.trigger,
                        recovered=recovered, chunk_times=chunk_times, stale=stale + self.stale,
                        dropped=self.dropped, rounds=self.rounds, waited=self.waited,
                        nonfinite=self.nonfinite)

    def next_round(self, corrected, late):
        """Drop the ``late`` workers: vectors of the old state no longer decode."""
        self.dropped.extend(sorted(late))
        self.rounds += 1
        self._begin(corrected)
