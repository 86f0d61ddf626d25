"""The built-in synthetic problem, deterministic from its seed, generated row block by
row block so that any rank can produce exactly its own rows.

Spec: ``synthetic:n=ROWS,d=COLS[,density=F][,seed=S][,model=logistic|linear][,noise=SIGMA]``

- Rows come in fixed blocks of :data:`BLOCK_ROWS` rows; block b is drawn from
  ``numpy.random.default_rng([seed, 1, b])``, so reading any subset of rows gives exactly
  the rows of the whole data set.
- A planted model ``w*`` is drawn from ``default_rng([seed, 0])`` with N(0, 1) entries
  scaled so that the margin ``x.w*`` has standard deviation :data:`MARGIN_STD`.
- Dense (``density=1``, the default): x ~ N(0, I_d). Sparse (``density < 1``): each row
  draws Binomial(d, density) column positions uniformly (duplicates merged, so the
  realised density is slightly lower) with N(0, 1) values; rows are CSR.
- ``model=logistic`` (default): labels are +1 with probability sigmoid(x.w*), else -1
  (noisy labels, so the regularised optimum is finite and accuracy is informative).
  ``model=linear``: y = x.w* + noise * N(0, 1) with ``noise`` default 0.5.
- ``seed`` defaults to 0, independent of ``--seed``.
"""

from __future__ import annotations

import numpy as np

from mpigc.data.checks import prepare_labels
from mpigc.data.source import DataSource, stack_rows
from mpigc.sparse import csr_matrix

BLOCK_ROWS = 1024
MARGIN_STD = 3.0
DEFAULT = dict(n=20000, d=100, density=1.0, seed=0, noise=0.5)


class SyntheticSource(DataSource):
    """Synthetic regression/classification rows (see the module docstring)."""

    def __init__(self, n: int, d: int, density: float = 1.0, seed: int = 0,
                 model: str = "logistic", noise: float = 0.5, name: str | None = None):
        self.n_rows, self.n_features = int(n), int(d)
        self.density, self.seed = float(density), int(seed)
        self.model, self.noise = model, float(noise)
        self.is_sparse = self.density < 1.0
        self.name = name or (f"synthetic:n={n},d={d},density={density:g},seed={seed},"
                             f"model={model}" + (f",noise={noise:g}" if model == "linear" else ""))
        self.features_origin = f"d={self.n_features} in the synthetic data spec"
        self._w_star = None

    @property
    def w_star(self) -> np.ndarray:
        """The planted model (drawn on first use: a spec is checked before anything of
        its size is allocated, and rank 0 sends the source to the others without it).
        """
        if self._w_star is None:
            nnz_per_row = max(self.n_features * self.density, 1.0)
            self._w_star = (np.random.default_rng([self.seed, 0]).standard_normal(self.n_features)
                            * (MARGIN_STD / np.sqrt(nnz_per_row)))
        return self._w_star

    def _block(self, b):
        rows = min(BLOCK_ROWS, self.n_rows - b * BLOCK_ROWS)
        rng = np.random.default_rng([self.seed, 1, b])
        d = self.n_features
        if self.is_sparse:
            counts = rng.binomial(d, self.density, size=rows)
            row_of = np.repeat(np.arange(rows, dtype=np.int64), counts)
            keys = np.unique(row_of * d + rng.integers(0, d, size=row_of.size))
            indptr = np.zeros(rows + 1, dtype=np.int64)
            np.cumsum(np.bincount(keys // d, minlength=rows), out=indptr[1:])
            X = csr_matrix((rng.standard_normal(keys.size), keys % d, indptr), shape=(rows, d))
        else:
            X = rng.standard_normal((rows, d))
        margin = X @ self.w_star
        if self.model == "logistic":
            # the logistic function as scipy.special.expit computes it, 1 / (1 + exp(-t)),
            # whose import (0.13 s) every rank would pay for this one line
            with np.errstate(over="ignore"):
                p = 1.0 / (1.0 + np.exp(-margin))
            y = np.where(rng.random(rows) < p, 1.0, -1.0)
        else:
            y = margin + self.noise * rng.standard_normal(rows)
        return X, y

    def _read(self, start, stop):
        first, last = start // BLOCK_ROWS, (stop - 1) // BLOCK_ROWS
        X, y = stack_rows([self._block(b) for b in range(first, last + 1)], self.is_sparse)
        lo = start - first * BLOCK_ROWS
        return X[lo:lo + stop - start], y[lo:lo + stop - start]

    def labels(self) -> np.ndarray:
        """All labels (generates every row block: cost O(n d))."""
        return self._read(0, self.n_rows)[1]

    def validate(self, model: str) -> None:
        """Logistic labels are +-1 (fit both models); linear targets fit only ``linear``."""
        prepare_labels(np.empty(0), model)  # checks the model name
        if self.model == "linear" and model == "logistic":
            super().validate(model)
