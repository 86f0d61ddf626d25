"""mpigc: gradient coding over MPI that uses the work of partial stragglers.

``mpigc.train(...)`` trains from a script run under mpiexec (:mod:`mpigc.api`);
``mpigc.load_model(path)`` reads a trained model (:mod:`mpigc.estimator`).
"""

import importlib

__version__ = "0.1.0"

# The public API, imported on first use: ``import mpigc`` stays free of NumPy, which the
# command line imports only after limiting the BLAS threads (mpigc.runtime.launch).
_LAZY = {"train": "mpigc.api", "TrainResult": "mpigc.api", "load_model": "mpigc.estimator",
         "LinearModel": "mpigc.estimator"}
__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mpigc' has no attribute '{name}'")
