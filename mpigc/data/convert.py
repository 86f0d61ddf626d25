"""``mpigc convert IN OUT.npz``: any data spec to the uncompressed ``.npz`` layout.

The output is what :func:`mpigc.data.save_npz` writes, members stored uncompressed, so the
workers of a job memory-map their rows instead of parsing text: repeated runs and sweeps
start in the time of a memory map. ``IN`` is any ``--data`` spec (files joined with ``+``,
globs, options) and may also be compressed svmlight (``.svm.gz``, ``.bz2``, ``.xz``, as
the public LIBSVM data sets are distributed), which ``train`` refuses. Labels are kept as
they are in the input. The output appears whole or not at all (written beside it, then
renamed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from mpigc.data.checks import check_output_file
from mpigc.data.npz import save_npz
from mpigc.data.source import DataSource
from mpigc.data.spec import parse_data_spec
from mpigc.errors import UsageError


def convert(spec: str, out: str | os.PathLike) -> DataSource:
    """Write the data set of ``spec`` to ``out`` (an ``.npz`` path); returns its source.

    Raises
    ------
    UsageError
        A bad spec or input file (as ``train`` reports it), or an output that cannot be
        written.
    """
    out = os.fspath(out)
    if not out.endswith(".npz"):
        raise UsageError(f"the output of mpigc convert must be a .npz file, got '{out}'")
    parent = check_output_file(out)
    source = parse_data_spec(spec, compressed=True)
    X, y = source.read_rows([(0, source.n_rows)])
    partial = os.path.join(parent, f".{os.path.basename(out)}.{os.getpid()}.npz")
    try:
        save_npz(partial, X, y)
        os.replace(partial, out)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return source


def main(args: argparse.Namespace) -> int:
    """Entry point of ``mpigc convert``."""
    t0 = time.perf_counter()
    source = convert(args.input, args.output)
    kind = "CSR" if source.is_sparse else "dense"
    print(f"mpigc convert: {source.name} -> {args.output}: {source.n_rows} rows x "
          f"{source.n_features} features ({kind}), "
          f"{os.path.getsize(args.output) / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s",
          file=sys.stdout)
    return 0
