"""4-rank smoke test: a collective and a nonblocking point-to-point exchange."""

import numpy as np

from abort_on_failure import run


def body(comm):
    rank, size = comm.rank, comm.size
    assert size == 4, size
    total = np.zeros(1)
    comm.Allreduce(np.array([float(rank)]), total)
    assert total[0] == sum(range(size)), total
    state = np.arange(size, dtype=np.int64) if rank == 0 else np.empty(size, np.int64)
    comm.Ibcast(state, root=0).Wait()
    assert (state == np.arange(size)).all(), state
    send = np.full(8, rank, dtype=np.float64)
    recv = np.empty(8)
    right, left = (rank + 1) % size, (rank - 1) % size
    reqs = [comm.Isend(send, dest=right, tag=7), comm.Irecv(recv, source=left, tag=7)]
    from mpi4py import MPI
    MPI.Request.Waitall(reqs)
    assert (recv == left).all(), recv


if __name__ == "__main__":
    run(body)
