"""``.npz`` data files: the on-disk format, a writer, and a reader that reads only the
requested rows.

Format (one ``.npz`` archive, written by :func:`save_npz`):

- dense: arrays ``X`` (2-D, n x d, any real dtype) and ``y`` (1-D, n);
- sparse CSR: the arrays of :func:`scipy.sparse.save_npz` for a CSR matrix
  (``data``, ``indices``, ``indptr``, ``shape``, ``format`` = ``"csr"``) plus ``y``.
  ``scipy.sparse.load_npz`` therefore reads X from such a file too.

Members stored uncompressed (``np.savez``, the :func:`save_npz` default) are memory-mapped
in place, so a worker touches only the bytes of its own rows. Compressed members
(``np.savez_compressed``) cannot be mapped: they are decompressed as a stream up to the
last requested row and only the requested rows are kept (Fortran-ordered compressed
arrays are loaded whole once, kept, and sliced).
"""

from __future__ import annotations

import os
import struct
import zipfile
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from mpigc.data.checks import row_of_entry
from mpigc.data.source import DataSource
from mpigc.errors import UsageError
from mpigc.sparse import csr_matrix, issparse

if TYPE_CHECKING:
    import scipy.sparse as sp

CSR_KEYS = ("data", "indices", "indptr", "shape")
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}


def save_npz(path: str | os.PathLike, X: ArrayLike | sp.spmatrix, y: ArrayLike,
             compressed: bool = False) -> None:
    """Write a data set in the format :func:`mpigc.data.parse_data_spec` reads.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (``.npz`` is appended by NumPy when missing).
    X : array_like or scipy.sparse matrix
        Features, n x d; sparse input is stored as CSR.
    y : array_like
        Labels, length n.
    compressed : bool
        Compress the members (smaller, but workers then read whole members).
    """
    y = np.asarray(y, dtype=np.float64)
    save = np.savez_compressed if compressed else np.savez
    if issparse(X):
        X = csr_matrix(X)
        save(path, data=X.data, indices=X.indices, indptr=X.indptr,
             shape=np.array(X.shape), format=np.array("csr"), y=y)
    else:
        X = np.asarray(X)
        if X.ndim != 2 or y.shape != (X.shape[0],):
            raise UsageError(f"save_npz needs X of shape (n, d) and y of shape (n,); "
                             f"got {X.shape} and {y.shape}")
        save(path, X=X, y=y)


class _Member:
    """One array of the archive: its header is read at once, its elements on demand."""

    def __init__(self, path, zf, key):
        self.path, self.key = path, key
        info = zf.getinfo(key + ".npy")
        with zf.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version not in _HEADER_READERS:
                raise ValueError(f"array '{key}' has .npy format version {version}")
            self.shape, self.fortran, self.dtype = _HEADER_READERS[version](f)
            self.header_len = f.tell()
        self.mappable = info.compress_type == zipfile.ZIP_STORED and not self.dtype.hasobject
        if self.mappable:
            with open(path, "rb") as f:
                f.seek(info.header_offset)
                local = f.read(30)
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            self.offset = info.header_offset + 30 + name_len + extra_len + self.header_len
        self._whole = None

    def __getstate__(self):
        # sent to the other ranks of a job: without a memory map of this process
        return {**self.__dict__, "_whole": None}

    def whole(self):
        """All elements: a read-only memory map when stored, else loaded into memory.

        Either is kept: a compressed Fortran-ordered member is sliced from it on every read,
        and must not be decompressed again each time.
        """
        if self._whole is None:
            if self.mappable:
                self._whole = np.memmap(self.path, dtype=self.dtype, mode="r",
                                        offset=self.offset, shape=self.shape,
                                        order="F" if self.fortran else "C")
            else:
                with np.load(self.path, allow_pickle=False) as z:
                    self._whole = z[self.key]
        return self._whole

    def rows(self, lo, hi):
        """A copy of elements ``[lo:hi]`` along the first axis, reading only those bytes
        (a compressed member is decompressed as a stream up to ``hi`` and not kept).
        """
        if self.mappable or self.fortran:
            return np.array(self.whole()[lo:hi], order="C")
        row_bytes = self.dtype.itemsize * int(np.prod(self.shape[1:], dtype=np.int64))
        with zipfile.ZipFile(self.path) as zf, zf.open(self.key + ".npy") as f:
            f.seek(self.header_len + lo * row_bytes)
            raw = f.read((hi - lo) * row_bytes)
        return np.frombuffer(raw, dtype=self.dtype).reshape((hi - lo,) + tuple(self.shape[1:]))


class NpzSource(DataSource):
    """Rows of a dense or CSR ``.npz`` data set (see the module docstring)."""

    def __init__(self, path: str | os.PathLike):
        self.path = self.name = str(path)
        try:
            with zipfile.ZipFile(path) as zf:
                keys = {n[:-4] for n in zf.namelist() if n.endswith(".npy")}
                members = {k: _Member(self.path, zf, k) for k in keys}
        except zipfile.BadZipFile:
            raise UsageError(f"{path}: not an .npz archive") from None
        except (OSError, ValueError) as exc:
            raise UsageError(f"{path}: cannot read: {exc}") from None
        self.m = members
        if "y" not in keys:
            raise UsageError(f"{path}: no array 'y' (labels); found {sorted(keys)}")
        self.is_sparse = "X" not in keys
        if not self.is_sparse:
            self._check_numeric("X", ndim=2)
            self.n_rows, self.n_features = self.m["X"].shape
        elif set(CSR_KEYS) <= keys:
            self._init_csr()
        else:
            raise UsageError(f"{path}: expected arrays X and y (dense) or data, indices, indptr, "
                             f"shape and y (CSR); found {', '.join(sorted(keys))}")
        self._check_numeric("y", ndim=1)
        if self.m["y"].shape[0] != self.n_rows:
            raise UsageError(f"{path}: y has {self.m['y'].shape[0]} labels but X has "
                             f"{self.n_rows} rows")
        if self.n_rows == 0 or self.n_features == 0:
            raise UsageError(f"{path}: the data set is empty ({self.n_rows} x {self.n_features})")

    def _check_numeric(self, key, ndim):
        mem = self.m[key]
        if mem.dtype.hasobject:
            raise UsageError(f"{self.path}: array '{key}' holds Python objects (a pickled sparse "
                             f"matrix?); write the file with mpigc.data.save_npz")
        if mem.dtype.kind not in "biuf" or len(mem.shape) != ndim:
            raise UsageError(f"{self.path}: array '{key}' must be a {ndim}-D real array, got "
                             f"dtype {mem.dtype} and shape {mem.shape}")

    def _init_csr(self):
        if "format" in self.m:
            fmt = self.m["format"].whole()[()]
            fmt = fmt.decode("ascii", "replace") if isinstance(fmt, bytes) else str(fmt)
            if fmt != "csr":
                raise UsageError(f"{self.path}: sparse format '{fmt}' is not supported; "
                                 f"convert X with .tocsr() before saving")
        for key in CSR_KEYS:
            self._check_numeric(key, ndim=1)
        shape = np.asarray(self.m["shape"].whole())
        if shape.shape != (2,) or shape.dtype.kind not in "iu":
            raise UsageError(f"{self.path}: 'shape' must hold two integers, got {shape}")
        self.n_rows, self.n_features = (int(v) for v in shape)
        if self.m["indptr"].shape[0] != self.n_rows + 1:
            raise UsageError(f"{self.path}: 'indptr' has {self.m['indptr'].shape[0]} entries, "
                             f"expected rows + 1 = {self.n_rows + 1}")
        if self.m["indices"].shape != self.m["data"].shape:
            raise UsageError(f"{self.path}: 'indices' and 'data' differ in length")

    def _read(self, start, stop):
        y = self.m["y"].rows(start, stop).astype(np.float64)
        if not self.is_sparse:
            return self.m["X"].rows(start, stop), y   # stored dtype: read_rows converts
        indptr = self.m["indptr"].rows(start, stop + 1).astype(np.int64)
        lo, hi = int(indptr[0]), int(indptr[-1])
        if np.any(np.diff(indptr) < 0) or lo < 0 or hi > self.m["data"].shape[0]:
            raise UsageError(f"{self.path}: 'indptr' is corrupt in rows {start}..{stop - 1}")
        indices = self.m["indices"].rows(lo, hi).astype(np.int64)
        bad = np.flatnonzero((indices < 0) | (indices >= self.n_features))
        if bad.size:
            row = start + row_of_entry(indptr, lo + bad[0])
            raise UsageError(f"{self.path}: row {row} has feature index {indices[bad[0]]}, "
                             f"outside 0..{self.n_features - 1}")
        data = self.m["data"].rows(lo, hi).astype(np.float64)
        X = csr_matrix((data, indices, indptr - lo), shape=(stop - start, self.n_features))
        return X, y

    def labels(self) -> np.ndarray:
        """Every label, as float64."""
        return np.array(self.m["y"].whole(), dtype=np.float64)
