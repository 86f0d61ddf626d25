"""Compiled svmlight loops: the line index of a block of text and the parse of its rows.

Both work on a uint8 buffer that holds whole lines (the caller reads blocks ending at a
newline). Separators are ASCII whitespace (space, tab, CR, VT, FF); ``#`` ends the content
of a line; a *data line* has a byte of content that is not a separator.

Numbers are converted here when they are plain decimals (``[+-]digits[.digits][e[+-]digits]``
with at most 19 significant digits): exactly, by Clinger's fast path, or else by the
Eisel-Lemire algorithm (Lemire, "Number parsing at a gigabyte per second", 2021) with a
table of 128-bit powers of ten. Anything else (``inf``, ``nan``, 20+ digits, a halfway case
Eisel-Lemire cannot decide, a malformed value) is a *slow token*: its byte range is
returned and Python's ``float`` converts or rejects it, so results are always Python's.

Everything lives in this file on purpose: Numba's cache is invalidated by the timestamp
of the file that defines a jitted function, not by those of the functions it calls.
"""

import math

import numpy as np
from numba import njit

# the status codes and tables live in a module without Numba, for the ahead-of-time path
from mpigc.data._parse_tables import _MAX_EXP10, _MIN_EXP10, BAD_LINE, FULL, OK, OUT_OF_RANGE, SHORT
from mpigc.data.svmlight import MAX_INDEX

_U32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)


@njit
def _is_sep(c):
    return c == 32 or (9 <= c <= 13 and c != 10)


@njit
def _ends_token(c):
    return c == 32 or (9 <= c <= 13) or c == 35   # separator, newline or '#'


@njit
def _mul128(a, b):
    """(high, low) 64-bit halves of the 128-bit product of two uint64."""
    a_lo, a_hi = a & _U32, a >> _S32
    b_lo, b_hi = b & _U32, b >> _S32
    p0, p1, p2, p3 = a_lo * b_lo, a_lo * b_hi, a_hi * b_lo, a_hi * b_hi
    mid = (p0 >> _S32) + (p1 & _U32) + (p2 & _U32)
    return p3 + (p1 >> _S32) + (p2 >> _S32) + (mid >> _S32), (mid << _S32) | (p0 & _U32)


@njit
def _leading_zeros(x):
    n = 0
    for shift in (32, 16, 8, 4, 2, 1):
        if x >> np.uint64(64 - shift) == 0:
            n += shift
            x <<= np.uint64(shift)
    return n


@njit
def _eisel_lemire(man, q, pow_hi, pow_lo):
    """``man * 10**q`` correctly rounded (man > 0), and whether it could be decided."""
    if q < _MIN_EXP10 or q > _MAX_EXP10:
        return 0.0, False
    clz = _leading_zeros(man)
    man <<= np.uint64(clz)
    exp2 = ((217706 * q) >> 16) + 64 + 1023 - clz
    k = q - _MIN_EXP10
    x_hi, x_lo = _mul128(man, pow_hi[k])
    if (x_hi & np.uint64(0x1FF)) == np.uint64(0x1FF) and x_lo + man < man:
        y_hi, y_lo = _mul128(man, pow_lo[k])
        m_hi, m_lo = x_hi, x_lo + y_hi
        if m_lo < x_lo:
            m_hi += np.uint64(1)
        if ((m_hi & np.uint64(0x1FF)) == np.uint64(0x1FF) and m_lo + np.uint64(1) == np.uint64(0)
                and y_lo + man < man):
            return 0.0, False
        x_hi, x_lo = m_hi, m_lo
    msb = x_hi >> np.uint64(63)
    mant = x_hi >> (msb + np.uint64(9))
    exp2 -= 1 ^ int(msb)
    if (x_lo == np.uint64(0) and (x_hi & np.uint64(0x1FF)) == np.uint64(0)
            and (mant & np.uint64(3)) == np.uint64(1)):
        return 0.0, False        # exactly halfway: needs the digits beyond
    mant += mant & np.uint64(1)
    mant >>= np.uint64(1)
    if mant >> np.uint64(53) > 0:
        mant >>= np.uint64(1)
        exp2 += 1
    if exp2 <= 0 or exp2 >= 0x7FF:
        return 0.0, False        # subnormal or overflow: left to Python
    return math.ldexp(float(mant), exp2 - 1075), True   # mant < 2**53: exact


@njit
def _load8(buf, i):
    """Bytes ``buf[i:i+8]`` as a little-endian uint64 (LLVM merges the loads)."""
    v = np.uint64(0)
    for k in range(8):
        v |= np.uint64(buf[i + k]) << np.uint64(8 * k)
    return v


@njit
def _eight_digits(v):
    """Whether all 8 bytes of ``v`` are ASCII digits (SWAR, as in fast_float)."""
    return (((v + np.uint64(0x4646464646464646)) | (v - np.uint64(0x3030303030303030)))
            & np.uint64(0x8080808080808080)) == np.uint64(0)


@njit
def _eight_digits_value(v):
    """The number written by 8 ASCII digits packed in ``v`` (SWAR, as in fast_float)."""
    mask = np.uint64(0x000000FF000000FF)
    v -= np.uint64(0x3030303030303030)
    v = v * np.uint64(10) + (v >> np.uint64(8))
    v = (((v & mask) * np.uint64(0x000F424000000064))
         + (((v >> np.uint64(16)) & mask) * np.uint64(0x0000271000000001))) >> np.uint64(32)
    return v & np.uint64(0xFFFFFFFF)


@njit
def _digits(buf, i, end, man):
    """Append the digits at ``buf[i:]`` to ``man``; (man, position after them)."""
    while i + 8 <= end:
        v = _load8(buf, i)
        if not _eight_digits(v):
            break
        man = man * np.uint64(100000000) + _eight_digits_value(v)
        i += 8
    while i < end and 48 <= buf[i] <= 57:
        man = man * np.uint64(10) + np.uint64(buf[i] - 48)
        i += 1
    return man, i


@njit
def _number(buf, i, end, pow_hi, pow_lo, exact):
    """Parse a plain decimal at ``buf[i:]``: (value, converted, position after it).

    ``converted`` is False when the text is not a plain decimal or cannot be converted
    here; the caller then hands the whole token to Python.
    """
    neg = False
    if i < end and (buf[i] == 45 or buf[i] == 43):
        neg = buf[i] == 45
        i += 1
    man = np.uint64(0)
    begin = i
    while i < end and buf[i] == 48:    # leading zeros are not significant
        i += 1
    lead = i
    man, i = _digits(buf, i, end, man)
    digits = i - lead
    seen = i > begin
    q = 0
    if i < end and buf[i] == 46:
        i += 1
        frac = i
        if digits == 0:
            while i < end and buf[i] == 48:
                i += 1
            q = frac - i
        lead = i
        man, i = _digits(buf, i, end, man)
        digits += i - lead
        q -= i - lead
        seen = seen or i > frac
    if not seen:
        return 0.0, False, i
    if digits > 19:                    # man wrapped around: left to Python
        return 0.0, False, i
    if i < end and (buf[i] | 32) == 101:
        i += 1
        negexp = False
        if i < end and (buf[i] == 45 or buf[i] == 43):
            negexp = buf[i] == 45
            i += 1
        if i == end or not 48 <= buf[i] <= 57:
            return 0.0, False, i
        e = 0
        while i < end and 48 <= buf[i] <= 57:
            if e < 100000:
                e = e * 10 + (buf[i] - 48)
            i += 1
        q += -e if negexp else e
    if man == 0:
        value = 0.0
    elif man <= np.uint64(1 << 53) and -22 <= q <= 22:
        value = float(man) * exact[q] if q >= 0 else float(man) / exact[-q]
    else:
        value, ok = _eisel_lemire(man, q, pow_hi, pow_lo)
        if not ok:
            return 0.0, False, i
    return (-value if neg else value), True, i


# byte classes for the index scan: what ends a line's content, and the colon
_SPECIAL = np.zeros(256, dtype=np.uint8)
_SPECIAL[10] = _SPECIAL[35] = 1
_SPECIAL[58] = 2


@njit(cache=True)
def index_block(buf, row0, line0, stride, offsets, lines, colons):
    """Count the data lines of ``buf`` and find its largest feature index.

    Row ``row0 + k`` is the k-th data line here (``line0`` newlines come before ``buf``);
    for every row that is a multiple of ``stride``, its byte offset in ``buf``, its 1-based
    physical line number and the colons of the data lines before it go to ``offsets``,
    ``lines`` and ``colons``, as long as they have room.

    Returns ``(rows, newlines, sampled, colons, max_index, line of max_index)``. The
    largest index is read from the digits just before each ``:`` outside comments
    (malformed tokens are reported when their rows are parsed).
    """
    n = buf.size
    i = 0
    rows = newlines = sampled = n_colons = 0
    best, best_line = -1, 0
    special = _SPECIAL
    while i < n:
        start = i
        while i < n and _is_sep(buf[i]):
            i += 1
        if i < n and buf[i] != 10 and buf[i] != 35:
            if (row0 + rows) % stride == 0 and sampled < offsets.size:
                offsets[sampled] = start
                lines[sampled] = line0 + newlines + 1
                colons[sampled] = n_colons
                sampled += 1
            rows += 1
            while i < n:
                kind = special[buf[i]]
                if kind == 1:
                    break
                if kind == 2:
                    n_colons += 1
                    k = i
                    while k > start and 48 <= buf[k - 1] <= 57:
                        k -= 1
                    if k < i:
                        v = 0
                        if i - k > 18:
                            v = MAX_INDEX        # 19+ digits: too large anyway
                        else:
                            for t in range(k, i):
                                v = v * 10 + (buf[t] - 48)
                        if v > best:
                            best, best_line = v, line0 + newlines + 1
                i += 1
        while i < n and buf[i] != 10:   # a comment, if any
            i += 1
        if i < n:
            newlines += 1
            i += 1
    return rows, newlines, sampled, n_colons, best, best_line


# parse_block's helpers are inlined by Numba (inline="always"): compiled as functions of
# their own they added 0.8 s to its cold compile (2.6 s)
@njit(inline="always")
def _skip_seps(buf, i, n):
    """The first position from ``i`` that is not a separator."""
    while i < n and _is_sep(buf[i]):
        i += 1
    return i


@njit(inline="always")
def _next_line(buf, i, n):
    """The position after the newline that ends the line of ``buf[i]`` (past a comment)."""
    while i < n and buf[i] != 10:
        i += 1
    return i + 1


@njit(inline="always")
def _slow_token(buf, i, n, slow, n_slow, target):
    """Find the end of the token at ``buf[i:]`` that is left to Python and record it in
    ``slow`` (while it has room) as ``(i, end, target)``.

    Returns ``(end, new count of slow tokens)``; ``end`` is -1 when the token holds a
    colon (the line is malformed). Callers call ``_number`` themselves: behind one more
    helper it made the parse 25% slower.
    """
    j = i
    while j < n and not _ends_token(buf[j]):
        if buf[j] == 58:
            return -1, n_slow
        j += 1
    if n_slow < slow.shape[0]:
        slow[n_slow, 0], slow[n_slow, 1], slow[n_slow, 2] = i, j, target
    return j, n_slow + 1


@njit(inline="always")
def _entries(buf, i, n, first, last, indices, values, slow, nnz, n_slow,
             pow_hi, pow_lo, exact):
    """Parse the ``INDEX:VALUE`` tokens of one line from ``buf[i:]`` into ``indices`` and
    ``values`` from entry ``nnz`` (slow values go to ``slow`` from ``n_slow``).

    Returns ``(status, position, entries, slow tokens, first index out of [first, last]
    or -1, whether the indices increase)``: status OK (``position`` is the end of the
    line's content), BAD_LINE or FULL.
    """
    out_of_range, ordered, prev = -1, True, -1
    while True:
        i = _skip_seps(buf, i, n)
        if i >= n or buf[i] == 10 or buf[i] == 35:
            return OK, i, nnz, n_slow, out_of_range, ordered
        index, k = 0, i                      # INDEX: digits then a colon
        while k < n and 48 <= buf[k] <= 57:
            if index < MAX_INDEX:
                index = index * 10 + (buf[k] - 48)
            k += 1
        if k == i or k >= n or buf[k] != 58 or index >= MAX_INDEX:
            return BAD_LINE, i, nnz, n_slow, out_of_range, ordered
        i = k + 1
        if i >= n or _ends_token(buf[i]):
            return BAD_LINE, i, nnz, n_slow, out_of_range, ordered
        value, ok, j = _number(buf, i, n, pow_hi, pow_lo, exact)
        if not ok or (j < n and not _ends_token(buf[j])):
            value = 0.0
            j, n_slow = _slow_token(buf, i, n, slow, n_slow, nnz)
            if j < 0:
                return BAD_LINE, i, nnz, n_slow, out_of_range, ordered
        i = j
        if nnz == indices.size:
            return FULL, i, nnz, n_slow, out_of_range, ordered
        if (index < first or index > last) and out_of_range < 0:
            out_of_range = index
        ordered = ordered and index > prev
        prev = index
        indices[nnz] = index - first
        values[nnz] = value
        nnz += 1


@njit(cache=True)
def parse_block(buf, pos, skip, n_rows, first, last, y, indptr, indices, values, slow,
                pow_hi, pow_lo, exact):
    """Parse ``n_rows`` data lines of ``buf`` after skipping ``skip`` data lines from
    byte ``pos``.

    Indices must lie in ``[first, last]`` and are stored minus ``first``, in the order of
    the file (rows whose indices do not increase are counted: the caller sorts them and
    looks for repeated indices, with NumPy and SciPy; doing it here tripled the time of a
    cold compile). ``slow`` (k x 3)
    receives ``(byte start, byte end, target)`` of tokens left to Python: ``target`` is the
    position in ``values``, or ``-1 - row`` for a label. ``indices``/``values`` hold room
    for every colon of the rows (an upper bound on their entries).

    Returns ``(status, row, byte position, index, entries, slow tokens, unsorted rows)``:
    status OK, or the first problem: BAD_LINE (the row's line is malformed: explain it in
    Python), OUT_OF_RANGE (with the raw index), SHORT (fewer data lines than asked), FULL
    (more entries than room). ``byte position`` is the start of the row's line. The
    number of slow tokens may exceed ``len(slow)``: call again with room for all.
    """
    n = buf.size
    i = pos
    nnz = n_slow = unsorted = 0
    row = -skip
    indptr[0] = 0
    while row < n_rows:
        line_start = i
        i = _skip_seps(buf, i, n)
        if i >= n:
            return SHORT, row, line_start, 0, nnz, n_slow, unsorted
        if buf[i] == 10 or buf[i] == 35:     # blank or comment line
            i = _next_line(buf, i, n)
            continue
        if row < 0:                          # a data line to skip
            i = _next_line(buf, i, n)
            row += 1
            continue
        value, ok, j = _number(buf, i, n, pow_hi, pow_lo, exact)   # the label
        if not ok or (j < n and not _ends_token(buf[j])):
            value = 0.0
            j, n_slow = _slow_token(buf, i, n, slow, n_slow, -1 - row)
            if j < 0:
                return BAD_LINE, row, line_start, 0, nnz, n_slow, unsorted
        y[row] = value
        status, i, nnz, n_slow, out_of_range, ordered = _entries(
            buf, j, n, first, last, indices, values, slow, nnz, n_slow, pow_hi, pow_lo, exact)
        if status != OK:
            return status, row, line_start, 0, nnz, n_slow, unsorted
        if out_of_range >= 0:
            return OUT_OF_RANGE, row, line_start, out_of_range, nnz, n_slow, unsorted
        unsorted += not ordered
        i = _next_line(buf, i, n)
        row += 1
        indptr[row] = nnz
    return OK, row, i, 0, nnz, n_slow, unsorted
