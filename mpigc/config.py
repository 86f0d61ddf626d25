"""Validated settings of ``mpigc train`` (everything checked before MPI starts).

:func:`from_args` turns the parsed command line into a :class:`TrainConfig`, raising
:class:`~mpigc.errors.UsageError` on bad input; it depends on nothing but the arguments,
so every rank reaches the same verdict. :meth:`TrainConfig.protocol` builds the scheme for
the world size once MPI reports it, still before any communication.
"""

import math
from dataclasses import dataclass
from typing import Optional

from mpigc.errors import UsageError, require
from mpigc.runtime.faults import FaultPlan
from mpigc.schemes import build_protocol, get_scheme
from mpigc.stragglers import parse_stragglers


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (see ``mpigc train --help``)."""

    scheme: str
    assignment: str
    load: Optional[int]
    ell: int
    ordering: str
    beta: str
    tolerance: Optional[int]
    deadline: Optional[float]
    stragglers: str
    seed: int
    data: Optional[str]
    model: str
    chunk_time: float
    iterations: int
    optimizer: str
    lr: Optional[float]         # None: 1/L (--lr auto)
    l2: float
    out: Optional[str]
    verify: bool
    dtype: str
    row_block: int
    quiet: bool
    iteration_timeout: Optional[float]  # None: adaptive (see ParameterServer.limit)
    checkpoint_every: int = 0   # 0: checkpoints only on SIGUSR1/SIGTERM
    resume: Optional[str] = None  # directory of the checkpoint to continue from
    faults: Optional[str] = None  # --faults SPEC (mpigc.runtime.faults)
    transmit_timeout: Optional[float] = None  # None: adaptive (ParameterServer.transmit_limit)

    def protocol(self, n_workers):
        """The scheme's :class:`~mpigc.schemes.Protocol` for ``n_workers`` workers."""
        return build_protocol(self.scheme, n_workers, assignment=self.assignment, load=self.load,
                              ell=self.ell, ordering=self.ordering, seed=self.seed,
                              beta=self.beta, tolerance=self.tolerance, deadline=self.deadline)

    def fault_plan(self, n_workers):
        """The :class:`~mpigc.runtime.faults.FaultPlan`, checked against ``n_workers``."""
        plan = FaultPlan(self.faults).check_workers(n_workers)
        require(not plan or get_scheme(self.scheme).uses_ps, f"--faults {self.faults}: "
                f"{self.scheme} has no parameter server to survive them")
        return plan

    def straggler_model(self, n_workers):
        model = parse_stragglers(self.stragglers, n_workers, self.seed)
        if not get_scheme(self.scheme).uses_ps:
            require(not model.can_fail,
                    f"--stragglers {self.stragglers}: {self.scheme} cannot run with failing "
                    f"workers (an MPI_Allreduce waits for every rank)")
        return model


def _finite(value, name, minimum=0.0, strict=False):
    ok = value is not None and math.isfinite(value) and (value > minimum if strict
                                                         else value >= minimum)
    require(ok, f"{name} must be a finite number {'>' if strict else '>='} {minimum:g}, "
            f"got {value}")
    return float(value)


def parse_lr(text):
    """``--lr``: 'auto' (None) or a positive step size."""
    if str(text).strip().lower() == "auto":
        return None
    try:
        lr = float(text)
    except ValueError:
        raise UsageError(f"--lr must be a positive number or 'auto', got {text!r}") from None
    return _finite(lr, "--lr", strict=True)


def from_args(args):
    """Validate the ``train`` arguments (pure: no MPI, no data read) into a TrainConfig."""
    every = args.checkpoint_every or 0
    require(every >= 0, f"--checkpoint-every must be >= 0, got {every}")
    resume = args.resume
    if resume is not None:
        require(str(resume).strip() != "", "--resume must name a directory")
    out = resume if args.out is None else args.out  # a resumed run writes where it was
    require(every == 0 or out is not None,
            f"--checkpoint-every {every} needs --out DIR (where the checkpoint goes)")
    get_scheme(args.scheme)
    require(args.iterations >= 1, f"--iterations must be at least 1, got {args.iterations}")
    require(args.row_block >= 1, f"--row-block must be at least 1, got {args.row_block}")
    require(args.seed >= 0, f"--seed must be >= 0, got {args.seed}")
    if out is not None:
        require(str(out).strip() != "", "--out must name a directory")
    return TrainConfig(
        scheme=args.scheme, assignment=args.assignment, load=args.load, ell=args.ell,
        ordering=args.ordering, beta=args.beta, tolerance=args.tolerance,
        deadline=args.deadline, stragglers=args.stragglers, seed=args.seed, data=args.data,
        model=args.model, chunk_time=_finite(args.chunk_time, "--chunk-time"),
        iterations=args.iterations, optimizer=args.optimizer, lr=parse_lr(args.lr),
        l2=_finite(args.l2, "--l2"), out=out, verify=bool(args.verify), dtype=args.dtype,
        row_block=args.row_block, quiet=bool(args.quiet),
        iteration_timeout=None if args.iteration_timeout is None else
        _finite(args.iteration_timeout, "--iteration-timeout", strict=True),
        checkpoint_every=every, resume=resume, faults=FaultPlan(args.faults).spec or None,
        transmit_timeout=None if args.transmit_timeout is None else
        _finite(args.transmit_timeout, "--transmit-timeout", strict=True))
