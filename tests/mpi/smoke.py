"""4-rank smoke test: a collective, a nonblocking point-to-point exchange, and the
runtime's connection set-up and poll loops (mpigc.runtime.comm)."""

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

    from mpigc.runtime.comm import Comm
    rt = Comm(comm)
    rt.connect(size - 1)  # every PS-worker pair, one state broadcast, a barrier
    if rank == 0:
        got = []
        while len(got) < size - 1:
            message = rt.poll_progress()
            if message is not None:
                got.append((message[0], message[1][1]))
        assert sorted(got) == [(r, float(r)) for r in range(1, size)], got
        request, _ = rt.post_state(size - 1, np.arange(1, size), trigger=1)
        rt.wait(request)
    else:
        rt.send_progress(0, rank, [])
        request, buf = rt.post_state(size - 1)
        while not rt.done(request):
            pass
        assert list(buf) == list(range(1, size)) + [1], buf
    rt.finish()


if __name__ == "__main__":
    run(body)
