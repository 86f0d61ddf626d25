"""The rows each rank trains and evaluates on (collective set-up steps of a job).

:func:`read`: a worker reads the rows of its chunks (and its share of ``--test-data``),
rank 0 the whole data set with ``--verify``; the labels are agreed on. Then, in this
order, :func:`split_validation` (``--validation-fraction``) and :func:`standardize`
(``--standardize``, from the training rows only).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from mpigc.data import parse_data_spec, prepare_labels
from mpigc.data.split import holdout_mask
from mpigc.errors import UsageError
from mpigc.runtime import holdout
from mpigc.scaling import Standardization, column_stats

# Distinct labels a rank reports for the logistic label check (3 already prove a problem).
LABEL_SAMPLE = 3


def test_source(cfg, comm, source):
    """``--test-data`` (collective): its source, if its columns are the training data's."""
    test = parse_data_spec(cfg.test_data, model=cfg.model, comm=comm)
    if test.n_features != source.n_features:
        raise UsageError(f"--test-data {cfg.test_data}: {test.n_features} features, the "
                         f"training data {source.name} has {source.n_features}"
                         + (" (give it :features=D)" if test.is_sparse else ""))
    if test.n_rows == 0:
        raise UsageError(f"--test-data {cfg.test_data}: no rows")
    return test


def read(job, error: Optional[str] = None) -> Optional[str]:
    """Read this rank's rows unless ``error`` (this rank's verdict so far); agree on the
    verdict and on the labels. An error message (the same on every rank), or None.
    """
    cfg, comm = job.cfg, job.comm
    labels = []
    try:
        if error is None and comm.rank == 0 and cfg.verify:
            job.full = job.source.read_rows([(0, job.n_rows)])
            labels = label_sample(job.full[1])
        elif error is None and comm.rank != 0:
            from mpigc.runtime.worker import ChunkData

            chunks = job.protocol.assignment.chunks(job.worker)  # [worker] for allreduce
            job.data = ChunkData(job.source, job.bounds, chunks, cfg.dtype, cfg.fit_intercept)
            labels = label_sample(job.data.y)
            if job.test_source is not None:
                job.holdout = holdout.test_share(job)
    except UsageError as exc:
        error = str(exc)
    error = comm.agree(error)
    if error is not None:
        return error
    values = np.unique(np.concatenate([np.asarray(v, float) for v in comm.allgather(labels)]))
    try:
        prepare_labels(values, cfg.model)
    except UsageError as exc:
        return f"{job.source.name}: {exc}"
    if cfg.model == "logistic":  # the user's labels, for predict
        job.classes = [0.0, 1.0] if 0.0 in values else [-1.0, 1.0]
    if job.data is not None:
        job.data.set_labels(prepare_labels(job.data.y, cfg.model))
    if job.full is not None:
        job.full = (job.full[0], prepare_labels(job.full[1], cfg.model))
    return None


def split_validation(job) -> Optional[str]:
    """``--validation-fraction`` (collective): hold out rows of every chunk, agree on the
    training rows left per chunk. An error message, or None.
    """
    cfg, m = job.cfg, job.protocol.assignment.n_chunks
    counts = np.zeros(m)
    if job.data is not None:
        job.holdout = job.data.split_holdout(job.bounds, cfg.validation_fraction, cfg.seed)
        for j in job.owned():
            a, b = job.data.local[j]
            counts[j] = b - a
    job.sizes = job.comm.allreduce_sum(counts).astype(np.int64)
    job.n_rows = int(job.sizes.sum())
    if job.full is not None:
        keep = ~holdout_mask(0, job.source.n_rows, cfg.validation_fraction, cfg.seed)
        job.full = (job.full[0][keep], job.full[1][keep])
    if job.n_rows == 0:
        return (f"--validation-fraction {cfg.validation_fraction} holds out every row of "
                f"{job.source.name}")
    return None


def standardize(job) -> None:
    """``--standardize`` (collective): the training rows' column statistics, each chunk
    counted once, then every rank's rows standardized in place.
    """
    blocks = [] if job.data is None else job.data.blocks(job.owned())
    stats = column_stats(blocks, job.d, comm=job.comm)
    # dense data are centred only with an intercept: without one, centring would give the
    # model in the original units an intercept the user did not ask for (Spark's choice
    # too); sparse data are never centred (that would densify them)
    center = job.cfg.fit_intercept and not job.source.is_sparse
    job.standardization = Standardization.from_stats(stats, center)
    if job.data is not None:
        job.data.X = job.standardization.apply(job.data.X)
    if job.holdout is not None:
        job.holdout = {k: (job.standardization.apply(X), y) for k, (X, y) in job.holdout.items()}
    if job.full is not None:
        job.full = (job.standardization.apply(job.full[0]), job.full[1])


def label_sample(y):
    """Up to LABEL_SAMPLE distinct labels (enough to prove a logistic label problem)."""
    values = np.unique(np.asarray(y, dtype=float))
    bad = values[~np.isfinite(values)]
    return np.concatenate([bad[:1], values[np.isfinite(values)][:LABEL_SAMPLE]]).tolist()
