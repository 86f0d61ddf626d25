"""Numba chunk-gradient kernels (installed as ``mpigc.kernels``).

``loss_grad`` computes, in one fused pass over the rows of a row range, the summed loss
and the summed loss gradient of logistic or linear regression, for dense float64/float32
and CSR matrices. Each layout's compiled function is loaded once per process before its
first use, never in the middle of a row range: from the ahead-of-time module that
``mpigc warmup`` builds (:mod:`mpigc.kernels._aot`: Numba is then never imported), else
from the Numba cache (compiled into it when cold). ``warmup`` fills the Numba cache for
every layout up front; ``mpigc warmup`` does that and builds the module before a job's
ranks start.
"""

import operator
import os
import time

import numpy as np

from mpigc.errors import UsageError

from . import _aot
from ._layouts import CSR_KEYS, DENSE_KEYS, KEYS, MODEL_CODES, entry_name

__all__ = ["loss_grad", "warmup", "warmup_main"]

_entry_points = {}  # layout key -> compiled function, once loaded here
_F64 = np.dtype(np.float64)


def _float_vector(a, name, length):
    # The compiled function is called without Numba's type dispatch, so dtype, shape and
    # layout are checked here; identity and tuple compares first, because a call on one
    # row block should cost about a microsecond.
    if not (type(a) is np.ndarray and (a.dtype is _F64 or a.dtype == _F64)
            and a.shape == (length,) and (a.strides == (8,) or a.flags.c_contiguous)):
        raise UsageError(f"{name} must be a contiguous float64 vector of length {length}, "
                         f"got {getattr(a, 'dtype', type(a).__name__)} "
                         f"shape {getattr(a, 'shape', '?')}")


def _layout(X):
    """The specialisation key of X and the arrays passed to the row loop."""
    if type(X) is np.ndarray:
        key = DENSE_KEYS.get(X.dtype)
        flags = X.flags
        if key is None or X.ndim != 2 or not (flags.c_contiguous and flags.aligned):
            raise UsageError(f"dense X must be a C-contiguous float64/float32 matrix, got "
                             f"{X.dtype} with {X.ndim} dimensions")
        return key, (X,)
    if getattr(X, "format", None) == "csr":
        arrays = (X.data, X.indices, X.indptr)
        key = CSR_KEYS.get((X.data.dtype, X.indices.dtype))
        if (key is None or X.indptr.dtype != X.indices.dtype
                or not all(a.ndim == 1 and a.flags.c_contiguous and a.flags.aligned
                           for a in arrays)
                or X.indptr.shape[0] != X.shape[0] + 1):
            raise UsageError(f"CSR X must hold contiguous float64/float32 data and int32/int64 "
                             f"indices, got {X.data.dtype} data, {X.indices.dtype} indices")
        return key, arrays
    raise UsageError(f"X must be a numpy array or a scipy.sparse CSR matrix, "
                     f"got {type(X).__name__}")


def loss_grad(model, X, y, w, start, stop, grad, fit_intercept=False):
    """Add the loss gradient of rows ``[start, stop)`` into ``grad``; return their summed loss.

    Parameters
    ----------
    model : {"logistic", "linear"}
        ``log(1 + exp(-y x.w))`` (labels exactly +1/-1) or ``0.5 (x.w - y)^2``.
    X : ndarray or scipy.sparse.csr_matrix, shape (n, d)
        C-contiguous float64/float32, or CSR with float64/float32 data and int32/int64
        indices (used in place, never copied; its column indices must lie in ``[0, d)``,
        as scipy.sparse and the data layer guarantee: they are not re-read per call).
    y : ndarray, float64, shape (n,)
    w : ndarray, float64, shape (d,), or (d + 1,) with ``fit_intercept``
        With ``fit_intercept`` the last entry is the intercept, added to every margin.
    start, stop : int
        Row range, ``0 <= start <= stop <= n``.
    grad : ndarray, float64, shape of ``w``
        Accumulator: the sum over the rows of ``grad loss_r(w)`` is added to it (the
        intercept's entry receives the sum of the residuals ``d loss_r / d margin``).
    fit_intercept : bool

    Returns
    -------
    float
        Sum of ``loss_r(w)`` over the rows (not divided by the row count).

    Raises
    ------
    UsageError
        Unknown model, unsupported layout or dtype, shapes that disagree, bad row range.

    Notes
    -----
    The Numba-compiled loops release the GIL; the ahead-of-time module's wrappers
    (numba.pycc) hold it, so threads calling ``loss_grad`` take turns there.
    """
    code = MODEL_CODES.get(model)
    if code is None:
        raise UsageError(f"unknown model {model!r} (expected 'logistic' or 'linear')")
    key, arrays = _layout(X)
    n, d = X.shape
    intercept = bool(fit_intercept)
    _float_vector(y, "y", n)
    _float_vector(w, "w", d + intercept)
    _float_vector(grad, "grad", d + intercept)
    if not grad.flags.writeable:
        raise UsageError("grad must be writable")
    try:
        start, stop = operator.index(start), operator.index(stop)
    except TypeError:
        raise UsageError(f"row range bounds must be integers, got {start!r}, {stop!r}") from None
    if not 0 <= start <= stop <= n:
        raise UsageError(f"row range [{start}, {stop}) is not inside [0, {n}]")
    kernel = _entry_points.get(key)
    if kernel is None:
        kernel = _entry_points.setdefault(key, _entry_point(key))
    return kernel(code, *arrays, y, w, start, stop, grad, intercept)


def _entry_point(key):
    module = _aot.load()
    if module is not None:
        return getattr(module, entry_name(key))
    from ._compile import compile_keys

    return compile_keys([key])[0][key]


def warmup():
    """Compile every specialisation into the Numba cache, or load it when the cache is warm
    (this process then calls the Numba-compiled functions).

    Returns
    -------
    int
        How many specialisations had to be compiled (0 when the cache was warm).
    """
    from ._compile import compile_keys

    entry_points, compiled = compile_keys(KEYS)
    _entry_points.update(entry_points)
    return compiled


def _compile_python():
    # mpigc's bytecode, written even where PYTHONDONTWRITEBYTECODE is set (then every rank
    # would compile ~50 modules from source at each start: 0.1-0.3 s of CPU each)
    import compileall

    import mpigc

    # compile_dir does not follow the symlink mpigc/kernels of a checkout
    for path in (os.path.dirname(mpigc.__file__), os.path.dirname(__file__)):
        if not compileall.compile_dir(path, quiet=1):
            print(f"mpigc warmup: could not write the bytecode of {path} (not writable?)")


def warmup_main(args):
    """``mpigc warmup``: before the ranks of a job start, write mpigc's bytecode, fill the
    Numba cache (the kernels and the svmlight parser's loops) and build the ahead-of-time
    module."""
    from mpigc.data.svmlight import jit_loops

    from ._compile import cache_dir

    t0 = time.perf_counter()
    _compile_python()
    compiled = warmup()
    jit_loops()
    print(f"mpigc warmup: {len(KEYS)} kernel layouts ready ({compiled} compiled) "
          f"and the svmlight parser, in {time.perf_counter() - t0:.1f} s; cache: {cache_dir()}")
    t0 = time.perf_counter()
    try:
        path, built = _aot.build()
    except _aot.Unavailable as exc:
        print(f"mpigc warmup: no ahead-of-time module: {exc}; the ranks load the loops "
              f"from the Numba cache (slower start-up)")
        return 0
    print(f"mpigc warmup: ahead-of-time module {'built' if built else 'up to date'} in "
          f"{time.perf_counter() - t0:.1f} s: {path}")
    return 0
