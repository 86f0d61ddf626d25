"""Only rank 1 is given a data file that does not exist (a node that cannot see it).

Validation that reads files must be agreed by all ranks: the job exits 2 everywhere
with one line from rank 0, instead of rank 1 leaving the others waiting.
"""

import sys

from mpigc.cli import main
from mpigc.runtime.launch import launcher_rank

data = "/nonexistent/mpigc-data.svm" if launcher_rank() == 1 else "synthetic:n=1000,d=5"
sys.exit(main(["train", "--data", data, "--iterations", "2", "--quiet"]))
