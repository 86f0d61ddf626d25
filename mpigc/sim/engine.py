"""Discrete-event core of the simulator: when the PS trigger fires and what it decodes.

Time and messages are the only things simulated. Everything else comes from the
:class:`~mpigc.schemes.Protocol` that the MPI runtime uses: which progress counts a
worker reports (``reports_at``), the PS trigger (``new_tracker`` + ``fired``), and the
encode/decode of the gradient code.

An iteration is described by ``ends``, an (N, L) array of chunk end times: ``ends[i, k-1]``
is when worker i finishes its k-th chunk along its ordering (``inf``: never, e.g. a failed
worker or chunks a recorded run did not reach). With a straggler factor F_i and the time
unit of one chunk this is ``k F_i`` (SPEC section 7); a replay uses measured times.

Exact completion, fast path. The trigger is monotone in the set of delivered reports,
so the completion time is the time t* of the first report after which ``fired`` holds.
A vectorised rule proposes t* (coverage: the largest, over chunks, of the ell-th earliest
time at which a holder's report covers the chunk; finished: the (N - s)-th earliest finish;
all: the last finish), and the shared tracker then *decides*: it must not fire on the
reports delivered strictly before t* and must fire once those at t* are added. When the
check fails, the event loop runs instead, so the result is always the shared rule's.
``event_loop_completion`` is the plain one-report-at-a-time loop, kept as the reference
the tests compare against.
"""

import numpy as np

# Length of the random chunk gradients used to measure decoding error.
DEFAULT_DIM = 64
# spawn-key tag separating gradient draws from straggler draws of the same seed
_GRADIENT_STREAM = 0x6772


class Simulator:
    """Report times, trigger and decode of one protocol, vectorised over workers.

    Parameters
    ----------
    protocol : mpigc.schemes.Protocol
        A protocol with a parameter server (not allreduce).
    dim : int
        Length of the random chunk gradients drawn by :meth:`decode_error`.
    seed : int
        Seed of those gradient draws (trial t uses ``SeedSequence(seed, (tag, t))``).
    """

    def __init__(self, protocol, dim=DEFAULT_DIM, seed=0):
        self.protocol = protocol
        self.dim, self.seed = int(dim), int(seed)
        a = protocol.assignment
        self.n_workers, self.n_chunks = a.n_workers, a.n_chunks
        self.loads = np.asarray(a.loads, dtype=np.int64)
        self.width = max(int(self.loads.max()), 1)
        n, width = self.n_workers, self.width
        # counts[i, k] = k + 1 when worker i reports after its (k+1)-th chunk, else 0
        self.counts = np.zeros((n, width), dtype=np.int64)
        for i in range(n):
            for k in range(1, int(self.loads[i]) + 1):
                if protocol.reports_at(i, k):
                    self.counts[i, k - 1] = k
        # visible[i, p-1] = slot of the first report that covers position p (width: none)
        self.visible = np.full((n, width), width, dtype=np.int64)
        for i in range(n):
            nxt = width
            for k in range(int(self.loads[i]) - 1, -1, -1):
                if self.counts[i, k]:
                    nxt = k
                self.visible[i, k] = nxt
        # holders of each chunk (padded with the sentinel worker n) and their report slots
        gmax = int(a.replication.max())
        self.pair_worker = np.full((self.n_chunks, gmax), n, dtype=np.int64)
        self.pair_slot = np.full((self.n_chunks, gmax), width, dtype=np.int64)
        for j in range(self.n_chunks):
            h = a.holders(j)
            self.pair_worker[j, : len(h)] = h
            self.pair_slot[j, : len(h)] = self.visible[h, a.holder_positions(j) - 1]
        finish_slot = np.maximum(self.loads - 1, 0)
        self.finish_slot = np.where(self.loads > 0, self.visible[np.arange(n), finish_slot], -1)
        # one tracker for every trial's check, reset each time
        self._tracker = protocol.new_tracker()

    # -- times ---------------------------------------------------------------------------

    def ends_from_factors(self, factors):
        """Chunk end times ``k F_i`` (time unit: one chunk); ``inf`` past a worker's load."""
        f = np.asarray(factors, dtype=float)
        k = np.arange(1, self.width + 1, dtype=float)
        ends = f[:, None] * k[None, :]
        ends[k[None, :] > self.loads[:, None]] = np.inf
        return ends

    def report_times(self, ends):
        """(N, L) time of each progress report, ``inf`` where the worker sends none."""
        return np.where(self.counts > 0, ends, np.inf)

    def state_at(self, reports, t, strict=False):
        """State the PS knows at time t: reports delivered at or (``strict``) before t."""
        # a report at inf never arrives, even "by" t = inf
        arrived = (reports < t if strict else reports <= t) & np.isfinite(reports)
        return np.where(arrived, self.counts, 0).max(axis=1)

    # -- exact completion ----------------------------------------------------------------

    def proposed_completion(self, reports):
        """Vectorised guess of the trigger time (coverage, or k-th finish for the others)."""
        padded = np.full((self.n_workers + 1, self.width + 1), np.inf)
        padded[: self.n_workers, : self.width] = reports
        k = self.protocol.finished_needed
        if k is None:  # coverage trigger
            times = padded[self.pair_worker, self.pair_slot]
            ell = self.protocol.ell
            return float(np.partition(times, ell - 1, axis=1)[:, ell - 1].max())
        # workers without chunks count as finished from the start (CoverageTracker)
        finish = np.where(self.loads > 0, padded[np.arange(self.n_workers), self.finish_slot], 0.0)
        return float(np.partition(finish, k - 1)[k - 1])

    def _state_if_fired_at(self, reports, t):
        """The shared rule's verdict: the state at t when it fires at t but not strictly
        before, else None.
        """
        tracker = self._tracker
        tracker.reset()
        tracker.report_all(self.state_at(reports, t, strict=True))
        if self.protocol.fired(tracker):
            return None
        state = self.state_at(reports, t)
        if not np.isfinite(t):
            return state
        tracker.report_all(state)
        return state if self.protocol.fired(tracker) else None

    def completion(self, reports):
        """Exact-mode completion time and the broadcast state (``inf`` if never decodable).

        The state holds every report delivered at or before the completion time (reports
        that arrive at the same instant are all counted).
        """
        t = self.proposed_completion(reports)
        state = None if t is None else self._state_if_fired_at(reports, t)
        if state is None:
            return event_loop_completion(self, reports)
        return t, state

    def decode_point(self, reports, deadline=None, exact=None):
        """When the PS decodes and with which state, as the runtime does.

        Exact mode: when the trigger fires. Deadline mode: at the deadline, or earlier if
        the trigger fires first (then the decode is exact). ``exact`` may pass in
        ``completion(reports)`` when it is already known (sweeps over deadlines).
        """
        t, state = self.completion(reports) if exact is None else exact
        if deadline is not None and t > deadline:
            return float(deadline), self.state_at(reports, deadline)
        return t, state

    # -- decoding ------------------------------------------------------------------------

    def gradients(self, trial):
        """(m, dim) standard normal chunk gradients of a trial (deterministic)."""
        ss = np.random.SeedSequence(self.seed, spawn_key=(_GRADIENT_STREAM, int(trial)))
        return np.random.default_rng(ss).standard_normal((self.n_chunks, self.dim))

    def decode_error(self, state, trial):
        """Encode with every sender's ``Protocol.encode``, decode with ``Protocol.decode``.

        Returns
        -------
        mse : float
            ``||g_hat - g||^2 / ||g||^2`` with ``g = sum_j g_j``.
        recovered : float
            Fraction of chunks recovered (from ``Protocol.decode``).
        """
        p = self.protocol
        grads = self.gradients(trial)
        sent = p.encode_all(state, grads)
        g = grads.sum(axis=0)
        g_hat, recovered = p.decode(state, sent, self.dim)
        return float(np.sum((g_hat - g) ** 2) / np.sum(g**2)), float(recovered)


def event_loop_completion(sim, reports):
    """Reference: deliver reports one at a time in time order until the trigger fires.

    Returns the completion time and the state at that time (every report delivered at or
    before it), ``(inf, final state)`` when the trigger never fires.
    """
    p = sim.protocol
    tracker = p.new_tracker()
    if p.fired(tracker):
        return 0.0, sim.state_at(reports, 0.0)
    workers, slots = np.nonzero(np.isfinite(reports))
    times = reports[workers, slots]
    for e in np.argsort(times, kind="stable"):
        tracker.report(int(workers[e]), int(sim.counts[workers[e], slots[e]]))
        if p.fired(tracker):
            return float(times[e]), sim.state_at(reports, times[e])
    return np.inf, sim.state_at(reports, np.inf)


# Exact mode decodes exactly by construction; the decode error is still measured, as a
# check, on the first trials until this many worker encodes are spent (every trial at
# N = 20, one at N = 10,000, where an encode per worker per trial costs seconds).
EXACT_CHECK_ENCODES = 10_000


def simulate(protocol, stragglers, trials, deadline=None, dim=DEFAULT_DIM, seed=0,
             check_trials=None):
    """Run ``trials`` iterations of a protocol under a straggler model.

    Parameters
    ----------
    protocol : mpigc.schemes.Protocol
    stragglers : mpigc.stragglers.StragglerModel
        Trial t uses ``stragglers.factors(t)`` (the factors of iteration t of a run).
    trials : int
    deadline : float, optional
        Deadline mode: the PS decodes the state it knows at this time (in chunk times), or
        earlier when its trigger fires first. Otherwise exact mode: the PS decodes when its
        trigger fires.
    dim, seed
        Length and seed of the random chunk gradients (see :class:`Simulator`).
    check_trials : int, optional
        Exact mode measures the decode error on the first ``check_trials`` decodable trials
        (default: ``max(1, EXACT_CHECK_ENCODES // N)``); deadline mode on every trial.

    Returns
    -------
    dict of numpy.ndarray
        ``completion`` (trials,): when the PS decodes (``inf``: never, in exact mode),
        ``mse`` and ``recovered`` (one entry per trial where they were measured),
        ``states`` (trials, N).
    """
    sim = Simulator(protocol, dim=dim, seed=seed)
    if check_trials is None:
        check_trials = max(1, EXACT_CHECK_ENCODES // sim.n_workers)
    completion = np.empty(trials)
    states = np.empty((trials, sim.n_workers), dtype=np.int64)
    mse, recovered = [], []
    for t in range(trials):
        reports = sim.report_times(sim.ends_from_factors(stragglers.factors(t)))
        completion[t], states[t] = sim.decode_point(reports, deadline)
        if deadline is None:
            measure = np.isfinite(completion[t]) and len(mse) < check_trials
        else:
            measure = True
        if measure:
            e, r = sim.decode_error(states[t], t)
            mse.append(e)
            recovered.append(r)
    return {"completion": completion, "mse": np.array(mse), "recovered": np.array(recovered),
            "states": states}
