"""parse_block's status codes and the number tables of :mod:`mpigc.data._parse`.

Apart from the loops, without Numba: a rank that loads the loops ahead-of-time compiled
(:mod:`mpigc.kernels._aot`) reads its codes and passes its tables from here. The tables
are arguments of the loops, not globals compiled into them; the codes are compiled in,
so they never change (the ahead-of-time key covers this file too).
"""

import numpy as np

# parse_block status codes (the row and the byte position come back with them)
OK, BAD_LINE, OUT_OF_RANGE, SHORT, FULL = range(5)
_MIN_EXP10, _MAX_EXP10 = -342, 308


def _powers_of_ten():
    """128-bit mantissas of 10**q, q in [_MIN_EXP10, _MAX_EXP10], rounded down (hi, lo)."""
    hi, lo = [], []
    for q in range(_MIN_EXP10, _MAX_EXP10 + 1):
        if q >= 0:
            v = 10 ** q
            bits = v.bit_length()
            m = v >> (bits - 128) if bits > 128 else v << (128 - bits)
        else:
            d = 10 ** -q
            m = (1 << (d.bit_length() + 127)) // d
        hi.append(m >> 64)
        lo.append(m & ((1 << 64) - 1))
    return np.array(hi, dtype=np.uint64), np.array(lo, dtype=np.uint64)


POW_HI, POW_LO = _powers_of_ten()
EXACT_POW = np.array([10.0 ** k for k in range(23)])   # exact float64 powers of ten
