"""``mpigc bench kernels``: the Numba kernels against the NumPy/SciPy two-pass reference.

Single core (``mpigc.cli`` sets the BLAS and Numba thread counts to 1 before NumPy loads).
For each model (logistic, linear) and layout (dense float64, dense float32, CSR) it times
``loss_grad`` over all rows and the two-pass reference (``X @ w``, then ``X.T @ r``) with
the same loss, best of ``--repeat`` runs each, in the same process. The dense float64
matrix defaults to 250 000 x 128 (256 MB), far larger than the caches. Bandwidth is bytes
of X read per second (CSR: data + indices + indptr), compared with a plain NumPy
reduction over the float64 matrix. ``cached_first_call_s`` is the first ``loss_grad`` call
of a fresh interpreter whose Numba cache is warm, after it imported NumPy, scipy.sparse
and ``mpigc.kernels`` as a worker does (their import time is reported separately), and
again with scipy.linalg loaded too (as it is in a worker, through mpigc.coding). Also
reported, as the ceilings that bound the fused loops: single passes over the float64
matrix (each reference pass alone, a plain Numba sum, the Numba dot products alone).
"""

import json
import subprocess
import sys
import time
from functools import partial

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from numba import njit

from mpigc.errors import require
from mpigc.kernels import loss_grad, warmup
from mpigc.models import MODELS

DEFAULT_ROWS = 250_000
DEFAULT_COLS = 128
CSR_COLS_FACTOR = 16   # CSR matrix: 16x the dense width ...
CSR_ROW_NNZ = 32       # ... with 32 stored entries per row

_FIRST_CALL_SCRIPT = """
import sys, time
import numpy as np, scipy.sparse
if sys.argv[1:] == ["worker"]:
    import scipy.linalg
t0 = time.perf_counter()
from mpigc.kernels import loss_grad
t1 = time.perf_counter()
X = np.ones((8, 4)); y = np.ones(8); w = np.zeros(4); g = np.zeros(4)
t2 = time.perf_counter()
loss_grad("logistic", X, y, w, 0, 8, g)
t3 = time.perf_counter()
print(t1 - t0, t3 - t2)
"""


def best_of_rounds(repeat, timed):
    """Smallest wall time of each callable in ``timed`` over ``repeat`` rounds.

    Each round runs every callable once, so all of them sample the same moments of a
    shared, noisy machine instead of one of them getting all the quiet ones.
    """
    best = {name: float("inf") for name in timed}
    for _ in range(repeat):
        for name, fn in timed.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def numba_stream_sum(flat):
    """Bandwidth ceiling of a single Numba pass: sum a contiguous array, nothing else."""
    s = 0.0
    for i in range(flat.shape[0]):
        s += flat[i]
    return s


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def numba_row_dots(X, w, out):
    """The first half of the fused loop alone: ``out = X @ w`` row by row."""
    for r in range(X.shape[0]):
        t = 0.0
        for j in range(X.shape[1]):
            t += X[r, j] * w[j]
        out[r] = t


def reference(model, X, y, w):
    """Two-pass NumPy/SciPy loss sum and gradient sum (X in its own precision, as BLAS would)."""
    z = X @ w.astype(X.dtype, copy=False)
    if model == "logistic":
        m = y * z
        loss = np.logaddexp(0.0, -m).sum()
        r = -y * expit(-m)
    else:
        r = z - y
        loss = 0.5 * (r @ r)
    return loss, X.T @ r.astype(X.dtype, copy=False)


def make_problem(rows, cols, seed=0):
    """Dense float64/float32 and CSR matrices, +1/-1 labels and a weight vector per width."""
    rng = np.random.default_rng(seed)
    dense64 = rng.standard_normal((rows, cols))
    csr_cols = CSR_COLS_FACTOR * cols
    nnz = min(CSR_ROW_NNZ, csr_cols)
    indices = _sorted_random_columns(rng, rows, csr_cols, nnz)
    csr = sp.csr_matrix((rng.standard_normal(rows * nnz), indices.ravel().astype(np.int32),
                         np.arange(0, rows * nnz + 1, nnz)), shape=(rows, csr_cols))
    y = np.where(rng.random(rows) < 0.5, -1.0, 1.0)
    return {
        "dense64": (dense64, rng.standard_normal(cols) / np.sqrt(cols)),
        "dense32": (dense64.astype(np.float32), rng.standard_normal(cols) / np.sqrt(cols)),
        "csr": (csr, rng.standard_normal(csr_cols) / np.sqrt(nnz)),
    }, y


def _sorted_random_columns(rng, rows, cols, nnz):
    """``nnz`` distinct sorted columns per row, drawn in strata so no row has duplicates."""
    stride = cols // nnz
    return np.arange(nnz) * stride + rng.integers(0, stride, size=(rows, nnz))


def bytes_read(X):
    if sp.issparse(X):
        return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    return X.nbytes


def first_call_seconds(extra=(), tries=5):
    """Import and first-call seconds in ``tries`` fresh interpreters with a warm cache.

    Returns (best import, best first call, median first call): the first call is almost
    all Numba's own CPU-target set-up, CPU-bound and as noisy as the machine.
    """
    runs = []
    for _ in range(tries):
        out = subprocess.run([sys.executable, "-c", _FIRST_CALL_SCRIPT, *extra],
                             capture_output=True, text=True, timeout=120, check=True)
        runs.append([float(v) for v in out.stdout.split()])
    first = [r[1] for r in runs]
    return min(r[0] for r in runs), min(first), float(np.median(first))


def run(rows, cols, repeat):
    """Measure everything; returns the JSON-ready dict."""
    require(rows >= 1, f"--rows must be >= 1, got {rows}")
    require(cols >= 1, f"--cols must be >= 1, got {cols}")
    require(repeat >= 1, f"--repeat must be >= 1, got {repeat}")
    warmup()
    numba_stream_sum(np.zeros(1))
    numba_row_dots(np.zeros((1, 1)), np.zeros(1), np.zeros(1))
    problems, y = make_problem(rows, cols)
    dense64 = problems["dense64"][0]
    dots = np.empty(rows)
    grads = {layout: np.zeros(X.shape[1]) for layout, (X, _) in problems.items()}
    timed = {"read": lambda: np.add.reduce(dense64.ravel()),
             "X@w": lambda: dense64 @ problems["dense64"][1],
             "X.T@r": lambda: dense64.T @ y,
             "numba_sum": lambda: numba_stream_sum(dense64.ravel()),
             "numba_dots": lambda: numba_row_dots(dense64, problems["dense64"][1], dots)}
    for layout, (X, w) in problems.items():
        for model in MODELS:
            timed[model, layout] = partial(loss_grad, model, X, y, w, 0, rows, grads[layout])
            timed[model, layout, "ref"] = partial(reference, model, X, y, w)
    best = best_of_rounds(repeat, timed)
    read_bw = dense64.nbytes / best["read"] / 1e9
    kernels = {}
    for layout, (X, w) in problems.items():
        for model in MODELS:
            seconds, ref_seconds = best[model, layout], best[model, layout, "ref"]
            gbps = bytes_read(X) / seconds / 1e9
            entry = {"seconds": seconds, "gbytes_per_s": gbps, "reference_seconds": ref_seconds,
                     "speedup": ref_seconds / seconds}
            if layout != "csr":
                entry["bandwidth_fraction"] = gbps / read_bw
            kernels[f"{model}/{layout}"] = entry
    # what bounds the dense kernels: each pass of the reference alone, and single Numba
    # passes that do less than the fused loop (a plain sum; the dot products alone)
    bounds = {name + "_gbytes_per_s": dense64.nbytes / best[name] / 1e9
              for name in ("X@w", "X.T@r", "numba_sum", "numba_dots")}
    import_s, first_s, first_median_s = first_call_seconds()
    # Numba's first use of its CPU target imports scipy.linalg (its BLAS check): a worker
    # has already paid for that through mpigc.coding, so the kernels' own share is this
    worker_first_s = first_call_seconds(["worker"])[1]
    return {
        "rows": rows, "cols": cols, "repeat": repeat,
        "dense64_mbytes": dense64.nbytes / 1e6,
        "csr_shape": list(problems["csr"][0].shape), "csr_nnz": int(problems["csr"][0].nnz),
        "read_bandwidth_gbytes_per_s": read_bw,
        "dense64_single_pass_bounds": bounds,
        "kernels": kernels,
        "cached_import_s": import_s,
        "cached_first_call_s": first_s,
        "cached_first_call_median_s": first_median_s,
        "cached_first_call_scipy_linalg_loaded_s": worker_first_s,
    }


def _table(result):
    lines = [f"rows={result['rows']} cols={result['cols']} best of {result['repeat']}; "
             f"NumPy read bandwidth {result['read_bandwidth_gbytes_per_s']:.2f} GB/s",
             f"{'kernel':<18}{'seconds':>10}{'GB/s':>8}{'ref s':>10}{'speedup':>9}{'bw frac':>9}"]
    for name, e in result["kernels"].items():
        frac = f"{e['bandwidth_fraction']:.2f}" if "bandwidth_fraction" in e else "-"
        lines.append(f"{name:<18}{e['seconds']:>10.4f}{e['gbytes_per_s']:>8.2f}"
                     f"{e['reference_seconds']:>10.4f}{e['speedup']:>9.2f}{frac:>9}")
    lines.append("single passes over dense64 (GB/s): " + ", ".join(
        f"{k[:-len('_gbytes_per_s')]} {v:.2f}"
        for k, v in result["dense64_single_pass_bounds"].items()))
    lines.append(f"fresh process, warm cache: import {result['cached_import_s']:.3f} s, "
                 f"first call {result['cached_first_call_s']:.3f} s "
                 f"(median {result['cached_first_call_median_s']:.3f} s; "
                 f"{result['cached_first_call_scipy_linalg_loaded_s']:.3f} s when "
                 f"scipy.linalg is already loaded)")
    return "\n".join(lines)


def main(args):
    """Entry point of ``mpigc bench kernels``; prints JSON with ``--json``, else a table."""
    rows = DEFAULT_ROWS if args.rows is None else args.rows
    cols = DEFAULT_COLS if args.cols is None else args.cols
    result = run(rows, cols, args.repeat)
    print(json.dumps(result, indent=2) if args.json else _table(result))
    return 0
