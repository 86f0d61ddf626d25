"""A data spec whose glob rank 1 expands differently (argv[2] "fewer": one file fewer, a
directory that is not the same on every node; "crash": its glob raises).

The ranks index svmlight files together, so every rank must open the same list: the job
exits 2 everywhere with one line naming the difference; a rank that fails while the
others wait in the data's collectives aborts the job.
"""

import glob
import sys

import mpigc.data.spec
from mpigc.cli import main
from mpigc.runtime.launch import launcher_rank


class _OnRankOne:
    """The glob module as rank 1 sees it."""

    def __init__(self, how):
        self.how = how

    def glob(self, pattern):
        if self.how == "crash":
            raise RuntimeError("deliberate failure in rank 1's glob")
        return sorted(glob.glob(pattern))[:-1]

    def __getattr__(self, name):
        return getattr(glob, name)


if launcher_rank() == 1:
    mpigc.data.spec.glob = _OnRankOne(sys.argv[2])
sys.exit(main(["train", "--data", sys.argv[1], "--iterations", "2", "--quiet"]))
