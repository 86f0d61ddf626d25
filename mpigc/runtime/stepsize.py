"""``--lr auto``: the step size 1/L, with L from ``lambda_max(X^T X)/n`` (collective).

Each chunk is counted once, by the worker that owns it (its first holder).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from mpigc import models

# Power iteration: relative residual and step limit. The estimate returned (Rayleigh
# quotient + residual) bounds the eigenvalue from above, so a loose tolerance only
# shortens the step by about POWER_TOL.
POWER_TOL = 1e-3
POWER_MAX_ITER = 500
# The summed Gram matrix (d x d doubles reduced once) up to this many features.
GRAM_MAX_D = 1000


def auto_lr(job) -> Optional[float]:
    """1/L on rank 0 (None on the workers); every rank of ``job`` must call it.

    Up to :data:`GRAM_MAX_D` features the workers sum the Gram matrices of the chunks they
    own and rank 0 takes its largest eigenvalue (exact, one reduction); beyond, a
    distributed power iteration, one reduction per step.
    """
    cfg, comm, d = job.cfg, job.comm, job.d
    if d <= GRAM_MAX_D:
        local = np.zeros((d, d)) if comm.rank == 0 else job.data.gram(job.owned(), d)
        gram = comm.reduce_sum(local)
        if comm.rank != 0:
            return None  # only rank 0 steps
        sq = float(max(np.linalg.eigvalsh(gram / job.n_rows)[-1], 0.0))
        return 1.0 / models.lipschitz_bound(cfg.model, sq, cfg.l2)
    buf = np.zeros(d + 1)  # [1: one more product, 0: done; v]
    if comm.rank != 0:
        owned = job.owned()
        while comm.bcast(buf)[0] == 1.0:
            comm.reduce_sum(job.data.gram_apply(owned, buf[1:].copy()))
        return None

    def apply(v):
        buf[0], buf[1:] = 1.0, v
        comm.bcast(buf)
        return comm.reduce_sum(np.zeros(d)) / job.n_rows

    sq = models.top_eigenvalue(apply, d, tol=POWER_TOL, max_iter=POWER_MAX_ITER, seed=cfg.seed)
    buf[0] = 0.0
    comm.bcast(buf)
    return 1.0 / models.lipschitz_bound(cfg.model, sq, cfg.l2)
