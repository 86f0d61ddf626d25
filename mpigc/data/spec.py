"""``--data SPEC``: parse and validate a data specification (cheap: no rows are read).

Grammar::

    (none)                                   the built-in problem: synthetic:n=20000,d=100
    synthetic:n=ROWS,d=COLS[,density=F][,seed=S][,model=logistic|linear][,noise=SIGMA]
    FILE[+FILE...][:OPTION=VALUE[,...]]      .npz, .svm, .libsvm or .txt (svmlight)

A FILE may be a glob pattern (``shards/part-*.svm``; matches are taken in sorted order).
Several files are one data set, their rows concatenated in order; npz files (and
svmlight files with ``features=``) must agree on the number of features, svmlight files
without it take the largest index of all files. File options (svmlight only):
``features=D`` (number of features) and ``zero_based=0|1``. Compressed svmlight
(``.svm.gz``, ``.bz2``, ``.xz``) is read only where the caller allows it
(``mpigc convert``): it is decompressed as one stream, into memory.

In a job (``comm``) every rank indexes its byte range of each svmlight file
(:func:`~mpigc.data.svmlight.index_range`) and gets the merged index, then rank 0 opens
the files and sends the sources to the other ranks: each file is scanned once per job,
not once per rank, and by all of them at once.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from mpigc.data.npz import NpzSource
from mpigc.data.source import DataSource, stack_rows
from mpigc.data.svmlight import (
    COMPRESSED,
    SvmlightSource,
    index_range,
    merge_ranges,
    read_compressed,
)
from mpigc.data.synthetic import DEFAULT, SyntheticSource
from mpigc.errors import UsageError
from mpigc.models import MODELS
from mpigc.sparse import csr_matrix, issparse

if TYPE_CHECKING:
    import scipy.sparse as sp

    from mpigc.runtime.comm import Comm

SVMLIGHT_SUFFIXES = (".svm", ".libsvm", ".txt")


def parse_data_spec(spec: str | None, model: str | None = None, comm: Comm | None = None,
                    compressed: bool = False) -> DataSource:
    """Turn a ``--data`` specification into a :class:`DataSource`.

    Parameters
    ----------
    spec : str or None
        See the module docstring; None is the built-in synthetic problem.
    model : {"logistic", "linear"}, optional
        Label kind of a synthetic problem whose spec does not name one (default logistic).
        Ignored for files.
    comm : mpigc.runtime.comm.Comm, optional
        Collective: the ranks index svmlight files together (a byte range each), rank 0
        parses the spec and reads the file headers, every rank gets the same source or
        the same error.
    compressed : bool
        Read compressed svmlight files whole (else they are refused, naming
        ``mpigc convert``).

    Returns
    -------
    DataSource

    Raises
    ------
    UsageError
        Malformed spec, missing or unreadable files, malformed file headers, files that
        disagree on the number of features.
    """
    if comm is not None and comm.size > 1:
        # every rank checks that it sees the files (a few metadata calls, agreed), the
        # ranks index svmlight files together, rank 0 alone opens the files
        error, kinds = None, {}
        try:
            kinds = _check_spec(spec, compressed)
        except UsageError as exc:
            error = str(exc)
        error = _agree_on_files(comm, error, list(kinds))
        if error is not None:
            raise UsageError(error)
        indexes = _index_together([p for p, kind in kinds.items() if kind == "svmlight"], comm)
        if comm.rank != 0 and indexes:
            import scipy.sparse  # noqa: F401  (what the CSR rows need, while rank 0 opens)
        return _shared(comm, lambda: _open_spec(spec, model, compressed, indexes))
    return _open_spec(spec, model, compressed, {})


def _agree_on_files(comm, error, files):
    """Collective: the first error of any rank, else one naming a rank whose expansion of
    the spec (its globs) differs from rank 0's; None when every rank sees the same files.
    """
    every = comm.allgather((error, files))
    for message, _ in every:
        if message is not None:
            return message
    for rank, (_, theirs) in enumerate(every):
        if theirs != every[0][1]:
            first = sorted(set(theirs) ^ set(every[0][1]))[:1] or every[0][1][:1]
            return (f"the data spec names different files on different ranks: rank 0 sees "
                    f"{len(every[0][1])}, rank {rank} sees {len(theirs)}, differing in "
                    f"{first[0]} (a directory that is not shared, or still being written?)")
    return None


def _index_together(paths, comm):
    """Collective: each rank indexes its byte range of every file of ``paths``; the merged
    :class:`~mpigc.data.svmlight.SvmlightIndex` of each, the same on every rank.
    """
    error, pieces = None, {}
    for path in paths:
        try:
            pieces[path] = index_range(path, comm.rank, comm.size)
        except OSError as exc:
            error = f"cannot read data file {path}: {exc.strerror or exc}"
            break
    error = comm.agree(error)
    if error is not None:
        raise UsageError(error)
    if not paths:
        return {}
    every = comm.allgather(pieces)
    return {path: merge_ranges(path, [p[path] for p in every]) for path in paths}


def _open_spec(spec, model, compressed, indexes):
    """The source of ``spec`` (not collective); ``indexes``: svmlight indexes by path."""
    if spec is None:
        return SyntheticSource(**DEFAULT, model=model or "logistic")
    spec = str(spec).strip()
    if spec == "synthetic" or spec.startswith("synthetic:"):
        return _synthetic(spec.partition(":")[2], model)
    paths, options = _split_options(spec)
    sources = [_open_file(p, options, compressed, indexes.get(p)) for p in _expand(paths)]
    return sources[0] if len(sources) == 1 else ConcatSource(sources)


def _check_spec(spec, compressed):
    """The checks of a spec that need no file's contents (names, existence, options);
    returns its files' kinds by path (none for the synthetic problem).
    """
    if spec is None:
        return {}
    spec = str(spec).strip()
    if spec == "synthetic" or spec.startswith("synthetic:"):
        _synthetic(spec.partition(":")[2], None)
        return {}
    paths, options = _split_options(spec)
    return {path: _check_path(path, compressed) for path in _expand(paths)}


def _shared(comm, make):
    """``make()`` on rank 0, its result (or its UsageError) on every rank."""
    result = None
    if comm.rank == 0:
        try:
            result = ("ok", make())
        except UsageError as exc:
            result = ("error", str(exc))
        except BaseException:
            comm.bcast_object(("crash", None))   # the others fail too, rank 0 explains
            raise
    kind, value = comm.bcast_object(result)
    if kind == "error":
        raise UsageError(value)
    if kind == "crash":
        raise RuntimeError("rank 0 failed while opening the data; see its traceback")
    return value


def _parse_options(text, what):
    options = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"malformed option '{item}' in {what} (expected KEY=VALUE)")
        if key.strip() in options:
            raise UsageError(f"option '{key.strip()}' given twice in {what}")
        options[key.strip()] = value.strip()
    return options


def _number(options, key, kind, what, default, check, requirement):
    if key not in options:
        return default
    try:
        value = kind(options.pop(key))
    except ValueError:
        raise UsageError(f"{key} in {what} must be {requirement}") from None
    if not check(value):
        raise UsageError(f"{key}={value} in {what}: must be {requirement}")
    return value


def _synthetic(text, model):
    what = "the synthetic data spec"
    opts = _parse_options(text, what)
    n = _number(opts, "n", int, what, DEFAULT["n"], lambda v: v >= 1, "a positive integer")
    d = _number(opts, "d", int, what, DEFAULT["d"], lambda v: v >= 1, "a positive integer")
    density = _number(opts, "density", float, what, 1.0, lambda v: 0.0 < v <= 1.0,
                      "a number in (0, 1]")
    seed = _number(opts, "seed", int, what, 0, lambda v: v >= 0, "a non-negative integer")
    noise = _number(opts, "noise", float, what, DEFAULT["noise"],
                    lambda v: v >= 0.0 and np.isfinite(v), "a finite number >= 0")
    kind = opts.pop("model", model or "logistic")
    if kind not in MODELS:
        raise UsageError(f"model={kind} in {what}: expected logistic or linear")
    if opts:
        raise UsageError(f"unknown option '{next(iter(opts))}' in {what} "
                         f"(expected n, d, density, seed, model, noise)")
    return SyntheticSource(n, d, density=density, seed=seed, model=kind, noise=noise)


def _split_options(spec):
    """'a.svm+b.svm:features=9' -> (['a.svm', 'b.svm'], {'features': '9'})."""
    head, sep, tail = spec.rpartition(":")
    if sep and "=" in tail and not os.path.exists(spec):
        return head.split("+"), _parse_options(tail, f"the data spec '{spec}'")
    return spec.split("+"), {}


def _expand(patterns):
    paths = []
    for pattern in patterns:
        if not pattern:
            raise UsageError("empty file name in the data spec")
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern))
            if not matches:
                raise UsageError(f"no data file matches '{pattern}'")
            paths += matches
        else:
            paths.append(pattern)
    return paths


def _check_path(path, compressed):
    """Refuse a file that is missing, unreadable or of an unknown type; its kind."""
    if not os.path.exists(path):
        raise UsageError(f"data file not found: {path}")
    if os.path.isdir(path):
        raise UsageError(f"data file is a directory: {path}")
    if not os.access(path, os.R_OK):
        raise UsageError(f"data file is not readable: {path}")
    stem, suffix = os.path.splitext(path)
    suffix = suffix.lower()
    packed = suffix in COMPRESSED and os.path.splitext(stem)[1].lower() in SVMLIGHT_SUFFIXES
    if packed and not compressed:
        raise UsageError(f"{path} is compressed: a job reads each rank's rows from an "
                         f"uncompressed file; convert it once with 'mpigc convert {path} "
                         f"{os.path.splitext(stem)[0]}.npz' and train on the .npz")
    if suffix == ".npz":
        return "npz"
    if suffix in SVMLIGHT_SUFFIXES or packed:
        return "compressed" if packed else "svmlight"
    raise UsageError(f"unknown data file type '{path}' (expected .npz, .svm, .libsvm, .txt, "
                     f"or compressed svmlight for mpigc convert)")


def _open_file(path, options, compressed=False, index=None):
    kind = _check_path(path, compressed)
    opts = dict(options)
    try:
        if kind == "npz":
            if opts:
                raise UsageError(f"option '{next(iter(opts))}' does not apply to .npz file {path}")
            return NpzSource(path)
        if kind in ("svmlight", "compressed"):
            what = f"the data spec of {path}"
            features = _number(opts, "features", int, what, None, lambda v: v >= 1,
                               "a positive integer")
            zero = _number(opts, "zero_based", int, what, 0, lambda v: v in (0, 1), "0 or 1")
            if opts:
                raise UsageError(f"unknown option '{next(iter(opts))}' in {what} "
                                 f"(expected features, zero_based)")
            if kind == "compressed":
                X, y = read_compressed(path, features=features, zero_based=zero)
                return ArraySource(X, y, path, features_inferred=features is None)
            return SvmlightSource(path, features=features, zero_based=zero, index=index)
    except OSError as exc:
        raise UsageError(f"cannot read data file {path}: {exc.strerror or exc}") from None


class ArraySource(DataSource):
    """Rows already in memory (a decompressed file): X dense or CSR, y raw labels."""

    def __init__(self, X: np.ndarray | sp.csr_matrix, y: np.ndarray, name: str,
                 features_inferred: bool = False):
        self.X, self.y, self.name = X, np.asarray(y, dtype=np.float64), str(name)
        self.n_rows, self.n_features = X.shape
        self.is_sparse = issparse(X)
        self.features_inferred = features_inferred

    def _read(self, start, stop):
        X = self.X[start:stop]
        if X.shape[1] != self.n_features:   # widened by a ConcatSource
            X = csr_matrix((X.data, X.indices, X.indptr), shape=(stop - start,
                                                                    self.n_features))
        return X, self.y[start:stop]

    def labels(self) -> np.ndarray:
        """Every label, as float64."""
        return self.y.copy()


class ConcatSource(DataSource):
    """Several files read as one data set, rows concatenated in order."""

    def __init__(self, sources: Iterable[DataSource]):
        self.parts = list(sources)
        inferred = [s for s in self.parts if getattr(s, "features_inferred", False)]
        fixed = [s for s in self.parts if s not in inferred]
        for s in fixed[1:]:
            if s.n_features != fixed[0].n_features:
                raise UsageError(f"feature counts differ between files: {fixed[0].name} has "
                                 f"{fixed[0].n_features}, {s.name} has {s.n_features}")
        widest = max(inferred, key=lambda s: s.n_features, default=None)
        if fixed and widest is not None and widest.n_features > fixed[0].n_features:
            raise UsageError(f"feature counts differ between files: {fixed[0].name} has "
                             f"{fixed[0].n_features}, {widest.name} uses {widest.n_features}")
        self.n_features = (fixed[0] if fixed else widest).n_features
        self.features_origin = (fixed[0] if fixed else widest).features_origin
        for s in self.parts:
            s.n_features = self.n_features
        self.starts = np.cumsum([0] + [s.n_rows for s in self.parts])
        self.n_rows = int(self.starts[-1])
        self.is_sparse = any(s.is_sparse for s in self.parts)
        self.parses = any(s.parses for s in self.parts)
        self.name = "+".join(s.name for s in self.parts)

    def _read(self, start, stop):
        parts = []
        for k, part in enumerate(self.parts):
            lo, hi = max(start, self.starts[k]), min(stop, self.starts[k + 1])
            if lo < hi:
                X, y = part._read(int(lo - self.starts[k]), int(hi - self.starts[k]))
                parts.append((csr_matrix(X) if self.is_sparse else X, y))
        return stack_rows(parts, self.is_sparse)

    def labels(self) -> np.ndarray:
        """Every label, as float64."""
        return np.concatenate([s.labels() for s in self.parts])
