"""The C text of TFLite Micro's int8 reference kernels, as the C generator emits them.

Each helper is a ``static`` function (so two generated policies link into one
firmware without clashing) written for C99 with integer arithmetic only; the
gemmlowp fixed-point routines are transcribed operation by operation, which is
what makes the generated int8 policy equal TFLM bit for bit.
"""
from __future__ import annotations

from typing import List, Sequence


#: TANH and LOGISTIC share TFLM's frame (saturate beyond the radius, else requantise to Q4.27 and
#: evaluate); only the evaluation differs. @OP@, @KERNEL@ and @CORE@ are filled in by _sigmoid_like.
_SIGMOID_LIKE = """
/* TFLite Micro's int8 @OP@ (reference_integer_ops::@KERNEL@), in place. */
static void ap_@NAME@(int8_t *v, int n, int32_t zero_point, int32_t radius, int32_t m, int shift)
{
    int i;
    for (i = 0; i < n; ++i) {
        int32_t in = (int32_t)v[i] - zero_point;
        int32_t out;
        if (in <= -radius) {
            out = -128;
        } else if (in >= radius) {
            out = 127;
        } else {
            int32_t a = ap_requantize(in, m, shift); /* Q4.27 */@CORE@            out = (out < -128) ? -128 : ((out > 127) ? 127 : out);
        }
        v[i] = (int8_t)out;
    }
}
"""


def _sigmoid_like(op: str, kernel: str, core: str) -> str:
    return _SIGMOID_LIKE.replace("@OP@", op).replace("@KERNEL@", kernel).replace("@NAME@", op.lower()) \
        .replace("@CORE@", core)


# ---- C text -----------------------------------------------------------------------
_HELPERS = {
    "mul_high": ([], """
/* gemmlowp SaturatingRoundingDoublingHighMul: round(a * b / 2^31), the one saturating case aside. */
static int32_t ap_mul_high(int32_t a, int32_t b)
{
#if defined(__ARM_ARCH_6M__)
    /* Cortex-M0/M0+ have no 32x32->64 multiply: the product from 16-bit halves of |a| and |b| takes
       fewer bytes than libgcc's __aeabi_lmul. |a * b| + 2^30 (2^30 - 1 when the product is negative:
       the reference's nudge toward zero), shifted down by 31, then the sign: the same result. */
    uint32_t x = (a < 0) ? 0u - (uint32_t)a : (uint32_t)a;
    uint32_t y = (b < 0) ? 0u - (uint32_t)b : (uint32_t)b;
    uint32_t negative = (uint32_t)((a < 0) != (b < 0));
    uint32_t mid, lo, hi, t;
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    mid = (x & 0xFFFFu) * (y >> 16) + (x >> 16) * (y & 0xFFFFu); /* < 2^32: |a|, |b| <= 2^31 */
    lo = (x & 0xFFFFu) * (y & 0xFFFFu);
    hi = (x >> 16) * (y >> 16) + (mid >> 16);
    t = lo + (mid << 16);
    hi += (uint32_t)(t < lo);
    lo = t + (0x40000000u - negative);
    hi += (uint32_t)(lo < t);
    t = (hi << 1) | (lo >> 31);
    return negative ? -(int32_t)t : (int32_t)t;
#else
    int64_t ab;
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    ab += (ab >= 0) ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    /* the reference divides by 2^31, i.e. rounds toward zero */
    return (int32_t)((ab >= 0) ? (ab >> 31) : -((-ab) >> 31));
#endif
}
"""),
    "div_pot": ([], """
/* gemmlowp RoundingDivideByPOT: x / 2^e rounded to nearest, ties away from zero. */
static int32_t ap_div_pot(int32_t x, int e)
{
    int32_t mask, rem, threshold;
    if (e == 0) {
        return x;
    }
    mask = (int32_t)(0xFFFFFFFFu >> (32 - e));
    rem = x & mask;
    threshold = (mask >> 1) + ((x < 0) ? 1 : 0);
    return (x >> e) + ((rem > threshold) ? 1 : 0);
}
"""),
    "requantize": (["mul_high", "div_pot"], """
/* TFLite MultiplyByQuantizedMultiplier (double rounding): x * m * 2^(shift - 31). */
static int32_t ap_requantize(int32_t x, int32_t m, int shift)
{
    int left = (shift > 0) ? shift : 0;
    int right = (shift > 0) ? 0 : -shift;
    return ap_div_pot(ap_mul_high((int32_t)((uint32_t)x << left), m), right);
}
"""),
    "shl_sat": ([], """
/* gemmlowp SaturatingRoundingMultiplyByPOT for a positive exponent: x * 2^e, saturated. */
static int32_t ap_shl_sat(int32_t x, int e)
{
    int32_t limit = (int32_t)((1u << (31 - e)) - 1u);
    if (x > limit) {
        return INT32_MAX;
    }
    if (x < -limit) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << e);
}
"""),
    "exp_negative": (["mul_high", "div_pot", "shl_sat"], """
/* gemmlowp exp_on_negative_values: exp(a) for a <= 0 with the given integer bits, result in Q0.31. */
static int32_t ap_exp_negative(int32_t a, int integer_bits)
{
    static const int32_t k_exp_minus_pot[7] = {
        1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    int fractional_bits = 31 - integer_bits;
    int32_t quarter = (int32_t)1 << (fractional_bits - 2);
    int32_t a_mod = (a & (quarter - 1)) - quarter;
    int32_t remainder = a_mod - a;
    /* exp on [-1/4, 0): Taylor expansion around -1/8 */
    int32_t x = ap_shl_sat(a_mod, integer_bits) + (1 << 28);
    int32_t x2 = ap_mul_high(x, x);
    int32_t x3 = ap_mul_high(x2, x);
    int32_t x4 = ap_mul_high(x2, x2);
    int32_t poly = ap_div_pot(ap_mul_high(ap_div_pot(x4, 2) + x3, 715827883) + x2, 1);
    int32_t result = 1895147668 + ap_mul_high(1895147668, x + poly);
    int i;
    /* times exp(-2^k) for every bit of the remainder */
    for (i = 0; i < 7 && i - 2 < integer_bits; ++i) {
        if (remainder & ((int32_t)1 << (fractional_bits - 2 + i))) {
            result = ap_mul_high(result, k_exp_minus_pot[i]);
        }
    }
    return (a == 0) ? INT32_MAX : result;
}

/* gemmlowp's Newton-Raphson step: 1 / ((1 + a) / 2) for a in (0, 1], in Q2.29. */
static int32_t ap_inverse_half_sum(int32_t a)
{
    int64_t sum = (int64_t)a + INT32_MAX;
    int32_t half, x;
    int i;
    sum += (sum >= 0) ? 1 : -1;
    half = (int32_t)((sum >= 0) ? (sum >> 1) : -((-sum) >> 1));
    x = 1515870810 + ap_mul_high(half, -1010580540);
    for (i = 0; i < 3; ++i) {
        x += ap_shl_sat(ap_mul_high(x, (1 << 29) - ap_mul_high(half, x)), 2);
    }
    return x;
}
"""),
    "tanh": (["requantize", "exp_negative"], _sigmoid_like("TANH", "Tanh", """
            int32_t t = 0;
            if (a != 0) {
                t = ap_shl_sat(ap_inverse_half_sum(ap_exp_negative((a < 0) ? a : -a, 5)) - (1 << 29), 2);
                t = (a < 0) ? -t : t;
            }
            out = ap_div_pot(t, 24);
""")),
    "logistic": (["requantize", "exp_negative"], _sigmoid_like("LOGISTIC", "Logistic", """
            int32_t s = 1 << 30;
            if (a != 0) {
                int32_t p = ap_shl_sat(ap_inverse_half_sum(ap_exp_negative((a > 0) ? -a : a, 4)), 1);
                s = (a > 0) ? p : INT32_MAX - p;
            }
            out = ap_div_pot(s, 23) - 128;
""")),
    "lookup": ([], """
/* TANH / LOGISTIC by the layer's table, in place: entry q - lo is TFLite Micro's int8 output for input
   q, computed by the exporter with the routine of the computed kernels (tflite_export.c_tables). The
   table holds inputs lo..hi only: every input beyond them gives the output of lo or hi (saturation). */
static void ap_lookup(int8_t *v, int n, const int8_t *table, int lo, int hi)
{
    int i;
    for (i = 0; i < n; ++i) {
        int q = v[i];
        q = (q < lo) ? lo : ((q > hi) ? hi : q);
        v[i] = table[q - lo];
    }
}
"""),
    "lookup_odd": ([], """
/* TANH / LOGISTIC by half the layer's table, in place: both are odd about the input zero point (LOGISTIC's
   output level 0 is 1/2), so entry d is TFLite Micro's
   int8 output for input zero_point - d and its negation (at most 127) the output for zero_point + d;
   inputs beyond the last entry saturate. Computed by the exporter (tflite_export.c_tables). */
static void ap_lookup_odd(int8_t *v, int n, const int8_t *half, int zero_point, int last)
{
    int i;
    for (i = 0; i < n; ++i) {
        int d = (int)v[i] - zero_point;
        int m = (d < 0) ? -d : d;
        int out = half[(m > last) ? last : m];
        if (d > 0) {
            out = -out;
            out = (out > 127) ? 127 : out;
        }
        v[i] = (int8_t)out;
    }
}
"""),
    "fully_connected": (["requantize"], None),  # fully_connected_c: specialised to the model
    "add_sub": (["requantize"], """
/* TFLite Micro's int8 ADD / SUB of v and a constant c (broadcast when c_step is 0), in place:
   p = {v offset, v multiplier, v shift, v sign, c offset, c multiplier, c shift, c sign,
        output multiplier, output shift, output zero point, output min, output max}. */
static void ap_add_sub(int8_t *v, int n, const int8_t *c, int c_step, const int32_t *p)
{
    int i;
    for (i = 0; i < n; ++i) {
        int32_t a = ap_requantize((int32_t)((uint32_t)(p[0] + v[i]) << 20), p[1], (int)p[2]);
        int32_t b = ap_requantize((int32_t)((uint32_t)(p[4] + c[i * c_step]) << 20), p[5], (int)p[6]);
        int32_t out = ap_requantize(p[3] * a + p[7] * b, p[8], (int)p[9]) + p[10];
        v[i] = (int8_t)((out < p[11]) ? p[11] : ((out > p[12]) ? p[12] : out));
    }
}
"""),
    "mul": (["requantize"], """
/* TFLite Micro's int8 MUL of v and a constant c (broadcast when c_step is 0), in place. */
static void ap_mul(int8_t *v, int n, const int8_t *c, int c_step, int32_t v_offset, int32_t c_offset,
                   int32_t m, int shift, int32_t zero_point, int32_t lo, int32_t hi)
{
    int i;
    for (i = 0; i < n; ++i) {
        int32_t out = ap_requantize((v_offset + v[i]) * (c_offset + c[i * c_step]), m, shift) + zero_point;
        v[i] = (int8_t)((out < lo) ? lo : ((out > hi) ? hi : out));
    }
}
"""),
    "min_max": ([], """
/* TFLite Micro's int8 MINIMUM / MAXIMUM against a constant (raw values, shared scale), in place. */
static void ap_min_max(int8_t *v, int n, const int8_t *c, int c_step, int take_max)
{
    int i;
    for (i = 0; i < n; ++i) {
        int8_t b = c[i * c_step];
        v[i] = (take_max ? (b > v[i]) : (b < v[i])) ? b : v[i];
    }
}
"""),
}


def fully_connected_c(per_channel: bool, bias: bool) -> str:
    """TFLite Micro's FULLY_CONNECTED, with the per-channel and missing-bias branches only where some
    layer of the model needs them: every byte counts on a 1 kB budget."""
    channel = "l->per_channel ? o : 0"
    requantize = "l->m[c], l->shift[c]" if per_channel else "l->m, l->shift"
    add_bias = ("        if (l->bias) {\n            acc += l->bias[o];\n        }\n" if not bias
                else "        acc += l->bias[o];\n")
    return ("""
/* TFLite Micro's int8 FULLY_CONNECTED (per-tensor or per-channel weight scales), y = layer(x). */
static void ap_fully_connected(const int8_t *x, int8_t *y, const ap_layer *l)
{
    int o, i;
    for (o = 0; o < l->n_out; ++o) {
        int32_t acc = 0;
""" + (f"        int c = {channel};\n" if per_channel else "") + """        for (i = 0; i < l->n_in; ++i) {
            acc += (int32_t)l->w[o * l->n_in + i] * ((int32_t)x[i] - l->x_zero_point);
        }
""" + add_bias + """        acc = ap_requantize(acc, """ + requantize + """) + l->y_zero_point;
        y[o] = (int8_t)((acc < l->y_min) ? l->y_min : ((acc > l->y_max) ? l->y_max : acc));
    }
}
""")


def helper_text(name: str, per_channel: bool = True, bias: bool = True) -> str:
    """The C text of one helper; FULLY_CONNECTED's specialised to the model."""
    return fully_connected_c(per_channel, bias) if name == "fully_connected" else _HELPERS[name][1]


def _helper_closure(names: Sequence[str]) -> List[str]:
    order: List[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        for dep in _HELPERS[name][0]:
            visit(dep)
        order.append(name)

    for n in names:
        visit(n)
    return order


def _layer_head(per_channel: bool) -> str:
    """The layer row's fields both activation forms share (the FULLY_CONNECTED op's): the output
    multiplier and shift inline, or pointers to one per output where some layer has per-channel weights."""
    requantize = ("""    const int32_t *m; /* output multiplier: one, or one per output (per-channel weights) */
    const int8_t *shift;
""" if per_channel else """    int32_t m; /* output multiplier and shift */
""")
    return """typedef struct {
    const int8_t *w; /* n_out rows of n_in weights */
    const ap_bias_t *bias;
""" + requantize


def both_table_kernels(acts: Sequence[str]) -> bool:
    """Whether a model uses both table kernels (ap_lookup and ap_lookup_odd): only then does a layer row
    need an ``act`` field saying which."""
    return {"lookup", "lookup_odd"} <= set(acts)


def layer_struct(per_channel: bool, tables: bool = False, acts: Sequence[str] = ()) -> str:
    """The layer table's row type; the per-channel flag only where some layer needs it, and the
    activation as a table (and, where both table kernels are in use, which one) or as the computed
    routine's parameters."""
    if tables:
        both = both_table_kernels(acts)
        return ("""
/* One FULLY_CONNECTED op and the TANH/LOGISTIC op that follows it as a table (0: none): inputs
   act_first..act_last (ap_lookup) or entries 0..act_last of half of it (ap_lookup_odd)"""
                + (" as act is 1 or 2" if both else "") + """. */
""" + _layer_head(per_channel) + """    const int8_t *act_table;
    int16_t n_in, n_out, act_first, act_last;
    int8_t x_zero_point, y_zero_point, y_min, y_max""" + (", per_channel" if per_channel else ", shift")
                + (", act" if both else "") + """;
} ap_layer;
""")
    flags = "per_channel, act, act_shift" if per_channel else "shift, act, act_shift"
    return ("""
/* One FULLY_CONNECTED op and the TANH/LOGISTIC op that follows it (act 1/2; 0: none). */
""" + _layer_head(per_channel) + """    int32_t act_m;
    int16_t n_in, n_out, act_radius;
    int8_t x_zero_point, y_zero_point, y_min, y_max, """ + flags + """;
} ap_layer;
""")


def _run_layers_c(acts: Sequence[str]) -> str:
    calls = "".join(
        f"        {'else ' if i else ''}if (l->act == {1 if a == 'tanh' else 2}) {{\n"
        f"            ap_{a}(y, l->n_out, l->y_zero_point, l->act_radius, l->act_m, l->act_shift);\n        }}\n"
        for i, a in enumerate(acts))
    table_calls = {"lookup": "ap_lookup(y, l->n_out, l->act_table, l->act_first, l->act_last);",
                   "lookup_odd": "ap_lookup_odd(y, l->n_out, l->act_table, l->y_zero_point, l->act_last);"}
    kinds = [k for k in table_calls if k in acts]
    if len(kinds) == 1:
        calls = f"        if (l->act_table) {{\n            {table_calls[kinds[0]]}\n        }}\n"
    elif kinds:
        calls = "".join(f"        {'else ' if i else ''}if (l->act == {i + 1}) {{\n            {table_calls[k]}\n        }}\n"
                        for i, k in enumerate(("lookup", "lookup_odd")))
    return ("\n/* Runs count layers from x (which is only read): the last one writes to out (if not 0), the others\n"
            "   alternate between a and b. Returns the buffer holding the result. Reading the caller's input and\n"
            "   writing the caller's output directly saves the two copies (a memcpy on a Cortex-M0+). */\n"
            "static int8_t *ap_run_layers(const int8_t *x, int8_t *a, int8_t *b, int8_t *out, const ap_layer *l,\n"
            "                             int count)\n{\n"
            "    int8_t *y = a;\n"
            "    for (; count > 0; --count, ++l) {\n"
            "        y = (count == 1 && out) ? out : ((x == a) ? b : a);\n"
            "        ap_fully_connected(x, y, l);\n" + calls +
            "        x = y;\n    }\n    return y;\n}\n")
