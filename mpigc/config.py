"""The options of ``mpigc train``: one table of defaults, and their validation.

:class:`TrainConfig` is the single source of the options: each field carries its default
and its command-line help, :func:`add_options` builds the argparse options from it and
:func:`arguments` builds the same namespace in Python (tests, benchmarks). :func:`from_args`
validates the parsed arguments into a :class:`TrainConfig`, raising
:class:`~mpigc.errors.UsageError`; it reads nothing but the arguments, so every rank reaches
the same verdict before MPI starts.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Optional

from mpigc.errors import UsageError, require
from mpigc.faults import FaultPlan
from mpigc.optim import OPTIMIZERS, gradient_tol, optimizer_class
from mpigc.schemes import SCHEMES, Protocol, build_protocol, get_scheme
from mpigc.stragglers import StragglerModel, parse_stragglers

PROTOCOL = "protocol"  # the group of options shared by ``train`` and ``simulate``
PRECONDITIONERS = ("std", "none")


def _option(default, help=None, *, metavar=None, choices=None, type=None, group="train",
            aliases=()):
    """A :class:`TrainConfig` field with its command-line settings in the metadata."""
    meta = {"help": help, "metavar": metavar, "choices": choices, "type": type, "group": group,
            "aliases": aliases}
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run; each field is the option ``--name-with-dashes``.

    The defaults here are the command line's. ``lr`` is None for ``--lr auto`` (1/L),
    ``iteration_timeout`` and ``transmit_timeout`` None for the adaptive timeouts of
    :class:`~mpigc.runtime.ps.ParameterServer`.
    """

    scheme: str = _option("psgc", choices=tuple(SCHEMES), group=PROTOCOL)
    assignment: str = _option("cyclic", metavar="cyclic|frc|regular|FILE", group=PROTOCOL)
    load: Optional[int] = _option(
        None, "chunks per worker (default 3; 1 for uncoded/ignore-stragglers/allreduce)",
        metavar="DELTA", type=int, group=PROTOCOL)
    ell: int = _option(1, "communication parameter", metavar="L", type=int, group=PROTOCOL)
    ordering: str = _option("optimal", metavar="natural|random|optimal|FILE", group=PROTOCOL)
    beta: str = _option("gaussian", choices=("gaussian", "vandermonde"), group=PROTOCOL)
    straggler_tolerance: Optional[int] = _option(
        None, "stragglers tolerated by gc/ignore-stragglers (default: min replication - ell)",
        metavar="S", type=int, group=PROTOCOL, aliases=("--tolerance",))
    deadline: Optional[float] = _option(
        None, "approximate mode: decode at time T after the iteration starts (seconds in "
        "train; chunk times in simulate)", metavar="T", type=float, group=PROTOCOL)
    stragglers: str = _option(
        "none", "none | exp:mean=M | shifted-exp:shift=A,rate=R | pareto:alpha=A | "
        "bimodal:p=P,slowdown=K | persistent:frac=F,slowdown=K | fail:p=P | trace:FILE, "
        "joined with '+'", metavar="SPEC", group=PROTOCOL)
    seed: int = _option(0, type=int, group=PROTOCOL)
    data: Optional[str] = _option(
        None, "synthetic:n=ROWS,d=COLS[,density=F][,seed=S] | FILE.npz | "
        "FILE.svm/.libsvm/.txt (default: synthetic:n=20000,d=100)", metavar="SPEC")
    model: str = _option("logistic", choices=("logistic", "linear"))
    chunk_time: float = _option(
        0.0, "nominal chunk time; straggler factors multiply max(this, compute time)",
        metavar="SECONDS", type=float)
    iterations: int = _option(50, metavar="K", type=int)
    optimizer: str = _option("gd", choices=OPTIMIZERS)
    lr: Optional[float] = _option(
        None, "gd/nesterov step size in the optimizer's coordinates (default: auto, 1/L)",
        metavar="ETA|auto")
    history: int = _option(10, "lbfgs: curvature pairs kept", metavar="M", type=int)
    tol: Optional[float] = _option(
        None, "stop once max_i |dF/dw_i| <= TOL, the largest entry of the full gradient of "
        "the objective F (mean loss + l2/2 |w|^2) in the user's coordinates, absolute: "
        "scikit-learn's tol of its lbfgs solver; tested at every gradient the optimizer may "
        "stop at (default: run --iterations steps)", metavar="TOL", type=float)
    precondition: str = _option(
        "std", "coordinates the optimizer works in: std (columns scaled by their standard "
        "deviation, not centred, as Spark MLlib; the objective and the model stay in the "
        "user's units) or none", choices=PRECONDITIONERS)
    l2: float = _option(1e-4, "l2 penalty on the coefficients (never on the intercept)",
                        metavar="LAMBDA", type=float)
    fit_intercept: bool = _option(
        False, "fit an unpenalised intercept (computed by the kernels, no column of ones)")
    standardize: bool = _option(
        False, "fit on standardized features (population mean and std of the training rows; "
        "dense data are centred when fitting the intercept, sparse data only scaled; constant "
        "columns are left unscaled), report the model in the original units, as Spark MLlib")
    test_data: Optional[str] = _option(
        None, "held-out data (any data spec) evaluated by the workers", metavar="SPEC")
    validation_fraction: float = _option(
        0.0, "hold out this fraction of the training rows (each row by a coin seeded by "
        "--seed, the same for any number of workers) and evaluate on them", metavar="F",
        type=float)
    eval_every: int = _option(
        0, "held-out metrics every K optimizer steps too (0: at the end only)", metavar="K",
        type=int)
    out: Optional[str] = _option(None, metavar="DIR")
    verify: bool = _option(False)
    resume: Optional[str] = _option(
        None, "continue from DIR/checkpoint.npz (same configuration required)", metavar="DIR")
    checkpoint_every: int = _option(
        0, "checkpoint every K iterations (0: only on SIGUSR1/SIGTERM)", metavar="K", type=int)
    faults: Optional[str] = _option(
        None, "inject faults: stall:worker=W,seconds=S[,iteration=I|A-B] | "
        "fail:worker=W[,iteration=...] | nan:worker=W[,iteration=...] | "
        "kill:worker=W,iteration=I[,chunks=K][,seconds=S] (SIGKILL), joined with '+'",
        metavar="SPEC")
    transmit_timeout: Optional[float] = _option(
        None, "drop a worker whose vector is this late (default: max(0.5 s, 5 x the median "
        "iteration time))", metavar="SECONDS", type=float)
    decode: str = _option(
        "p2p", "p2p: every vector to the PS, summed as it arrives (default); reduce: one MPI "
        "reduction of the weighted vectors (the PS receives O(d); waits for every worker, no "
        "--transmit-timeout)", choices=("p2p", "reduce"))
    dtype: str = _option("float64", choices=("float64", "float32"))
    row_block: int = _option(256, "rows between checks of the encode-and-transmit signal",
                             metavar="ROWS", type=int)
    quiet: bool = _option(False)
    iteration_timeout: Optional[float] = _option(
        None, "decode what arrived after SECONDS when the trigger cannot fire (e.g. a failed "
        "worker under uncoded); default: 10 x the larger of the median iteration time and "
        "the first report's time, >= 1 s", metavar="SECONDS", type=float)

    def protocol(self, n_workers: int) -> Protocol:
        """The scheme's :class:`~mpigc.schemes.Protocol` for ``n_workers`` workers."""
        return build_protocol(self.scheme, n_workers, assignment=self.assignment, load=self.load,
                              ell=self.ell, ordering=self.ordering, seed=self.seed,
                              beta=self.beta, tolerance=self.straggler_tolerance,
                              deadline=self.deadline, decode_via=self.decode)

    def fault_plan(self, n_workers: int) -> FaultPlan:
        """The :class:`~mpigc.faults.FaultPlan`, checked against ``n_workers``."""
        plan = FaultPlan(self.faults).check_workers(n_workers)
        require(not plan or get_scheme(self.scheme).uses_ps, f"--faults {self.faults}: "
                f"{self.scheme} has no parameter server to survive them")
        return plan

    def straggler_model(self, n_workers: int) -> StragglerModel:
        """The ``--stragglers`` model for ``n_workers`` (failing ones refused without a PS)."""
        model = parse_stragglers(self.stragglers, n_workers, self.seed)
        if not get_scheme(self.scheme).uses_ps:
            require(not model.can_fail,
                    f"--stragglers {self.stragglers}: {self.scheme} cannot run with failing "
                    f"workers (an MPI_Allreduce waits for every rank)")
        return model


OPTIONS = dataclasses.fields(TrainConfig)


def add_options(parser: argparse.ArgumentParser, group: Optional[str] = None) -> None:
    """Add the options of :class:`TrainConfig` (those of ``group`` only, when given)."""
    for f in OPTIONS:
        meta = f.metadata
        if group is not None and meta["group"] != group:
            continue
        flags = ("--" + f.name.replace("_", "-"), *meta["aliases"])
        if f.default is False:
            parser.add_argument(*flags, action="store_true", help=meta["help"])
            continue
        settings = {k: meta[k] for k in ("metavar", "choices", "type") if meta[k] is not None}
        parser.add_argument(*flags, default=f.default, help=meta["help"], **settings)


def arguments(**overrides: Any) -> argparse.Namespace:
    """The namespace ``mpigc train`` parses from an empty command line, with ``overrides``.

    Values are given as on the command line (``lr="auto"`` or ``lr="0.5"``); a name that is
    no option raises TypeError.
    """
    values = {f.name: f.default for f in OPTIONS}
    unknown = sorted(set(overrides) - set(values))
    if unknown:
        raise TypeError(f"not a train option: {', '.join(unknown)}")
    values.update(overrides)
    return argparse.Namespace(**values)


def _finite(value, name, minimum=0.0, strict=False):
    ok = value is not None and math.isfinite(value) and (value > minimum if strict
                                                         else value >= minimum)
    require(ok, f"{name} must be a finite number {'>' if strict else '>='} {minimum:g}, "
            f"got {value}")
    return float(value)


def _timeout(value, name):
    return None if value is None else _finite(value, name, strict=True)


def parse_lr(text: Optional[str]) -> Optional[float]:
    """``--lr``: 'auto' or None (None: 1/L) or a positive step size."""
    if text is None or str(text).strip().lower() == "auto":
        return None
    try:
        lr = float(text)
    except ValueError:
        raise UsageError(f"--lr must be a positive number or 'auto', got {text!r}") from None
    return _finite(lr, "--lr", strict=True)


def _check_holdout(args):
    fraction = args.validation_fraction or 0.0
    require(isinstance(fraction, (int, float)) and math.isfinite(fraction)
            and 0.0 <= fraction < 1.0,
            f"--validation-fraction must be a number in [0, 1), got {fraction}")
    test = args.test_data
    if test is not None:
        require(str(test).strip() != "", "--test-data must name a data spec")
    require(not (fraction and test is not None),
            "--test-data and --validation-fraction both name a held-out set; give one")
    every = args.eval_every or 0
    require(isinstance(every, int) and every >= 0, f"--eval-every must be >= 0, got {every}")
    require(every == 0 or fraction or test is not None,
            f"--eval-every {every} needs held-out data (--test-data or --validation-fraction)")


def from_args(args: argparse.Namespace) -> TrainConfig:
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
    require(args.history >= 1, f"--history must be at least 1, got {args.history}")
    gradient_tol(args.tol)
    _check_holdout(args)
    if optimizer_class(args.optimizer).needs_exact:
        require(args.deadline is None, f"--optimizer {args.optimizer} needs exact gradients "
                f"and losses; --deadline decodes approximate ones")
        require(get_scheme(args.scheme).exact, f"--optimizer {args.optimizer} needs exact "
                f"gradients and losses; {args.scheme} decodes approximate ones")
    # a reduction waits for every worker: no late one can be dropped and re-encoded around
    require(args.decode == "p2p" or args.transmit_timeout is None,
            f"--transmit-timeout needs --decode p2p (a reduction waits for every worker), "
            f"got --decode {args.decode}")
    values = {f.name: getattr(args, f.name) for f in OPTIONS}
    values.update(
        chunk_time=_finite(args.chunk_time, "--chunk-time"), lr=parse_lr(args.lr),
        l2=_finite(args.l2, "--l2"), out=out, verify=bool(args.verify), quiet=bool(args.quiet),
        fit_intercept=bool(args.fit_intercept), standardize=bool(args.standardize),
        validation_fraction=float(args.validation_fraction or 0.0),
        iteration_timeout=_timeout(args.iteration_timeout, "--iteration-timeout"),
        transmit_timeout=_timeout(args.transmit_timeout, "--transmit-timeout"),
        checkpoint_every=every, faults=FaultPlan(args.faults).spec or None)
    return TrainConfig(**values)
