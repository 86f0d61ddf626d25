"""Row losses and the fused row loops, a block of rows at a time.

Dense: a block of rows is processed in three steps: the dot product of each row with ``w``
(the only time the rows are read from memory), the losses and slopes of the whole block at
once, then, ``BLOCK`` rows at a time, one pass over the columns that adds ``slope_b * x_b``
of those rows into ``grad`` (the rows still in L1; the logistic model's blocks are
``LOSS_BLOCK`` rows, so that its losses have more rows to overlap). Every byte of X is
read from memory once, where NumPy/SciPy read it twice (``X @ w`` then ``X.T @ r``), and
``grad`` is loaded and stored once per ``BLOCK`` rows instead of once per row. The rows
``PREFETCH_ROWS`` ahead are asked of the cache half during the dots and half during the
column pass, which runs in slices of ``COLUMN_CHUNK_BYTES`` of each row for this: the
hardware prefetcher stops while the losses and the column pass compute on rows already
in cache, and memory would pause.

Three loops are written as explicit 256-bit vector code (LLVM IR built with llvmlite in
Numba intrinsics) rather than left to LLVM's vectoriser: the float32 dots (four rows at a
time, ``w`` loaded once for the four) and column pass (the 16 slopes in registers), where
LLVM's code computed longer than the rows take to read, and the logistic losses, four
rows a vector, which LLVM vectorised only in loops of hundreds of rows (whose dense
blocks then spilled from L1 and paused memory). The float64 dots and column pass stay
LLVM's: written by hand they were faster in cache but not from memory.

CSR: a block of ``CSR_BLOCK`` rows at a time, in the same three steps (the dots, the
losses, then one scatter of ``slope_b * x_b`` per row into ``grad``, the rows still in
L2). The linear model's slope is one subtraction, so it needs no SIMD block: its rows
go one at a time, each scatter right after its dot, the row still in L1. Before each
dot the cache is asked for the entries ``CSR_PREFETCH`` positions ahead in ``data`` and
``indices``: the hardware prefetcher alone leaves the loop waiting on memory for about
as long as it computes.

The logistic losses use their own ``exp`` and ``log1p`` (a polynomial each, accurate to a
few units in the last place, evaluated by Estrin's scheme), written with selects and no
libm call, so that they run in SIMD registers: PyPI's llvmlite has no vector libm (SVML).
The CSR blocks and the last rows of a dense range use the same four-lane code.

``fastmath`` is limited to ``reassoc`` and ``contract`` in the row loops, so LLVM may
vectorise the dot-product reductions and fuse multiply-adds (the CSR dot keeps four
explicit partial sums instead). This changes rounding only, by about ``d * 2**-53`` times
the sum of ``|x_j w_j|``, and keeps IEEE semantics for inf and nan. The block losses are
compiled with ``contract`` only, and the vector losses carry no fast-math flag:
``reassoc`` would let LLVM merge the two-part ``ln 2`` of the exponential's range
reduction. float32 rows are widened to float64 before the
multiply, so every layout accumulates in float64. The dense loops are compiled for 256-bit
vectors (``ymm``).

The intercept (``fit_intercept``): ``w`` and ``grad`` have one entry more than X has
columns; that entry is added to every margin and receives the sum of the slopes, so the
intercept costs no pass over X and X needs no column of ones.

Tuning constants and the measurements behind them: docs/results.md, "Kernel tuning
constants". Everything lives in this file on purpose: Numba's cache is invalidated by
the timestamp of the file that defines a jitted function, not by those of the functions
it calls.
"""

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

LOGISTIC = 0
LINEAR = 1
MODEL_CODES = {"logistic": LOGISTIC, "linear": LINEAR}

# Rows per block: 16 rows of 128 float64 columns (16 KB) stay in L1 between the dots and
# the update; fewer rows repeat the grad pass more often, more spill out of L1.
BLOCK = 16
# Rows per block of the logistic model (a multiple of BLOCK and of 4; the column pass
# takes BLOCK rows at a time): its losses, four rows a vector, wait on two polynomials and
# two divisions; 32 rows hide more of that latency than 16, and their 32 KB of float64
# rows are the size of L1 (64 or 256 rows: slower from memory). The linear losses are a
# subtraction: their blocks stay at BLOCK rows.
LOSS_BLOCK = 2 * BLOCK
# Rows ahead of the dots that the kernel asks the cache for.
PREFETCH_ROWS = 4 * BLOCK
# Bytes of each row per slice of the column pass (32 float64, 64 float32 columns); each
# slice first asks for its share of the rows ahead. Fewer bytes cost the pass more set-up
# (16 row pointers and alias checks per slice).
COLUMN_CHUNK_BYTES = 256
# CSR rows per block: the block's losses are one SIMD loop over 256 margins (LLVM's vector
# loop takes 32 at a time); 256 rows of 32 entries (96 KB) are re-read from L2.
CSR_BLOCK = 256
# Entries of data and indices ahead of the dot that it asks the cache to fetch
# (16 KB of float64 data, 64 rows of 32 entries).
CSR_PREFETCH = 2048
_CACHE_LINE = 64

_LOG2E = 1.4426950408889634
_LN2_HI = 0.6931471803691238      # ln 2 in two parts (Cody and Waite): n * _LN2_HI is
_LN2_LO = 1.9082149292705877e-10  # exact for the |n| <= 1022 used here
_EXP_MAX = 708.0                  # exp(-x) beyond this, below 3.3e-308, is taken as 0


def _prefetch_codegen(context, builder, signature, args):
    # read, locality 1 (x86: prefetcht2), data cache; no fault, no result
    aryty = signature.args[0]
    ary = context.make_array(aryty)(context, builder, value=args[0])
    ptr = cgutils.get_item_pointer(context, builder, aryty, ary, args[1:], wraparound=False)
    i32 = ir.IntType(32)
    fnty = ir.FunctionType(ir.VoidType(), [cgutils.voidptr_t, i32, i32, i32])
    fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
    builder.call(fn, [builder.bitcast(ptr, cgutils.voidptr_t), i32(0), i32(1), i32(1)])
    return context.get_dummy_value()


@intrinsic
def _prefetch_to_l2(typingctx, X, r, j):
    """Ask the CPU to fetch the cache line of ``X[r, j]`` (``prefetcht2``: into L2, so it
    does not take one of L1's few miss buffers)."""
    return types.none(X, r, j), _prefetch_codegen


@intrinsic
def _prefetch_entry_to_l2(typingctx, a, k):
    """The same for the cache line of ``a[k]`` of a 1-D array."""
    return types.none(a, k), _prefetch_codegen


def _function_attributes(*attributes):
    """An intrinsic that gives the function calling it ``attributes`` (LLVM's)."""
    def typer(typingctx, X):
        def codegen(context, builder, signature, args):
            for attribute in attributes:
                # llvmlite's checked add accepts only flag attributes, not key="value"
                set.add(builder.function.attributes, attribute)
            return context.get_dummy_value()
        return types.none(X), codegen
    return intrinsic(typer)


# Have LLVM vectorise the calling function with 256-bit registers, and never inline it (into
# a caller that would vectorise it with its own width). LLVM's znver4 tuning picks 512-bit
# zmm code, which Zen 4 runs in two 256-bit halves; in ymm the dense kernels' dots and
# column pass take fewer cycles (LLVM's Intel AVX-512 tunings prefer 256 bits already).
_prefer_256_bit_vectors = _function_attributes('"prefer-vector-width"="256"', "noinline")


# Explicit 256-bit vector loops (LLVM IR through llvmlite): four float64 lanes, float32
# rows widened on load (`vcvtps2pd ymm, m128`, about a cycle each on Zen 4, where the
# 512-bit form takes three). Measurements: docs/results.md, "Explicit vector loops".
_LANES = 4
_I32 = ir.IntType(32)
_F64X4 = ir.VectorType(ir.DoubleType(), _LANES)


def _const(value):
    # `value` in every lane
    return ir.Constant(_F64X4, [value] * _LANES)


def _contiguous(*arrays):
    # the vector loops index an array's data pointer directly
    return all(isinstance(a, types.Array) and a.layout == "C" for a in arrays)


def _data(context, builder, aryty, value):
    ary = context.make_array(aryty)(context, builder, value=value)
    return ary.data, cgutils.unpack_tuple(builder, ary.shape, aryty.ndim)


def _lanes(builder, base, index):
    # _LANES items from base[index] as float64 lanes (float32 widened)
    ptr = builder.gep(base, [index])
    widen = ptr.type.pointee != ir.DoubleType()
    vty = ir.VectorType(ptr.type.pointee, _LANES)
    v = builder.load(builder.bitcast(ptr, vty.as_pointer()), align=4 if widen else 8)
    return builder.fpext(v, _F64X4) if widen else v


def _rows(builder, data, r, d, count):
    # pointers to rows r, r + 1, ... r + count - 1 of a C array of d columns
    return [builder.gep(data, [builder.mul(builder.add(r, r.type(i)), d)])
            for i in range(count)]


def _vector_call(builder, name, *args):
    # the LLVM intrinsic `name` over vectors of _LANES float64
    fnty = ir.FunctionType(args[0].type, [a.type for a in args])
    fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.{name}.v{_LANES}f64")
    return builder.call(fn, list(args))


def _fma(builder, a, b, c):
    # a * b + c rounded once (llvmlite's IRBuilder.fma takes scalars only)
    return _vector_call(builder, "fma", a, b, c)


def _lane_sum(builder, v):
    halves = [builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, 2), pair))
              for pair in ([0, 1], [2, 3])]
    h = builder.fadd(*halves)
    return builder.fadd(builder.extract_element(h, _I32(0)),
                        builder.extract_element(h, _I32(1)))


def _splat(builder, x):
    vty = ir.VectorType(x.type, _LANES)
    v = builder.insert_element(ir.Constant(vty, ir.Undefined), x, _I32(0))
    return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, _LANES),
                                                    [0] * _LANES))


@intrinsic
def _four_row_dots(typingctx, X, r, w, t, b):
    """``t[b + i] = X[r + i, :m] @ w[:m]`` for ``i < 4``, where ``m`` is the number of
    columns rounded down to a multiple of 8 (the caller adds the others).

    ``w`` is loaded once for the four rows; two accumulators a row hide the latency of
    the multiply-adds.
    """
    if not _contiguous(X, w, t):
        return None

    def codegen(context, builder, signature, args):
        Xty, rty, wty, tty, bty = signature.args
        xdata, (_, d) = _data(context, builder, Xty, args[0])
        wdata, _ = _data(context, builder, wty, args[2])
        tdata, _ = _data(context, builder, tty, args[3])
        r = context.cast(builder, args[1], rty, types.intp)
        b = context.cast(builder, args[4], bty, types.intp)
        rows = _rows(builder, xdata, r, d, 4)
        acc = [cgutils.alloca_once_value(builder, _const(0.0)) for _ in range(8)]
        with cgutils.for_range(builder, builder.lshr(d, d.type(3))) as loop:
            j = builder.shl(loop.index, d.type(3))
            j4 = builder.add(j, d.type(_LANES))
            w0, w1 = _lanes(builder, wdata, j), _lanes(builder, wdata, j4)
            for i, row in enumerate(rows):
                for a, col, wv in ((acc[2 * i], j, w0), (acc[2 * i + 1], j4, w1)):
                    builder.store(_fma(builder, _lanes(builder, row, col), wv,
                                       builder.load(a)), a)
        for i in range(4):
            s = builder.fadd(builder.load(acc[2 * i]), builder.load(acc[2 * i + 1]))
            builder.store(_lane_sum(builder, s), builder.gep(tdata, [builder.add(b, b.type(i))]))
        return context.get_dummy_value()
    return types.none(X, r, w, t, b), codegen


@intrinsic
def _block_columns(typingctx, X, r, slope, g, j0, j1, grad):
    """``grad[j] += sum_k slope[g + k] X[r + k, j]`` over the ``BLOCK`` rows from ``r``, for
    the columns ``j`` from ``j0`` on, 16 at a time while they fit before ``j1``; returns
    the first column left to the caller.

    The 16 slopes stay in registers; each 16 columns of ``grad`` are loaded and stored once.
    """
    if not _contiguous(X, slope, grad):
        return None

    def codegen(context, builder, signature, args):
        Xty, rty, sty, gty, j0ty, j1ty, grty = signature.args
        xdata, (_, d) = _data(context, builder, Xty, args[0])
        sdata, _ = _data(context, builder, sty, args[2])
        grdata, _ = _data(context, builder, grty, args[6])
        r, g, j0, j1 = (context.cast(builder, args[k], signature.args[k], types.intp)
                        for k in (1, 3, 4, 5))
        rows = _rows(builder, xdata, r, d, BLOCK)
        slopes = [_splat(builder, builder.load(builder.gep(sdata, [builder.add(g, g.type(k))])))
                  for k in range(BLOCK)]
        steps = builder.lshr(builder.sub(j1, j0), j0.type(4))
        with cgutils.for_range(builder, steps) as loop:
            j = builder.add(j0, builder.shl(loop.index, j0.type(4)))
            cols = [builder.add(j, j.type(_LANES * q)) for q in range(4)]
            ptrs = [builder.bitcast(builder.gep(grdata, [c]), _F64X4.as_pointer()) for c in cols]
            # two sums a column vector (the even and the odd rows): chains of 8 FMAs, not 16
            sums = [[builder.load(p, align=8) for p in ptrs],
                    [_const(0.0)] * len(cols)]
            for k, (row, s) in enumerate(zip(rows, slopes)):
                sums[k % 2] = [_fma(builder, _lanes(builder, row, c), s, a)
                               for c, a in zip(cols, sums[k % 2])]
            for p, a, o in zip(ptrs, *sums):
                builder.store(builder.fadd(a, o), p, align=8)
        return builder.add(j0, builder.shl(steps, j0.type(4)))
    return types.intp(X, r, slope, g, j0, j1, grad), codegen


def _estrin(builder, x, coefficients):
    # sum c_k x**k by Estrin's scheme (pairs c_2i + c_2i+1 x, then pairs of those in x**2,
    # ...): about log2(degree) multiply-adds deep, where Horner's rule is degree deep
    terms = [_const(c) for c in coefficients]
    power = x
    while len(terms) > 1:
        pairs = [_fma(builder, terms[i + 1], power, terms[i])
                 for i in range(0, len(terms) - 1, 2)]
        terms = pairs + terms[len(terms) - len(terms) % 2:]
        power = builder.fmul(power, power)
    return terms[0]


def _exp_neg(builder, x):
    """``exp(-x)`` of each lane, ``x >= 0``; 0 for ``x > 708`` (the exact value is below
    exp(-708) = 3.3e-308), NaN to 0 too (the caller's loss keeps the NaN).

    ``-x = n ln 2 + r`` with ``|r| <= ln(2) / 2``, a degree-12 Taylor polynomial of
    ``exp(r)`` (truncation below 2e-16 relative), times ``2**n`` built from its bits.
    """
    a = builder.fneg(builder.select(builder.fcmp_ordered("<", _const(_EXP_MAX), x),
                                    _const(_EXP_MAX), x))
    n = _vector_call(builder, "floor", _fma(builder, a, _const(_LOG2E), _const(0.5)))
    r = _fma(builder, builder.fneg(n), _const(_LN2_HI), a)
    r = _fma(builder, builder.fneg(n), _const(_LN2_LO), r)
    p = _estrin(builder, r, [1.0 / math.factorial(k) for k in range(13)])
    i64 = ir.VectorType(ir.IntType(64), _LANES)
    bits = builder.shl(builder.add(builder.fptosi(n, i64), ir.Constant(i64, [1023] * _LANES)),
                       ir.Constant(i64, [52] * _LANES))
    e = builder.fmul(p, builder.bitcast(bits, _F64X4))
    return builder.select(builder.fcmp_ordered("<=", x, _const(_EXP_MAX)), e, _const(0.0))


def _log1p_unit(builder, e):
    """``log(1 + e)`` of each lane, ``0 <= e <= 1``, to full relative precision even for
    tiny ``e``.

    ``log(1 + e) = 2 atanh(s)`` with ``s = e / (2 + e)`` in ``[0, 1/3]`` (``1 + e`` is never
    formed, so no bit of a tiny ``e`` is lost); the atanh series to ``s**35``, whose
    remainder is below ``9**-18 / 37``, about 1.8e-19 relative.
    """
    s = builder.fdiv(e, builder.fadd(_const(2.0), e))
    p = _estrin(builder, builder.fmul(s, s), [1.0 / k for k in range(1, 36, 2)])
    return builder.fmul(builder.fmul(_const(2.0), s), p)


@intrinsic
def _four_logistic(typingctx, t, y, start, b, loss, slope):
    """``log(1 + exp(-y t))`` and its derivative in ``t`` for the margins ``t[b:b + 4]``
    and the labels ``y[start + b:]``, into ``loss[b:b + 4]`` and ``slope[b:b + 4]``, a row
    a lane, without overflow for any ``|y t|``; NaN margins give NaN losses.

    With ``z = y t`` and ``e = exp(-|z|)`` in (0, 1]: ``loss = log1p(e) + max(-z, 0)`` and
    ``sigmoid(-z) = e / (1 + e)`` for ``z > 0``, ``1 / (1 + e)`` otherwise, by selects.
    """
    if not _contiguous(t, y, loss, slope):
        return None

    def codegen(context, builder, signature, args):
        tty, yty, sty, bty, lty, slty = signature.args
        start = context.cast(builder, args[2], sty, types.intp)
        b = context.cast(builder, args[3], bty, types.intp)
        tv = _lanes(builder, _data(context, builder, tty, args[0])[0], b)
        yv = _lanes(builder, _data(context, builder, yty, args[1])[0], builder.add(start, b))
        z = builder.fmul(yv, tv)
        e = _exp_neg(builder, _vector_call(builder, "fabs", z))
        p = builder.select(builder.fcmp_ordered(">", z, _const(0.0)), e, _const(1.0))
        # max(-z, 0): -z unless 0 is larger, so that a NaN stays
        nz = builder.fneg(z)
        tail = builder.select(builder.fcmp_ordered(">", _const(0.0), nz), _const(0.0), nz)
        lossv = builder.fadd(_log1p_unit(builder, e), tail)
        slopev = builder.fmul(builder.fneg(yv), builder.fdiv(p, builder.fadd(_const(1.0), e)))
        for ary, aty, v in ((args[4], lty, lossv), (args[5], slty, slopev)):
            ptr = builder.gep(_data(context, builder, aty, ary)[0], [b])
            builder.store(v, builder.bitcast(ptr, _F64X4.as_pointer()), align=8)
        return context.get_dummy_value()
    return types.none(t, y, start, b, loss, slope), codegen

@njit(inline="always")
def linear(t, y):
    """``0.5 (t - y)^2`` and its derivative ``t - y``."""
    r = t - y
    return 0.5 * r * r, r


@njit(nogil=True, fastmath={"contract"}, error_model="numpy")
def block_losses(model, t, y, start, n, loss, slope):
    """Row losses and slopes ``d loss / d t`` of the margins ``t[:n]`` with labels
    ``y[start:start + n]``, into ``loss[:n]`` and ``slope[:n]``."""
    if model == LOGISTIC:
        full = n - n % 4
        for b in range(0, full, 4):
            _four_logistic(t, y, start, b, loss, slope)
        if full < n:
            # the last rows through four padded lanes (margin 0, label 1), not past y's end
            pad = np.zeros((4, 4))
            pad[1, :] = 1.0
            pad[0, :n - full] = t[full:n]
            pad[1, :n - full] = y[start + full:start + n]
            _four_logistic(pad[0], pad[1], 0, 0, pad[2], pad[3])
            loss[full:n] = pad[2, :n - full]
            slope[full:n] = pad[3, :n - full]
    else:
        for b in range(n):
            loss[b], slope[b] = linear(t[b], y[start + b])


@njit(inline="always", nogil=True, fastmath={"contract"}, error_model="numpy")
def full_block_losses(model, t, y, start, loss, slope):
    """:func:`block_losses` of a whole dense block of ``BLOCK`` rows: logistic four rows at
    a time in explicit vectors, linear in LLVM's SIMD loop (a constant trip count, no
    scalar remainder; a slice of ``y``, no signed subscript per label)."""
    if model == LOGISTIC:
        for b in range(0, LOSS_BLOCK, 4):
            _four_logistic(t, y, start, b, loss, slope)
    else:
        ys = y[start:start + BLOCK]
        for b in range(BLOCK):
            loss[b], slope[b] = linear(t[b], ys[b])

_FASTMATH = {"reassoc", "contract"}
_JIT = {"nogil": True, "fastmath": _FASTMATH, "error_model": "numpy"}
_CSR_JIT = {**_JIT, "fastmath": {"contract"}}


@njit(inline="always", **_JIT)
def _dense_dot(X, r, w):
    t = 0.0
    for j in range(X.shape[1]):
        t += X[r, j] * w[j]
    return t


@njit(inline="always", **_CSR_JIT)
def _csr_dot(data, indices, indptr, r, w):
    # four independent sums hide the add latency (faster than LLVM's gathers in the loop)
    lo, hi = np.uintp(indptr[r]), np.uintp(indptr[r + 1])
    t0 = t1 = t2 = t3 = 0.0
    k = lo
    # unsigned positions and indices: Numba tests every signed subscript for wraparound;
    # the constants are unsigned too, or Numba would promote the sums to float
    one, two, three, four = np.uintp(1), np.uintp(2), np.uintp(3), np.uintp(4)
    while k + four <= hi:
        t0 += data[k] * w[np.uintp(indices[k])]
        t1 += data[k + one] * w[np.uintp(indices[k + one])]
        t2 += data[k + two] * w[np.uintp(indices[k + two])]
        t3 += data[k + three] * w[np.uintp(indices[k + three])]
        k += four
    while k < hi:
        t0 += data[k] * w[np.uintp(indices[k])]
        k += one
    return (t0 + t1) + (t2 + t3)


@njit(inline="always", **_CSR_JIT)
def _csr_axpy(data, indices, indptr, r, s, grad):
    # grad += s * row r; unrolled by hand and unsigned like the dot
    k, hi = np.uintp(indptr[r]), np.uintp(indptr[r + 1])
    one, two, three, four = np.uintp(1), np.uintp(2), np.uintp(3), np.uintp(4)
    while k + four <= hi:
        grad[np.uintp(indices[k])] += s * data[k]
        grad[np.uintp(indices[k + one])] += s * data[k + one]
        grad[np.uintp(indices[k + two])] += s * data[k + two]
        grad[np.uintp(indices[k + three])] += s * data[k + three]
        k += four
    while k < hi:
        grad[np.uintp(indices[k])] += s * data[k]
        k += one


@njit(inline="always", **_CSR_JIT)
def _csr_prefetch(data, indices, indptr, r):
    # the lines of data and indices CSR_PREFETCH entries beyond row r's, one per 8 entries
    # (a line of 8-byte items; a constant step: a.itemsize would be read at run time);
    # past the end of the arrays a prefetch is a no-op (Numba's item pointer is no
    # inbounds GEP)
    ahead = np.uintp(CSR_PREFETCH)
    lo, hi = np.uintp(indptr[r]) + ahead, np.uintp(indptr[r + 1]) + ahead
    for k in range(lo, hi, 8):
        _prefetch_entry_to_l2(data, k)
        _prefetch_entry_to_l2(indices, k)


@njit(inline="always")
def _intercept_slopes(intercept, slope, n, grad, d):
    # the intercept's gradient: the sum of the block's slopes
    if intercept:
        s = 0.0
        for b in range(n):
            s += slope[b]
        grad[d] += s


def _row_slice_columns(X):
    """Columns of ``X`` in ``COLUMN_CHUNK_BYTES`` of a row (a constant: X.itemsize is read
    at run time, and the column pass needs a constant trip count)."""


@overload(_row_slice_columns, inline="always")
def _row_slice_columns_impl(X):
    columns = COLUMN_CHUNK_BYTES // (X.dtype.bitwidth // 8)
    return lambda X: columns


def _widened(X):
    """Whether ``X``'s rows are float32, computed in the explicit vector loops (a constant)."""


@overload(_widened, inline="always")
def _widened_impl(X):
    widened = X.dtype == types.float32
    return lambda X: widened


@njit(inline="always", **_JIT)
def _four_row_dots_rest(X, r, w, t, b, b0):
    # t[b:b + 4] += the columns _four_row_dots leaves, and the intercept
    d = X.shape[1]
    for i in range(4):
        s = t[b + i] + b0
        for j in range(d - d % 8, d):
            s += X[r + i, j] * w[j]
        t[b + i] = s


@njit(inline="always")
def _prefetch_upto(X, pf, target, line):
    # the lines of X from element pf of its flat C order up to target: X[0, pf] (Numba's
    # item pointer of a C array is its flat position, with no bounds or wraparound test)
    while pf < target:
        _prefetch_to_l2(X, 0, pf)
        pf += line
    return pf


@njit(inline="always", **_JIT)
def _column_group(X, r, slope, g, j0, j1, grad):
    # grad[j0:j1] += the BLOCK rows from r, times slope[g:g + BLOCK]: a constant trip count
    # over the rows, so LLVM unrolls them and vectorises the columns; four partial sums, or
    # each column vector waits on a chain of 16 FMAs; unsigned rows and columns: no
    # wraparound select per row and subscript
    for j in range(np.uintp(j0), np.uintp(j1)):
        a0, a1, a2, a3 = grad[j], 0.0, 0.0, 0.0
        for b in range(0, BLOCK, 4):
            rb = r + np.uintp(b)
            a0 += slope[g + b] * X[rb, j]
            a1 += slope[g + b + 1] * X[rb + np.uintp(1), j]
            a2 += slope[g + b + 2] * X[rb + np.uintp(2), j]
            a3 += slope[g + b + 3] * X[rb + np.uintp(3), j]
        grad[j] = (a0 + a1) + (a2 + a3)


@njit(inline="always", **_JIT)
def _block_column_range(X, r, slope, g, j0, j1, grad):
    # the column pass of the BLOCK rows from r over columns [j0, j1): float32 in the
    # explicit vector loop, the columns it leaves (and float64) in LLVM's
    if _widened(X):
        j0 = _block_columns(X, r, slope, g, j0, j1, grad)
    _column_group(X, r, slope, g, j0, j1, grad)


@njit(cache=True, **_JIT)
def dense(model, X, y, w, start, stop, grad, intercept):
    """Rows ``[start, stop)`` of a C-contiguous 2-D ``X``: add the gradient, return the loss
    sum (``intercept``: ``w[d]`` is added to each margin, the slopes' sum to ``grad[d]``).
    """
    return _dense_256_bit_vectors(model, X, y, w, start, stop, grad, intercept)


@njit(**_JIT)
def _dense_256_bit_vectors(model, X, y, w, start, stop, grad, intercept):
    _prefer_256_bit_vectors(X)
    return _dense_rows(model, X, y, w, start, stop, grad, intercept)


@njit(inline="always", **_JIT)
def _dense_rows(model, X, y, w, start, stop, grad, intercept):
    d = X.shape[1]
    b0 = w[d] if intercept else 0.0
    line = _CACHE_LINE // X.itemsize
    scratch = np.empty((3, LOSS_BLOCK))
    t, loss, slope = scratch[0], scratch[1], scratch[2]
    rows = LOSS_BLOCK if model == LOGISTIC else BLOCK
    ahead = PREFETCH_ROWS
    # the dots ask for half a row each, the column pass, in slices of COLUMN_CHUNK_BYTES
    # of each row, for the other half
    chunk = _row_slice_columns(X)
    chunks = d // chunk
    # the prefetch target's advance per slice: half a row per row of the pass
    chunk_step = BLOCK * d // (2 * chunks) if chunks > 0 else 0
    end = stop * d
    pf = min((start + ahead) * d, end)
    total = 0.0
    for r0 in range(start, stop, rows):
        n = min(rows, stop - r0)
        # the rows `ahead` further on are asked for during this block's dots and column
        # pass, so that memory streams while they compute
        base = (r0 + ahead) * d
        # float32: four rows at a time, the rest one by one
        grouped = n - n % 4 if _widened(X) else 0
        for b in range(0, grouped, 4):
            pf = _prefetch_upto(X, pf, min(base + (b + 4) * d // 2, end), line)
            _four_row_dots(X, r0 + b, w, t, b)
            _four_row_dots_rest(X, r0 + b, w, t, b, b0)
        for b in range(grouped, n):
            pf = _prefetch_upto(X, pf, min(base + (b + 1) * d // 2, end), line)
            t[b] = _dense_dot(X, r0 + b, w) + b0
        if n == rows:
            full_block_losses(model, t, y, r0, loss, slope)
        else:
            block_losses(model, t, y, r0, n, loss, slope)
        for b in range(n):
            total += loss[b]
        _intercept_slopes(intercept, slope, n, grad, d)
        for g in range(0, n, BLOCK):
            if g + BLOCK <= n:
                r = np.uintp(r0 + g)
                step0 = base + (n + g) * d // 2
                for c in range(chunks):
                    pf = _prefetch_upto(X, pf, min(step0 + (c + 1) * chunk_step, end), line)
                    _block_column_range(X, r, slope, g, c * chunk, (c + 1) * chunk, grad)
                _block_column_range(X, r, slope, g, chunks * chunk, d, grad)
                pf = _prefetch_upto(X, pf, min(base + (n + g + BLOCK) * d // 2, end), line)
            else:
                for b in range(g, n):
                    for j in range(d):
                        grad[j] += slope[b] * X[r0 + b, j]
    return total


@njit(inline="always", **_CSR_JIT)
def _csr_linear_rows(data, indices, indptr, y, w, start, stop, grad, intercept, b0):
    d = w.shape[0] - 1
    total = 0.0
    for r in range(start, stop):
        _csr_prefetch(data, indices, indptr, r)
        loss, slope = linear(_csr_dot(data, indices, indptr, r, w) + b0, y[r])
        total += loss
        if intercept:
            grad[d] += slope
        _csr_axpy(data, indices, indptr, r, slope, grad)
    return total


@njit(cache=True, **_CSR_JIT)
def csr(model, data, indices, indptr, y, w, start, stop, grad, intercept):
    """Rows ``[start, stop)`` of a CSR matrix given by its three arrays (scipy.sparse
    layout); ``intercept`` as in :func:`dense`, with ``d = len(w) - 1``."""
    d = w.shape[0] - 1
    b0 = w[d] if intercept else 0.0
    if model == LINEAR:
        return _csr_linear_rows(data, indices, indptr, y, w, start, stop, grad, intercept, b0)
    scratch = np.empty((3, CSR_BLOCK))
    t, loss, slope = scratch[0], scratch[1], scratch[2]
    total = 0.0
    for r0 in range(start, stop, CSR_BLOCK):
        n = min(CSR_BLOCK, stop - r0)
        for b in range(n):
            _csr_prefetch(data, indices, indptr, r0 + b)
            t[b] = _csr_dot(data, indices, indptr, r0 + b, w) + b0
        block_losses(model, t, y, r0, n, loss, slope)
        for b in range(n):
            total += loss[b]
        _intercept_slopes(intercept, slope, n, grad, d)
        for b in range(n):
            _csr_axpy(data, indices, indptr, r0 + b, slope[b], grad)
    return total
