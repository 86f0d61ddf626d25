"""``mpigc train`` in which worker 1 (rank 2) raises in its third iteration: the job must
abort with the traceback instead of leaving the other ranks waiting.
Usage: mpiexec -n N+1 python failing_worker.py train [mpigc train options]
"""

import sys

from mpigc import cli
from mpigc.runtime import worker

_iterate = worker.Worker.iterate


def failing_iterate(self, iteration, w):
    if self.worker == 1 and iteration == 2:
        raise RuntimeError("deliberate failure of worker 1")
    return _iterate(self, iteration, w)


worker.Worker.iterate = failing_iterate

if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:]))
