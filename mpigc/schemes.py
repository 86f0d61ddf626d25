"""SPEC section 5 as data: every scheme is a setting of one engine.

A :class:`Scheme` says how work is assigned (``unit_load``), when a worker reports
(``report``), when the PS decodes (``trigger``, or ``frc_trigger`` on a fractional
repetition) and how vectors are encoded (``encoder``).
:func:`build_protocol` turns a scheme name and its options into a :class:`Protocol`, the
object that the MPI runtime and the simulator share: the same trigger rule, the same
encode and decode, whatever carries the messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np
from numpy.typing import ArrayLike

from mpigc import coding
from mpigc.errors import UsageError, require

DEFAULT_LOAD = 3
DECODE_VIA = ("p2p", "reduce")


@dataclass(frozen=True)
class Scheme:
    """One row of SPEC section 5.

    Attributes
    ----------
    name : str
    report : {"chunk", "done"} or None
        "chunk": a progress report after every chunk; "done": one report once all of the
        worker's chunks are done. None: no parameter server (allreduce).
    trigger : {"coverage", "finished", "all"} or None
        "coverage": every chunk processed by >= ell reporting workers; "finished": at least
        N - s workers finished; "all": every worker finished.
    frc_trigger : {"coverage"} or None
        The trigger on a fractional repetition assignment (``Assignment.groups``), where it
        replaces ``trigger``. gc's "coverage", with reports from finished workers only, fires
        once every group has ell finished workers: at ell = 1 the rule of Tandon et al.'s
        ``replication.py`` (its master decodes when one worker of every group has finished),
        not the weaker "any N - s finished" of their cyclic code.
    unit_load : bool
        Each worker holds exactly one chunk (load 1).
    encoder : {"adaptive", "fixed"} or None
        "adaptive": min-norm coefficients from the broadcast state (SPEC section 3);
        "fixed": Tandon et al.'s fixed code (gc with ell = 1; on a fractional repetition
        their group sums, else their cyclic-repetition construction).
    rescale : bool
        Scale the decoded gradient by m / (chunks recovered) (ignore-stragglers).
    deadline : bool
        Supports approximate decoding at a deadline.
    """

    name: str
    report: Optional[str]
    trigger: Optional[str]
    unit_load: bool
    encoder: Optional[str]
    rescale: bool = False
    deadline: bool = False
    frc_trigger: Optional[str] = None

    @property
    def uses_ps(self) -> bool:
        """Whether the scheme has a parameter server (every scheme but allreduce)."""
        return self.trigger is not None

    @property
    def exact(self) -> bool:
        """Decodes the exact full gradient (outside deadline mode): every scheme but one
        that rescales a partial sum.
        """
        return not self.rescale


SCHEMES = {
    s.name: s
    for s in (
        Scheme("psgc", "chunk", "coverage", False, "adaptive", deadline=True),
        Scheme("gc", "done", "finished", False, "fixed", deadline=True, frc_trigger="coverage"),
        Scheme("gc-cover", "done", "coverage", False, "adaptive"),
        Scheme("ignore-stragglers", "done", "finished", True, "adaptive", rescale=True),
        Scheme("uncoded", "done", "all", True, "adaptive"),
        Scheme("allreduce", None, None, True, None),
    )
}


def get_scheme(name: str) -> Scheme:
    """The :class:`Scheme` called ``name`` (UsageError naming the choices otherwise)."""
    if name not in SCHEMES:
        raise UsageError(f"unknown scheme {name!r} (choose from {', '.join(SCHEMES)})")
    return SCHEMES[name]


def make_assignment(kind: str, n_workers: int, load: int, seed: int = 0) -> coding.Assignment:
    """Assignment from a CLI name (cyclic, frc, regular) or a matrix file (n_workers >= 1)."""
    require(1 <= load <= n_workers, f"--load must be between 1 and the number of workers "
            f"({n_workers}), got {load}")
    if kind == "cyclic":
        return coding.cyclic(n_workers, load)
    if kind == "frc":
        return coding.frc(n_workers, load)
    if kind == "regular":
        return coding.regular(n_workers, load, seed)
    a = coding.load_assignment(kind)
    require(a.n_workers == n_workers, f"assignment file {kind} has {a.n_workers} workers, "
            f"the run has {n_workers}")
    return a


def apply_ordering(assignment: coding.Assignment, ordering: str,
                   seed: int = 0) -> coding.Assignment:
    """Orderings from a CLI name (natural, random, optimal) or an orderings file."""
    if ordering == "natural":
        return assignment
    if ordering == "random":
        return coding.random_ordering(assignment, seed)
    if ordering == "optimal":
        return coding.optimal_ordering(assignment)
    return coding.load_orderings(ordering, assignment)


class FixedEncoder:
    """Tandon's :class:`~mpigc.coding.FixedCode` behind the :class:`~mpigc.coding.GradientCode` calls.

    The fixed code ignores the broadcast state when encoding (a finished worker sends its
    fixed combination) and decodes from the finished workers only (least squares, or one
    worker per group on a fractional repetition).
    """

    def __init__(self, fixed: coding.FixedCode):
        self.fixed = fixed
        self.assignment = fixed.assignment

    def encode(self, worker: int, state: ArrayLike,
               chunk_grads: Mapping[int, np.ndarray]) -> np.ndarray:
        """Tandon's fixed encoding of ``worker``'s chunk gradients (``state`` unused)."""
        return self.fixed.encode(worker, chunk_grads)

    def encode_all(self, state: ArrayLike, chunk_grads: ArrayLike) -> dict[int, np.ndarray]:
        """One vector per sender, as a dict (``decode`` takes it as it is)."""
        orderings = self.assignment.orderings
        return {int(i): self.fixed.encode(int(i), {j: chunk_grads[j] for j in orderings[i]})
                for i in np.flatnonzero(np.asarray(state) > 0)}

    def decode_weights(self, state: ArrayLike) -> np.ndarray:
        """Weights of :meth:`decode`: those of the workers that finished in ``state``."""
        state = np.asarray(state)
        finished = (state == self.assignment.loads) & (state > 0)
        return self.fixed.decode_weights(np.flatnonzero(finished))

    def decode(self, state: ArrayLike, transmissions: Mapping[int, np.ndarray],
               d: int) -> np.ndarray:
        """:meth:`FixedCode.decode` from the workers of ``transmissions`` finished in ``state``."""
        loads = self.assignment.loads
        # FixedCode.decode reads only the finished workers' entries: no need to filter the dict.
        return self.fixed.decode([i for i in transmissions if state[i] == loads[i]], transmissions, d)


@dataclass
class Protocol:
    """A configured scheme: what the PS, the workers and the simulator all follow.

    Attributes
    ----------
    code : mpigc.coding.GradientCode
        The adaptive code on the assignment (coverage, recovered fraction).
    encoder : mpigc.coding.GradientCode or FixedEncoder
        What encodes and decodes the vectors: ``code`` itself, or Tandon's fixed code for
        gc with ell = 1.
    trigger : str
        The rule in force: ``scheme.frc_trigger`` on a fractional repetition assignment
        when the scheme has one, else ``scheme.trigger``. Derived.
    decode_via : {"p2p", "reduce"}
        How the vectors reach the PS: "p2p", every sender's vector point to point, summed
        as it arrives; "reduce", every worker adds its weighted vector (``decode_weights``)
        to one nonblocking MPI reduction onto the PS (O(d) into the PS, not O(N d / ell)).
    finished_needed : int or None
        Finished workers that fire the trigger (N - s for "finished", N otherwise); None for
        the coverage trigger. Derived from ``trigger`` and ``tolerance``.
    """

    scheme: Scheme
    assignment: coding.Assignment
    ell: int
    tolerance: int
    code: coding.GradientCode
    encoder: Union[coding.GradientCode, FixedEncoder]
    deadline: Optional[float] = None
    decode_via: str = "p2p"
    trigger: str = field(init=False)
    finished_needed: Optional[int] = field(init=False)

    def __post_init__(self):
        frc = self.scheme.frc_trigger is not None and self.assignment.groups is not None
        self.trigger = self.scheme.frc_trigger if frc else self.scheme.trigger
        if self.trigger == "coverage":
            self.finished_needed = None
        else:
            self.finished_needed = self.n_workers - (self.tolerance if self.trigger == "finished" else 0)

    @property
    def n_workers(self) -> int:
        """Number of workers N."""
        return self.assignment.n_workers

    def reports_at(self, worker: int, count: int) -> bool:
        """True when a worker that has finished ``count`` chunks sends a progress report."""
        if self.scheme.report == "chunk":
            return count > 0
        return count == self.assignment.loads[worker]

    def new_tracker(self) -> coding.CoverageTracker:
        """A fresh :class:`~mpigc.coding.CoverageTracker` for this protocol."""
        return coding.CoverageTracker(self.assignment, self.ell)

    def fired(self, tracker: coding.CoverageTracker) -> bool:
        """The PS trigger of SPEC section 5, O(1) on the tracker."""
        if self.finished_needed is None:
            return tracker.decodable
        return tracker.n_finished >= self.finished_needed

    def senders(self, state: ArrayLike) -> np.ndarray:
        """Workers that transmit for ``state`` (SPEC: a worker with s_i = 0 sends nothing)."""
        return np.flatnonzero(np.asarray(state) > 0)

    def encode(self, worker: int, state: ArrayLike,
               chunk_grads: Mapping[int, np.ndarray]) -> np.ndarray:
        """Worker ``worker``'s vector for the broadcast ``state``."""
        return self.encoder.encode(worker, state, chunk_grads)

    def encode_all(self, state: ArrayLike,
                   chunk_grads: ArrayLike) -> np.ndarray | dict[int, np.ndarray]:
        """Every sender's vector at once, from an (m, d) array of chunk gradients.

        The simulator's batch form of :meth:`encode`: a 2-D array, one row per sender in
        ascending worker order (what :meth:`decode` takes), or a dict for the fixed code.
        """
        return self.encoder.encode_all(state, chunk_grads)

    def decode_weights(self, state: ArrayLike) -> tuple[np.ndarray, float]:
        """``(W, recovered)``: the decode of ``state`` as weights, ``grad = (W @ Y)[:d]``.

        ``W`` (ell x N) is zero for the workers that send nothing and includes the scheme's
        rescaling, so the PS can sum the vectors as they arrive
        (:class:`mpigc.coding.decode.StreamingDecoder`) or let MPI reduce them.
        """
        state = np.asarray(state)
        W = self.encoder.decode_weights(state)
        recovered = self.code.recovered_fraction(state)
        if self.scheme.rescale and recovered > 0:
            W = W / recovered
        return W, recovered

    def decode(self, state: ArrayLike, transmissions: Mapping[int, np.ndarray] | np.ndarray,
               d: int) -> tuple[np.ndarray, float]:
        """Decoded gradient (length d) and the fraction of chunks recovered."""
        state = np.asarray(state)
        grad = self.encoder.decode(state, transmissions, d)
        recovered = self.code.recovered_fraction(state)
        if self.scheme.rescale and recovered > 0:
            grad = grad / recovered
        return grad, recovered


def build_protocol(scheme: str, n_workers: int, assignment: str = "cyclic",
                   load: int | None = None, ell: int = 1, ordering: str = "optimal",
                   seed: int = 0, beta: str | ArrayLike = "gaussian",
                   tolerance: int | None = None, deadline: float | None = None,
                   decode_via: str = "p2p") -> Protocol:
    """Validate a scheme's options and build its :class:`Protocol`.

    Parameters
    ----------
    scheme : str
        A name in :data:`SCHEMES`.
    n_workers : int
        N, the number of workers (the PS is not counted).
    assignment : str
        "cyclic", "frc", "regular" or the path of an m x N 0/1 matrix.
    load : int, optional
        Chunks per worker; default 3, or 1 for the unit-load schemes.
    ell : int
        Communication parameter, 1 <= ell <= min replication.
    ordering : str
        "natural", "random", "optimal" or a file of per-worker chunk orders.
    tolerance : int, optional
        s, the stragglers that gc and ignore-stragglers wait for no longer. Default: for gc
        min replication - ell (SPEC section 5); for ignore-stragglers DEFAULT_LOAD - 1, the
        tolerance of gc at the default load, so the two are compared at equal tolerance.
        gc on a fractional repetition waits for every group instead (``frc_trigger``) and
        takes only the default.
    deadline : float, optional
        Approximate mode: decode at this time (psgc and gc only).
    decode_via : {"p2p", "reduce"}
        See :class:`Protocol` (parameter-server schemes only).
    """
    sch = get_scheme(scheme)
    require(decode_via in DECODE_VIA, f"--decode must be one of {', '.join(DECODE_VIA)}, got "
            f"{decode_via!r}")
    require(decode_via == "p2p" or sch.uses_ps,
            f"--decode {decode_via} applies to parameter-server schemes, not {scheme}")
    require(n_workers >= 1, f"{scheme} needs at least one worker, got {n_workers}")
    if sch.unit_load:
        require(load in (None, 1), f"--load must be 1 for {scheme} (each worker holds one "
                f"chunk), got {load}")
        require(ell == 1, f"--ell must be 1 for {scheme}, got {ell}")
        load = 1
        if assignment not in ("cyclic", "frc", "regular"):
            raise UsageError(f"{scheme} uses one chunk per worker; --assignment {assignment} "
                             f"does not apply")
        assignment = "cyclic"
    elif load is None:
        load = min(DEFAULT_LOAD, n_workers)
    if deadline is not None:
        require(sch.deadline, f"--deadline applies to psgc and gc, not {scheme}")
        require(np.isfinite(deadline) and deadline > 0,
                f"--deadline must be a positive number of seconds, got {deadline}")
    a = apply_ordering(make_assignment(assignment, n_workers, load, seed), ordering, seed)
    min_rep = int(a.replication.min())
    require(1 <= ell <= min_rep, f"--ell must be between 1 and the smallest replication "
            f"({min_rep}), got {ell}")
    code = coding.GradientCode(a, ell, seed=seed, beta=beta)
    # A coded scheme that waits for finished workers is designed for min replication - ell
    # stragglers; a unit-load one has no redundancy and defaults to gc's at DEFAULT_LOAD.
    coded = sch.trigger == "finished" and not sch.unit_load
    if tolerance is None:
        if coded:
            tolerance = min_rep - ell
        elif sch.trigger == "finished":
            tolerance = min(DEFAULT_LOAD - 1, n_workers - 1)
        else:
            tolerance = 0
    require(0 <= tolerance < n_workers, f"--straggler-tolerance must be between 0 and "
            f"{n_workers - 1}, got {tolerance}")
    if coded:
        require(tolerance <= min_rep - ell, f"{scheme} tolerates at most min replication - ell "
                f"= {min_rep - ell} stragglers, got --straggler-tolerance {tolerance}")
        require(sch.frc_trigger is None or a.groups is None or tolerance == min_rep - ell,
                f"--straggler-tolerance does not apply to {scheme} on a fractional repetition "
                f"(it decodes once every group has {ell} finished worker{'s' if ell > 1 else ''}), got {tolerance}")
    encoder = code
    if sch.encoder == "fixed" and ell == 1:
        encoder = FixedEncoder(coding.FixedCode(a, seed=seed))
    return Protocol(sch, a, ell, tolerance, code, encoder, deadline, decode_via)
