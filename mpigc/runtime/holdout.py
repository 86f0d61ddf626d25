"""Held-out evaluation (``--test-data``, ``--validation-fraction``), collective.

Each worker holds a share of the held-out rows: of ``--test-data`` a contiguous range,
``1/N`` of the rows; of ``--validation-fraction`` the held-out rows of its chunks, each
chunk's evaluated by the chunk's owner (as the final training loss is). Every worker
sends the sums of :func:`mpigc.metrics.partial_sums` (one reduction) and, for the ROC AUC
of a logistic model, its margins and labels (one gather); rank 0 combines them.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from mpigc.data import chunk_bounds, prepare_labels
from mpigc.runtime.commands import Command

TEST = -1  # the key of a worker's share of --test-data (chunk ids are >= 0)


def test_share(job) -> dict:
    """A worker's rows of ``--test-data``: ``{TEST: (X, y)}`` (labels checked)."""
    source = job.test_source
    bounds = chunk_bounds(source.n_rows, job.n)
    X, y = source.read_rows([(int(bounds[job.worker]), int(bounds[job.worker + 1]))],
                            dtype=job.cfg.dtype)
    return {TEST: (X, prepare_labels(y, job.cfg.model))}


def _shares(job):
    owned = set(job.owned())
    return [part for key, part in job.holdout.items() if key == TEST or key in owned]


def contribute(job, w: np.ndarray) -> None:
    """A worker's part of one held-out evaluation at the model vector ``w``."""
    from mpigc import metrics  # with SciPy's stats (1 s of imports): only runs that hold out

    model = job.cfg.model
    parts = [(job.data.margins(X, w), y) for X, y in _shares(job)]
    z = np.concatenate([p[0] for p in parts]) if parts else np.empty(0)
    y = np.concatenate([p[1] for p in parts]) if parts else np.empty(0)
    job.comm.reduce_sum(metrics.partial_sums(model, z, y))
    if model == "logistic":
        job.comm.gather((z, y))


def collect(job) -> Optional[dict]:
    """Rank 0's side of :func:`contribute`: the metrics, with ``n_rows``."""
    from mpigc import metrics

    model = job.cfg.model
    empty = np.empty(0)
    sums = job.comm.reduce_sum(np.zeros_like(metrics.partial_sums(model, empty, empty)))
    auc = None
    if model == "logistic":
        parts = [p for p in job.comm.gather(None) if p is not None]
        scores = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        auc = metrics.roc_auc(scores, labels)
    result = metrics.from_sums(model, sums, auc=auc)
    result["n_rows"] = int(sums[0])
    return result


def evaluate(job, objective, w: np.ndarray) -> dict:
    """Rank 0, between optimizer steps: the held-out metrics at ``w`` (user coordinates)."""
    objective.stop(Command.HOLDOUT, w)
    return collect(job)
