"""Each rank opens the data spec argv[1] collectively and reads the rows of the chunks that
worker ``rank - 1`` holds under a cyclic assignment with load 3 (rank 0 reads none); prints,
on rank 0, one JSON line: per rank the bytes its process read (``/proc/self/io`` rchar)
while opening and while reading, and the bytes the source counted."""

import json
import sys

from abort_on_failure import run


def rchar():
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("rchar:")).split()[1])


def body(world):
    from mpigc.data import chunk_bounds, parse_data_spec
    from mpigc.data.svmlight import compiled
    from mpigc.runtime.comm import Comm

    comm = Comm(world)
    # the compiled loops and scipy.sparse (imported with the first CSR rows) are read
    # before the counts start
    compiled()
    import scipy.sparse  # noqa: F401
    world.Barrier()
    r0 = rchar()
    source = parse_data_spec(sys.argv[1], comm=comm)
    r1 = rchar()
    n = comm.size - 1
    if comm.rank > 0:
        bounds = chunk_bounds(source.n_rows, n)
        w = comm.rank - 1
        chunks = sorted({(w + k) % n for k in range(3)})
        source.read_rows([(bounds[j], bounds[j + 1]) for j in chunks])
    r2 = rchar()
    counts = comm.allgather({"open": r1 - r0, "read": r2 - r1,
                             "counted": getattr(source, "bytes_read", 0)})
    if comm.rank == 0:
        print(json.dumps(counts), flush=True)


run(body)
