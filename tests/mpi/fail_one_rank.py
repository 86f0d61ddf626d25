"""Rank 2 raises while the others wait in a collective: the job must abort, not hang."""

from abort_on_failure import run


def body(comm):
    if comm.rank == 2:
        raise RuntimeError("deliberate failure on rank 2")
    comm.Barrier()


if __name__ == "__main__":
    run(body)
