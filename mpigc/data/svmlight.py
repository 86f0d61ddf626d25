"""svmlight / libsvm text files: ``LABEL INDEX:VALUE INDEX:VALUE ...`` per line.

- Indices are 1-based (spec option ``zero_based=1`` for files that start at 0); they need
  not be sorted. ``#`` starts a comment; blank and comment-only lines are skipped, and
  line numbers in messages count every physical line (1-based). ``qid:`` is not supported.
- The number of features is the largest index in the file, found by a vectorised scan of
  the bytes, or given by the spec option ``features=D``.
- Opening the file records the byte offset of every data line (one pass over the lines),
  so :meth:`SvmlightSource.read_rows` parses only the lines of the requested rows.
"""

import mmap
import re
import warnings

import numpy as np
import scipy.sparse as sp

from mpigc.data.checks import row_of_entry
from mpigc.data.source import DataSource, stack_rows
from mpigc.errors import UsageError

_SCAN_BLOCK = 1 << 24   # bytes per step of the max-index scan
_MAX_DIGITS = 18        # longest index the scan reads (int64-safe)
_MAX_INDEX = 2 ** 53    # indices are parsed as float64: exact below this
_COMMENT = re.compile(rb"#[^\n]*")
_ROWS_PER_PARSE = 1 << 15  # bounds the temporary memory of one parse


def _well_formed(body, nnz):
    """True when ``body`` is exactly ``nnz`` whitespace-separated DIGITS:VALUE tokens, each
    with one colon, digits before it and something after it (checked on the bytes)."""
    if nnz == 0:
        return not body.strip()
    buf = np.frombuffer(body, dtype=np.uint8)
    ws = buf <= ord(" ")     # control bytes count as separators: they make counts disagree
    starts = np.flatnonzero(~ws & np.concatenate(([True], ws[:-1])))
    colons = np.flatnonzero(buf == ord(":"))
    if starts.size != nnz or colons.size != nnz:
        return False
    # with as many colons as tokens, colon k inside token k means one colon per token
    ends = np.append(starts[1:], buf.size)
    if np.any(colons <= starts) or np.any(colons + 1 >= ends) or np.any(ws[colons + 1]):
        return False
    # no byte other than a digit between a token's start and its colon
    other = np.flatnonzero(~ws & ((buf < ord("0")) | (buf > ord("9"))) & (buf != ord(":")))
    token = np.searchsorted(starts, other, side="right") - 1
    return not np.any(other < colons[token])


class SvmlightSource(DataSource):
    """Rows of an svmlight file, always CSR (see the module docstring)."""

    is_sparse = True

    def __init__(self, path, features=None, zero_based=False):
        self.path = self.name = str(path)
        self.zero_based = bool(zero_based)
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            if size == 0:
                raise UsageError(f"{path}: the file is empty")
            f.seek(0)
            self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self._offsets, self._lines = self._index(size)
        if not self._lines.size:
            raise UsageError(f"{path}: no data lines")
        self.n_rows = int(self._lines.size)
        self.features_inferred = features is None
        if features is not None:
            self.n_features = int(features)
        else:
            self.n_features = self._max_index() + (1 if self.zero_based else 0)
            if self.n_features < 1:
                raise UsageError(f"{path}: no feature index found; give features=D in the spec")

    def _index(self, size):
        """Byte offset (plus the file size at the end) and line number of every data line.

        A line whose first byte is not whitespace or '#' is a data line (vectorised); the
        few lines that start with whitespace are looked at one by one.
        """
        buf = np.frombuffer(self._mm, dtype=np.uint8)
        newlines = [lo + np.flatnonzero(buf[lo:lo + _SCAN_BLOCK] == ord("\n"))
                    for lo in range(0, size, _SCAN_BLOCK)]
        starts = np.concatenate([[0]] + [nl + 1 for nl in newlines])
        starts = starts[starts < size]          # no empty line after a final newline
        first = buf[starts]
        data = (first > ord(" ")) & (first != ord("#"))
        ends = np.append(starts[1:], size)
        for k in np.flatnonzero(first <= ord(" ")):
            head = self._mm[starts[k]:ends[k]].lstrip()
            data[k] = bool(head) and head[:1] != b"#"
        return np.append(starts[data], size), np.flatnonzero(data) + 1

    def _max_index(self):
        """Largest feature index: digits just before each ':' (vectorised over the bytes).

        Comments may hold ':' too, so a file with '#' is parsed in full instead.
        """
        if self._mm.find(b"#", 0) >= 0:
            return max(self._parse(a, min(a + _ROWS_PER_PARSE, self.n_rows), check_range=False)[4]
                       for a in range(0, self.n_rows, _ROWS_PER_PARSE))
        buf = np.frombuffer(self._mm, dtype=np.uint8)
        best = 0
        for lo in range(0, buf.size, _SCAN_BLOCK):
            # colons whose index has at least k digits, for k = 1, 2, ...: the largest
            # index is among those with the most digits
            pos = lo + np.flatnonzero(buf[lo:lo + _SCAN_BLOCK] == ord(":"))
            digits = 0
            while pos.size and digits < _MAX_DIGITS:
                before = pos - digits - 1
                keep = before >= 0
                keep[keep] = (buf[before[keep]] - ord("0")) < 10   # uint8: wraps below '0'
                if not keep.any():
                    break
                pos, digits = pos[keep], digits + 1
            if digits:
                value = sum((buf[pos - t].astype(np.int64) - ord("0")) * 10 ** (t - 1)
                            for t in range(1, digits + 1))
                best = max(best, int(value.max()))
        return best

    def labels(self):
        out = np.empty(self.n_rows)
        for r in range(self.n_rows):
            a, b = self._offsets[r], self._offsets[r + 1]
            token = _COMMENT.sub(b"", self._mm[a:b]).split(None, 1)[0]
            out[r] = self._label(token, r)
        return out

    def _fail(self, row, what):
        raise UsageError(f"{self.path} line {self._lines[row]}: {what}")

    def _label(self, token, row):
        try:
            return float(token)
        except ValueError:
            self._fail(row, f"label '{token.decode(errors='replace')}' is not a number")

    def _text_lines(self, start, stop):
        text = self._mm[self._offsets[start]:self._offsets[stop]]
        if b"#" in text:
            text = _COMMENT.sub(b"", text)
        return [ln for ln in text.split(b"\n") if ln.strip()]

    def _tokens(self, start, stop):
        """Labels, per-row feature counts, raw indices and values of rows [start, stop).

        The lines are split once in Python; NumPy parses the numbers in C and checks the
        shape of every INDEX:VALUE token on the bytes. Anything malformed raises
        ValueError (the caller then explains it line by line).
        """
        lines = self._text_lines(start, stop)
        if len(lines) != stop - start:
            raise ValueError("line structure")
        heads = [ln.split(None, 1) for ln in lines]
        body = b" ".join(h[1] for h in heads if len(h) > 1)
        counts = [h[1].count(b":") if len(h) > 1 else 0 for h in heads]
        nnz = sum(counts)
        with warnings.catch_warnings():
            # NumPy warns (instead of failing) when text stops parsing early
            warnings.simplefilter("error", DeprecationWarning)
            y = np.fromstring(b" ".join(h[0] for h in heads), sep=" ")
            nums = np.fromstring(body.replace(b":", b" "), sep=" ") if nnz else np.zeros(0)
        if y.size != len(lines) or nums.size != 2 * nnz or not _well_formed(body, nnz):
            raise ValueError("token structure")
        raw = nums[0::2]
        if raw.size and raw.max() >= _MAX_INDEX:
            raise ValueError("index too large")
        return y, counts, raw.astype(np.int64), nums[1::2]

    def _parse(self, start, stop, check_range=True):
        """Parse rows [start, stop): (y, indptr, 0-based indices, values, largest raw index)."""
        try:
            y, counts, raw, vals = self._tokens(start, stop)
        except (ValueError, DeprecationWarning):
            self._explain(start, stop)
            raise UsageError(f"{self.path}: cannot parse lines {self._lines[start]}.."
                             f"{self._lines[stop - 1]}") from None
        indptr = np.zeros(stop - start + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        first = 0 if self.zero_based else 1
        limit = self.n_features - 1 + first if check_range else np.iinfo(np.int64).max
        bad = np.flatnonzero((raw < first) | (raw > limit))
        if bad.size:
            row = start + row_of_entry(indptr, bad[0])
            self._fail(row, self._range_message(raw[bad[0]]))
        self._check_unique(start, indptr, raw)
        for arr, what in ((y, "label"), (vals, "value")):
            bad = np.flatnonzero(~np.isfinite(arr))
            if bad.size:
                k = bad[0]
                row = start + (k if what == "label" else row_of_entry(indptr, k))
                name = what if what == "label" else f"value of feature {raw[k]}"
                self._fail(row, f"{name} is {arr[k]}")
        return y, indptr, raw - first, vals, int(raw.max(initial=0))

    def _check_unique(self, start, indptr, raw):
        """Raise on an index repeated within a row (files are usually sorted: cheap check)."""
        row_of = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
        rising = (np.diff(raw) > 0) | (np.diff(row_of) > 0)
        if rising.all():
            return
        order = np.lexsort((raw, row_of))
        same = (np.diff(raw[order]) == 0) & (np.diff(row_of[order]) == 0)
        if same.any():
            k = order[np.argmax(same)]
            self._fail(start + int(row_of[k]), f"feature index {raw[k]} appears twice")

    def _range_message(self, index):
        if index == 0 and not self.zero_based:
            return ("feature index 0 is out of range (indices are 1-based; "
                    "add zero_based=1 to the data spec for 0-based files)")
        return f"feature index {index} exceeds the {self.n_features} features of the data set"

    def _explain(self, start, stop):
        """Re-parse rows [start, stop) token by token and raise naming the bad line."""
        for row, ln in zip(range(start, stop), self._text_lines(start, stop)):
            parts = ln.split()
            if b":" in parts[0]:
                self._fail(row, f"line starts with '{parts[0].decode(errors='replace')}', "
                                f"expected a label")
            self._label(parts[0], row)
            for tok in parts[1:]:
                text = tok.decode(errors="replace")
                if tok.startswith(b"qid:"):
                    self._fail(row, "qid is not supported")
                idx, sep, val = tok.partition(b":")
                if not sep or not idx or not val or b":" in val:
                    self._fail(row, f"expected INDEX:VALUE, got '{text}'")
                if not idx.isdigit():
                    self._fail(row, f"feature index in '{text}' is not a non-negative integer")
                if int(idx) >= _MAX_INDEX:
                    self._fail(row, f"feature index {idx.decode()} is too large")
                try:
                    float(val)
                except ValueError:
                    self._fail(row, f"value '{val.decode(errors='replace')}' of feature "
                                    f"{idx.decode()} is not a number")

    def _read(self, start, stop):
        parts = []
        for a in range(start, stop, _ROWS_PER_PARSE):
            b = min(a + _ROWS_PER_PARSE, stop)
            y, indptr, indices, vals, _ = self._parse(a, b)
            X = sp.csr_matrix((vals, indices, indptr), shape=(b - a, self.n_features))
            parts.append((X, y))
        return stack_rows(parts, sparse=True)
