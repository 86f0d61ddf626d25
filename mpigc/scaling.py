"""Column statistics of distributed data, and the optimizer's feature-scale coordinates.

The optimizers run in coordinates scaled by the columns' standard deviations, as Spark
MLlib's L-BFGS always does: ``v = scale * w``, so that the objective they see,
``G(v) = F(v / scale)``, has a Hessian ``diag(1/scale) H diag(1/scale)`` with unit data
diagonal when the columns are centred. The objective ``F``, every logged loss and the
saved model stay in the user's coordinates ``w``; only the path of the iterates changes.
Sparse data are scaled, never centred (their zeros stay zeros); the scale comes from the
variance of the data as they are, zeros included.

:func:`column_stats` computes means and population standard deviations (ddof 0) over the
row blocks each rank passes, each row counted once, in two reductions (sums, then the
squares about the mean: no cancellation for a column with a large mean).
"""

from dataclasses import dataclass

import numpy as np

from mpigc.sparse import csr_matrix, issparse

# A column whose standard deviation is below this fraction of its root mean square is
# constant up to the rounding of its mean.
CONSTANT_RTOL = 1e-8
# Dense rows per pass of the squares (bounds the temporary copy to ~8 MB at d = 128).
SQUARE_BLOCK_ROWS = 8192


@dataclass(frozen=True)
class ColumnStats:
    """Per-column statistics over the rows of a data set.

    Attributes
    ----------
    n_rows : int
    mean : ndarray, (d,)
    std : ndarray, (d,)
        Population standard deviation (ddof 0, as scikit-learn's StandardScaler).
    """

    n_rows: int
    mean: np.ndarray
    std: np.ndarray


def _sums(block, d):
    if issparse(block):
        return np.asarray(block.sum(axis=0, dtype=np.float64)).ravel()
    return np.asarray(block, dtype=np.float64).sum(axis=0) if len(block) else np.zeros(d)


def _squares(block, mean):
    """``sum_r (x_rj - mean_j)^2`` of one block, per column."""
    d = mean.size
    if issparse(block):
        X = csr_matrix(block)
        cols = X.indices
        inside = np.bincount(cols, weights=(X.data - mean[cols]) ** 2, minlength=d)
        zeros = X.shape[0] - np.bincount(cols, minlength=d)
        return inside + zeros * mean ** 2
    out = np.zeros(d)
    for a in range(0, len(block), SQUARE_BLOCK_ROWS):
        out += ((np.asarray(block[a:a + SQUARE_BLOCK_ROWS], dtype=np.float64) - mean) ** 2
                ).sum(axis=0)
    return out


def column_stats(blocks, d, comm=None):
    """Means and standard deviations of the columns over all ranks' ``blocks``.

    Parameters
    ----------
    blocks : list of ndarray or scipy.sparse matrices
        This rank's row blocks (``n_i x d``); over all ranks every row must appear in
        exactly one block (pass each chunk once, by one of its holders).
    d : int
        Number of columns (a rank may hold no block).
    comm : mpigc.runtime.comm.Comm, optional
        Sums over its ranks (``allreduce_sum``); None: ``blocks`` are the whole data.

    Returns
    -------
    ColumnStats
        The same on every rank.
    """
    def total(array):
        return array if comm is None else comm.allreduce_sum(array)

    first = np.zeros(d + 1)
    for b in blocks:
        first[0] += b.shape[0]
        first[1:] += _sums(b, d)
    first = total(first)
    n = int(first[0])
    mean = first[1:] / max(n, 1)
    squares = total(sum((_squares(b, mean) for b in blocks), np.zeros(d)))
    return ColumnStats(n_rows=n, mean=mean, std=np.sqrt(squares / max(n, 1)))


def feature_scale(stats):
    """The optimizer's scale per column: the standard deviation; for a constant column
    (std below :data:`CONSTANT_RTOL` of its root mean square) the magnitude of its value,
    so that a ones column keeps scale 1; for an all-zero column 1.
    """
    constant, rms = _constant(stats)
    scale = np.where(constant, rms, stats.std)
    return np.where(scale > 0.0, scale, 1.0)


def _constant(stats):
    """Columns constant up to the rounding of their mean, and every column's RMS."""
    rms = np.sqrt(stats.mean ** 2 + stats.std ** 2)
    return stats.std <= CONSTANT_RTOL * rms, rms


def scaled(evaluate, scale):
    """``evaluate`` in the optimizer's coordinates ``v = scale * w``.

    Returns ``evaluate_v(v) -> (F(w), grad F(w) / scale)`` with ``w = v / scale``: the
    value is unchanged, the gradient is the chain rule's.
    """
    scale = np.asarray(scale, dtype=np.float64)

    def evaluate_v(v):
        f, g = evaluate(to_user(v, scale))
        return f, np.asarray(g, dtype=np.float64) / scale
    return evaluate_v


def to_user(v, scale):
    """The user's coordinates ``w = v / scale`` of an optimizer point."""
    return np.asarray(v, dtype=np.float64) / scale


def from_user(w, scale):
    """The optimizer's coordinates ``v = scale * w`` of a model."""
    return np.asarray(w, dtype=np.float64) * scale


# Nonzeros divided per pass when sparse data are scaled in place (bounds the temporary).
SCALE_BLOCK_NNZ = 1 << 20


@dataclass(frozen=True)
class Standardization:
    """``--standardize``: the features the model is fitted on, ``(x - center) / scale``.

    Attributes
    ----------
    center : ndarray, (d,)
        The column means when dense data are centred (with an intercept), else zeros.
    scale : ndarray, (d,)
        The population standard deviations; 1 for a constant column (as scikit-learn's
        StandardScaler), which is then left as it is, or zero once centred.
    """

    center: np.ndarray
    scale: np.ndarray

    @classmethod
    def from_stats(cls, stats: ColumnStats, center: bool) -> "Standardization":
        """From the training rows' :func:`column_stats`; ``center``: subtract the means."""
        scale = np.where(_constant(stats)[0], 1.0, stats.std)
        return cls(center=stats.mean.copy() if center else np.zeros_like(stats.mean),
                   scale=scale)

    def apply(self, X):
        """``X`` standardized, in place when its values are writable (else a copy of them).

        Sparse ``X`` is scaled only (its zeros stay zeros, no dense copy is made): its
        ``center`` must be zero.
        """
        if issparse(X):
            if np.any(self.center):
                raise ValueError("sparse data cannot be centred without a dense copy")
            if not X.data.flags.writeable:
                X.data = X.data.copy()
            for a in range(0, X.nnz, SCALE_BLOCK_NNZ):
                b = min(a + SCALE_BLOCK_NNZ, X.nnz)
                X.data[a:b] /= self.scale[X.indices[a:b]]
            return X
        if not X.flags.writeable:
            X = np.array(X)
        X -= self.center.astype(X.dtype)
        X /= self.scale.astype(X.dtype)
        return X

    def original(self, coef, intercept):
        """The model ``(coef, intercept)`` of the standardized features in the original
        units: the same margins ``x.coef' + intercept'`` for every row ``x``.
        """
        coef = np.asarray(coef, dtype=np.float64) / self.scale
        return coef, float(intercept) - float(coef @ self.center)
