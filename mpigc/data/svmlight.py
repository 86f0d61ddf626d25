"""svmlight / libsvm text files: ``LABEL INDEX:VALUE INDEX:VALUE ...`` per line.

- Indices are 1-based (spec option ``zero_based=1`` for files that start at 0); they need
  not be sorted. ``#`` starts a comment; blank and comment-only lines are skipped, and
  line numbers in messages count every physical line (1-based). ``qid:`` is not supported.
- The number of features is the largest index in the file, or the spec option
  ``features=D``.
- :func:`index_file` reads the file once, in blocks: the number of data lines, the byte
  offset and line number of every :data:`STRIDE`-th row, and the largest index (and its
  line). A job splits that pass over its ranks (:func:`index_range` of one byte range
  each, :func:`merge_ranges`), so the file is still read once and every rank gets the
  same :class:`SvmlightIndex`; :meth:`SvmlightSource.read_rows` then reads only the
  bytes of the requested rows (plus at most ``STRIDE - 1`` rows either side).
- Rows are parsed by compiled loops (:mod:`mpigc.data._parse`); a malformed line is then
  explained token by token in Python, so the message names the line and the token.
- Compressed files (``.gz``, ``.bz2``, ``.xz``) are read as one stream by
  :func:`read_compressed` (``mpigc convert``); they cannot be indexed for partial reads.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mpigc.data import _parse_tables
from mpigc.data.checks import row_of_entry
from mpigc.data.source import DataSource, stack_rows
from mpigc.errors import UsageError
from mpigc.sparse import csr_matrix

if TYPE_CHECKING:
    import scipy.sparse as sp

STRIDE = 64                # rows between two offsets kept by the index
BLOCK_BYTES = 1 << 24      # bytes per read of a whole-file pass
INDEX_BLOCK_BYTES = 1 << 22  # the index pass's one buffer, read into again for each block
_ROWS_PER_PARSE = 1 << 15  # bounds the temporary memory of one parse (a multiple of STRIDE)
_SLOW_ROOM = 256           # slow tokens expected per parse (more: parsed again with room)
COMPRESSED = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}

MAX_INDEX = 2 ** 53        # indices must stay exact as float64 too (as they always were)
_loops = {}
PARSER_LOOPS = ("index_block", "parse_block")


def parser_signatures() -> dict[str, Any]:
    """Name -> (Numba dispatcher, argument types) of the compiled loops (imports Numba)."""
    from numba import types

    from mpigc.data import _parse

    ro_bytes = types.Array(types.uint8, 1, "C", readonly=True)
    i64, f64 = types.Array(types.int64, 1, "C"), types.Array(types.float64, 1, "C")
    i64_2d = types.Array(types.int64, 2, "C")
    tables = (types.Array(types.uint64, 1, "C", readonly=True),) * 2 + (
        types.Array(types.float64, 1, "C", readonly=True),)
    return {"index_block": (_parse.index_block, (ro_bytes,) + (types.int64,) * 3 + (i64,) * 3),
            "parse_block": (_parse.parse_block, (ro_bytes,) + (types.int64,) * 5
                            + (f64, i64, i64, f64, i64_2d) + tables)}


def jit_loops() -> dict[str, Any]:
    """The loops from the Numba cache (compiled into it when cold), under the kernels'
    cache lock (see :mod:`mpigc.kernels._compile`).
    """
    from mpigc.kernels._compile import compile_signatures

    return compile_signatures(parser_signatures())[0]


def compiled() -> dict[str, Any]:
    """The compiled loops by name, once per process: from the ahead-of-time module when
    its key matches (:mod:`mpigc.kernels._aot`), else from the Numba cache.

    Numba is imported here, not with this module, and only on the Numba path: a rank that
    reads no svmlight file, or has the ahead-of-time module, never loads it.
    """
    if not _loops:
        from mpigc.kernels import _aot

        module = _aot.load()
        _loops.update(jit_loops() if module is None
                      else {name: getattr(module, name) for name in PARSER_LOOPS})
    return _loops


@dataclass(frozen=True)
class SvmlightIndex:
    """What one pass over an svmlight file finds (sent to the other ranks of a job).

    Attributes
    ----------
    size, mtime_ns : int
        Of the file when it was indexed; a read checks them (the file must not change).
    n_rows : int
        Data lines.
    rows : numpy.ndarray
        The rows whose place is kept, ascending, from 0, at most ``STRIDE`` apart (every
        ``STRIDE``-th row of each range indexed), ending with ``n_rows``.
    offsets, lines, colons : numpy.ndarray
        Byte offset, physical line number and colons before each of those rows;
        ``offsets`` ends with the file size, ``colons`` with the total (the colons of a
        row range bound its entries: the room a parse allocates).
    max_index, max_index_line : int
        Largest feature index (-1 when the file has none) and the line it is on.
    """

    size: int
    mtime_ns: int
    n_rows: int
    rows: np.ndarray
    offsets: np.ndarray
    lines: np.ndarray
    colons: np.ndarray
    max_index: int
    max_index_line: int


def _line_blocks(f, block=INDEX_BLOCK_BYTES, limit=None):
    """The contents of binary file ``f`` from its position, as uint8 arrays that end with
    a newline (the last one may not), read ``block`` bytes at a time.

    ``limit``: only the lines that start in the next ``limit`` bytes (the last of them
    read to its end). The arrays are views of one buffer, read into again for the next
    block: each is valid until the next one is yielded. A pass over the file touches one
    buffer of new memory, not new bytes objects a block: new memory costs a page fault a
    page, which a virtual machine may make slow (docs/results.md, "Fewer new pages at
    start-up").
    """
    buf = np.empty(block, dtype=np.uint8)
    carry, left = 0, limit
    while True:
        want = block if left is None else min(block, left)
        if carry + want > buf.size:  # a line longer than a block
            buf = np.concatenate([buf[:carry], np.empty(carry + want - buf.size, np.uint8)])
        got = f.readinto(memoryview(buf)[carry:carry + want]) or 0
        n = carry + got
        if left is not None:
            left -= got
            if left == 0 and got and buf[n - 1] != 10:
                tail = np.frombuffer(f.readline(), dtype=np.uint8)  # the line past the limit
                if n + tail.size > buf.size:
                    buf = np.concatenate([buf[:n], tail])
                else:
                    buf[n:n + tail.size] = tail
                n += tail.size
        if got == 0:
            if carry:
                yield buf[:carry]
            return
        cut = _last_newline(buf, n) + 1
        if cut == 0:
            carry = n
            continue
        yield buf[:cut]
        carry = n - cut
        buf[:carry] = buf[cut:n]  # NumPy copies overlapping ranges correctly


def _last_newline(buf, n):
    """The position of the last newline in ``buf[:n]``, or -1.

    Looked for from the end in windows of 64 KB (a line is shorter than that, as a rule).
    """
    hi = n
    while hi > 0:
        lo = max(0, hi - (1 << 16))
        hits = np.flatnonzero(buf[lo:hi] == 10)
        if hits.size:
            return lo + int(hits[-1])
        hi = lo
    return -1


def index_file(path: str | os.PathLike) -> SvmlightIndex:
    """Index an svmlight file in one pass (see :class:`SvmlightIndex`).

    Raises
    ------
    UsageError
        Empty file, or one without data lines.
    OSError
        The file cannot be read.
    """
    return merge_ranges(path, [index_range(path, 0, 1)])


def index_range(path: str | os.PathLike, part: int, parts: int) -> dict:
    """The index of the lines of ``path`` that start in the ``part``-th of ``parts``
    equal byte ranges, counted from that range (:func:`merge_ranges` joins them).

    Raises OSError when the file cannot be read.
    """
    index_block = compiled()["index_block"]
    offsets, lines, colons = [], [], []
    rows = newlines = n_colons = 0
    best, best_line = -1, 0
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        lo, hi = st.st_size * part // parts, st.st_size * (part + 1) // parts
        start = _line_start(f, lo)
        size = start
        f.seek(start)
        # the last range reads to the end: what fstat says of a size is not always so
        limit = None if part == parts - 1 else max(hi - start, 0)
        for buf in _line_blocks(f, limit=limit):
            room = buf.size // STRIDE + 2
            off, ln, co = (np.empty(room, dtype=np.int64) for _ in range(3))
            n, nl, k, nc, top, top_line = index_block(buf, rows, newlines, STRIDE, off, ln, co)
            offsets.append(off[:k] + size)
            lines.append(ln[:k])
            colons.append(co[:k] + n_colons)
            if top > best:
                best, best_line = int(top), int(top_line)
            rows, newlines, size = rows + int(n), newlines + int(nl), size + buf.size
            n_colons += int(nc)
    empty = np.empty(0, dtype=np.int64)
    return {"file": (st.st_size, st.st_mtime_ns), "end": size, "n_rows": rows,
            "newlines": newlines,
            "colons_total": n_colons, "best": (best, best_line),
            "offsets": np.concatenate(offsets or [empty]),
            "lines": np.concatenate(lines or [empty]),
            "colons": np.concatenate(colons or [empty])}


def _line_start(f, position):
    """The first byte at or after ``position`` that starts a line of binary file ``f``."""
    if position == 0:
        return 0
    f.seek(position - 1)
    f.readline()  # to the end of the line that holds byte position - 1
    return f.tell()


def merge_ranges(path: str | os.PathLike, pieces: list) -> SvmlightIndex:
    """One :class:`SvmlightIndex` from the :func:`index_range` results of all ranges of
    ``path``, in order.

    Raises
    ------
    UsageError
        Empty file, one without data lines, or one that changed between the ranges.
    """
    if len({p["file"] for p in pieces}) > 1:
        raise UsageError(f"{path}: the file changed while the job indexed it")
    mtime = pieces[0]["file"][1]
    size = pieces[-1]["end"]  # the bytes there were (the last range reads to the end)
    rows, offsets, lines, colons = [], [], [], []
    n_rows = n_lines = n_colons = 0
    best, best_line = -1, 0
    for p in pieces:
        offsets.append(p["offsets"])
        lines.append(p["lines"] + n_lines)
        colons.append(p["colons"] + n_colons)
        # index_range samples every STRIDE-th row of its own range, from its first
        rows.append(n_rows + STRIDE * np.arange(p["offsets"].size, dtype=np.int64))
        top, top_line = p["best"]
        if top > best:
            best, best_line = top, top_line + n_lines
        n_rows, n_lines, n_colons = (n_rows + p["n_rows"], n_lines + p["newlines"],
                                     n_colons + p["colons_total"])
    if size == 0:
        raise UsageError(f"{path}: the file is empty")
    if n_rows == 0:
        raise UsageError(f"{path}: no data lines")
    return SvmlightIndex(size=size, mtime_ns=mtime, n_rows=n_rows,
                         rows=np.concatenate(rows + [[n_rows]]).astype(np.int64),
                         offsets=np.concatenate(offsets + [[size]]).astype(np.int64),
                         lines=np.concatenate(lines).astype(np.int64),
                         colons=np.concatenate(colons + [[n_colons]]).astype(np.int64),
                         max_index=best, max_index_line=best_line)


def _float(token):
    """Python's float of a token, or None (digit separators are not numbers here)."""
    if b"_" in token:
        return None
    try:
        return float(token)
    except ValueError:
        return None


class _Text:
    """The bytes of a run of whole lines, ``text`` starting at physical line ``line``."""

    def __init__(self, path, text, line):
        self.path, self.text, self.line = path, text, line

    def line_at(self, pos):
        """Physical line number of byte ``pos`` of the text."""
        return self.line + self.text.count(b"\n", 0, pos)

    def fail(self, pos, what):
        raise UsageError(f"{self.path} line {self.line_at(pos)}: {what}")

    def explain(self, pos):
        """Raise naming the first malformed token of the line holding byte ``pos``."""
        start = self.text.rfind(b"\n", 0, pos) + 1
        end = self.text.find(b"\n", start)
        content = self.text[start:end if end >= 0 else len(self.text)].split(b"#", 1)[0]
        parts = content.split()

        def fail(what):
            self.fail(start, what)

        if b":" in parts[0]:
            fail(f"line starts with '{parts[0].decode(errors='replace')}', expected a label")
        if _float(parts[0]) is None:
            fail(f"label '{parts[0].decode(errors='replace')}' is not a number")
        for tok in parts[1:]:
            text = tok.decode(errors="replace")
            if tok.startswith(b"qid:"):
                fail("qid is not supported")
            idx, sep, val = tok.partition(b":")
            if not sep or not idx or not val or b":" in val:
                fail(f"expected INDEX:VALUE, got '{text}'")
            if not idx.isdigit():
                fail(f"feature index in '{text}' is not a non-negative integer")
            if int(idx) >= MAX_INDEX:
                fail(f"feature index {idx.decode()} is too large")
            if _float(val) is None:
                fail(f"value '{val.decode(errors='replace')}' of feature {idx.decode()} is not "
                     f"a number")
        fail("cannot parse the line")


def parse_text(text: bytes, n_rows: int, n_features: int | None, zero_based: bool, where: str,
               skip: int = 0, line: int = 1, room: int | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Parse ``n_rows`` data lines of ``text`` (bytes of whole lines) after ``skip`` data lines.

    Parameters
    ----------
    text : bytes
    n_rows : int
    n_features : int or None
        Indices above it are refused; None: no upper limit (the caller takes the largest).
    zero_based : bool
    where : str
        The file name, for messages.
    skip : int
        Data lines at the start of ``text`` to pass over.
    line : int
        Physical line number of the first line of ``text``.
    room : int, optional
        At least the entries of the rows (default: the colons of ``text``).

    Returns
    -------
    y, indptr, indices, values : numpy.ndarray
        Raw labels and the CSR arrays (0-based indices, sorted within each row: unsorted
        rows are sorted by SciPy, then checked for a repeated index).

    Raises
    ------
    UsageError
        The first bad row: naming its line and the problem.
    """
    loops = compiled()
    parse_block, codes = loops["parse_block"], _parse_tables
    first = 0 if zero_based else 1
    last = MAX_INDEX if n_features is None else n_features - 1 + first
    buf = np.frombuffer(text, dtype=np.uint8)
    room = text.count(b":") if room is None else room
    y, indptr = np.empty(n_rows), np.empty(n_rows + 1, dtype=np.int64)
    indices, values = np.empty(room, dtype=np.int64), np.empty(room)
    slow = np.empty((_SLOW_ROOM, 3), dtype=np.int64)
    while True:
        status, row, pos, index, nnz, n_slow, unsorted = parse_block(
            buf, 0, skip, n_rows, first, last, y, indptr, indices, values, slow,
            codes.POW_HI, codes.POW_LO, codes.EXACT_POW)
        if n_slow <= slow.shape[0]:
            break
        slow = np.empty((n_slow, 3), dtype=np.int64)
    src = _Text(where, text, line)
    rows_done = n_rows if status == codes.OK else row
    for a, b, target in slow[:n_slow]:
        value = _float(text[a:b])
        if value is None:
            src.explain(a)
        if target < 0:
            y[-1 - target] = value
        else:
            values[target] = value
    if status == codes.BAD_LINE:
        src.explain(pos)
    if status == codes.OUT_OF_RANGE:
        if index == 0 and not zero_based:
            src.fail(pos, "feature index 0 is out of range (indices are 1-based; "
                          "add zero_based=1 to the data spec for 0-based files)")
        src.fail(pos, f"feature index {index} exceeds the {n_features} features of the "
                      f"data set")
    if status in (codes.SHORT, codes.FULL):
        raise UsageError(f"{where}: has {rows_done} data lines where {n_rows} were expected "
                         f"(did the file change while the job read it?)")
    indices, values = indices[:nnz], values[:nnz]
    if unsorted:
        X = csr_matrix((values, indices, indptr), shape=(n_rows, MAX_INDEX))
        X.has_sorted_indices = False
        X.sort_indices()
        # back into our arrays: SciPy copies an array it is given in some cases (a view
        # of a longer one), and the rows must not come back unsorted
        indices[:], values[:] = X.indices, X.data
        rows = np.repeat(np.arange(n_rows), np.diff(indptr))
        same = np.flatnonzero((np.diff(indices) == 0) & (np.diff(rows) == 0))
        if same.size:
            k = same[0]
            src.fail(_row_starts(buf, n_rows, skip)[rows[k]],
                     f"feature index {indices[k] + first} appears twice")
    for arr, what in ((y, "label"), (values, "value")):
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            k = bad[0]
            r = k if what == "label" else row_of_entry(indptr, k)
            name = what if what == "label" else f"value of feature {indices[k] + first}"
            src.fail(_row_starts(buf, n_rows, skip)[r], f"{name} is {arr[k]}")
    return y, indptr, indices, values


def _row_starts(buf, n_rows, skip):
    """Byte offset of each of the ``n_rows`` data lines after ``skip`` (error path only)."""
    index_block = compiled()["index_block"]
    off = np.empty(n_rows + skip, dtype=np.int64)
    index_block(buf, 0, 0, 1, off, off.copy(), off.copy())
    return off[skip:]


class SvmlightSource(DataSource):
    """Rows of an svmlight file, always CSR (see the module docstring).

    Parameters
    ----------
    path : str
    features : int, optional
        Number of features (default: the largest index of the file).
    zero_based : bool
    index : SvmlightIndex, optional
        From :func:`index_file` (another rank's); default: index the file here.
    """

    is_sparse = True
    parses = True

    def __init__(self, path: str | os.PathLike, features: int | None = None,
                 zero_based: bool = False, index: SvmlightIndex | None = None):
        self.path = self.name = str(path)
        self.zero_based = bool(zero_based)
        self.index = index_file(path) if index is None else index
        self.n_rows = self.index.n_rows
        self.features_inferred = features is None
        if features is not None:
            self.n_features = int(features)
            self.features_origin = f"features={self.n_features} in the data spec of {path}"
        else:
            top = self.index.max_index
            self.n_features = top + (1 if self.zero_based else 0)
            self.features_origin = (f"{path} line {self.index.max_index_line}: feature index "
                                    f"{top}")
            if self.n_features < 1:
                raise UsageError(f"{path}: no feature index found; give features=D in the spec")
        self.bytes_read = 0   # by read_rows in this process (the index pass not counted)

    def _text(self, start, stop):
        """The bytes of rows [start, stop) (from the rows kept by the index on either
        side), the data lines to skip in them, the line number they start at and their
        colons.
        """
        ix = self.index
        # the last kept row at or before start, the first at or after stop
        a = int(np.searchsorted(ix.rows, start, side="right")) - 1
        b = int(np.searchsorted(ix.rows, stop, side="left"))
        lo, hi = int(ix.offsets[a]), int(ix.offsets[b])
        with open(self.path, "rb") as f:
            st = os.fstat(f.fileno())
            if (st.st_size, st.st_mtime_ns) != (ix.size, ix.mtime_ns):
                raise UsageError(f"{self.path}: the file changed after the job indexed it")
            f.seek(lo)
            text = f.read(hi - lo)
        self.bytes_read += len(text)
        return text, start - int(ix.rows[a]), int(ix.lines[a]), int(ix.colons[b] - ix.colons[a])

    def _read(self, start, stop):
        parts = []
        a = start
        while a < stop:
            b = min((a // _ROWS_PER_PARSE + 1) * _ROWS_PER_PARSE, stop)
            text, skip, line, room = self._text(a, b)
            y, indptr, indices, values = parse_text(text, b - a, self.n_features,
                                                    self.zero_based, self.path, skip, line,
                                                    room)
            parts.append((csr_matrix((values, indices, indptr),
                                        shape=(b - a, self.n_features)), y))
            a = b
        return stack_rows(parts, sparse=True)

    def labels(self) -> np.ndarray:
        """Every label, as float64."""
        return self._read(0, self.n_rows)[1]


def read_compressed(path: str | os.PathLike, features: int | None = None,
                    zero_based: bool = False) -> tuple[sp.csr_matrix, np.ndarray]:
    """All rows of a (possibly compressed) svmlight file, read as one stream.

    Returns
    -------
    X : scipy.sparse.csr_matrix
        ``features`` columns, or as many as the largest index needs.
    y : numpy.ndarray

    Raises
    ------
    UsageError
        As :class:`SvmlightSource` (empty, no data lines, a bad line), or a damaged
        compressed stream.
    """
    opener = COMPRESSED.get(os.path.splitext(path)[1].lower(), open)
    index_block = compiled()["index_block"]
    parts, line, width, size = [], 1, 0, 0
    off = np.empty(1, dtype=np.int64)
    try:
        with opener(path, "rb") as f:
            for buf in _line_blocks(f, block=BLOCK_BYTES):
                text = buf.tobytes()  # parse_text keeps it for its messages
                size += buf.size
                n, newlines, _, _, _, _ = index_block(buf, 0, 0, 1, off, off.copy(), off.copy())
                if n:
                    y, indptr, indices, values = parse_text(text, int(n), features, zero_based,
                                                            path, line=line)
                    width = max(width, int(indices.max(initial=-1)) + 1)
                    parts.append((y, indptr, indices, values))
                line += int(newlines)
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    if size == 0:
        raise UsageError(f"{path}: the file is empty")
    if not parts:
        raise UsageError(f"{path}: no data lines")
    d = features if features is not None else width
    if d < 1:
        raise UsageError(f"{path}: no feature index found; give features=D in the spec")
    return stack_rows([(csr_matrix((v, i, p), shape=(len(y), d)), y)
                       for y, p, i, v in parts], sparse=True)
