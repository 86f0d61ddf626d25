"""Run a test body on every rank; any exception aborts the whole MPI job (no hang).

Modelled on mpi4py's own test runner: a failing rank aborts the job (mpigc's
``Comm.abort_on_exception``: MPI_Abort, and under Open MPI with ULFM its launcher too) so the ranks that
wait for it in a collective are killed instead of waiting forever.
"""


def run(body):
    from mpigc.runtime import launch

    launch.configure()
    from mpi4py import MPI

    from mpigc.runtime.comm import Comm

    comm = MPI.COMM_WORLD
    try:
        body(comm)
    except BaseException:  # noqa: BLE001 - any failure must end the job
        Comm(comm).abort_on_exception(1)
    comm.Barrier()
    if comm.rank == 0:
        print("OK", flush=True)
