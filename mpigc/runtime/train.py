"""``mpigc train``: distributed training over MPI (SPEC sections 5, 6 and 9).

Rank 0 is the parameter server (PS), ranks 1..N are workers. This module is the set-up:
options validated against the world, the checkpoint of ``--resume`` checked, the engines
built. The rows each rank holds are :mod:`~mpigc.runtime.rows`, the optimizer's feature
scale and ``--lr auto`` :mod:`~mpigc.runtime.stepsize`, the iterations
:mod:`~mpigc.runtime.loop`, the outputs :mod:`~mpigc.runtime.summary`;
docs/ARCHITECTURE.md describes the run as a whole.

Any exception other than agreed bad input prints its traceback and aborts the whole job:
a failing rank never leaves the others waiting. A rank that dies is another matter under
ULFM (:mod:`~mpigc.runtime.loop`): the survivors go on or stop cleanly.
"""

import time

import numpy as np

from mpigc import config
from mpigc.data import check_memory, chunk_bounds, parse_data_spec
from mpigc.errors import UsageError
from mpigc.optim import optimizer_class
from mpigc.runtime import checkpoint, launch, loop, rows
from mpigc.runtime.log import check_out_dir
from mpigc.runtime.stepsize import auto_lr, optimizer_scale


def main(args):
    """Entry point of ``mpigc train`` (every rank); returns the exit status."""
    job = run(args)
    job.comm.exit_if_survived(job.status)
    return job.status


def run(args, comm=None, source=None, keep_history=False):
    """Train with the ``train`` arguments ``args`` on every rank of ``comm``.

    Parameters
    ----------
    args : argparse.Namespace
        As :func:`mpigc.config.arguments` builds it.
    comm : mpi4py.MPI.Intracomm, optional
        Default COMM_WORLD.
    source : mpigc.data.DataSource, optional
        The training data, instead of ``args.data`` (the same on every rank).
    keep_history : bool
        Keep every record of iterations.jsonl in memory (``job.outcome["history"]``).

    Returns
    -------
    Job
        With ``status`` (the exit status) and, on rank 0 after a finished run,
        ``outcome`` (summary, model, history).

    Raises
    ------
    UsageError
        Bad input, the same on every rank.
    """
    # Before MPI starts: from now on SIGUSR1/SIGTERM only ask for a checkpoint-and-stop.
    stop = checkpoint.StopRequest().install()
    from mpigc.runtime import comm as mpicomm  # initialises MPI

    world_size = mpicomm.world_size()
    comm = mpicomm.world() if comm is None else mpicomm.Comm(comm)
    # Validation reads files (data, trace, assignment): a rank that cannot see one must not
    # leave the others waiting, so the verdict is agreed before any other communication.
    error = job = None
    try:
        launch.check_world_size(world_size)
        job = _prepare(args, comm, mpicomm, stop, source)
        job.keep_history = keep_history
    except UsageError as exc:
        error = str(exc)
    except BaseException:  # noqa: BLE001 - the others would wait in the data's collectives
        comm.abort_on_exception()
    error = comm.agree(error)
    if error is not None:
        raise UsageError(error)
    try:
        error = job.setup()
    except BaseException:  # noqa: BLE001 - a failing rank must end the job
        comm.abort_on_exception()
    if error is not None:
        raise UsageError(error)
    try:
        job.status = job.run() or 0
    except BaseException:  # noqa: BLE001
        comm.abort_on_exception()
    return job


def _prepare(args, comm, mpicomm, stop, source=None):
    """Validate the options against the world and the data; the :class:`Job` of this rank."""
    cfg = config.from_args(args)
    if comm.size < 2:
        raise UsageError(f"mpigc train needs at least 2 MPI ranks (a parameter server and a "
                         f"worker), got {comm.size}; run it under mpiexec -n N+1")
    # collective (every rank gets here: the checks above give the same verdict everywhere):
    # the ranks index an svmlight file together, rank 0 opens the files and sends the source
    if source is None:
        source = parse_data_spec(cfg.data, model=cfg.model, comm=comm)
    n = comm.size - 1
    protocol = cfg.protocol(n)
    stragglers = cfg.straggler_model(n)
    bounds = chunk_bounds(source.n_rows, protocol.assignment.n_chunks)
    _check_sizes(comm, source, protocol, bounds, cfg)
    job = Job(comm, cfg, source, protocol, stragglers, bounds, stop,
              mpi_library=mpicomm.library_version())
    if cfg.test_data is not None:
        job.test_source = rows.test_source(cfg, comm, source)
    return job


def _check_sizes(comm, source, protocol, bounds, cfg):
    """Refuse, before anything of the model's size exists, a run whose model (or dense rows)
    cannot fit here: rank 0 keeps a vector per worker, a worker one per chunk it holds,
    each rank a few more (model, gradient, optimizer state, buffers).
    """
    if comm.rank == 0:
        vectors, rows = protocol.n_workers + 6, source.n_rows if cfg.verify else 0
    else:
        chunks = protocol.assignment.chunks(comm.rank - 1)
        vectors = len(chunks) + 6
        rows = int(sum(bounds[j + 1] - bounds[j] for j in chunks))
    check_memory(source, vectors, rows, cfg.dtype)


class Job:
    """One training run on one rank (see the module docstring)."""

    def __init__(self, comm, cfg, source, protocol, stragglers, bounds, stop=None,
                 mpi_library=None):
        self.comm, self.cfg, self.mpi_library = comm, cfg, mpi_library
        self.stop = checkpoint.StopRequest() if stop is None else stop
        self.resumed, self.previous = None, []  # rank 0 with --resume: Checkpoint, records
        self.source, self.protocol, self.stragglers = source, protocol, stragglers
        self.bounds = np.asarray(bounds)
        self.n = protocol.n_workers
        self.faults = cfg.fault_plan(self.n)  # checked here, before any communication
        self.d = source.n_features
        self.dim = self.d + cfg.fit_intercept  # the model vector: coefficients, intercept
        self.n_rows = source.n_rows
        self.allreduce = not protocol.scheme.uses_ps
        a = protocol.assignment
        # Each chunk is evaluated once, by one holder (worker j for allreduce).
        self.owner = a.owners()
        self.deaths = []  # rank 0: {"worker", "iteration", "detected_s", "recovery_s"}
        self.worker = comm.rank - 1
        self.data = None
        self.full = None  # (X, y) on rank 0 with --verify
        self.standardization = None  # --standardize: mpigc.scaling.Standardization
        self.status, self.outcome, self.keep_history = None, None, False
        self.classes = None  # logistic: the two labels of the data, as the user gave them
        self.sizes = np.diff(self.bounds)  # training rows per chunk
        self.test_source = None  # --test-data: its DataSource
        self.holdout = None  # a worker's held-out rows: {chunk or holdout.TEST: (X, y)}

    # -- set-up ------------------------------------------------------------------------
    def setup(self):
        """Read data, agree on its validity; returns an error message (same on all ranks).

        The rows themselves (read, labels, hold-out, standardization): :mod:`~mpigc.runtime.rows`.
        """
        cfg, error = self.cfg, None
        if self.comm.rank == 0:
            try:
                if cfg.resume is not None:
                    self._load_checkpoint()
                if cfg.out is not None:
                    error = check_out_dir(cfg.out)
            except UsageError as exc:
                error = str(exc)
        error = rows.read(self, error)
        if error is None and cfg.validation_fraction:
            error = rows.split_validation(self)
        if error is None and cfg.standardize:
            rows.standardize(self)
        return error

    @property
    def has_holdout(self):
        """Whether the run evaluates held-out rows (the same on every rank)."""
        return self.cfg.test_data is not None or bool(self.cfg.validation_fraction)

    def model(self, w):
        """``(coef, intercept)`` of the model vector ``w`` in the user's feature units."""
        coef = np.asarray(w[:self.d], dtype=np.float64)
        intercept = float(w[self.d]) if self.cfg.fit_intercept else 0.0
        if self.standardization is None:
            return coef, intercept
        return self.standardization.original(coef, intercept)

    def recover(self):
        """Every survivor after a ProcessFailure: shrink to the survivors, give every chunk
        a live holder as owner (None: nobody alive holds it; ``Assignment.owners``).
        Returns the original ranks that died.
        """
        died = self.comm.recover()
        self.owner = self.protocol.assignment.owners({r - 1 for r in self.comm.alive})
        return died

    def dead_workers(self):
        """Workers found dead so far (ascending)."""
        return [r - 1 for r in self.comm.dead]

    def owned(self):
        """The chunks of this worker that it evaluates (each chunk has one owner), ascending."""
        return sorted(j for j in self.protocol.assignment.chunks(self.worker)
                      if self.owner[j] == self.worker)

    def _load_checkpoint(self):
        """Rank 0 with --resume: the checkpoint, if it fits this run (else UsageError)."""
        cfg = self.cfg
        ck = checkpoint.load(cfg.resume)
        checkpoint.check_fingerprint(ck.fingerprint,
                                     checkpoint.fingerprint(cfg, self.comm.size), cfg.resume)
        if ck.steps > cfg.iterations:
            raise UsageError(f"checkpoint in {cfg.resume} is at iteration {ck.steps}, "
                             f"past --iterations {cfg.iterations}")
        self.resumed = ck
        self.previous = checkpoint.previous_records(cfg.resume, ck.iteration)

    def run(self):
        """The iterations and the end of the run (every rank); returns the exit status."""
        cfg, start = self.cfg, time.perf_counter()
        scale = lr = None  # rank 0's (the workers only follow its broadcasts)
        # A resumed run keeps the scale and the step size it was started with.
        if cfg.resume is None:
            scale = optimizer_scale(self)
            lr = cfg.lr
            if lr is None and optimizer_class(cfg.optimizer).uses_lr:
                lr = auto_lr(self, scale)
        elif self.resumed is not None:
            scale, lr = self.resumed.scale, self.resumed.lr
        if self.comm.rank == 0:
            return loop.run_root(self, lr, scale, time.perf_counter() - start)
        return loop.run_worker(self)

    def engine_worker(self):
        """The engine of this worker: the PS protocol's Worker or an AllreduceWorker."""
        from mpigc.runtime.worker import ChunkRunner, Worker

        runner = ChunkRunner(self.data, self.cfg.model, self.cfg.chunk_time, self.cfg.row_block,
                             1.0 / self.n_rows)
        if self.allreduce:
            from mpigc.runtime.allreduce import AllreduceWorker

            return AllreduceWorker(self.comm, self.worker, self.worker, runner, self.stragglers,
                                   self.n, self.dim)
        return Worker(self.comm, self.protocol, self.worker, runner, self.stragglers, self.dim,
                      self.faults)

    def engine_root(self):
        """Rank 0's engine: the ParameterServer or an AllreduceRoot."""
        if self.allreduce:
            from mpigc.runtime.allreduce import AllreduceRoot

            return AllreduceRoot(self.comm, self.n, self.n_rows, self.dim)
        from mpigc.runtime.ps import ParameterServer

        return ParameterServer(self.comm, self.protocol, self.sizes, self.dim,
                               self.cfg.iteration_timeout, self.cfg.transmit_timeout)
