"""A user's script: ``mpigc.train`` on every rank, options as JSON in argv[1]; rank 0 saves
``coef + [intercept]`` to argv[2]; every rank checks it got the same result. Optional
argv[3] "split": train on a sub-communicator of all ranks but the last (which idles)."""

import json
import sys

import numpy as np
from abort_on_failure import run


def body(world):
    import mpigc

    options = json.loads(sys.argv[1])
    comm = world
    if len(sys.argv) > 3 and sys.argv[3] == "split":
        comm = world.Split(0 if world.rank < world.size - 1 else 1, world.rank)
        if world.rank == world.size - 1:
            return
    result = mpigc.train(comm=comm, **options)
    vector = np.append(result.model.coef_, result.model.intercept_)
    every = comm.allgather(vector.tobytes())
    assert all(v == every[0] for v in every), "ranks got different models"
    assert result.status == 0 and result.summary["evaluations"] == len(result.history)
    if comm.rank == 0:
        np.save(sys.argv[2], vector)


if __name__ == "__main__":
    run(body)
