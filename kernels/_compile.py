"""Compile the row loops for a fixed set of argument types, safely from many processes.

Numba writes each cache file atomically (temp file + rename), but the *index* of a
function's cache maps each signature to a data file numbered by how many entries the
index held when it was read. Two processes that compile different signatures (or the
same ones in another order, or on CPUs with other features) can pick the same number
and overwrite each other's machine code. So every compile or cache load goes through
one exclusive lock file in the cache directory: the first rank compiles, the others
wait and then load the cache it wrote.
"""

import contextlib
import fcntl
import os

from numba import types

from . import _loops
from ._layouts import KEYS

# Inputs are typed read-only so that read-only arrays (memory-mapped data, received
# buffers) and writable ones share one compiled function: loss_grad calls its entry
# point directly, which unboxes either, where the dispatcher would compile a second
# specialisation, mid-iteration, for the other flag.
_IN_VECTOR = types.Array(types.float64, 1, "C", readonly=True)
_OUT_VECTOR = types.Array(types.float64, 1, "C")


def _array(dtype, ndim):
    return types.Array(getattr(types, dtype), ndim, "C", readonly=True)


def _dense_signature(dtype):
    return (types.int64, _array(dtype, 2), _IN_VECTOR, _IN_VECTOR, types.int64, types.int64,
            _OUT_VECTOR, types.boolean)


def _csr_signature(dtype, index_dtype):
    index = _array(index_dtype, 1)
    return (types.int64, _array(dtype, 1), index, index, _IN_VECTOR, _IN_VECTOR,
            types.int64, types.int64, _OUT_VECTOR, types.boolean)


# layout key -> (dispatcher, signature). The key is what loss_grad derives from X.
SPECIALISATIONS = {key: (_loops.dense, _dense_signature(*key[1:])) if key[0] == "dense"
                   else (_loops.csr, _csr_signature(*key[1:])) for key in KEYS}


def cache_dir():
    """Directory where Numba keeps the kernels' cache (honours ``NUMBA_CACHE_DIR``)."""
    return _loops.dense._cache.cache_path


@contextlib.contextmanager
def cache_lock():
    """Exclusive lock on the Numba cache directory (every compile or cache load of mpigc's
    compiled loops, the data parser's too, holds it)."""
    path = cache_dir()
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "mpigc-kernels.lock"), "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX)
        except OSError:
            # file systems without flock (Lustre mounted without it): go on unlocked;
            # `mpigc warmup` before the ranks start leaves nothing to write then
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def compile_keys(keys):
    """Load from the cache, or compile and save, the specialisations named by ``keys``
    (see :func:`compile_signatures`)."""
    return compile_signatures({key: SPECIALISATIONS[key] for key in keys})


def compile_signatures(specs):
    """Load from the cache, or compile and save, ``name -> (dispatcher, signature)``.

    Returns
    -------
    entry_points : dict
        Name -> the compiled function, callable from Python without type dispatch (the
        caller has checked the argument types).
    compiled : int
        How many had to be compiled (0 when the cache was warm).
    """
    entry_points, compiled = {}, 0
    # Numba's CPU target initialises itself on first use (~0.15 s, registries and a BLAS
    # check): do it before taking the lock, so that ranks starting together on a warm
    # cache queue only for the cache loads themselves (~15 ms per layout).
    _loops.dense.targetctx.refresh()
    with cache_lock():
        for name, (dispatcher, signature) in specs.items():
            misses = sum(dispatcher.stats.cache_misses.values())
            entry_points[name] = dispatcher.compile(signature)
            compiled += sum(dispatcher.stats.cache_misses.values()) > misses
    return entry_points, compiled
