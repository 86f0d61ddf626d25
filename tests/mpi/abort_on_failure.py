"""Run a test body on every rank; any exception aborts the whole MPI job (no hang).

Modelled on mpi4py's own test runner: a failing rank aborts the job (mpigc's
``Comm.abort``: MPI_Abort, and under Open MPI with ULFM its launcher too) so the ranks that
wait for it in a collective are killed instead of waiting forever.
"""

import sys
import time
import traceback


def run(body):
    from mpigc.runtime import launch

    launch.configure()
    from mpi4py import MPI

    from mpigc.runtime.comm import Comm

    comm = MPI.COMM_WORLD
    try:
        body(comm)
    except BaseException:  # noqa: BLE001 - any failure must end the job
        # one write, then a moment for the launcher to forward it before MPI_Abort kills
        # the forwarders too (as mpigc.runtime.train does; under load a traceback printed
        # line by line arrived cut after its second line)
        sys.stderr.write(f"{traceback.format_exc()}rank {comm.rank} failed: aborting the job\n")
        sys.stderr.flush()
        time.sleep(0.2)
        Comm(comm).abort(1)
    comm.Barrier()
    if comm.rank == 0:
        print("OK", flush=True)
