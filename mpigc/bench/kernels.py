"""``mpigc bench kernels``: the Numba kernels against the NumPy/SciPy two-pass reference.

Single core (``mpigc.cli`` sets the BLAS and Numba thread counts to 1 before NumPy loads).
For each model (logistic, linear) and layout (dense float64, dense float32, CSR) it times
``loss_grad`` over all rows and the two-pass reference (``X @ w``, then ``X.T @ r``) with
the same loss, best of ``--repeat`` rounds, in the same process.

By default every matrix is sized from the machine: at least 4x the last-level cache and at
least 200 MB each (the float32 matrix has twice the rows of the float64 one, the CSR matrix
as many rows as its data and indices need), so that every kernel reads from memory. When
the three matrices would take more than half of the available memory they are shrunk to
fit, and ``memory_limited`` says so. ``--rows`` instead gives every layout that row count.

Bandwidth is the bytes of X read per second (CSR: data + indices), and
``bandwidth_fraction`` compares it with a plain NumPy streaming read of the same arrays
(``np.add.reduce`` over each), timed in the same rounds. ``single_pass_fraction`` compares
it with the fastest of the single passes over the float64 matrix reported in
``dense64_single_pass_bounds`` (each reference pass alone, the NumPy read, a plain Numba
sum, the Numba dot products alone): the ceilings that bound the fused loops.

``in_cache_seconds`` is the same kernel over the first rows of its matrix that fill L2,
called over and over and scaled to the whole matrix: the arithmetic alone, with no wait
on memory. ``compute_bound_fraction`` (the read's time over it) is then the highest
``bandwidth_fraction`` the kernel's arithmetic allows.

``csr_ceilings`` bounds the CSR kernels with loops over all of data and indices as one
row, in the kernels' own code (``_csr_dot``, ``_csr_axpy``): a plain streaming read, the
gather-only dot ``sum data[k] w[indices[k]]`` and the scatter-only ``grad[indices[k]] +=
c data[k]``, each from memory and in cache (L2-sized, scaled as above). A fused kernel
reads data and indices once, from memory, and runs both loops; ``dot_and_scatter_fraction``
is the read's time over the in-cache dot plus scatter, the bound on its
``bandwidth_fraction``. ``dot_then_scatter`` is the cheapest loop that does a CSR
gradient's work per entry, from memory: row by row, with the kernels' prefetch, the dot,
then the scatter of ``c * dot`` (no labels, no loss); ``floor_fraction`` is the read's
time over it, the ``bandwidth_fraction`` the kernels' gather and scatter loops can reach.

``cached_first_call_s`` is the first ``loss_grad`` call of a fresh interpreter whose Numba
cache is warm (``cached_first_call_path``: "aot" when it loaded the ahead-of-time module
of ``mpigc warmup`` instead, "numba" otherwise), after it imported NumPy, scipy.sparse
and ``mpigc.kernels`` as a worker does (their import time is reported separately), and
again with scipy.linalg loaded too (as it is in a worker, through mpigc.coding).
"""

import glob
import json
import os
import subprocess
import sys
import time
from functools import partial

import numpy as np
import scipy.sparse as sp
from numba import njit
from scipy.special import expit

from mpigc.errors import require
from mpigc.kernels import loss_grad, warmup
from mpigc.kernels._loops import _csr_axpy, _csr_dot, _csr_prefetch
from mpigc.models import MODELS

DEFAULT_COLS = 128
LLC_FACTOR = 4               # each default matrix is at least 4x the last-level cache ...
MIN_MATRIX_BYTES = 200e6     # ... and at least 200 MB
MEMORY_SHARE = 0.5           # the matrices may take at most half of the available memory
CSR_COLS_FACTOR = 16         # CSR matrix: 16x the dense width ...
CSR_ROW_NNZ = 32             # ... with 32 stored entries per row
LAYOUTS = ("dense64", "dense32", "csr")
DEFAULT_L2_BYTES = 2**18     # in-cache timings when sysfs names no L2
IN_CACHE_SHARE = 0.75        # in-cache timings use rows that fill 3/4 of L2

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
print(t1 - t0, t3 - t2, int('numba' in sys.modules))
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


# Not cached: they inline the kernels' loops, which Numba's cache would not see change.
@njit(nogil=True, fastmath={"reassoc", "contract"})
def numba_csr_read(data, indices):
    """A plain Numba streaming read of CSR data and indices (their sums)."""
    s, t = 0.0, 0
    for k in range(data.shape[0]):
        s += data[k]
        t += indices[k]
    return s + t


@njit(nogil=True, fastmath={"contract"})
def csr_gather_dot(data, indices, w):
    """The CSR kernels' dot over all of data and indices as one row: the gather alone."""
    return _csr_dot(data, indices, np.array([0, data.shape[0]], dtype=np.intp), 0, w)


@njit(nogil=True, fastmath={"contract"})
def csr_scatter(data, indices, c, grad):
    """The CSR kernels' scatter over all of data and indices as one row."""
    _csr_axpy(data, indices, np.array([0, data.shape[0]], dtype=np.intp), 0, c, grad)


@njit(nogil=True, fastmath={"contract"})
def csr_dot_then_scatter(data, indices, indptr, w, c, grad):
    """Row by row: the CSR kernels' prefetch and dot, then their scatter of ``c * dot``."""
    total = 0.0
    for r in range(indptr.shape[0] - 1):
        _csr_prefetch(data, indices, indptr, r)
        t = _csr_dot(data, indices, indptr, r, w)
        total += t
        _csr_axpy(data, indices, indptr, r, c * t, grad)
    return total


def _size_bytes(text):
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    text = text.strip()
    return int(text[:-1]) * units[text[-1]] if text[-1:] in units else int(text)


def cache_bytes(root="/sys/devices/system/cpu/cpu0/cache"):
    """Level -> size of the caches that hold data (empty when sysfs does not say)."""
    sizes = {}
    for index in glob.glob(os.path.join(root, "index*")):
        try:
            with open(os.path.join(index, "type")) as f:
                kind = f.read().strip()
            with open(os.path.join(index, "level")) as f:
                level = int(f.read())
            with open(os.path.join(index, "size")) as f:
                size = _size_bytes(f.read())
        except (OSError, ValueError):
            continue
        if kind in ("Data", "Unified"):
            sizes[level] = size
    return sizes


def last_level_cache_bytes(root="/sys/devices/system/cpu/cpu0/cache"):
    """Size of the highest cache level that holds data (0 when sysfs does not say)."""
    sizes = cache_bytes(root)
    return sizes[max(sizes)] if sizes else 0


def l2_bytes(root="/sys/devices/system/cpu/cpu0/cache"):
    """Size of L2 (``DEFAULT_L2_BYTES`` when sysfs does not say)."""
    return cache_bytes(root).get(2, DEFAULT_L2_BYTES)


def available_memory_bytes(meminfo="/proc/meminfo"):
    """``MemAvailable`` (falls back to the free physical pages where it is missing)."""
    try:
        with open(meminfo) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def row_bytes(cols):
    """Bytes per row of each layout (CSR: data + indices, as the bandwidth counts them)."""
    csr_nnz = min(CSR_ROW_NNZ, CSR_COLS_FACTOR * cols)
    return {"dense64": 8 * cols, "dense32": 4 * cols, "csr": 12 * csr_nnz}


def default_sizes(cols, llc, available):
    """Rows per layout for matrices of ``max(4 LLC, 200 MB)`` each, within the memory share.

    Returns (rows per layout, bytes per matrix, whether memory limited the size).
    """
    target = max(LLC_FACTOR * llc, MIN_MATRIX_BYTES)
    # per matrix: itself, plus the CSR indptr and the reference's temporaries (row vectors)
    allowed = MEMORY_SHARE * available / (len(LAYOUTS) * 1.1)
    limited = target > allowed
    target = min(target, allowed)
    return {k: max(1, int(np.ceil(target / b))) for k, b in row_bytes(cols).items()}, \
        target, limited


def make_problem(rows, cols, seed=0):
    """Dense float64/float32 and CSR matrices with a weight vector each, and +1/-1 labels.

    ``rows`` maps each layout to its row count; the labels cover the longest.
    """
    rng = np.random.default_rng(seed)
    csr_cols = CSR_COLS_FACTOR * cols
    nnz = min(CSR_ROW_NNZ, csr_cols)
    n = rows["csr"]
    indices = _sorted_random_columns(rng, n, csr_cols, nnz)
    csr = sp.csr_matrix((rng.standard_normal(n * nnz), indices.ravel().astype(np.int32),
                         np.arange(0, n * nnz + 1, nnz, dtype=np.int32)), shape=(n, csr_cols))
    problems = {
        "dense64": (rng.standard_normal((rows["dense64"], cols)),
                    rng.standard_normal(cols) / np.sqrt(cols)),
        "dense32": (rng.standard_normal((rows["dense32"], cols), dtype=np.float32),
                    rng.standard_normal(cols) / np.sqrt(cols)),
        "csr": (csr, rng.standard_normal(csr_cols) / np.sqrt(nnz)),
    }
    y = np.where(rng.random(max(rows.values())) < 0.5, -1.0, 1.0)
    return problems, y


def _sorted_random_columns(rng, rows, cols, nnz):
    """``nnz`` distinct sorted columns per row, drawn in strata so no row has duplicates."""
    stride = cols // nnz
    return np.arange(nnz) * stride + rng.integers(0, stride, size=(rows, nnz))


def streamed_arrays(X):
    """The arrays a kernel streams from memory: the matrix, or CSR data and indices."""
    return (X.data, X.indices) if sp.issparse(X) else (X.ravel(),)


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


def first_call_seconds(extra=(), tries=5):
    """Import and first-call seconds in ``tries`` fresh interpreters with a warm cache.

    Returns (best import, best first call, median first call, path): ``path`` is "aot"
    when no run imported Numba (the ahead-of-time module was loaded), else "numba"; on
    the Numba path the first call is almost all Numba's own CPU-target set-up, CPU-bound
    and as noisy as the machine.
    """
    runs = []
    for _ in range(tries):
        out = subprocess.run([sys.executable, "-c", _FIRST_CALL_SCRIPT, *extra],
                             capture_output=True, text=True, timeout=120, check=True)
        runs.append([float(v) for v in out.stdout.split()])
    first = [r[1] for r in runs]
    path = "numba" if any(r[2] for r in runs) else "aot"
    return min(r[0] for r in runs), min(first), float(np.median(first)), path


def _timed_calls(problems, y):
    """Every callable the rounds time: kernels, references, streaming reads, single passes."""
    dense64, w64 = problems["dense64"]
    n64 = dense64.shape[0]
    dots = np.empty(n64)
    timed = {"X@w": lambda: dense64 @ w64,
             "X.T@r": lambda: dense64.T @ y[:n64],
             "numba_sum": lambda: numba_stream_sum(dense64.ravel()),
             "numba_dots": lambda: numba_row_dots(dense64, w64, dots)}
    for layout, (X, w) in problems.items():
        n = X.shape[0]
        grad = np.zeros(X.shape[1])
        timed["read", layout] = partial(_numpy_read, streamed_arrays(X))
        for model in MODELS:
            timed[model, layout] = partial(loss_grad, model, X, y[:n], w, 0, n, grad)
            timed[model, layout, "ref"] = partial(reference, model, X, y[:n], w)
    return timed


def in_cache_seconds(fn, shape, l2, repeat):
    """Seconds of ``fn(m)`` (a pass over its first ``m`` rows) per pass over all rows.

    ``shape`` is ``(rows, row_bytes)`` of the whole matrix.

    ``fn`` is called over and over on rows that fill ``IN_CACHE_SHARE`` of L2, for as many
    bytes as the whole matrix holds, best of ``repeat``: the whole matrix's arithmetic
    with no wait on memory (plus a microsecond of Python per call).
    """
    rows, row_bytes = shape
    m = max(1, min(rows, int(IN_CACHE_SHARE * l2 // row_bytes)))
    calls = max(1, rows // m)
    fn(m)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn(m)
        best = min(best, time.perf_counter() - t0)
    return best * rows / (calls * m)


def csr_ceilings(X, w, read_seconds, l2, repeat):
    """The CSR bounds (see the module docstring): seconds and GB/s of each loop alone."""
    data, indices, indptr = X.data, X.indices, X.indptr
    nbytes = sum(a.nbytes for a in streamed_arrays(X))
    entry = data.itemsize + indices.itemsize
    grad = np.zeros(X.shape[1])
    loops = {"read": lambda m: numba_csr_read(data[:m], indices[:m]),
             "gather_dot": lambda m: csr_gather_dot(data[:m], indices[:m], w),
             "scatter": lambda m: csr_scatter(data[:m], indices[:m], 0.5, grad),
             # the rows within the first m entries (m in indptr's dtype, or NumPy would
             # convert all of indptr for every search)
             "dot_then_scatter": lambda m: csr_dot_then_scatter(
                 data, indices,
                 indptr[:np.searchsorted(indptr, indptr.dtype.type(m), side="right")], w,
                 1e-9, grad)}
    nnz = data.shape[0]
    for fn in loops.values():
        fn(1)  # compile outside the timings
    best = best_of_rounds(repeat, {k: partial(fn, nnz) for k, fn in loops.items()})
    out = {"numpy_read_gbytes_per_s": nbytes / read_seconds / 1e9}
    for name, fn in loops.items():
        cached = in_cache_seconds(fn, (nnz, entry), l2, repeat)
        out[name] = {"seconds": best[name], "gbytes_per_s": nbytes / best[name] / 1e9,
                     "in_cache_seconds": cached}
    both = out["gather_dot"]["in_cache_seconds"] + out["scatter"]["in_cache_seconds"]
    out["dot_and_scatter_fraction"] = read_seconds / both
    out["floor_fraction"] = read_seconds / out["dot_then_scatter"]["seconds"]
    return out


def _numpy_read(arrays):
    for a in arrays:
        np.add.reduce(a, dtype=a.dtype)


def _kernel_entries(problems, y, best, bounds, l2, repeat):
    """Per kernel: time, rows/s, GB/s, fractions of the read and best pass, in-cache time."""
    best_pass = max(bounds.values())
    kernels = {}
    for layout, (X, w) in problems.items():
        n = X.shape[0]
        nbytes = sum(a.nbytes for a in streamed_arrays(X))
        read = nbytes / best["read", layout] / 1e9
        grad = np.zeros(X.shape[1])
        for model in MODELS:
            seconds, ref_seconds = best[model, layout], best[model, layout, "ref"]
            gbps = nbytes / seconds / 1e9
            first_rows = partial(loss_grad, model, X, y[:n], w, 0, grad=grad)
            cached = in_cache_seconds(first_rows, (n, nbytes / n), l2, repeat)
            kernels[f"{model}/{layout}"] = {
                "seconds": seconds, "rows_per_s": n / seconds,
                "gbytes_per_s": gbps, "read_gbytes_per_s": read, "bandwidth_fraction": gbps / read,
                "single_pass_fraction": gbps / best_pass,
                "in_cache_seconds": cached, "compute_bound_fraction": best["read", layout] / cached,
                "reference_seconds": ref_seconds, "speedup": ref_seconds / seconds}
    return kernels


def run(rows, cols, repeat):
    """Measure everything; ``rows=None`` sizes the matrices from the machine. JSON-ready dict."""
    require(rows is None or rows >= 1, f"--rows must be >= 1, got {rows}")
    require(cols >= 1, f"--cols must be >= 1, got {cols}")
    require(repeat >= 1, f"--repeat must be >= 1, got {repeat}")
    llc, available = last_level_cache_bytes(), available_memory_bytes()
    if rows is None:
        layout_rows, _, limited = default_sizes(cols, llc, available)
    else:
        layout_rows, limited = dict.fromkeys(LAYOUTS, rows), False
    warmup()
    numba_stream_sum(np.zeros(1))
    numba_row_dots(np.zeros((1, 1)), np.zeros(1), np.zeros(1))
    problems, y = make_problem(layout_rows, cols)
    best = best_of_rounds(repeat, _timed_calls(problems, y))
    dense64 = problems["dense64"][0]
    bounds = {name + "_gbytes_per_s": dense64.nbytes / best[name] / 1e9
              for name in ("X@w", "X.T@r", "numba_sum", "numba_dots")}
    bounds["numpy_read_gbytes_per_s"] = dense64.nbytes / best["read", "dense64"] / 1e9
    l2 = l2_bytes()
    kernels = _kernel_entries(problems, y, best, bounds, l2, repeat)
    csr = problems["csr"][0]
    ceilings = csr_ceilings(csr, problems["csr"][1], best["read", "csr"], l2, repeat)
    import_s, first_s, first_median_s, first_path = first_call_seconds()
    # Numba's first use of its CPU target imports scipy.linalg (its BLAS check): a worker
    # has already paid for that through mpigc.coding, so the kernels' own share is this
    worker_first_s = first_call_seconds(["worker"])[1]
    return {
        "cols": cols, "repeat": repeat,
        "last_level_cache_bytes": llc, "l2_bytes": l2, "available_memory_bytes": available,
        "memory_limited": limited,
        "layouts": {k: {"rows": X.shape[0], "bytes": sum(a.nbytes for a in streamed_arrays(X))}
                    for k, (X, _) in problems.items()},
        "csr_shape": list(csr.shape), "csr_nnz": int(csr.nnz),
        "dense64_single_pass_bounds": bounds,
        "kernels": kernels,
        "csr_ceilings": ceilings,
        "cached_import_s": import_s,
        "cached_first_call_s": first_s,
        "cached_first_call_median_s": first_median_s,
        "cached_first_call_path": first_path,
        "cached_first_call_scipy_linalg_loaded_s": worker_first_s,
    }


def _table(result):
    sizes = ", ".join(f"{k} {v['rows']} rows {v['bytes'] / 1e6:.0f} MB"
                      for k, v in result["layouts"].items())
    lines = [f"last-level cache {result['last_level_cache_bytes'] / 2**20:.0f} MiB; {sizes}"
             + ("; shrunk to fit in memory" if result["memory_limited"] else "")
             + f"; best of {result['repeat']}",
             (f"{'kernel':<18}{'seconds':>9}{'Mrows/s':>9}{'GB/s':>7}{'read':>7}{'bw frac':>8}"
              f"{'pass frac':>10}{'in-cache s':>11}{'cpu frac':>9}{'ref s':>9}{'speedup':>8}")]
    for name, e in result["kernels"].items():
        lines.append(f"{name:<18}{e['seconds']:>9.4f}{e['rows_per_s'] / 1e6:>9.1f}"
                     f"{e['gbytes_per_s']:>7.2f}{e['read_gbytes_per_s']:>7.2f}"
                     f"{e['bandwidth_fraction']:>8.2f}{e['single_pass_fraction']:>10.2f}"
                     f"{e['in_cache_seconds']:>11.4f}{e['compute_bound_fraction']:>9.2f}"
                     f"{e['reference_seconds']:>9.4f}{e['speedup']:>8.2f}")
    c = result["csr_ceilings"]
    lines.append(f"CSR ceilings, ms from memory / in cache: NumPy read "
                 f"{c['numpy_read_gbytes_per_s']:.2f} GB/s; " + ", ".join(
                     f"{k} {c[k]['seconds'] * 1e3:.1f} / {c[k]['in_cache_seconds'] * 1e3:.1f}"
                     for k in ("read", "gather_dot", "scatter", "dot_then_scatter"))
                 + f"; dot and scatter allow bw frac {c['dot_and_scatter_fraction']:.2f}"
                 + f", dot then scatter reaches {c['floor_fraction']:.2f}")
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
    cols = DEFAULT_COLS if args.cols is None else args.cols
    result = run(args.rows, cols, args.repeat)
    print(json.dumps(result, indent=2) if args.json else _table(result))
    return 0
