"""What rank 0 writes and prints at the end of a run: ``summary.json``, ``model.npz``,
and the last line on stdout or stderr.
"""

from __future__ import annotations

import os
import statistics
import sys
from typing import Optional

import numpy as np

from mpigc.errors import EXIT_NONFINITE
from mpigc.optim import SIGNAL


def summarise(job, history, total: float, final_loss: float, accuracy: Optional[float],
              lr: float, failure: Optional[str]) -> dict:
    """The ``summary.json`` object of a finished run (see docs/ARCHITECTURE.md)."""
    cfg, p, durations = job.cfg, job.protocol, history.durations
    loads = p.assignment.loads
    return {
        "scheme": cfg.scheme, "n_workers": job.n,
        "load": int(loads.max()) if loads.min() == loads.max() else loads.tolist(),
        "ell": p.ell, "iterations": len(durations),
        "mean_iteration_s": statistics.fmean(durations),
        "median_iteration_s": statistics.median(durations),
        "total_s": total, "final_loss": final_loss, "accuracy": accuracy,
        "max_grad_rel_err": max(history.errors) if history.errors else None,
        "mpi_library": job.mpi_library, "lr": lr, "triggers": history.log.triggers,
        "stale_messages": history.stale,
        "data": {"name": job.source.name, "n_rows": job.n_rows, "n_features": job.d},
        "config": {
            "scheme": cfg.scheme, "assignment": cfg.assignment,
            "load": int(loads.max()), "ell": p.ell, "ordering": cfg.ordering,
            "orderings": [list(map(int, o)) for o in p.assignment.orderings],
            "seed": cfg.seed, "tolerance": p.tolerance, "deadline": cfg.deadline,
            "beta": cfg.beta, "workers": job.n, "stragglers": cfg.stragglers,
            "chunk_time": cfg.chunk_time, "data": cfg.data, "model": cfg.model,
            "optimizer": cfg.optimizer, "lr": "auto" if cfg.lr is None else cfg.lr,
            "history": cfg.history, "tol": cfg.tol, "precondition": cfg.precondition,
            "l2": cfg.l2, "iterations": cfg.iterations, "row_block": cfg.row_block,
            "dtype": cfg.dtype, "verify": cfg.verify,
            "iteration_timeout": cfg.iteration_timeout, "decode": cfg.decode},
        "run_starts": history.starts,  # iteration at which each resumed segment began
        "deaths": job.deaths, "fault_tolerant": job.comm.fault_tolerant,
        "error": failure,
    }


def model_file(job, w, lr: float) -> dict:
    """The arrays and scalars of ``model.npz``: ``coef`` (length d) and ``intercept`` (0.0
    without ``--fit-intercept``) in the user's feature units, with ``--standardize`` too.
    """
    cfg = job.cfg
    coef, intercept = job.model(w)
    return {"coef": coef, "intercept": intercept, "model": cfg.model, "scheme": cfg.scheme,
            # NaN for no step size (lbfgs): None would need pickling, which readers refuse
            "iterations": cfg.iterations, "lr": np.nan if lr is None else lr, "l2": cfg.l2,
            "optimizer": cfg.optimizer,
            "n_features": job.d, "fit_intercept": cfg.fit_intercept,
            "standardize": cfg.standardize,
            **({} if job.classes is None else {"classes": np.asarray(job.classes)})}


def report(job, summary: dict, failure: Optional[str]) -> Optional[int]:
    """Print the run's last line; the exit status (None: 0)."""
    cfg = job.cfg
    if failure is not None:
        kept = (f"last good model kept in {os.path.join(cfg.out, 'model.npz')}"
                if cfg.out else "no --out DIR: the model was not kept")
        print(f"mpigc: error: {failure}; {kept}", file=sys.stderr, flush=True)
        return EXIT_NONFINITE
    if not cfg.quiet:
        acc = "" if summary["accuracy"] is None else f", accuracy {summary['accuracy']:.4f}"
        acc += held_out_text(summary.get("holdout"))
        where = f"; wrote {cfg.out}" if cfg.out else ""
        final = summary["final_loss"]
        final = "unknown (a chunk lost every holder)" if final is None else f"{final:.8g}"
        print(f"mpigc: {cfg.scheme} with {job.n} workers: {cfg.optimizer} "
              f"{summary['optimizer_steps']} steps, {summary['evaluations']} evaluations "
              f"({summary['stop_reason']}), mean {summary['mean_iteration_s']:.4f} "
              f"s/evaluation, final loss {final}{acc}{where}", flush=True)
    return None


def held_out_text(held: Optional[dict]) -> str:
    """``, held-out accuracy 0.97 AUC 0.99 ...`` for the last line ('' without a hold-out)."""
    if not held:
        return ""
    names = {"log_loss": "log-loss", "accuracy": "accuracy", "roc_auc": "AUC", "rmse": "RMSE",
             "mae": "MAE", "r2": "R^2"}
    return ", held-out " + " ".join(f"{names[k]} {held[k]:.4f}" for k in names if k in held) \
        + f" ({held['n_rows']} rows)"


def report_stop(cfg, step: int) -> None:
    """The line of a run stopped by a signal before optimizer step ``step`` (stop reason
    ``signal``: no summary.json, the run is suspended, not finished).
    """
    print(f"mpigc: checkpoint at iteration {step} written to {cfg.out}; resume with "
          f"--resume {cfg.out} (stop reason: {SIGNAL})" if cfg.out is not None else
          f"mpigc: stopped by signal at iteration {step}; no checkpoint written "
          f"(no --out DIR; stop reason: {SIGNAL})", flush=True)
