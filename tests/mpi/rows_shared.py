"""``mpigc train --iterations 1`` on the svmlight file argv[1], as the runtime sets it up;
prints, on rank 0, one JSON line: per worker the bytes of the file it parsed (the source's
count), its chunks, and whether its rows equal a direct read of those chunks (rows parsed
by the chunks' owners and sent to their other holders)."""

import json
import sys

from abort_on_failure import run


def body(world):
    import numpy as np

    from mpigc.cli import build_parser
    from mpigc.data import prepare_labels
    from mpigc.runtime import train

    args = build_parser().parse_args(["train", "--data", sys.argv[1], "--iterations", "1",
                                      "--quiet", "--out", sys.argv[2]])
    job = train.run(args, comm=world)
    report = None
    if world.rank > 0:
        parsed = job.source.bytes_read
        chunks = job.data.chunks
        X, y = job.source.read_rows([(job.bounds[j], job.bounds[j + 1]) for j in chunks])
        equal = bool((abs(X - job.data.X).sum() == 0) and X.nnz == job.data.X.nnz
                     and np.array_equal(prepare_labels(y, "logistic"), job.data.y))
        report = {"parsed": parsed, "chunks": chunks, "equal": equal,
                  "owned": job.owned()}
    every = world.gather(report, root=0)
    if world.rank == 0:
        print(json.dumps(every[1:]), flush=True)


run(body)
