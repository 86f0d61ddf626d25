"""The set-up reductions of the optimizer's coordinates and step (collective).

:func:`optimizer_scale`: the columns' standard deviations (:mod:`mpigc.scaling`), the
optimizer's coordinates ``v = scale * w``. :func:`auto_lr`: ``--lr auto``, 1/L of the
objective in those coordinates, with L from ``lambda_max(S^-1 X^T X S^-1)/n`` and the
penalty's largest curvature ``l2 / min(scale)^2``. Each chunk is counted once, by the
worker that owns it (its first holder).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from mpigc import models
from mpigc.scaling import column_stats, feature_scale

# Power iteration: relative residual and step limit. The estimate returned (Rayleigh
# quotient + residual) bounds the eigenvalue from above, so a loose tolerance only
# shortens the step by about POWER_TOL.
POWER_TOL = 1e-3
POWER_MAX_ITER = 500
# The summed Gram matrix (d x d doubles reduced once) up to this many features.
GRAM_MAX_D = 1000


def optimizer_scale(job) -> np.ndarray:
    """The feature scale of ``--precondition std`` on every rank (ones for ``none``).

    Two reductions of d + 1 numbers (:func:`mpigc.scaling.column_stats`) over the chunks
    each worker owns; every rank of ``job`` must call it.
    """
    if job.cfg.precondition == "none":
        return np.ones(job.dim)
    blocks = [] if job.comm.rank == 0 else job.data.blocks(job.owned())
    scale = feature_scale(column_stats(blocks, job.d, comm=job.comm))
    return np.append(scale, np.ones(job.dim - job.d))  # the intercept's coordinate: 1


def auto_lr(job, scale: np.ndarray) -> Optional[float]:
    """1/L in the coordinates ``v = scale * w`` on rank 0 (None on the workers); every
    rank of ``job`` must call it.

    Up to :data:`GRAM_MAX_D` features the workers sum the Gram matrices of the chunks they
    own and rank 0 takes its largest eigenvalue (exact, one reduction); beyond, a
    distributed power iteration, one reduction per step.
    """
    cfg, comm, d = job.cfg, job.comm, job.d
    scale = scale[:d]
    l2 = cfg.l2 / float(np.min(scale)) ** 2  # the penalty's largest curvature in v
    # the intercept's column of ones: lambda_max([A 1]^T [A 1]) / n <= lambda_max(A^T A) / n + 1
    ones = float(job.dim - d)
    if d <= GRAM_MAX_D:
        local = np.zeros((d, d)) if comm.rank == 0 else job.data.gram(job.owned(), d)
        gram = comm.reduce_sum(local)
        if comm.rank != 0:
            return None  # only rank 0 steps
        gram /= np.outer(scale, scale)
        sq = float(max(np.linalg.eigvalsh(gram / job.n_rows)[-1], 0.0))
        return 1.0 / models.lipschitz_bound(cfg.model, sq + ones, l2)
    buf = np.zeros(d + 1)  # [1: one more product, 0: done; v]
    if comm.rank != 0:
        owned = job.owned()
        while comm.bcast(buf)[0] == 1.0:
            comm.reduce_sum(job.data.gram_apply(owned, buf[1:].copy()))
        return None

    def apply(v):
        buf[0], buf[1:] = 1.0, v / scale
        comm.bcast(buf)
        return comm.reduce_sum(np.zeros(d)) / scale / job.n_rows

    sq = models.top_eigenvalue(apply, d, tol=POWER_TOL, max_iter=POWER_MAX_ITER, seed=cfg.seed)
    buf[0] = 0.0
    comm.bcast(buf)
    return 1.0 / models.lipschitz_bound(cfg.model, sq + ones, l2)
