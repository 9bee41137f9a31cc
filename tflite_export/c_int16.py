"""The int16 fixed-point input: a sensor's integer reading in, the int8 input out, no float.

A board's sensors deliver integers (ADC counts, encoder ticks, Q-format
values). The float wrapper quantises an observation with a subtraction, a
multiplication and a division per feature, which on a Cortex-M0+ or an M4
without FPU pulls in the soft-float library (kilobytes). ``<prefix>_int16_q``
takes each feature as an int16 ``x`` with ``observation = x * LSB[i]`` and
maps it to the int8 input with one multiply, one add and one shift:

    x < X_LOW[i]: q = Q_LOW;  x > X_HIGH[i]: q = Q_HIGH       (counted as saturated)
    otherwise:    q = clamp((((x - X_LOW[i]) * MULT[i] + ADD[i]) >> SHIFT[i]) - 256, -128, 127)

``MULT < 2^15`` and ``SHIFT <= 22`` keep ``d * MULT + ADD`` below 2^32, so
the products are 32-bit (no ``__aeabi_lmul`` on a Cortex-M0+). ``X_LOW`` and
``X_HIGH`` are the counts of the int8 input's range, so the count of clamped
features is the same saturation flag the float wrappers return, and a clamped
feature gets the q the float wrapper gives the range's end. Inside, ``q``
is the float quantiser's rounded half up instead of half away from zero,
with the multiplier's rounding error a few thousandths of an int8 step over the
whole range (``Int16Input.max_error_steps``, below 2^-6 in the tests), so it differs from the float path by
at most one step, and only on observations within that error of a rounding
boundary.

``LSB`` is the user's (``--int16_lsb``: what one count of each sensor is
worth, in the observation's units) or, by default, a power of two per
feature (Q-format: ``x = round(observation * 2^FRAC_BITS[i])``) chosen so
that twice the range's largest magnitude still fits in an int16.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np

from dsp_tf.errors import UsageError
from tflite_export.c_int8 import c_float_literal
from tflite_export.tflite_graph import UnsupportedForC

INT16_MIN, INT16_MAX = -32768, 32767
#: The multiplier stays below 2^15 and the shift at most 22: d * MULT + ADD < 2^32 for every int16 d.
_MULT_LIMIT, _MAX_SHIFT = (1 << 15) - 1, 22
#: ADD carries this many int8 steps on top, so that it is positive even where the range's low end
#: rounds below -128 (the converter's zero point can put it there).
_BIAS = 256


@dataclass(frozen=True)
class Int16Input:
    """Per feature: the LSB (raw units per count), the range in counts and the fixed-point map."""

    lsb: np.ndarray  # float64
    frac_bits: Optional[np.ndarray]  # the Q-format's fraction bits when the LSB is the default power of two
    x_low: np.ndarray  # int64, inclusive
    x_high: np.ndarray
    multiplier: np.ndarray
    add: np.ndarray
    shift: np.ndarray
    q_low: int  # the int8 input of a feature below / above its range (the float wrapper's at the range's end)
    q_high: int
    max_error_steps: float  # the largest difference from the exact affine map, in int8 steps

    def quantize(self, x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(int8 input, features clamped per observation): what ``<prefix>_quantize_int16`` computes."""
        x = np.atleast_2d(np.asarray(x, np.int64))
        below, above = x < self.x_low, x > self.x_high
        d = np.clip(x, self.x_low, self.x_high) - self.x_low
        q = np.clip(((d * self.multiplier + self.add) >> self.shift) - _BIAS, -128, 127)
        q = np.where(below, self.q_low, np.where(above, self.q_high, q))
        return q.astype(np.int8), np.sum(below | above, axis=1)

    def counts(self, observations: np.ndarray) -> np.ndarray:
        """Raw observations as a board would read them: round(observation / LSB), clamped to int16."""
        obs = np.asarray(observations, np.float64)
        return np.clip(np.round(obs / self.lsb), INT16_MIN, INT16_MAX).astype(np.int16)

    def to_dict(self) -> dict:
        return {"lsb": [float(v) for v in self.lsb],
                "frac_bits": None if self.frac_bits is None else [int(v) for v in self.frac_bits],
                "x_low": [int(v) for v in self.x_low], "x_high": [int(v) for v in self.x_high],
                "multiplier": [int(v) for v in self.multiplier], "add": [int(v) for v in self.add],
                "shift": [int(v) for v in self.shift], "q_low": self.q_low, "q_high": self.q_high,
                "max_error_steps": self.max_error_steps,
                # above 1, one count moves the int8 input by more than a step: the int16 reading is the coarser
                "int8_steps_per_count": [float(m) / 2.0 ** int(s) for m, s in zip(self.multiplier, self.shift)]}


def parse_lsb(text: Optional[str], obs_dim: int) -> Optional[np.ndarray]:
    """``--int16_lsb``: one positive number for every feature, or one per feature; None: the default."""
    if text is None or not text.strip():
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"--int16_lsb '{text}' is not a comma-separated list of numbers") from None
    if len(values) == 1:
        values *= obs_dim
    if len(values) != obs_dim:
        raise UsageError(f"--int16_lsb has {len(values)} values; the observation has {obs_dim} features")
    if not all(np.isfinite(v) and v > 0 for v in values):
        raise UsageError(f"--int16_lsb '{text}': every LSB must be a finite number > 0")
    return np.asarray(values, np.float64)


def fit_int16_input(low: np.ndarray, high: np.ndarray, slope: np.ndarray, intercept: np.ndarray,
                    q_outside: Tuple[int, int], inside: Callable[[np.ndarray], np.ndarray],
                    lsb: Optional[np.ndarray] = None) -> Int16Input:
    """The fixed-point map for the int8 input whose pre-rounding value is ``slope * obs + intercept``
    (zero point included) over ``[low, high]``, the range the int8 input covers; ``q_outside`` is
    the int8 input below and above it, ``inside`` the float wrappers' own test of a raw observation
    (per feature), which decides the counts at the range's ends: an observation on the end itself
    (Hopper's velocities clipped at exactly 10) must be inside for both paths or for neither."""
    low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise UnsupportedForC("the int16 input needs a finite input range for every feature")
    frac_bits = None
    if lsb is None:
        magnitude = np.maximum(np.maximum(np.abs(low), np.abs(high)), 1e-30)
        frac_bits = np.clip(np.floor(np.log2((INT16_MAX // 2) / magnitude)), -16, 30).astype(np.int64)
        lsb = np.ldexp(1.0, -frac_bits)
    lsb = np.asarray(lsb, np.float64)
    beyond = np.flatnonzero((np.ceil(low / lsb) < INT16_MIN) | (np.floor(high / lsb) > INT16_MAX))
    if beyond.size:  # only a user's LSB can do this: the default leaves room for twice the range
        i = int(beyond[0])
        raise UsageError(f"--int16_lsb: feature {i}'s input range [{low[i]:.6g}, {high[i]:.6g}] needs counts "
                         f"beyond int16 at an LSB of {lsb[i]:.6g} (use a coarser LSB)")
    x_low = _edge(np.ceil(low / lsb), lsb, inside, -1)
    x_high = _edge(np.floor(high / lsb), lsb, inside, 1)
    narrow = np.flatnonzero(x_high - x_low < 1)  # one count or none: the feature would be a constant
    if narrow.size:
        i = int(narrow[0])
        where = f"feature {i}'s input range [{low[i]:.6g}, {high[i]:.6g}] is narrower than one count of {lsb[i]:.6g}"
        if frac_bits is None:
            raise UsageError(f"--int16_lsb: {where} (use a finer LSB)")
        # a far offset with a narrow range: no power of two both holds the values and resolves the range
        raise UnsupportedForC(f"no int16 entry point: {where}, the finest LSB whose counts hold its values "
                              "(give the sensor's own with --int16_lsb)")
    steps = np.asarray(slope, np.float64) * lsb  # int8 steps per count
    at_low = np.asarray(slope, np.float64) * x_low * lsb + np.asarray(intercept, np.float64)
    shift = np.minimum(_MAX_SHIFT, np.floor(np.log2(_MULT_LIMIT / steps))).astype(np.int64)
    multiplier = np.round(np.ldexp(steps, shift)).astype(np.int64)
    add = np.round(np.ldexp(at_low + 0.5 + _BIAS, shift)).astype(np.int64)
    if np.any(multiplier == 0) or np.any(add < 0) or np.any(add + multiplier * (x_high - x_low) >= 1 << 32):
        raise UnsupportedForC("the int16 input's fixed-point map does not fit 32 bits")
    span = (x_high - x_low).astype(np.float64)
    error = (np.abs(multiplier - np.ldexp(steps, shift)) * span + 0.5) / np.ldexp(1.0, shift)
    return Int16Input(lsb, frac_bits, x_low, x_high, multiplier, add, shift, int(q_outside[0]), int(q_outside[1]),
                      float(error.max()))


def _edge(guess: np.ndarray, lsb: np.ndarray, inside: Callable[[np.ndarray], np.ndarray], direction: int
          ) -> np.ndarray:
    """The last count, going ``direction`` from ``guess``, that the float wrappers take as inside
    (``guess`` is within a count or two of it: float32 rounding at the range's end)."""
    def ok(x: np.ndarray) -> np.ndarray:
        return inside((x * lsb).astype(np.float32)[None, :])[0]

    x = np.clip(guess, INT16_MIN, INT16_MAX).astype(np.int64)
    for _ in range(4):
        x = np.where(~ok(x), x - direction, x)  # back inside
    for _ in range(4):
        step = np.clip(x + direction, INT16_MIN, INT16_MAX)
        x = np.where(ok(step), step, x)  # as far out as the float test allows
    return x


def c_parts(fixed: Int16Input, ident: str, upper: str, obs_dim: int) -> Tuple[str, str, str]:
    """(header macros, declarations, source) of ``<ident>_quantize_int16`` and ``<ident>_int16_q``."""
    ints = lambda values: "{" + ", ".join(str(int(v)) for v in values) + "}"  # noqa: E731
    lsb = "{" + ", ".join(c_float_literal(v) for v in fixed.lsb) + "}"  # float literals: exact 2^-k
    macros = ("/* int16 input: observation[i] = x[i] * INT16_LSB[i]; counts outside [INT16_LOW, INT16_HIGH] are\n"
              "   clamped (and counted as saturated) before the fixed-point map to the int8 input. */\n"
              f"#define {upper}_INT16_LSB {lsb}\n"
              + (f"#define {upper}_INT16_FRAC_BITS {ints(fixed.frac_bits)}  /* x = round(obs * 2^FRAC_BITS) */\n"
                 if fixed.frac_bits is not None else "")
              + f"#define {upper}_INT16_LOW {ints(fixed.x_low)}\n#define {upper}_INT16_HIGH {ints(fixed.x_high)}\n"
              f"#define {upper}_INT16_Q_LOW ({fixed.q_low})  /* the int8 input of a count below INT16_LOW */\n"
              f"#define {upper}_INT16_Q_HIGH ({fixed.q_high})  /* ... above INT16_HIGH */\n")
    declarations = (
        "/* int16 sensor counts in (observation = x * LSB), integer only; return the features clamped. */\n"
        f"int {ident}_quantize_int16(const int16_t x[{upper}_OBSERVATION_SIZE], int8_t q[{upper}_OBSERVATION_SIZE]);\n"
        f"int {ident}_int16_q(const int16_t x[{upper}_OBSERVATION_SIZE], int8_t output[{upper}_OUTPUT_SIZE]);\n")
    source = (
        "/* ---- int16 fixed-point input: integer only ---- */\n"
        f"static const int16_t k_x_low[{obs_dim}] = {upper}_INT16_LOW;\n"
        f"static const int16_t k_x_high[{obs_dim}] = {upper}_INT16_HIGH;\n"
        f"static const uint16_t k_x_mult[{obs_dim}] = {ints(fixed.multiplier)};\n"
        f"static const uint32_t k_x_add[{obs_dim}] = {{{', '.join(f'{int(v)}u' for v in fixed.add)}}};\n"
        f"static const uint8_t k_x_shift[{obs_dim}] = {ints(fixed.shift)};\n"
        f"\nint {ident}_quantize_int16(const int16_t x[{upper}_OBSERVATION_SIZE], int8_t q[{upper}_OBSERVATION_SIZE])\n"
        "{\n    int i, saturated = 0;\n"
        f"    for (i = 0; i < {obs_dim}; ++i) {{\n"
        "        int32_t v = x[i];\n"
        "        if (v < k_x_low[i]) {\n"
        f"            q[i] = {upper}_INT16_Q_LOW;\n            ++saturated;\n"
        "        } else if (v > k_x_high[i]) {\n"
        f"            q[i] = {upper}_INT16_Q_HIGH;\n            ++saturated;\n"
        "        } else {\n"
        "            int32_t r = (int32_t)(((uint32_t)(v - k_x_low[i]) * k_x_mult[i] + k_x_add[i]) >> k_x_shift[i])"
        f" - {_BIAS};\n"
        "            q[i] = (int8_t)((r < -128) ? -128 : ((r > 127) ? 127 : r));\n"
        "        }\n"
        "    }\n    return saturated;\n}\n"
        f"\nint {ident}_int16_q(const int16_t x[{upper}_OBSERVATION_SIZE], int8_t output[{upper}_OUTPUT_SIZE])\n"
        f"{{\n    int8_t q[{obs_dim}];\n    int saturated = {ident}_quantize_int16(x, q);\n"
        f"    {ident}_int8_q(q, output);\n    return saturated;\n}}\n")
    return macros, declarations, source
