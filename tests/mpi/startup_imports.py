"""Runs ``mpigc ARGV`` in this process, then prints one JSON line: its exit status and
whether this rank imported Numba and scipy.sparse on the way."""

import json
import sys

from mpigc.cli import main

status = main(sys.argv[1:])
sys.stdout.write(json.dumps({"status": status, "numba": "numba" in sys.modules,
                             "scipy.sparse": "scipy.sparse" in sys.modules}) + "\n")
sys.stdout.flush()
