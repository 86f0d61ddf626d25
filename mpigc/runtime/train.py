"""``mpigc train``: distributed training over MPI (SPEC sections 5, 6 and 9).

Rank 0 is the parameter server (PS) and ranks 1..N are workers. A run has three phases:

1. Set-up. Options are validated before MPI starts; the world size, the scheme and the
   straggler model before any communication (identical verdict on every rank). Each
   worker reads the rows of its own chunks; problems found in the data (NaN rows, labels
   that do not fit the model) are agreed collectively, so every rank exits with status 2
   and rank 0 prints one line. ``--lr auto`` runs a distributed power iteration for
   ``lambda_max(X^T X)/n``, each chunk counted once (by its first holder).
2. Iterations. Rank 0 broadcasts ``[iteration, command, w]``; the scheme's engine
   (:mod:`~mpigc.runtime.ps` / :mod:`~mpigc.runtime.worker`, or
   :mod:`~mpigc.runtime.allreduce`) produces the gradient; rank 0 adds ``l2 * w``,
   updates the optimizer and logs.
3. The end. A STOP broadcast carries the final model; the workers evaluate the exact
   objective and the training accuracy at it (each chunk once) and every rank drains its
   messages. Rank 0 writes the outputs.

Checkpoints (:mod:`~mpigc.runtime.checkpoint`). Every rank turns SIGUSR1/SIGTERM into a
flag before MPI starts. At each iteration boundary rank 0 broadcasts CHECKPOINT (every
``--checkpoint-every`` iterations: it has written DIR/checkpoint.npz, all carry on) or,
after a signal, CHECKPOINT_STOP (checkpoint written, every rank exits 0 without the final
evaluation). ``--resume DIR``: rank 0 reads the checkpoint and checks its configuration
during set-up (a mismatch is agreed bad input); the saved step size replaces ``--lr auto``
and the loop continues at the saved iteration, appending to the iterations file.

Any exception other than agreed bad input prints its traceback and aborts the whole job:
a failing rank never leaves the others waiting. A non-finite vector or chunk loss received
by the PS stops the run after that iteration: the model before it is kept (``--out``),
rank 0 prints one line naming the iteration and the worker, and every rank exits with
status 3 (:data:`mpigc.runtime.faults.EXIT_NONFINITE`; 2 is bad input).

The logged ``loss`` of an iteration is the objective at the point where the gradient was
evaluated, from the chunk losses the workers sent with their vectors. When an iteration
recovers only some chunks (deadline, timeout, ignore-stragglers) it is the mean loss over
the rows of the chunks that were processed, plus the regularisation: an estimate of the
objective. ``final_loss`` in summary.json is always exact (phase 3), and with ``--verify``
every record also holds ``objective``, the exact objective at that point (NumPy, rank 0).
"""

import os
import signal
import statistics
import sys
import time
import traceback

import numpy as np

from mpigc import config, models
from mpigc.data import chunk_bounds, parse_data_spec, prepare_labels
from mpigc.errors import UsageError
from mpigc.optim import make_optimizer
from mpigc.runtime import checkpoint, launch
from mpigc.runtime.faults import EXIT_NONFINITE
from mpigc.runtime.log import RunLog, check_out_dir

# Power iteration for --lr auto: relative residual and step limit. The estimate returned
# (Rayleigh quotient + residual) bounds the eigenvalue from above, so a loose tolerance
# only shortens the step by about POWER_TOL.
POWER_TOL = 1e-3
POWER_MAX_ITER = 500
# --lr auto from the summed Gram matrix (d x d doubles reduced once) up to this many features.
GRAM_MAX_D = 1000
# Distinct labels a rank reports for the logistic label check (3 already prove a problem).
LABEL_SAMPLE = 3
# Tests only: rank 0 sends itself SIGUSR1 at the start of this iteration (a stop that
# lands at a known iteration boundary).
TEST_SIGNAL_ENV = "MPIGC_TEST_SIGNAL_AT_ITERATION"


def main(args):
    """Entry point of ``mpigc train`` (every rank); returns the exit status."""
    # Before MPI starts: from now on SIGUSR1/SIGTERM only ask for a checkpoint-and-stop.
    stop = checkpoint.StopRequest().install()
    from mpigc.runtime import comm as mpicomm  # initialises MPI

    comm = mpicomm.world()
    # Validation reads files (data, trace, assignment): a rank that cannot see one must not
    # leave the others waiting, so the verdict is agreed before any other communication.
    error = job = None
    try:
        job = _prepare(args, comm, mpicomm, stop)
    except UsageError as exc:
        error = str(exc)
    error = comm.agree(error)
    if error is not None:
        raise UsageError(error)
    try:
        error = job.setup()
    except BaseException:  # noqa: BLE001 - a failing rank must end the job
        _abort(comm)
    if error is not None:
        raise UsageError(error)
    try:
        return job.run() or 0
    except BaseException:  # noqa: BLE001
        _abort(comm)
    return 0


def _prepare(args, comm, mpicomm, stop):
    """Validate the options against the world and the data; the :class:`Job` of this rank."""
    launch.check_world_size(comm.size)
    cfg = config.from_args(args)
    if comm.size < 2:
        raise UsageError(f"mpigc train needs at least 2 MPI ranks (a parameter server and a "
                         f"worker), got {comm.size}; run it under mpiexec -n N+1")
    source = parse_data_spec(cfg.data, model=cfg.model)
    n = comm.size - 1
    protocol = cfg.protocol(n)
    stragglers = cfg.straggler_model(n)
    bounds = chunk_bounds(source.n_rows, protocol.assignment.n_chunks)
    return Job(comm, mpicomm, cfg, source, protocol, stragglers, bounds, stop)


def _abort(comm):
    traceback.print_exc()
    sys.stderr.write(f"mpigc: rank {comm.rank} failed: aborting the job\n")
    sys.stderr.flush()
    # MPI_Abort makes the launcher kill every process, the forwarders of our output too:
    # give them a moment to pass the traceback on (once, in a full test run under load, a
    # crashed worker's job ended with an empty stderr)
    time.sleep(0.2)
    comm.abort(1)


class Job:
    """One training run on one rank (see the module docstring)."""

    def __init__(self, comm, mpicomm, cfg, source, protocol, stragglers, bounds, stop=None):
        self.comm, self.mpi, self.cfg = comm, mpicomm, cfg
        self.stop = checkpoint.StopRequest() if stop is None else stop
        self.resumed, self.previous = None, []  # rank 0 with --resume: Checkpoint, records
        self.source, self.protocol, self.stragglers = source, protocol, stragglers
        self.bounds = np.asarray(bounds)
        self.n = protocol.n_workers
        self.faults = cfg.fault_plan(self.n)  # checked here, before any communication
        self.d = source.n_features
        self.n_rows = source.n_rows
        self.allreduce = not protocol.scheme.uses_ps
        a = protocol.assignment
        # Each chunk is evaluated once, by its first holder (worker j for allreduce).
        self.owner = [int(a.holders(j)[0]) for j in range(a.n_chunks)]
        self.worker = comm.rank - 1
        self.data = None
        self.full = None  # (X, y) on rank 0 with --verify

    # -- set-up ------------------------------------------------------------------------
    def setup(self):
        """Read data, agree on its validity; returns an error message (same on all ranks)."""
        cfg, comm = self.cfg, self.comm
        error, labels = None, []
        try:
            if comm.rank == 0:
                if cfg.resume is not None:
                    self._load_checkpoint()
                if cfg.out is not None:
                    error = check_out_dir(cfg.out)
                if error is None and cfg.verify:
                    X, y = self.source.read_rows([(0, self.n_rows)])
                    self.full = (X, y)
                    labels = _label_sample(y)
            else:
                from mpigc.runtime.worker import ChunkData

                chunks = self.protocol.assignment.chunks(self.worker)  # [worker] for allreduce
                self.data = ChunkData(self.source, self.bounds, chunks, cfg.dtype)
                labels = _label_sample(self.data.y)
        except UsageError as exc:
            error = str(exc)
        error = comm.agree(error)
        if error is not None:
            return error
        values = np.unique(np.concatenate([np.asarray(v, float) for v in comm.allgather(labels)]))
        try:
            prepare_labels(values, cfg.model)
        except UsageError as exc:
            return f"{self.source.name}: {exc}"
        if self.data is not None:
            self.data.set_labels(prepare_labels(self.data.y, cfg.model))
        if self.full is not None:
            self.full = (self.full[0], prepare_labels(self.full[1], cfg.model))
        return None

    def _owned(self):
        return [j for j in self.data.chunks if self.owner[j] == self.worker]

    def _lr(self):
        """``--lr``, or 1/L with L from ``lambda_max(X^T X)/n`` (collective).

        Up to :data:`GRAM_MAX_D` features the workers sum the Gram matrices of the chunks
        they own and rank 0 takes its largest eigenvalue (exact, one reduction); beyond,
        a distributed power iteration, one reduction per step.
        """
        cfg, comm, d = self.cfg, self.comm, self.d
        if cfg.lr is not None:
            return cfg.lr
        if d <= GRAM_MAX_D:
            local = np.zeros((d, d)) if comm.rank == 0 else self.data.gram(self._owned(), d)
            gram = comm.reduce_sum(local)
            if comm.rank != 0:
                return None  # only rank 0 steps
            sq = float(max(np.linalg.eigvalsh(gram / self.n_rows)[-1], 0.0))
            return 1.0 / models.lipschitz_bound(cfg.model, sq, cfg.l2)
        buf = np.zeros(d + 1)
        if comm.rank != 0:
            owned = self._owned()
            while comm.bcast(buf)[0] == 1.0:
                comm.reduce_sum(self.data.gram_apply(owned, buf[1:].copy()))
            return None

        def apply(v):
            buf[0], buf[1:] = 1.0, v
            comm.bcast(buf)
            return comm.reduce_sum(np.zeros(d)) / self.n_rows

        sq = models.top_eigenvalue(apply, d, tol=POWER_TOL, max_iter=POWER_MAX_ITER,
                                   seed=cfg.seed)
        buf[0] = 0.0
        comm.bcast(buf)
        return 1.0 / models.lipschitz_bound(cfg.model, sq, cfg.l2)

    # -- the run -----------------------------------------------------------------------
    def _load_checkpoint(self):
        """Rank 0 with --resume: the checkpoint, if it fits this run (else UsageError)."""
        cfg = self.cfg
        ck = checkpoint.load(cfg.resume)
        checkpoint.check_fingerprint(ck.fingerprint,
                                     checkpoint.fingerprint(cfg, self.comm.size), cfg.resume)
        if ck.iteration > cfg.iterations:
            raise UsageError(f"checkpoint in {cfg.resume} is at iteration {ck.iteration}, "
                             f"past --iterations {cfg.iterations}")
        self.resumed = ck
        self.previous = checkpoint.previous_records(cfg.resume, ck.iteration)

    def run(self):
        # A resumed run keeps the step size it was started with (no --lr auto again).
        if self.cfg.resume is None:
            lr = self._lr()
        else:
            lr = None if self.resumed is None else self.resumed.lr
        if self.comm.rank == 0:
            return self._run_root(lr)
        return self._run_worker()

    def _engine_worker(self):
        from mpigc.runtime.worker import ChunkRunner, Worker

        runner = ChunkRunner(self.data, self.cfg.model, self.cfg.chunk_time, self.cfg.row_block,
                             1.0 / self.n_rows)
        if self.allreduce:
            from mpigc.runtime.allreduce import AllreduceWorker

            return AllreduceWorker(self.comm, self.worker, self.worker, runner, self.stragglers,
                                   self.n, self.d)
        return Worker(self.comm, self.protocol, self.worker, runner, self.stragglers, self.d,
                      self.faults)

    def _engine_root(self):
        if self.allreduce:
            from mpigc.runtime.allreduce import AllreduceRoot

            return AllreduceRoot(self.comm, self.n, self.n_rows, self.d)
        from mpigc.runtime.ps import ParameterServer

        return ParameterServer(self.comm, self.protocol, np.diff(self.bounds), self.d,
                               self.cfg.iteration_timeout, self.cfg.transmit_timeout)

    def _run_worker(self):
        engine = self._engine_worker()
        self.data.warm(self.cfg.model, np.zeros(self.d))
        engine.connect()  # the last collective before the first iteration
        while True:
            iteration, command, w = self.comm.bcast_iteration(self.d)
            if command not in (self.mpi.CONTINUE, self.mpi.CHECKPOINT):
                break
            engine.iterate(iteration, w)
        if command == self.mpi.CHECKPOINT_STOP:
            self.comm.finish()
            return
        loss, correct = self.data.evaluate(self.cfg.model, self._owned(), w)
        self.comm.reduce_sum(np.array([loss, correct], dtype=np.float64))
        self.comm.finish()
        return EXIT_NONFINITE if command == self.mpi.NONFINITE_STOP else None

    def _run_root(self, lr):
        cfg, comm = self.cfg, self.comm
        engine = self._engine_root()
        opt = make_optimizer(cfg.optimizer, lr, np.zeros(self.d),
                             mu=cfg.l2 if cfg.optimizer == "nesterov" else 0.0)
        log = RunLog(cfg.out, cfg.iterations, quiet=cfg.quiet)
        durations, errors, stale, before, starts = [], [], 0, 0.0, [0]
        ck = self.resumed
        if ck is not None:
            opt.load_state_dict(ck.optimizer)
            durations, errors, stale = list(ck.durations), list(ck.grad_rel_err), ck.stale
            before, starts = ck.elapsed_s, ck.starts + [ck.iteration]
            log.restore(self.previous, ck.triggers)
            for seconds in durations:
                engine.record(seconds)
        signal_at = int(os.environ.get(TEST_SIGNAL_ENV, -1))
        failure = None  # message of a non-finite gradient or loss (the run stops)
        engine.connect()
        started = time.perf_counter()
        for t in range(starts[-1], cfg.iterations):
            w = np.array(opt.point(), dtype=np.float64)
            if t == signal_at:
                signal.raise_signal(signal.SIGUSR1)
            command = self._command(t, starts[-1])
            if command != self.mpi.CONTINUE and cfg.out is not None:
                checkpoint.save(cfg.out, checkpoint.Checkpoint(
                    iteration=t, lr=lr, optimizer=opt.state_dict(),
                    fingerprint=checkpoint.fingerprint(cfg, comm.size), durations=durations,
                    grad_rel_err=errors, stale=stale, triggers=log.triggers,
                    elapsed_s=before + time.perf_counter() - started, starts=starts))
            if command == self.mpi.CHECKPOINT_STOP:
                comm.bcast_iteration(self.d, t, command, w)
                log.suspend()
                comm.finish()
                print(f"mpigc: checkpoint at iteration {t} written to {cfg.out}; resume with "
                      f"--resume {cfg.out}" if cfg.out is not None else
                      f"mpigc: stopped by signal at iteration {t}; no checkpoint written "
                      f"(no --out DIR)", flush=True)
                return
            t0 = time.perf_counter()
            comm.bcast_iteration(self.d, t, command, w)
            got = engine.gather(t, w)
            grad = got.grad + cfg.l2 * w
            if got.nonfinite is None:
                opt.update(grad)
            else:  # keep the model before this iteration, stop after logging it
                failure = (f"non-finite gradient or loss from worker {got.nonfinite} in "
                           f"iteration {t}")
            duration = time.perf_counter() - t0
            engine.record(duration)
            durations.append(duration)
            stale += got.stale
            err = objective = None
            if self.full is not None:
                X, y = self.full
                exact = models.gradient(cfg.model, X, y, w, cfg.l2)
                err = float(np.linalg.norm(grad - exact) / max(np.linalg.norm(exact), 1e-300))
                errors.append(err)
                objective = models.objective(cfg.model, X, y, w, cfg.l2)
            log.iteration({
                "iteration": t, "duration_s": duration, "trigger": got.trigger,
                "state": got.state, "loss": got.data_loss + 0.5 * cfg.l2 * float(w @ w),
                "grad_rel_err": err, "objective": objective, "chunk_times": got.chunk_times,
                "recovered_fraction": got.recovered, "stale_messages": got.stale,
                "dropped": got.dropped, "rounds": got.rounds, "waited": got.waited})
            if failure is not None:
                break
        total = before + time.perf_counter() - started
        w_final = np.array(opt.w, dtype=np.float64)
        comm.bcast_iteration(self.d, cfg.iterations, self.mpi.STOP if failure is None else
                             self.mpi.NONFINITE_STOP, w_final)
        loss_sum, correct = comm.reduce_sum(np.zeros(2))
        comm.finish()
        final_loss = loss_sum / self.n_rows + 0.5 * cfg.l2 * float(w_final @ w_final)
        accuracy = correct / self.n_rows if cfg.model == "logistic" else None
        summary = self._summary(durations, total, final_loss, accuracy, errors, lr, stale,
                                log.triggers)
        summary["run_starts"] = starts  # iteration at which each resumed segment began
        summary["error"] = failure
        log.finish(summary, {"w": w_final, "model": cfg.model, "scheme": cfg.scheme,
                             "iterations": cfg.iterations, "lr": lr, "l2": cfg.l2,
                             "optimizer": cfg.optimizer, "n_features": self.d})
        if failure is not None:
            kept = (f"last good model kept in {os.path.join(cfg.out, 'model.npz')}"
                    if cfg.out else "no --out DIR: the model was not kept")
            print(f"mpigc: error: {failure}; {kept}", file=sys.stderr, flush=True)
            return EXIT_NONFINITE
        if not cfg.quiet:
            acc = "" if accuracy is None else f", accuracy {accuracy:.4f}"
            where = f"; wrote {cfg.out}" if cfg.out else ""
            print(f"mpigc: {cfg.scheme} with {self.n} workers: {cfg.iterations} iterations, "
                  f"mean {summary['mean_iteration_s']:.4f} s/iteration, final loss "
                  f"{final_loss:.8g}{acc}{where}", flush=True)

    def _command(self, t, first):
        """Rank 0's command at the boundary before iteration ``t`` (``first``: where this
        process started): stop with a checkpoint after a signal, checkpoint every
        ``--checkpoint-every`` iterations, else continue."""
        every = self.cfg.checkpoint_every
        if self.stop.requested:
            return self.mpi.CHECKPOINT_STOP
        if every and t % every == 0 and t != first:
            return self.mpi.CHECKPOINT
        return self.mpi.CONTINUE

    def _summary(self, durations, total, final_loss, accuracy, errors, lr, stale, triggers):
        cfg, p = self.cfg, self.protocol
        loads = p.assignment.loads
        return {
            "scheme": cfg.scheme, "n_workers": self.n,
            "load": int(loads.max()) if loads.min() == loads.max() else loads.tolist(),
            "ell": p.ell, "iterations": len(durations),
            "mean_iteration_s": statistics.fmean(durations),
            "median_iteration_s": statistics.median(durations),
            "total_s": total, "final_loss": final_loss, "accuracy": accuracy,
            "max_grad_rel_err": max(errors) if errors else None,
            "mpi_library": self.mpi.library_version(), "lr": lr, "triggers": triggers,
            "stale_messages": stale,
            "data": {"name": self.source.name, "n_rows": self.n_rows, "n_features": self.d},
            "config": {
                "scheme": cfg.scheme, "assignment": cfg.assignment,
                "load": int(loads.max()), "ell": p.ell, "ordering": cfg.ordering,
                "orderings": [list(map(int, o)) for o in p.assignment.orderings],
                "seed": cfg.seed, "tolerance": p.tolerance, "deadline": cfg.deadline,
                "beta": cfg.beta, "workers": self.n, "stragglers": cfg.stragglers,
                "chunk_time": cfg.chunk_time, "data": cfg.data, "model": cfg.model,
                "optimizer": cfg.optimizer, "lr": "auto" if cfg.lr is None else cfg.lr,
                "l2": cfg.l2, "iterations": cfg.iterations, "row_block": cfg.row_block,
                "dtype": cfg.dtype, "verify": cfg.verify,
                "iteration_timeout": cfg.iteration_timeout},
        }


def _label_sample(y):
    """Up to LABEL_SAMPLE distinct labels (enough to prove a logistic label problem)."""
    values = np.unique(np.asarray(y, dtype=float))
    bad = values[~np.isfinite(values)]
    return np.concatenate([bad[:1], values[np.isfinite(values)][:LABEL_SAMPLE]]).tolist()
