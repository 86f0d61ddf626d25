"""``--lr auto`` on every rank: ``auto_lr`` on the sparse synthetic data spec argv[1], each
worker owning the chunks ``j`` with ``j % workers == rank - 1``; prints, on rank 0, one JSON
line: every rank's step and, from rank 0, the exact ``lambda_max(S^-1 X^T X S^-1) / n``
(NumPy's eigvalsh on the whole data)."""

import json
import sys
from types import SimpleNamespace

from abort_on_failure import run


def body(world):
    import numpy as np

    from mpigc.data import chunk_bounds, parse_data_spec
    from mpigc.runtime.comm import Comm
    from mpigc.runtime.stepsize import auto_lr, optimizer_scale
    from mpigc.runtime.worker import ChunkData

    comm = Comm(world)
    source = parse_data_spec(sys.argv[1], comm=comm)
    workers = comm.size - 1
    bounds = chunk_bounds(source.n_rows, 2 * workers)
    mine = [] if comm.rank == 0 else list(range(comm.rank - 1, 2 * workers, workers))
    job = SimpleNamespace(cfg=SimpleNamespace(precondition="std", l2=0.0, model="linear",
                                              seed=7),
                          comm=comm, d=source.n_features, dim=source.n_features,
                          n_rows=source.n_rows, data=ChunkData(source, bounds, mine),
                          owned=lambda: mine)
    scale = optimizer_scale(job)
    lr = auto_lr(job, scale)
    lrs = comm.allgather(lr)
    if comm.rank == 0:
        X = source.read_rows([(0, source.n_rows)])[0].toarray() / scale
        exact = float(np.linalg.eigvalsh(X.T @ X / source.n_rows)[-1])
        print(json.dumps({"lr": lrs, "exact": exact}), flush=True)


run(body)
