"""``mpigc bench data``: the svmlight parser against scikit-learn's, and job start-up.

It writes, in a temporary directory that is removed afterwards, an svmlight file of
``--rows`` x ``--cols`` with ``--nnz`` entries per row and N(0, 1) values, written by
scikit-learn's ``dump_svmlight_file`` (default 200 000 x 50 000 x 40: about 200 MB, the
file of the start-up issue), then measures, ``--repeat`` rounds each, interleaved:

- ``svmlight_mbytes_per_s``: file bytes over the time this process (one core) takes to
  index the file and read every row (``parse_data_spec`` then ``read_rows``), as a
  single-process caller pays it; the two steps are reported apart too;
- ``sklearn_mbytes_per_s``: the same for ``sklearn.datasets.load_svmlight_file``;
  ``speedup_vs_sklearn`` is the ratio of the median times;
- ``startup_synthetic_s`` / ``startup_svmlight_s``: wall time of the whole command
  ``mpiexec -n RANKS mpigc train --iterations 1 --quiet`` on the built-in problem and on
  the file (``--lr auto``, the default), after ``mpigc warmup`` (as a job script runs it;
  ``aot_module`` says whether the ranks had the ahead-of-time module), and
  ``startup_stages_s``: where one process's start-up goes (imports, the compiled loops,
  the data of one worker).

All values are medians, with every run listed. Targets (issue 16): speedup >= 4,
synthetic start-up <= 2.0 s and svmlight start-up <= 5.0 s with 9 ranks.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from mpigc import runner
from mpigc.bench.report import medians, meets, verdict, with_runs
from mpigc.errors import require

WARMUP_TIMEOUT = 600
TARGETS = {"speedup_vs_sklearn": (">=", 4.0), "startup_synthetic_s": ("<=", 2.0),
           "startup_svmlight_s": ("<=", 5.0)}

# one process's start-up, stage by stage: a worker's imports, its kernel (as its warm-up
# loads it: from the ahead-of-time module when there is one), the parser's loops and
# scipy.sparse (ranks that read svmlight), then the synthetic rows of one worker
_STAGES = """
import json, sys, time
t0 = time.perf_counter()
import numpy, mpi4py
t1 = time.perf_counter()
import mpigc.runtime.train, mpigc.runtime.worker
t2 = time.perf_counter()
from mpigc import kernels
kernels.loss_grad("logistic", numpy.zeros((1, 2)), numpy.ones(1), numpy.zeros(2), 0, 0,
                  numpy.zeros(2))
t3 = time.perf_counter()
from mpigc.data import parse_data_spec
from mpigc.data.svmlight import compiled
compiled()
t4 = time.perf_counter()
import scipy.sparse
t5 = time.perf_counter()
parse_data_spec(None).read_rows([(0, 20000 * 3 // 8)])
t6 = time.perf_counter()
print(json.dumps({"imports_numpy_mpi4py": t1 - t0, "imports_mpigc": t2 - t1,
                  "kernel_load": t3 - t2, "parser_load": t4 - t3,
                  "import_scipy_sparse": t5 - t4, "synthetic_rows_of_a_worker": t6 - t5,
                  "numba_imported": "numba" in sys.modules}))
"""


def write_file(path, rows, cols, nnz, seed=0):
    """An svmlight file of ``rows`` x ``cols``, ``nnz`` distinct sorted indices per row."""
    from sklearn.datasets import dump_svmlight_file

    rng = np.random.default_rng(seed)
    band = cols // nnz        # one index in each band of columns: distinct and sorted
    indices = rng.integers(0, band, size=(rows, nnz)) + np.arange(nnz) * band
    X = sp.csr_matrix((rng.standard_normal(rows * nnz), indices.ravel(),
                       np.arange(rows + 1) * nnz), shape=(rows, cols))
    dump_svmlight_file(X, rng.integers(0, 2, rows), str(path), zero_based=False)
    return os.path.getsize(path)


def _ours(path):
    from mpigc.data import parse_data_spec

    t0 = time.perf_counter()
    source = parse_data_spec(str(path))
    t1 = time.perf_counter()
    source.read_rows([(0, source.n_rows)])
    return t1 - t0, time.perf_counter() - t1


def _sklearn(path):
    from sklearn.datasets import load_svmlight_file

    t0 = time.perf_counter()
    load_svmlight_file(str(path))
    return time.perf_counter() - t0


def _startup(ranks, data, root):
    cmd = runner.mpigc_command(ranks, "train", "--iterations", "1", "--quiet")
    if data is not None:
        cmd += ["--data", str(data)]
    t0 = time.perf_counter()
    runner.run(cmd + ["--out", str(root / f"run-{time.monotonic_ns()}")], timeout=600)
    return time.perf_counter() - t0


def measure(args, root):
    """Parser throughput against scikit-learn and 9-rank start-up times, as a dict."""
    from mpigc.data.svmlight import compiled
    from mpigc.kernels import _aot

    path = root / "bench.svm"
    size = write_file(path, args.rows, args.cols, args.nnz)
    # what a job's script runs first (bytecode, Numba cache, the ahead-of-time module)
    warm = runner.run([sys.executable, "-m", "mpigc", "warmup"], WARMUP_TIMEOUT).stdout
    found = _aot.module_path()
    compiled()
    index, read, theirs, synthetic, svmlight = [], [], [], [], []
    for _ in range(args.repeat):
        i, r = _ours(path)
        index.append(i)
        read.append(r)
        theirs.append(_sklearn(path))
        synthetic.append(_startup(args.ranks, None, root))
        svmlight.append(_startup(args.ranks, path, root))
    stages = json.loads(subprocess.run([sys.executable, "-c", _STAGES], check=True,
                                       capture_output=True, text=True).stdout)
    mb = size / 1e6
    ours = [i + r for i, r in zip(index, read)]
    median = medians({"ours": ours, "sklearn": theirs, "index": index, "read": read})
    result = {
        "file_mbytes": mb, "rows": args.rows, "cols": args.cols, "nnz_per_row": args.nnz,
        "repeat": args.repeat, "ranks": args.ranks,
        "svmlight_mbytes_per_s": mb / median["ours"],
        "sklearn_mbytes_per_s": mb / median["sklearn"],
        "index_s": median["index"], "read_rows_s": median["read"],
        "sklearn_s_runs": theirs, "ours_s_runs": ours,
        **with_runs("startup_synthetic_s", synthetic), **with_runs("startup_svmlight_s", svmlight),
        "startup_stages_s": stages,
        "aot_module": found is not None and os.path.exists(found[1]), "warmup": warm.strip(),
    }
    # the ratio of the two rates, as reported (the ratio of the times can differ in the
    # last bit)
    result["speedup_vs_sklearn"] = (result["svmlight_mbytes_per_s"]
                                    / result["sklearn_mbytes_per_s"])
    result["meets"] = {k: meets(result[k], *TARGETS[k]) for k in TARGETS}
    return result


def main(args):
    """Entry point of ``mpigc bench data``; prints the measurement as JSON."""
    for name in ("rows", "cols", "nnz", "repeat", "ranks"):
        require(getattr(args, name) >= 1, f"--{name} must be at least 1, got "
                                          f"{getattr(args, name)}")
    require(args.nnz <= args.cols, f"--nnz must be at most --cols ({args.cols}), got "
                                   f"{args.nnz}")
    require(args.ranks >= 2, f"--ranks must be at least 2 (a PS and a worker), got "
                             f"{args.ranks}")
    try:
        with tempfile.TemporaryDirectory(prefix="mpigc-bench-data-") as tmp:
            result = measure(args, Path(tmp))
    except runner.JobFailed as exc:
        raise SystemExit(f"mpigc bench data: {exc}") from None
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"file: {result['file_mbytes']:.0f} MB ({args.rows} x {args.cols}, {args.nnz} per row)")
    print(f"ours    {result['svmlight_mbytes_per_s']:8.1f} MB/s (index {result['index_s']:.3f} s, "
          f"rows {result['read_rows_s']:.3f} s)")
    print(f"sklearn {result['sklearn_mbytes_per_s']:8.1f} MB/s")
    for key, (sense, target) in TARGETS.items():
        print(f"{key:<20} {result[key]:.3f}  (target {sense} {target}: "
              f"{verdict(result['meets'][key])})")
    return 0
