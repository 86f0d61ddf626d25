"""The rows each rank trains and evaluates on (collective set-up steps of a job).

:func:`read`: a worker reads the rows of its chunks (and its share of ``--test-data``),
rank 0 the whole data set with ``--verify``; the labels are agreed on. A source whose
read is a parse (svmlight) is parsed once per chunk, by the chunk's owner, which sends
the rows to the chunk's other holders. Then, in this
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
    cfg, comm, source = job.cfg, job.comm, job.source
    labels, own = [], {}  # own: the rows of the chunks this worker parses, {chunk: (X, y)}
    try:
        if error is None and comm.rank == 0 and cfg.verify:
            job.full = source.read_rows([(0, job.n_rows)])
            labels = label_sample(job.full[1])
        elif error is None and comm.rank != 0:
            chunks = job.protocol.assignment.chunks(job.worker)  # [worker] for allreduce
            if source.parses:
                own = {j: source.read_rows([_range(job, j)], cfg.dtype) for j in job.owned()}
                labels = label_sample(np.concatenate([y for _, y in own.values()] or [[]]))
            else:
                job.data = _chunk_data(job, chunks)
                labels = label_sample(job.data.y)
            if job.test_source is not None:
                job.holdout = holdout.test_share(job)
    except UsageError as exc:
        error = str(exc)
    error = comm.agree(error)
    if error is not None:
        return error
    layouts = {j: (X.nnz, X.indptr.dtype.str, X.indices.dtype.str) for j, (X, _) in own.items()}
    reports = comm.allgather((labels, layouts))
    values = np.unique(np.concatenate([np.asarray(v, float) for v, _ in reports]))
    try:
        prepare_labels(values, cfg.model)
    except UsageError as exc:
        return f"{source.name}: {exc}"
    if source.parses and comm.rank != 0:
        stacked = _share_parsed(job, own, {j: v for _, lay in reports for j, v in lay.items()})
        job.data = _chunk_data(job, job.protocol.assignment.chunks(job.worker), stacked)
    if cfg.model == "logistic":  # the user's labels, for predict
        job.classes = [0.0, 1.0] if 0.0 in values else [-1.0, 1.0]
    if job.data is not None:
        job.data.set_labels(prepare_labels(job.data.y, cfg.model))
    if job.full is not None:
        job.full = (job.full[0], prepare_labels(job.full[1], cfg.model))
    return None


def _range(job, chunk):
    return int(job.bounds[chunk]), int(job.bounds[chunk + 1])


def _chunk_data(job, chunks, rows=None):
    from mpigc.runtime.worker import ChunkData

    return ChunkData(job.source, job.bounds, chunks, job.cfg.dtype, job.cfg.fit_intercept,
                     rows)


def _share_parsed(job, own, layouts):
    """Send the rows this worker parsed to the chunks' other holders, receive theirs
    (point to point, every worker at once); ``(X, y)`` of all its chunks, ascending.

    ``own``: the CSR rows of the chunks this worker owns; ``layouts``: every chunk's
    entries and index dtypes (from its owner). Parsing is what reading svmlight costs
    (each chunk's arrays are a fraction of its text). The rows arrive in place in the
    stacked arrays; between two workers the chunks go in ascending order, so the
    arrays match.
    """
    from mpigc.sparse import csr_matrix

    a, sends, recvs = job.protocol.assignment, [], []
    for j, (X, y) in own.items():
        for i in a.holders(j):
            if int(i) != job.worker:
                sends += [(int(i) + 1, arr) for arr in (X.indptr, X.indices, X.data, y)]
    chunks = sorted(a.chunks(job.worker))
    ranges = [_range(job, j) for j in chunks]
    counts = np.cumsum([0] + [layouts[j][0] for j in chunks])
    starts = np.cumsum([0] + [stop - start for start, stop in ranges])
    index = np.result_type(*[np.dtype(t) for j in chunks for t in layouts[j][1:]])
    if counts[-1] > np.iinfo(index).max:  # the stacked entries outgrow the chunks' indices
        index = np.dtype(np.int64)
    indptr, indices = np.empty(starts[-1] + 1, index), np.empty(counts[-1], index)
    data, y = np.empty(counts[-1]), np.empty(starts[-1])
    pieces, casts = {}, []  # each chunk's own indptr (from 0); index arrays to widen
    for k, j in enumerate(chunks):
        rows, entries = slice(starts[k], starts[k + 1]), slice(counts[k], counts[k + 1])
        if j in own:
            X, y[rows] = own[j]
            pieces[k], indices[entries], data[entries] = X.indptr, X.indices, X.data
            continue
        n, ptr_type, idx_type = layouts[j]
        pieces[k] = np.empty(starts[k + 1] - starts[k] + 1, ptr_type)
        target = indices[entries]
        if target.dtype != np.dtype(idx_type):  # another chunk needs wider indices
            target = np.empty(n, idx_type)
            casts.append((entries, target))
        recvs += [(job.owner[j] + 1, arr) for arr in (pieces[k], target, data[entries], y[rows])]
    job.comm.exchange(sends, recvs)
    for entries, target in casts:
        indices[entries] = target
    for k, piece in pieces.items():
        indptr[starts[k]:starts[k + 1] + 1] = piece + counts[k]
    return csr_matrix((data, indices, indptr), shape=(starts[-1], job.d)), y


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
