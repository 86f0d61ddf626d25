"""The iteration loop: rank 0 drives the optimizer, the workers follow its broadcasts.

The optimizer reaches the engines only through :meth:`Objective.evaluate`, in its own
coordinates ``v = scale * w`` (:func:`mpigc.scaling.scaled`); everything else here
(checkpoints between optimizer steps, the record of each evaluation, the stopping rules,
the stop broadcast and the final evaluation) happens around it. See docs/ARCHITECTURE.md.

Records and steps: every evaluation is one record of ``iterations.jsonl`` (``iteration``
numbers the evaluations, as the protocol does). ``step`` is the optimizer step it belongs
to, ``line_search`` whether it was a line-search trial, ``accepted`` whether the step ended
there (one per finished step: every GD and Nesterov evaluation, the L-BFGS trial that the
line search accepted; L-BFGS's first evaluation, at the start, is neither). A step's
records are written when the step ends.

A worker process that dies (ULFM, :mod:`~mpigc.runtime.comm`): every survivor recovers the
communicator and :meth:`Objective.evaluate` redoes the interrupted iteration on the
survivors, the dead workers' state fixed at 0 (they never report again), so an exact scheme
stays exact while every chunk keeps ell live holders. When the trigger can no longer fire
on the survivors (coverage lost in exact mode, a scheme without redundancy, allreduce),
rank 0 writes the checkpoint of that iteration, prints one line naming the chunks and every
rank exits with :data:`~mpigc.errors.EXIT_LOST`; deadline mode goes on approximately. Each
death is logged: ``failures`` in the iteration's record, ``deaths`` in summary.json, one
progress line. The PS's own death cannot be survived: the workers exit with EXIT_LOST.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from mpigc import models
from mpigc.errors import EXIT_LOST, EXIT_NONFINITE, ProcessFailure
from mpigc.optim import MAX_ITERATIONS, gradient_tol, make_optimizer
from mpigc.runtime import checkpoint, holdout, summary
from mpigc.runtime.commands import Command
from mpigc.runtime.log import RunLog
from mpigc.runtime.ps import Gathered
from mpigc.scaling import scaled, to_user

# Tests only: rank 0 sends itself SIGUSR1 at the start of this iteration (a stop that
# lands at a known iteration boundary).
TEST_SIGNAL_ENV = "MPIGC_TEST_SIGNAL_AT_ITERATION"


class NonFinite(Exception):
    """A worker sent a non-finite gradient or loss; the run stops after logging it."""

    def __init__(self, worker: int, iteration: int):
        super().__init__(f"non-finite gradient or loss from worker {worker} in iteration "
                         f"{iteration}")


class Lost(Exception):
    """Workers died and the run cannot go on exactly on the survivors (the line says why)."""


@dataclass
class Evaluation:
    """One call of :meth:`Objective.evaluate`, as the log sees it."""

    iteration: int
    w: np.ndarray
    loss: float
    gradient: np.ndarray
    gathered: Gathered
    duration: float
    failures: list = field(default_factory=list)  # recoveries during this evaluation


class Objective:
    """``F(w) = mean loss over the rows + l2/2 |w|^2``, evaluated by the whole cluster.

    :meth:`evaluate` is the only contract between an optimizer and the engines.

    How to use it: an optimizer's ``step(evaluate)`` calls ``evaluate(w)`` at each point it
    needs (GD at its iterate, Nesterov at its look-ahead point, a line search at each
    trial step) and updates its own state from the returned ``(loss, gradient)``; it never
    sees MPI, the engines or the log. Each call is one numbered iteration of the protocol
    and costs one round trip of the cluster: it is logged as one record of
    ``iterations.jsonl`` and counts towards the iteration timeout's median. Call it on
    rank 0 only, from the loop (the workers follow every broadcast). A call whose gradient
    or loss is not finite is logged and then raises :class:`NonFinite`; let it propagate,
    so the optimizer keeps the last good model.

    Parameters
    ----------
    comm : mpigc.runtime.comm.Comm
    engine : ParameterServer or AllreduceRoot
        Anything with ``gather(iteration, w) -> Gathered`` and ``record(seconds)``.
    d : int
        Length of the model vector (the features, and the intercept when fitted).
    l2 : float
        Regularisation strength.
    iteration : int
        Number of the first evaluation (a resumed run continues the count).
    on_evaluation : callable
        Called with each :class:`Evaluation`, before a :class:`NonFinite` is raised.
    on_failure : callable, optional
        ``on_failure(iteration, start)`` after a ProcessFailure: recovers and returns the
        record's entry (the evaluation is then redone), or raises :class:`Lost`.
    penalised : int, optional
        The penalty covers ``w[:penalised]`` (default all of ``w``; the intercept, last, is
        not penalised).
    """

    def __init__(self, comm, engine, d: int, l2: float, iteration: int,
                 on_evaluation: Callable[[Evaluation], None],
                 on_failure: Optional[Callable[[int, float], dict]] = None,
                 penalised: Optional[int] = None):
        self.comm, self.engine, self.d, self.l2 = comm, engine, d, l2
        self.penalised = d if penalised is None else penalised
        self.iteration = iteration
        self.on_evaluation, self.on_failure = on_evaluation, on_failure
        self.command = Command.CONTINUE  # sent with the next evaluation, then reset

    def evaluate(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        """One distributed evaluation at ``w``: ``(loss, gradient)`` of ``F``.

        Rank 0 broadcasts ``w``, the engine gathers the workers' coded gradients and chunk
        losses and decodes them. The loss is exact when every chunk was recovered and an
        estimate otherwise (mean over the recovered rows); so is the gradient in deadline
        mode. Raises :class:`NonFinite` (after logging) on a non-finite result.
        """
        w = np.array(w, dtype=np.float64)
        t = self.iteration
        start = time.perf_counter()
        failures = []
        while True:
            try:
                self.comm.bcast_iteration(self.d, t, self.command, w)
                gathered = self.engine.gather(t, w)
                break
            except ProcessFailure:
                if self.on_failure is None:
                    raise
                failures.append(self.on_failure(t, start))  # or Lost
                self.command = Command.CONTINUE  # redo it on the survivors
        self.command = Command.CONTINUE
        coef = w[:self.penalised]
        gradient = gathered.grad.copy()
        gradient[:self.penalised] += self.l2 * coef
        loss = gathered.data_loss + 0.5 * self.l2 * float(coef @ coef)
        duration = time.perf_counter() - start
        self.engine.record(duration)
        self.iteration += 1
        self.on_evaluation(Evaluation(t, w, loss, gradient, gathered, duration, failures))
        if gathered.nonfinite is not None:
            raise NonFinite(gathered.nonfinite, t)
        return loss, gradient

    def stop(self, command: Command, w: np.ndarray) -> None:
        """Broadcast a stop ``command`` with the final model ``w`` (no evaluation)."""
        self.comm.bcast_iteration(self.d, self.iteration, command,
                                  np.array(w, dtype=np.float64))


class History:
    """Rank 0's record of the run: durations, errors, log, and what a checkpoint saves."""

    def __init__(self, job, log: RunLog, scale: np.ndarray):
        self.job, self.log, self.scale = job, log, scale
        self.durations, self.errors, self.stale = [], [], 0
        self.before, self.starts = 0.0, [0]  # seconds and iterations of earlier segments
        self.started = time.perf_counter()
        self.pending = []  # records of the step in progress

    def restore(self, ck: checkpoint.Checkpoint, previous: list, opt, engine) -> None:
        """Continue from the checkpoint ``ck`` (``previous``: its iteration records)."""
        opt.load_state_dict(ck.optimizer)
        self.durations, self.errors, self.stale = list(ck.durations), list(ck.grad_rel_err), ck.stale
        self.before, self.starts = ck.elapsed_s, ck.starts + [ck.iteration]
        self.log.restore(previous, ck.triggers)
        for seconds in self.durations:
            engine.record(seconds)

    def elapsed(self) -> float:
        """Seconds of the whole run, earlier segments included."""
        return self.before + time.perf_counter() - self.started

    def record(self, ev: Evaluation) -> None:
        """Keep one evaluation's record (with ``--verify``, against the exact NumPy
        objective) until :meth:`end_step`.
        """
        cfg, g = self.job.cfg, ev.gathered
        self.durations.append(ev.duration)
        self.stale += g.stale
        err = objective = None
        if self.job.full is not None:
            X, y = self.job.full
            exact = models.gradient(cfg.model, X, y, ev.w, cfg.l2, cfg.fit_intercept)
            err = float(np.linalg.norm(ev.gradient - exact) / max(np.linalg.norm(exact), 1e-300))
            self.errors.append(err)
            objective = models.objective(cfg.model, X, y, ev.w, cfg.l2, cfg.fit_intercept)
        self.pending.append({
            "iteration": ev.iteration, "duration_s": ev.duration, "elapsed_s": self.elapsed(),
            "trigger": g.trigger, "state": g.state, "loss": ev.loss, "grad_rel_err": err,
            "objective": objective, "chunk_times": g.chunk_times,
            "recovered_fraction": g.recovered, "stale_messages": g.stale,
            "dropped": g.dropped, "rounds": g.rounds, "waited": g.waited,
            "failures": ev.failures})

    def end_step(self, step: int, last, held: Optional[dict] = None) -> None:
        """Write the records of optimizer step ``step`` (``last``: the optimizer's
        :class:`~mpigc.optim.StepRecord`; evaluations past it, cut short by a non-finite
        result, count as neither trials nor accepted). ``held``: the held-out metrics
        after the step (``--eval-every``), in the step's last record.
        """
        for k, record in enumerate(self.pending):
            record.update(step=step, line_search=k < len(last.line_search)
                          and bool(last.line_search[k]), accepted=k == last.accepted)
            if held is not None and k == len(self.pending) - 1:
                record["holdout"] = held
            self.log.iteration(record)
        self.pending = []

    def checkpoint(self, iteration: int, lr: float, opt) -> checkpoint.Checkpoint:
        """The :class:`~mpigc.runtime.checkpoint.Checkpoint` before evaluation ``iteration``."""
        return checkpoint.Checkpoint(
            iteration=iteration, lr=lr, optimizer=opt.state_dict(), scale=self.scale,
            fingerprint=checkpoint.fingerprint(self.job.cfg, self.job.comm.size),
            durations=self.durations, grad_rel_err=self.errors, stale=self.stale,
            triggers=self.log.triggers, elapsed_s=self.elapsed(), starts=self.starts)


def boundary_command(job, t: int, first: int) -> Command:
    """Rank 0's command at the boundary before optimizer step ``t`` (``first``: where this
    process started): stop with a checkpoint after a signal, checkpoint every
    ``--checkpoint-every`` steps, else continue.
    """
    every = job.cfg.checkpoint_every
    if job.stop.requested:
        return Command.CHECKPOINT_STOP
    if every and t % every == 0 and t != first:
        return Command.CHECKPOINT
    return Command.CONTINUE


def run_root(job, lr: Optional[float], scale: np.ndarray, setup_s: float) -> Optional[int]:
    """Rank 0: the optimizer's steps, then the final evaluation and the outputs."""
    cfg = job.cfg
    engine = job.engine_root()
    # Nesterov's strong convexity in v: the penalty's smallest curvature l2 / max(scale)^2
    opt = make_optimizer(cfg.optimizer, lr, np.zeros(job.dim),
                         mu=cfg.l2 / float(np.max(scale)) ** 2, history=cfg.history)
    log = RunLog(cfg.out, cfg.iterations, quiet=cfg.quiet,
                 records=[] if job.keep_history else None)
    history = History(job, log, scale)
    if job.resumed is not None:
        history.restore(job.resumed, job.previous, opt, engine)
    objective = Objective(job.comm, engine, job.dim, cfg.l2, history.starts[-1], history.record,
                          lambda t, start: _recover_root(job, engine, history.log, t, start),
                          penalised=job.d)
    evaluate, converged = scaled(objective.evaluate, scale), gradient_tol(cfg.tol, scale)
    signal_at = int(os.environ.get(TEST_SIGNAL_ENV, -1))
    failure, reason = None, MAX_ITERATIONS  # failure: a non-finite gradient or loss
    engine.connect()
    history.started = time.perf_counter()
    first = opt.iteration
    for t in range(first, cfg.iterations):
        if t == signal_at:
            signal.raise_signal(signal.SIGUSR1)
        command = boundary_command(job, t, first)
        if command != Command.CONTINUE and cfg.out is not None:
            checkpoint.save(cfg.out, history.checkpoint(objective.iteration, lr, opt))
        if command == Command.CHECKPOINT_STOP:
            objective.stop(command, to_user(opt.w, scale))
            history.log.suspend()
            job.comm.finish()
            summary.report_stop(cfg, t)
            return None
        objective.command = command
        stopped = held = None
        try:
            stopped = opt.step(evaluate, converged)
        except NonFinite as exc:  # the optimizer kept the model before this step
            failure = str(exc)
        except Lost as exc:  # the optimizer is still before this step: checkpoint it
            return _stop_lost(job, objective, history, opt, lr, str(exc), t)
        every = cfg.eval_every
        if every and (t + 1) % every == 0 and t + 1 < cfg.iterations and stopped is None \
                and failure is None:
            try:
                held = _holdout_root(job, objective, history, to_user(opt.w, scale))
            except Lost as exc:  # the step is done: resume after it
                history.end_step(t, opt.last)
                return _stop_lost(job, objective, history, opt, lr, str(exc), t + 1)
        history.end_step(t, opt.last, held)
        if failure is not None:
            break
        if stopped is not None:
            reason = stopped
            break
    return _finish_root(job, objective, history, opt, lr, failure, reason, setup_s)


def _holdout_root(job, objective, history, w):
    """The held-out metrics at ``w`` between two steps (None when a worker died meanwhile:
    the survivors recover and the run goes on).
    """
    try:
        return holdout.evaluate(job, objective, w)
    except ProcessFailure:
        _recover_root(job, objective.engine, history.log, objective.iteration,
                      time.perf_counter())
        return None


def _recover_root(job, engine, log, t, start):
    """Rank 0 after a ProcessFailure in iteration ``t`` (begun at ``start``): recover, log
    the deaths in one line; the record's ``failures`` entry, or :class:`Lost`.
    """
    detected = time.perf_counter()
    workers = [r - 1 for r in job.recover()]
    recovery = time.perf_counter() - detected
    dead = job.dead_workers()
    uncovered = engine.uncovered(dead)
    job.deaths.extend({"worker": w, "iteration": t, "detected_s": detected - start,
                       "recovery_s": recovery} for w in workers)
    approximate = job.protocol.deadline is not None and not job.allreduce
    log.event(f"worker{'s' if len(workers) > 1 else ''} {', '.join(map(str, workers))} died "
              f"in iteration {t}; recovered in {recovery * 1e3:.1f} ms, going on with "
              f"{job.n - len(dead)} of {job.n} workers" +
              (f"; chunks {uncovered} lost: approximate from now on"
               if uncovered and approximate else ""))
    if not (engine.survives(dead) or approximate):
        if job.allreduce:
            why = "it needs every worker's gradient (no redundancy)"
        elif uncovered:
            why = (f"chunk{'s' if len(uncovered) > 1 else ''} {', '.join(map(str, uncovered))}"
                   f" held by fewer than ell={job.protocol.ell} live workers")
        else:
            why = (f"its trigger needs {job.protocol.finished_needed} finished workers, "
                   f"{job.n - len(dead)} are alive")
        raise Lost(f"worker{'s' if len(dead) > 1 else ''} {', '.join(map(str, dead))} died; "
                   f"{job.cfg.scheme} cannot go on exactly: {why}")
    return {"workers": workers, "detected_s": detected - start, "recovery_s": recovery,
            "uncovered": uncovered}


def _stop_lost(job, objective, history, opt, lr, why, t):
    """Checkpoint before optimizer step ``t`` (with --out), stop every rank: EXIT_LOST."""
    cfg = job.cfg
    history.pending = []  # the evaluations of the interrupted step are redone on resume
    if cfg.out is not None:
        checkpoint.save(cfg.out, history.checkpoint(t, lr, opt))
        kept = (f"checkpoint at iteration {t} in {checkpoint.path(cfg.out)}; resume with "
                f"--resume {cfg.out} on a full-size job")
    else:
        kept = "no --out DIR: no checkpoint"
    objective.stop(Command.LOST_STOP, to_user(opt.w, history.scale))
    history.log.suspend()
    job.comm.finish()
    print(f"mpigc: error: {why}; {kept}", file=sys.stderr, flush=True)
    return EXIT_LOST


def _finish_root(job, objective, history, opt, lr, failure, reason, setup_s):
    """The stop broadcast, the exact final evaluation, the outputs and the last line."""
    cfg, comm = job.cfg, job.comm
    total = history.elapsed()
    w_final = to_user(opt.w, history.scale)
    while True:  # on the survivors, when a worker dies meanwhile
        try:
            objective.stop(Command.STOP if failure is None else Command.NONFINITE_STOP, w_final)
            loss_sum, correct = comm.reduce_sum(np.zeros(2))
            held = holdout.collect(job) if job.has_holdout else None
            comm.finish()
            break
        except ProcessFailure:
            _recover_root(job, objective.engine, history.log, objective.iteration,
                          time.perf_counter())
    coef = w_final[:job.d]
    final_loss = loss_sum / job.n_rows + 0.5 * cfg.l2 * float(coef @ coef)
    accuracy = correct / job.n_rows if cfg.model == "logistic" else None
    if None in job.owner:  # deadline mode lost every holder of a chunk: no exact loss
        final_loss = accuracy = None
    result = summary.summarise(job, history, total, final_loss, accuracy, lr, failure)
    result.update(optimizer_steps=opt.iteration, evaluations=len(history.durations),
                  stop_reason=None if failure is not None else reason, setup_s=setup_s,
                  holdout=held)
    model = summary.model_file(job, w_final, lr)
    history.log.finish(result, model)
    job.outcome = {"summary": result, "model": model, "history": history.log.records}
    return summary.report(job, result, failure)


def run_worker(job) -> Optional[int]:
    """A worker: evaluate at every broadcast point until a stop, then the final evaluation."""
    engine = job.engine_worker()
    job.data.warm(job.cfg.model, np.zeros(job.dim))
    engine.connect()  # the last collective before the first iteration
    while True:
        try:
            iteration, command, w = job.comm.bcast_iteration(job.dim)
            if command == Command.HOLDOUT:
                holdout.contribute(job, w)
                continue
            if command.evaluates:
                engine.iterate(iteration, w)
                continue
            if command in (Command.CHECKPOINT_STOP, Command.LOST_STOP):
                job.comm.finish()
                return EXIT_LOST if command == Command.LOST_STOP else None
            loss, correct = job.data.evaluate(job.cfg.model, job.owned(), w)
            job.comm.reduce_sum(np.array([loss, correct], dtype=np.float64))
            if job.has_holdout:
                holdout.contribute(job, w)
            job.comm.finish()
            return EXIT_NONFINITE if command == Command.NONFINITE_STOP else None
        except ProcessFailure:  # back to the next broadcast, on the survivors
            job.recover()
            if 0 in job.comm.dead:
                if job.comm.rank == min(job.comm.alive):
                    print("mpigc: error: the parameter server (rank 0) died; no run "
                          "survives that (resume from the last checkpoint, see "
                          "--checkpoint-every)", file=sys.stderr, flush=True)
                return EXIT_LOST
