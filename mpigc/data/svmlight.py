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

import numpy as np
import scipy.sparse as sp

from mpigc.data.source import DataSource
from mpigc.errors import UsageError

_SCAN_BLOCK = 1 << 24   # bytes per step of the max-index scan
_MAX_DIGITS = 18        # longest index the scan reads (int64-safe)
_COMMENT = re.compile(rb"#[^\n]*")


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
        offsets, lines, end, pos = [], [], [], 0
        for number, line in enumerate(iter(self._mm.readline, b""), start=1):
            head = line.lstrip()
            if head and head[:1] != b"#":
                offsets.append(pos)
                lines.append(number)
            pos += len(line)
        if not offsets:
            raise UsageError(f"{path}: no data lines")
        self._offsets = np.array(offsets + [size], dtype=np.int64)
        self._lines = np.array(lines, dtype=np.int64)
        self.n_rows = len(lines)
        self.features_inferred = features is None
        if features is not None:
            self.n_features = int(features)
        else:
            self.n_features = self._max_index() + (1 if self.zero_based else 0)
            if self.n_features < 1:
                raise UsageError(f"{path}: no feature index found; give features=D in the spec")

    def _max_index(self):
        """Largest feature index: digits just before each ':' (vectorised over the bytes).

        Comments may hold ':' too, so a file with '#' is parsed in full instead.
        """
        if self._mm.find(b"#", 0) >= 0:
            return int(max((self._parse(a, min(a + 65536, self.n_rows), check_range=False)[4]
                            for a in range(0, self.n_rows, 65536)), default=0))
        buf = np.frombuffer(self._mm, dtype=np.uint8)
        best = 0
        for lo in range(0, buf.size, _SCAN_BLOCK):
            colons = lo + np.flatnonzero(buf[lo:lo + _SCAN_BLOCK] == ord(":"))
            value = np.zeros(colons.size, dtype=np.int64)
            alive = np.ones(colons.size, dtype=bool)
            scale = 1
            for k in range(1, _MAX_DIGITS + 1):
                pos = colons - k
                digit = buf[np.maximum(pos, 0)].astype(np.int64) - ord("0")
                alive &= (pos >= 0) & (digit >= 0) & (digit <= 9)
                if not alive.any():
                    break
                value += np.where(alive, digit * scale, 0)
                scale *= 10
            if value.size:
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

    def _parse(self, start, stop, check_range=True):
        """Parse rows [start, stop): (y, indptr, 0-based indices, values, largest raw index)."""
        labels, counts, feats = [], [], []
        for ln in self._text_lines(start, stop):
            parts = ln.split()
            labels.append(parts[0])
            counts.append(len(parts) - 1)
            feats += parts[1:]
        pairs = b" ".join(feats).replace(b":", b" ").split()
        try:
            if len(pairs) != 2 * len(feats) or len(labels) != stop - start:
                raise ValueError("token structure")
            y = np.array(labels).astype(np.float64)
            raw = np.array(pairs[0::2]).astype(np.int64) if pairs else np.zeros(0, np.int64)
            vals = np.array(pairs[1::2]).astype(np.float64) if pairs else np.zeros(0)
        except ValueError:
            self._explain(start, stop)
            raise UsageError(f"{self.path}: cannot parse lines {self._lines[start]}.."
                             f"{self._lines[stop - 1]}") from None
        indptr = np.zeros(stop - start + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        first = 0 if self.zero_based else 1
        limit = self.n_features - 1 + first if check_range else np.iinfo(np.int64).max
        bad = np.flatnonzero((raw < first) | (raw > limit))
        if bad.size:
            row = start + int(np.searchsorted(indptr, bad[0], side="right") - 1)
            self._fail(row, self._range_message(raw[bad[0]]))
        self._check_unique(start, indptr, raw)
        for arr, what in ((y, "label"), (vals, "value")):
            bad = np.flatnonzero(~np.isfinite(arr))
            if bad.size:
                k = bad[0]
                row = start + (k if what == "label" else
                               int(np.searchsorted(indptr, k, side="right") - 1))
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
        if index < 0:
            return f"feature index {index} is negative"
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
                try:
                    float(val)
                except ValueError:
                    self._fail(row, f"value '{val.decode(errors='replace')}' of feature "
                                    f"{idx.decode()} is not a number")

    def _read(self, start, stop):
        y, indptr, indices, vals, _ = self._parse(start, stop)
        return sp.csr_matrix((vals, indices, indptr), shape=(stop - start, self.n_features)), y
