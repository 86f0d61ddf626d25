"""``mpigc train`` in which worker 0 (rank 1) lags: its only progress reports belong to the
iteration LAG iterations back, and each one claims the worker's whole load.

At the start of every iteration t >= LAG, before any work, worker 0 sends the report of
iteration t - LAG; its reports of the current iteration are never sent. So the stale
reports reach the PS in every run, whatever the load of the machine (they do not wait for
a chunk to finish before the PS moves on).

If a stale report ever reached a later iteration's state, worker 0 would appear in the
broadcast state with chunks it never reported (its encode then raises and the job aborts)
or the decoded gradient would be wrong (caught by --verify in the test).
Usage: mpiexec -n N+1 python lagging_worker.py train [mpigc train options]
"""

import sys

import numpy as np

from mpigc import cli
from mpigc.runtime import comm as mpicomm
from mpigc.runtime.worker import Worker

LAG = 3
_send = mpicomm.Comm.send_progress
_iterate = Worker.iterate


def lagging_send_progress(self, iteration, count, seconds):
    if self.rank != 1:
        return _send(self, iteration, count, seconds)
    return None


def lagging_iterate(self, iteration, w):
    if self.worker == 0 and iteration >= LAG:
        load = len(self.order)
        _send(self.comm, iteration - LAG, load, np.zeros(load))
    return _iterate(self, iteration, w)


mpicomm.Comm.send_progress = lagging_send_progress
Worker.iterate = lagging_iterate

if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:]))
