"""``issparse`` without importing SciPy.

scipy.sparse and scipy.special cost a rank 0.1-0.2 s of CPU each to import (SciPy's array
API layer with them), which 9 ranks sharing 2 cores pay at every start. A rank with dense
data needs neither, so mpigc imports them in the functions that build sparse matrices,
and asks whether an object is sparse here.
"""

import sys


def issparse(x) -> bool:
    """``scipy.sparse.issparse(x)``; a sparse matrix exists only once scipy.sparse is
    imported, so until then the answer is False without importing it.
    """
    sp = sys.modules.get("scipy.sparse")
    return sp is not None and sp.issparse(x)


def csr_matrix(*args, **kwargs):
    """``scipy.sparse.csr_matrix(...)``, importing scipy.sparse on first use."""
    import scipy.sparse as sp

    return sp.csr_matrix(*args, **kwargs)
