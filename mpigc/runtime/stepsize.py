"""The set-up reductions of the optimizer's coordinates and step (collective).

:func:`optimizer_scale`: the columns' standard deviations (:mod:`mpigc.scaling`), the
optimizer's coordinates ``v = scale * w``. :func:`auto_lr`: ``--lr auto``, 1/L of the
objective in those coordinates, with L from ``lambda_max(S^-1 X^T X S^-1)/n`` and the
penalty's largest curvature ``l2 / min(scale)^2``. Each chunk is counted once, by the
worker that owns it (``Assignment.owners``: one chunk each where the assignment allows).
"""

from __future__ import annotations

import numpy as np

from mpigc import models
from mpigc.scaling import column_stats, feature_scale

# Lanczos (models.top_eigenvalue): the bound is at most 1/(1 - LANCZOS_RTOL) times the
# eigenvalue (the step that much shorter) and below it with probability LANCZOS_FAILURE.
LANCZOS_RTOL = 0.02
LANCZOS_FAILURE = 1e-6
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


def auto_lr(job, scale: np.ndarray) -> float:
    """1/L in the coordinates ``v = scale * w``, the same float on every rank; every rank
    of ``job`` must call it.

    Up to :data:`GRAM_MAX_D` features the workers sum the Gram matrices of the chunks they
    own and rank 0 takes its largest eigenvalue (exact, one reduction); beyond, Lanczos
    on rank 0 (:func:`mpigc.models.top_eigenvalue`), each product a broadcast of ``v``
    and a reduction of the workers' ``X_j^T X_j v``, until rank 0 broadcasts the stop
    with the eigenvalue.
    """
    cfg, comm, d = job.cfg, job.comm, job.d
    scale = scale[:d]
    l2 = cfg.l2 / float(np.min(scale)) ** 2  # the penalty's largest curvature in v
    # the intercept's column of ones: lambda_max([A 1]^T [A 1]) / n <= lambda_max(A^T A) / n + 1
    ones = float(job.dim - d)
    buf = np.zeros(d + 1)  # [1: one more product, 0: done; v], or [0, eigenvalue, ...]
    if d <= GRAM_MAX_D:
        local = np.zeros((d, d)) if comm.rank == 0 else job.data.gram(job.owned(), d)
        gram = comm.reduce_sum(local)
        if comm.rank == 0:
            gram /= np.outer(scale, scale)
            buf[1] = max(np.linalg.eigvalsh(gram / job.n_rows)[-1], 0.0)
        sq = float(comm.bcast(buf[:2])[1])
    elif comm.rank != 0:
        owned = job.owned()
        while comm.bcast(buf)[0] == 1.0:
            comm.reduce_sum(job.data.gram_apply(owned, buf[1:].copy()))
        sq = float(buf[1])
    else:
        def apply(v):
            buf[0], buf[1:] = 1.0, v / scale
            comm.bcast(buf)
            return comm.reduce_sum(np.zeros(d)) / scale / job.n_rows

        sq = models.top_eigenvalue(apply, d, rtol=LANCZOS_RTOL, failure=LANCZOS_FAILURE,
                                   seed=cfg.seed)
        buf[0], buf[1] = 0.0, sq
        comm.bcast(buf)
    return 1.0 / models.lipschitz_bound(cfg.model, sq + ones, l2)
