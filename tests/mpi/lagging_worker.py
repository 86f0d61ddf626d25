"""``mpigc train`` in which worker 0 (rank 1) lags: every progress report it sends belongs to
an iteration LAG iterations back, and each one claims the worker's whole load.

If a stale report ever reached a later iteration's state, worker 0 would appear in the
broadcast state with chunks it never finished (its encode then raises and the job aborts)
or the decoded gradient would be wrong (caught by --verify in the test).
Usage: mpiexec -n N+1 python lagging_worker.py train [mpigc train options]
"""

import sys

import numpy as np

from mpigc import cli
from mpigc.runtime import comm as mpicomm

LAG = 3
_send = mpicomm.Comm.send_progress
_held = []


def lagging_send_progress(self, iteration, count, seconds):
    if self.rank != 1:
        return _send(self, iteration, count, seconds)
    _held.append(iteration)
    while _held and _held[0] <= iteration - LAG:
        _send(self, _held.pop(0), 3, np.zeros(3))


mpicomm.Comm.send_progress = lagging_send_progress

if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:]))
