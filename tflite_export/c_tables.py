"""TANH and LOGISTIC as 256-entry int8 tables, computed by TFLite Micro's own integer routine.

An int8 TANH/LOGISTIC has 256 possible inputs per layer, so the gemmlowp
routine the C kernels transcribe (an exp polynomial and three Newton-Raphson
steps: about 20 64-bit multiplies per neuron, ~370 instructions on a
Cortex-M4, ~1,180 on an M0+) can be run once, here, for all of them; the board
then does one load per neuron. A table stores only the inputs between its saturated ends
(``trim``): TANH is ±1 beyond |x| ≈ 2.6, so a layer whose pre-activations
span ±10 needs about 70 entries, not 256, and the kernel clamps its input to
the stored span. Both tables are moreover odd about the input zero point
(gemmlowp rounds symmetrically, and LOGISTIC's output level 0 is 1/2), so
they keep one side only (``odd_half``, checked on every input, else the
trimmed table); on CartPole's actor the two cut 512 B of tables to 165 B. The computed routine stays available
(``c_tanh="computed"``) for parts short of flash.

This is the C text of tflite_export.c_kernels operation by operation on Python
integers (wrapped to int32 where C wraps), so each table entry is what the
computed kernel, and hence TFLite Micro, returns for that input; the tests
check all 256 entries of every layer against both.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
#: The choices of ``c_tanh`` / ``--c_tanh``.
ACTIVATION_KERNELS = ("table", "computed")
_EXP_MINUS_POT = (1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242)


def _i32(x: int) -> int:
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _trunc_shift(x: int, e: int) -> int:
    return x >> e if x >= 0 else -((-x) >> e)


def _mul_high(a: int, b: int) -> int:
    if a == INT32_MIN and b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    ab += (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return _i32(_trunc_shift(ab, 31))


def _div_pot(x: int, e: int) -> int:
    if e == 0:
        return x
    mask = (1 << e) - 1
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if (x & mask) > threshold else 0)


def _requantize(x: int, m: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    return _div_pot(_mul_high(_i32(x << left), m), right)


def _shl_sat(x: int, e: int) -> int:
    limit = (1 << (31 - e)) - 1
    if x > limit:
        return INT32_MAX
    if x < -limit:
        return INT32_MIN
    return _i32(x << e)


def _exp_negative(a: int, integer_bits: int) -> int:
    fractional_bits = 31 - integer_bits
    quarter = 1 << (fractional_bits - 2)
    a_mod = _i32((a & (quarter - 1)) - quarter)
    remainder = _i32(a_mod - a)
    x = _i32(_shl_sat(a_mod, integer_bits) + (1 << 28))
    x2 = _mul_high(x, x)
    x3 = _mul_high(x2, x)
    x4 = _mul_high(x2, x2)
    poly = _div_pot(_i32(_mul_high(_i32(_div_pot(x4, 2) + x3), 715827883) + x2), 1)
    result = _i32(1895147668 + _mul_high(1895147668, _i32(x + poly)))
    i = 0
    while i < 7 and i - 2 < integer_bits:
        if remainder & _i32(1 << (fractional_bits - 2 + i)):
            result = _mul_high(result, _EXP_MINUS_POT[i])
        i += 1
    return INT32_MAX if a == 0 else result


def _inverse_half_sum(a: int) -> int:
    total = a + INT32_MAX
    total += 1 if total >= 0 else -1
    half = _i32(_trunc_shift(total, 1))
    x = _i32(1515870810 + _mul_high(half, -1010580540))
    for _ in range(3):
        x = _i32(x + _shl_sat(_mul_high(x, _i32((1 << 29) - _mul_high(half, x))), 2))
    return x


def _core(act: str, a: int) -> int:
    if act == "tanh":
        t = 0
        if a != 0:
            t = _shl_sat(_i32(_inverse_half_sum(_exp_negative(a if a < 0 else -a, 5)) - (1 << 29)), 2)
            t = _i32(-t) if a < 0 else t
        return _div_pot(t, 24)
    s = 1 << 30
    if a != 0:
        p = _shl_sat(_inverse_half_sum(_exp_negative(-a if a > 0 else a, 4)), 1)
        s = p if a > 0 else _i32(INT32_MAX - p)
    return _div_pot(s, 23) - 128


def activation_table(act: str, zero_point: int, radius: int, m: int, shift: int) -> List[int]:
    """The int8 output of TFLM's ``act`` ("tanh" or "logistic") for inputs -128..127, in that order,
    with the layer's input zero point and Prepare's (radius, multiplier, shift)."""
    if act not in ("tanh", "logistic"):
        raise ValueError(f"no table for activation {act!r}")
    table = []
    for q in range(-128, 128):
        x = q - zero_point
        if x <= -radius:
            out = -128
        elif x >= radius:
            out = 127
        else:
            out = min(127, max(-128, _core(act, _requantize(x, m, shift))))
        table.append(out)
    return table


def trim(table: Sequence[int]) -> Tuple[int, List[int]]:
    """(lo, entries): the part of a 256-entry table (inputs -128..127) that is not its saturated ends.

    Every input below ``lo`` has the output of ``lo`` and every input above ``lo + len(entries) - 1``
    that of the last entry, so clamping the input to that span and reading ``entries[q - lo]`` is the
    whole table, exactly; the flash saved is what a tight input scale leaves saturated.
    """
    if len(table) != 256:
        raise ValueError(f"a table has 256 entries, not {len(table)}")
    first = 0
    while first < 255 and table[first + 1] == table[0]:
        first += 1
    last = 255
    while last > first and table[last - 1] == table[255]:
        last -= 1
    return first - 128, list(table[first:last + 1])


def expand_trimmed(lo: int, entries: Sequence[int]) -> List[int]:
    """The outputs for inputs -128..127 of a trimmed table, as the C kernel ``ap_lookup`` reads it."""
    hi = lo + len(entries) - 1
    return [entries[min(max(q, lo), hi) - lo] for q in range(-128, 128)]


def expand_odd(half: Sequence[int], zero_point: int) -> List[int]:
    """The outputs for inputs -128..127 of half a table, as the C kernel ``ap_lookup_odd`` reads it:
    entry d is the output for zero_point - d, its negation (at most 127) that for zero_point + d, and
    entries beyond the last repeat it."""
    last = len(half) - 1
    out = []
    for q in range(-128, 128):
        d = q - zero_point
        out.append(half[min(-d, last)] if d <= 0 else min(127, -half[min(d, last)]))
    return out


def odd_half(table: Sequence[int], zero_point: int) -> Optional[List[int]]:
    """Half of a TANH/LOGISTIC table (``expand_odd`` gives it back), or None where the table is not odd about
    ``zero_point``; the caller then keeps the trimmed table. Checked on all 256 inputs, so a half table
    is exact by construction."""
    if len(table) != 256:
        raise ValueError(f"a table has 256 entries, not {len(table)}")
    half = []
    for d in range(max(zero_point + 128, 127 - zero_point) + 1):
        if zero_point - d >= -128:
            half.append(table[zero_point - d + 128])
        else:  # only the upper side exists: its negation (-128 where it saturates at 127)
            above = table[zero_point + d + 128]
            half.append(-128 if above == 127 else -above)
    while len(half) > 1 and half[-1] == half[-2]:
        half.pop()
    return half if expand_odd(half, zero_point) == list(table) else None
