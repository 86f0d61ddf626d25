"""The data layouts ``loss_grad`` accepts and the row loops' model codes, without Numba.

A rank that loads the ahead-of-time module (:mod:`mpigc.kernels._aot`) never imports
Numba, so what ``loss_grad`` needs to validate a call and pick its entry point lives
here. ``MODEL_CODES`` repeats ``_loops.LOGISTIC`` and ``_loops.LINEAR`` on purpose (a
test checks that they agree): Numba's cache notices changes to _loops.py only.
"""

import numpy as np

MODEL_CODES = {"logistic": 0, "linear": 1}
DENSE_DTYPES = ("float64", "float32")
INDEX_DTYPES = ("int32", "int64")

# Every layout key (kernels._compile.SPECIALISATIONS is built from it, in this order).
KEYS = ([("dense", dt) for dt in DENSE_DTYPES]
        + [("csr", dt, it) for dt in DENSE_DTYPES for it in INDEX_DTYPES])

# dtype objects -> layout key, for loss_grad's per-call lookup: hashing dtypes is far
# cheaper than dtype.name, and a non-native byte order matches no entry (it compares
# unequal to the native dtype), so such data is rejected instead of misread.
DENSE_KEYS = {np.dtype(dt): ("dense", dt) for dt in DENSE_DTYPES}
CSR_KEYS = {(np.dtype(dt), np.dtype(it)): ("csr", dt, it)
            for dt in DENSE_DTYPES for it in INDEX_DTYPES}


def entry_name(key):
    """The name of a layout's function in the ahead-of-time module: ``dense_float64``..."""
    return "_".join(key)
