"""log and exp for the generator's data path, from IEEE-754 basic operations only: the same bits on every machine.

numpy's np.log / np.exp / np.power pick SIMD or scalar implementations by CPU feature, and those differ in the last
bits (an AVX-512 and an AVX2 machine gave different float32 logs, hence different MQAR bytes for one seed). The
functions here use only +, -, *, /, rint, integer and bit operations and ldexp, each of which IEEE-754 defines exactly
(correctly rounded), so every machine and every numpy SIMD path computes the same result. numpy never contracts
separate ufunc calls into fused multiply-adds, so each step rounds exactly once as written.

log(x) = e·ln2 + log(z): x = z·2**e with z in [sqrt(1/2), sqrt(2)) split off the bit pattern with integer operations,
log(z) = 2·atanh(s) = s·(2 + R(s²)), s = (z-1)/(z+1), |s| < 0.172, R a minimax polynomial: for float32 3 terms
(fitted for this module; 8e-10 relative before rounding: the result is within 2.1e-7 of log, float32 np.log within
2.7e-7, over all u the generator draws), for float64 the 7 of FreeBSD/musl's log (within a few 1e-16).
exp(y) = 2**k·exp(r): k = rint(y/ln2), r = y - k·ln2 (ln2 split in two: k·LN2_HI is exact), |r| <= ln2/2,
exp(r) by its Taylor polynomial of degree 13 (truncation < 1e-17).
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import numpy as np


class _Layout(NamedTuple):
    bits: type  # the integer type of the same width
    mantissa_bits: int
    bias: int
    sqrt_half_bits: int  # bit pattern of (about) sqrt(1/2): reduced mantissas z start there
    log_coefficients: tuple[float, ...]  # R(w) = c1·w + c2·w² + ..., w = s²


_LAYOUTS = {
    np.dtype(np.float32): _Layout(
        np.int32, 23, 127, 0x3F3504F3, (0.666667760496, 0.399775788301, 0.298707990001)
    ),  # 3 terms fitted here (relative error 8e-10 before float32 rounding), one less than logf's 4
    np.dtype(np.float64): _Layout(
        np.int64,
        52,
        1023,
        0x3FE6A09E667F3BCD,
        (
            6.666666666666735130e-01,
            3.999999999940941908e-01,
            2.857142874366239149e-01,
            2.222219843214978396e-01,
            1.818357216161805012e-01,
            1.531383769920937332e-01,
            1.479819860511658591e-01,
        ),
    ),
}
LN2 = 0.6931471805599453
LN2_HI = 6.93147180369123816490e-01  # 32 significant bits: k·LN2_HI is exact for |k| < 2**20
LN2_LO = 1.90821492927058770002e-10


def log_in_place(
    x: np.ndarray,
    exponent: Optional[np.ndarray] = None,
    scratch: Optional[np.ndarray] = None,
    polynomial: Optional[np.ndarray] = None,
) -> None:
    """x <- log(x) for positive normal float32 or float64 `x` (C-contiguous). `exponent` (integers of x's width),
    `scratch` and `polynomial` (x's dtype), all of x's shape, are work buffers: pass them to reuse memory."""
    layout = _LAYOUTS[x.dtype]
    bits = x.view(layout.bits)
    exponent = np.empty(x.shape, dtype=layout.bits) if exponent is None else exponent
    scratch = np.empty_like(x) if scratch is None else scratch
    polynomial = np.empty_like(x) if polynomial is None else polynomial
    float_type = x.dtype.type
    # t = bits of x plus (one - sqrt(1/2)): its exponent field is e + bias, its mantissa field that of z.
    np.add(bits, layout.bits((layout.bias << layout.mantissa_bits) - layout.sqrt_half_bits), out=exponent)
    np.bitwise_and(exponent, layout.bits((1 << layout.mantissa_bits) - 1), out=bits)
    bits += layout.bits(layout.sqrt_half_bits)  # x now holds z
    exponent >>= layout.bits(layout.mantissa_bits)  # t is positive for normal x: a plain shift
    exponent -= layout.bits(layout.bias)
    np.add(x, float_type(1), out=scratch)
    x -= float_type(1)  # exact (Sterbenz)
    x /= scratch  # s
    np.multiply(x, x, out=scratch)  # w = s²
    coefficients = layout.log_coefficients
    np.multiply(scratch, float_type(coefficients[-1]), out=polynomial)
    for coefficient in coefficients[-2::-1]:
        polynomial += float_type(coefficient)
        polynomial *= scratch
    polynomial += float_type(2)  # 2 + R(w)
    x *= polynomial  # log(z)
    np.copyto(scratch, exponent, casting="unsafe")  # e, exact
    scratch *= float_type(LN2)  # one rounding: float32(ln2) is within 3e-9 (relative) of ln2
    x += scratch


def log(x: np.ndarray) -> np.ndarray:
    """log of a positive normal float32 or float64 array, the same bits on every machine."""
    result = np.array(x, copy=True, order="C")
    log_in_place(result)
    return result


def exp(y: np.ndarray) -> np.ndarray:
    """exp of a float64 array (relative error a few 1e-16), the same bits on every machine."""
    y = np.asarray(y, dtype=np.float64)
    k = np.rint(y * (1 / LN2))
    r = y - k * LN2_HI
    r -= k * LN2_LO
    result = np.full_like(r, 1 / math.factorial(13))
    for degree in range(12, 0, -1):  # Horner: sum r**j / j!
        result *= r
        result += 1 / math.factorial(degree)
    result *= r
    result += 1.0
    return np.ldexp(result, k.astype(np.intc))  # exact scaling by 2**k
