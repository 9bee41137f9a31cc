"""The compact actor as one plain C99 function: no TFLite Micro, no heap, no runtime.

A compact actor has a few hundred weights; shipping it through TFLite Micro
costs the flatbuffer, the interpreter's code and an arena. ``actor_policy.c``
computes the same outputs with the weights as ``const`` arrays (flash) and two
small buffers on the stack, in two variants:

* float32, read from the compact Keras actor: observation normalisation,
  Dense layers, activations and, for a continuous action, ``mid + half·tanh``;
  it needs <math.h> (``tanhf``/``expf``) and nothing else.
* int8, read from ``actor_int8.tflite`` itself (weights, biases, scales and
  zero points of the shipped flatbuffer, never Keras): the raw observation is
  mapped and quantised exactly as ``quantize_observation`` does, then every op
  of the int8 graph runs with the integer arithmetic of TFLite Micro's
  reference kernels (FULLY_CONNECTED with per-tensor or per-channel weight
  scales and gemmlowp's double-rounding ``MultiplyByQuantizedMultiplier``;
  TANH and LOGISTIC with gemmlowp's fixed-point ``exp``/Newton–Raphson
  division, which is what TFLM's int8 TANH computes, not a float LUT;
  ADD/SUB/MUL/MINIMUM/MAXIMUM against a constant), so the raw int8 output
  equals the TFLM interpreter's bit for bit. The int8 output is then
  dequantised with the output tensor's scale and zero point. For a continuous
  action the bounding (``tanh``, and ``mid``/``half`` unless they are 0 and 1)
  is already inside the int8 graph (the converter turns BoundedAction into
  TANH, MUL and ADD ops), so the int8 variant applies no float ``tanh`` of its
  own: it returns the dequantised output of the shipped model, which is what
  the exporter's int8 checks and returns measure.

The kernels' rounding is TFLM's default build (double rounding, no
``TFLITE_SINGLE_ROUNDING``); the tests compare against the installed TFLM
runtime on recorded observations and on all 256 inputs of each TANH/LOGISTIC.
The generated C relies on ``>>`` of a negative integer being an arithmetic
shift (GCC, Clang, Arm Compiler and IAR all do this).
"""
from __future__ import annotations

import ctypes
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from dsp_tf._keras import keras
from tflite_export.c_array import c_identifier
from tflite_export.input_scaling import FeatureScaling, _layer_chain

#: Flags every build of the generated C uses: strict C99 and clean under -Wall -Wextra.
#: ISO C mode also turns off floating-point contraction (no fused multiply-add), so the
#: float operations round the same way on the host and on a Cortex-M4F.
C_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


class UnsupportedForC(Exception):
    """The actor or its int8 graph holds something the C generator does not reproduce."""


# ---- reading the int8 flatbuffer ---------------------------------------------------
@dataclass
class _Tensor:
    shape: Tuple[int, ...]
    dtype: int
    scales: np.ndarray  # float32, one per tensor or per channel
    zero_points: np.ndarray
    data: Optional[np.ndarray]  # constant tensors only

    @property
    def scale(self) -> float:
        return float(self.scales[0])

    @property
    def zero_point(self) -> int:
        return int(self.zero_points[0])


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema  # noqa: WPS433

    return schema


def _read_graph(flatbuffer: bytes):
    """(input tensor, output tensor, [(op name, [tensors], options)]) of a one-subgraph model."""
    schema = _schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))
    if len(model.subgraphs) != 1:
        raise UnsupportedForC(f"the int8 model has {len(model.subgraphs)} subgraphs (expected 1)")
    graph = model.subgraphs[0]
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    dtypes = {schema.TensorType.INT8: np.int8, schema.TensorType.INT32: np.int32}

    def tensor(index: int) -> Optional[_Tensor]:
        if index < 0:
            return None
        t = graph.tensors[index]
        q = t.quantization
        scales = np.asarray(q.scale if q is not None and q.scale is not None else [0.0], np.float32)
        zps = np.asarray(q.zeroPoint if q is not None and q.zeroPoint is not None else [0], np.int64)
        buf = model.buffers[t.buffer].data if t.buffer < len(model.buffers) else None
        data = None
        if buf is not None and len(buf):
            if t.type not in dtypes:
                raise UnsupportedForC(f"constant tensor of type {t.type} in the int8 model")
            data = np.frombuffer(bytes(bytearray(buf)), dtypes[t.type]).reshape(
                [int(d) for d in t.shape] if t.shape is not None else [-1])
        shape = tuple(int(d) for d in t.shape) if t.shape is not None else ()
        return _Tensor(shape, t.type, scales, zps, data)

    ops = []
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        name = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), str(code.builtinCode))
        ops.append((name, [tensor(i) for i in op.inputs], [tensor(i) for i in op.outputs], op, op.builtinOptions))
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise UnsupportedForC("the int8 model must have one input and one output")
    return tensor(graph.inputs[0]), tensor(graph.outputs[0]), ops, graph


# ---- TFLite Micro's Prepare() arithmetic, in Python ----------------------------------
def _tflite_round(x: float) -> int:
    """std::round: half away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(real: float) -> Tuple[int, int]:
    """TFLite's QuantizeMultiplier: real ≈ m · 2^(shift − 31), m in [2^30, 2^31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    m = _tflite_round(q * (1 << 31))
    if m == 1 << 31:
        m //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return m, shift


def _activation_range(fused: int, scale: float, zero_point: int) -> Tuple[int, int]:
    """CalculateActivationRangeQuantized for int8 (the float division is in float32, as in TFLM)."""
    def q(f: float) -> int:
        return zero_point + _tflite_round(float(np.float32(f) / np.float32(scale)))

    schema = _schema()
    kinds = schema.ActivationFunctionType
    if fused == kinds.NONE:
        return -128, 127
    if fused == kinds.RELU:
        return max(-128, q(0.0)), 127
    if fused == kinds.RELU6:
        return max(-128, q(0.0)), min(127, q(6.0))
    if fused == kinds.RELU_N1_TO_1:
        return max(-128, q(-1.0)), min(127, q(1.0))
    raise UnsupportedForC(f"fused activation {fused} is not supported")


def _sigmoid_like_params(scale: float) -> Tuple[int, int, int]:
    """(multiplier, shift, input radius) of TFLM's int8 TANH/LOGISTIC Prepare, 4 integer bits."""
    q, shift = math.frexp(float(scale) * float(1 << 27))
    multiplier = _tflite_round(q * (1 << 31))
    radius = math.floor(15.0 * float(1 << 27) / math.ldexp(1.0, shift))
    return multiplier, shift, radius


# ---- C text -----------------------------------------------------------------------
_HELPERS = {
    "mul_high": ([], """
/* gemmlowp SaturatingRoundingDoublingHighMul: round(a * b / 2^31), the one saturating case aside. */
static int32_t ap_mul_high(int32_t a, int32_t b)
{
    int64_t ab;
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    ab += (ab >= 0) ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    /* the reference divides by 2^31, i.e. rounds toward zero */
    return (int32_t)((ab >= 0) ? (ab >> 31) : -((-ab) >> 31));
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
    "tanh": (["requantize", "exp_negative"], """
/* TFLite Micro's int8 TANH (reference_integer_ops::Tanh), in place. */
static void ap_tanh(int8_t *v, int n, int32_t zero_point, int32_t radius, int32_t m, int shift)
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
            int32_t a = ap_requantize(in, m, shift); /* Q4.27 */
            int32_t t = 0;
            if (a != 0) {
                t = ap_shl_sat(ap_inverse_half_sum(ap_exp_negative((a < 0) ? a : -a, 5)) - (1 << 29), 2);
                t = (a < 0) ? -t : t;
            }
            out = ap_div_pot(t, 24);
            out = (out < -128) ? -128 : ((out > 127) ? 127 : out);
        }
        v[i] = (int8_t)out;
    }
}
"""),
    "logistic": (["requantize", "exp_negative"], """
/* TFLite Micro's int8 LOGISTIC (reference_integer_ops::Logistic), in place. */
static void ap_logistic(int8_t *v, int n, int32_t zero_point, int32_t radius, int32_t m, int shift)
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
            int32_t a = ap_requantize(in, m, shift); /* Q4.27 */
            int32_t s = 1 << 30;
            if (a != 0) {
                int32_t p = ap_shl_sat(ap_inverse_half_sum(ap_exp_negative((a > 0) ? -a : a, 4)), 1);
                s = (a > 0) ? p : INT32_MAX - p;
            }
            out = ap_div_pot(s, 23) - 128;
            out = (out < -128) ? -128 : ((out > 127) ? 127 : out);
        }
        v[i] = (int8_t)out;
    }
}
"""),
    "fully_connected": (["requantize"], """
/* TFLite Micro's int8 FULLY_CONNECTED (per-tensor or per-channel weight scales), y = layer(x). */
static void ap_fully_connected(const int8_t *x, int8_t *y, const ap_layer *l)
{
    int o, i;
    for (o = 0; o < l->n_out; ++o) {
        int32_t acc = 0;
        int c = l->per_channel ? o : 0;
        for (i = 0; i < l->n_in; ++i) {
            acc += (int32_t)l->w[o * l->n_in + i] * ((int32_t)x[i] - l->x_zero_point);
        }
        if (l->bias) {
            acc += l->bias[o];
        }
        acc = ap_requantize(acc, l->m[c], l->shift[c]) + l->y_zero_point;
        y[o] = (int8_t)((acc < l->y_min) ? l->y_min : ((acc > l->y_max) ? l->y_max : acc));
    }
}
"""),
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


def _c_ints(values, per_line: int = 16) -> str:
    flat = [str(int(v)) for v in np.ravel(values)]
    rows = [", ".join(flat[i:i + per_line]) for i in range(0, len(flat), per_line)]
    return "\n    " + ",\n    ".join(rows) + "\n"


def _c_floats(values, per_line: int = 6) -> str:
    flat = [_c_float(v) for v in np.ravel(np.asarray(values, np.float32))]
    rows = [", ".join(flat[i:i + per_line]) for i in range(0, len(flat), per_line)]
    return "\n    " + ",\n    ".join(rows) + "\n"


def _c_float(v) -> str:
    """A float32 literal that reads back to the same float32 (9 significant digits)."""
    text = f"{float(np.float32(v)):.9g}"
    if not any(ch in text for ch in ".en"):
        text += ".0"
    return text + "f"


@dataclass
class _Emitter:
    """Collects const arrays, helpers and statements of one variant."""

    prefix: str
    constants: List[str] = field(default_factory=list)
    helpers: List[str] = field(default_factory=list)
    body: List[str] = field(default_factory=list)
    count: int = 0
    two_buffers: bool = False  # some op wrote from one buffer into the other

    def buffers(self, ctype: str, width: int) -> str:
        return f"    {ctype} a[{width}], b[{width}];" if self.two_buffers else f"    {ctype} a[{width}];"

    def array(self, ctype: str, values, floats: bool = False) -> str:
        name = f"{self.prefix}{self.count}"
        self.count += 1
        n = int(np.size(values))
        text = _c_floats(values) if floats else _c_ints(values)
        self.constants.append(f"static const {ctype} {name}[{n}] = {{{text}}};\n")
        return name

    def use(self, helper: str) -> None:
        if helper not in self.helpers:
            self.helpers.append(helper)


def _constant_operand(inputs, name: str):
    """(constant tensor, constant comes first) of a binary op whose other operand is the running vector."""
    if len(inputs) != 2:
        raise UnsupportedForC(f"{name} needs two operands")
    a, b = inputs
    if a.data is None and b.data is not None:
        return b, False
    if b.data is None and a.data is not None:
        return a, True
    raise UnsupportedForC(f"{name} needs one constant operand")


_LAYER_STRUCT = """
/* One FULLY_CONNECTED op and the TANH/LOGISTIC op that follows it (act 1/2; 0: none). */
typedef struct {
    const int8_t *w; /* n_out rows of n_in weights */
    const ap_bias_t *bias;
    const int32_t *m; /* output multiplier: one, or one per output (per-channel weights) */
    const int8_t *shift;
    int32_t act_m;
    int16_t n_in, n_out, act_radius;
    int8_t x_zero_point, y_zero_point, y_min, y_max, per_channel, act, act_shift;
} ap_layer;
"""


def _run_layers_c(acts: Sequence[str]) -> str:
    calls = "".join(
        f"        {'else ' if i else ''}if (l->act == {1 if a == 'tanh' else 2}) {{\n"
        f"            ap_{a}(y, l->n_out, l->y_zero_point, l->act_radius, l->act_m, l->act_shift);\n        }}\n"
        for i, a in enumerate(acts))
    return ("\n/* Runs count layers from x, alternating with y; returns the buffer holding the result. */\n"
            "static int8_t *ap_run_layers(int8_t *x, int8_t *y, const ap_layer *l, int count)\n{\n"
            "    for (; count > 0; --count, ++l) {\n        int8_t *t;\n"
            "        ap_fully_connected(x, y, l);\n" + calls +
            "        t = x;\n        x = y;\n        y = t;\n    }\n    return x;\n}\n")


@dataclass
class _Int8Graph:
    """The int8 graph as C: constants, layer table, straight-line statements on ``v``."""

    input: _Tensor
    output: _Tensor
    width: int
    constants: List[str]
    helpers: List[str]
    layer_rows: List[str]
    body: List[str]
    bias_type: str
    acts: List[str]


def _int8_graph(flatbuffer: bytes, prefix: str = "k_q") -> _Int8Graph:
    """Reads the int8 flatbuffer op by op into C (raises UnsupportedForC for anything else)."""
    schema = _schema()
    e = _Emitter(prefix)
    inp, out, ops, graph = _read_graph(flatbuffer)
    for t, what in ((inp, "input"), (out, "output")):
        if t.dtype != schema.TensorType.INT8 or len(t.scales) != 1:
            raise UnsupportedForC(f"the model's {what} is not a per-tensor int8 tensor")
    width = int(np.prod(inp.shape))
    layers: List[dict] = []  # FULLY_CONNECTED ops, each with the activation op after it
    steps: List[object] = []  # layer indices (ints) and C statements (str) in graph order
    acts: List[str] = []
    running_index = graph.inputs[0]
    for name, ins, outs, op, options in ops:
        running = [i for i, t in zip(op.inputs, ins) if t is not None and t.data is None]
        if len(running) != 1 or running[0] != running_index or len(outs) != 1:
            raise UnsupportedForC(f"op {name} does not continue a single chain of ops")
        y = outs[0]
        if y.dtype != schema.TensorType.INT8:
            raise UnsupportedForC(f"op {name} has a non-int8 output")
        x = ins[list(op.inputs).index(running_index)]
        n = int(np.prod(y.shape))
        width = max(width, n)
        fused = getattr(options, "fusedActivationFunction", 0) if options is not None else 0
        if name == "FULLY_CONNECTED":
            if list(op.inputs).index(running_index) != 0 or len(ins) < 2:
                raise UnsupportedForC("FULLY_CONNECTED must take the running vector as its input")
            w, b = ins[1], ins[2] if len(ins) > 2 else None
            if w.data is None or w.dtype != schema.TensorType.INT8 or w.data.ndim != 2:
                raise UnsupportedForC("FULLY_CONNECTED needs constant 2-D int8 weights")
            if np.any(w.zero_points != 0) or getattr(options, "weightsFormat", 0) != 0:
                raise UnsupportedForC("FULLY_CONNECTED weights must be symmetric int8 in the default format")
            if b is not None and (b.data is None or b.dtype != schema.TensorType.INT32):
                raise UnsupportedForC("FULLY_CONNECTED bias must be a constant int32 tensor")
            n_out, n_in = w.data.shape
            per_channel = len(w.scales) > 1
            if per_channel:
                real = [float(np.float64(x.scale) * np.float64(s) / np.float64(y.scale)) for s in w.scales]
            else:  # GetQuantizedConvolutionMultipler: the scale product is a float32 product
                real = [float(np.float64(np.float32(x.scale) * np.float32(w.scale)) / np.float64(y.scale))]
            mults, shifts = zip(*[quantize_multiplier(r) for r in real])
            lo, hi = _activation_range(fused, y.scale, y.zero_point)
            layers.append({"w": w.data, "bias": None if b is None else b.data, "m": mults, "shift": shifts,
                           "n_in": n_in, "n_out": n_out, "x_zp": x.zero_point, "y_zp": y.zero_point,
                           "lo": lo, "hi": hi, "per_channel": int(per_channel), "act": 0, "act_m": 0,
                           "act_radius": 0, "act_shift": 0})
            steps.append(len(layers) - 1)
        elif name in ("TANH", "LOGISTIC"):
            expected = (1.0 / 128, 0) if name == "TANH" else (1.0 / 256, -128)
            if (y.scale, y.zero_point) != (np.float32(expected[0]), expected[1]):
                raise UnsupportedForC(f"{name} output quantisation {y.scale}/{y.zero_point} is not TFLite's")
            m, shift, radius = _sigmoid_like_params(x.scale)
            radius = min(radius, 256)  # |input - zero point| <= 255: a larger radius never saturates
            act = name.lower()
            if act not in acts:
                acts.append(act)
            e.use(act)
            if steps and isinstance(steps[-1], int) and layers[steps[-1]]["act"] == 0:
                layers[steps[-1]].update(act=1 if act == "tanh" else 2, act_m=m, act_radius=radius, act_shift=shift)
            else:
                steps.append(f"    ap_{act}(v, {n}, {x.zero_point}, {radius}, {m}, {shift});")
        elif name in ("ADD", "SUB", "MUL", "MINIMUM", "MAXIMUM"):
            c, const_first = _constant_operand(ins, name)
            if c.dtype != schema.TensorType.INT8 or len(c.scales) != 1:
                raise UnsupportedForC(f"{name} needs a per-tensor int8 constant")
            if c.data.size not in (1, n):
                raise UnsupportedForC(f"{name} broadcasts a constant of {c.data.size} values over {n}")
            cn = e.array("int8_t", c.data)
            step = 0 if c.data.size == 1 else 1
            lo, hi = _activation_range(fused, y.scale, y.zero_point)
            if name in ("MINIMUM", "MAXIMUM"):
                if (x.scale, x.zero_point) != (c.scale, c.zero_point) or (x.scale, x.zero_point) != \
                        (y.scale, y.zero_point):
                    raise UnsupportedForC(f"{name} operands do not share one quantisation")
                e.use("min_max")
                steps.append(f"    ap_min_max(v, {n}, {cn}, {step}, {int(name == 'MAXIMUM')});")
            elif name == "MUL":
                m, shift = quantize_multiplier(float(np.float64(x.scale) * np.float64(c.scale) / np.float64(y.scale)))
                e.use("mul")
                steps.append(f"    ap_mul(v, {n}, {cn}, {step}, {-x.zero_point}, {-c.zero_point}, {m}, "
                             f"{shift}, {y.zero_point}, {lo}, {hi});")
            else:
                s1, s2 = (c, x) if const_first else (x, c)
                if name == "ADD":
                    twice = 2 * float(max(s1.scale, s2.scale))
                    r1, r2 = float(s1.scale) / twice, float(s2.scale) / twice
                    ro = twice / ((1 << 20) * float(y.scale))
                else:  # SUB computes these in float32 before widening
                    twice32 = np.float32(2) * np.float32(max(s1.scale, s2.scale))
                    r1 = float(np.float32(s1.scale) / twice32)
                    r2 = float(np.float32(s2.scale) / twice32)
                    ro = float(twice32 / (np.float32(1 << 20) * np.float32(y.scale)))
                (m1, sh1), (m2, sh2), (mo, sho) = (quantize_multiplier(r) for r in (r1, r2, ro))
                sign2 = -1 if name == "SUB" else 1
                if const_first:  # s1 is the constant
                    v_params, c_params = (-x.zero_point, m2, sh2, sign2), (-c.zero_point, m1, sh1, 1)
                else:
                    v_params, c_params = (-x.zero_point, m1, sh1, 1), (-c.zero_point, m2, sh2, sign2)
                pn = e.array("int32_t", [*v_params, *c_params, mo, sho, y.zero_point, lo, hi])
                e.use("add_sub")
                steps.append(f"    ap_add_sub(v, {n}, {cn}, {step}, {pn});")
        else:
            raise UnsupportedForC(f"op {name} of the int8 model is not supported by the C generator")
        running_index = op.outputs[0]
    if running_index != graph.outputs[0]:
        raise UnsupportedForC("the op chain does not end at the model's output")

    biases = [l["bias"] for l in layers if l["bias"] is not None]
    bias_type = "int16_t" if all(np.all(np.abs(b) < 2 ** 15) for b in biases) else "int32_t"
    rows = []
    for l in layers:
        names = [e.array("int8_t", l["w"]),
                 e.array(bias_type, l["bias"]) if l["bias"] is not None else "0",
                 e.array("int32_t", l["m"]), e.array("int8_t", l["shift"])]
        rows.append("    {" + ", ".join(names + [str(l[k]) for k in (
            "act_m", "n_in", "n_out", "act_radius", "x_zp", "y_zp", "lo", "hi", "per_channel", "act",
            "act_shift")]) + "}")
    body: List[str] = []
    i = 0
    while i < len(steps):
        if isinstance(steps[i], int):
            j = i
            while j < len(steps) and isinstance(steps[j], int):
                j += 1
            body.append(f"    v = ap_run_layers(v, (v == a) ? b : a, k_layers + {steps[i]}, {j - i});")
            i = j
        else:
            body.append(steps[i])
            i += 1
    if layers:
        e.use("fully_connected")
    return _Int8Graph(inp, out, width, e.constants, e.helpers, rows, body, bias_type, acts)


# ---- the float variant, from Keras ---------------------------------------------------
_FLOAT_ACTIVATIONS = {
    "linear": None,
    "tanh": "{v} = tanhf({v});",
    "relu": "{v} = ({v} > 0.0f) ? {v} : 0.0f;",
    "sigmoid": "{v} = 1.0f / (1.0f + expf(-{v}));",
}


def _activation_name(layer) -> str:
    act = getattr(layer, "activation", None)
    name = getattr(act, "__name__", str(act)) if act is not None else "linear"
    if isinstance(layer, keras.layers.ReLU):
        if layer.max_value is not None or float(layer.negative_slope) != 0.0 or float(layer.threshold) != 0.0:
            raise UnsupportedForC(f"layer '{layer.name}': only a plain ReLU is supported")
        return "relu"
    if name not in _FLOAT_ACTIVATIONS:
        raise UnsupportedForC(f"layer '{layer.name}': activation '{name}' is not supported by the C generator")
    return name


def _float_forward(actor: keras.Model, e: _Emitter) -> Tuple[int, int, int]:
    """Emits the Keras actor into ``e``; returns (observation size, output size, buffer width)."""
    from agents.inference import BoundedAction, ObservationNormalization  # noqa: WPS433

    obs_dim = int(actor.inputs[0].shape[-1])
    width, n, cur = obs_dim, obs_dim, 0
    bufs = ("a", "b")
    e.body.append(f"    for (i = 0; i < {obs_dim}; ++i) {{\n        a[i] = observation[i];\n    }}")

    def elementwise(statement: str) -> None:
        e.body.append(f"    for (i = 0; i < {n}; ++i) {{\n        " + statement.format(v=f"{bufs[cur]}[i]")
                      + "\n    }")

    for layer in _layer_chain(actor):
        if isinstance(layer, ObservationNormalization):
            mean = e.array("float", np.asarray(layer.mean_values, np.float32), floats=True)
            inv_std = e.array("float", layer._inv_std.numpy(), floats=True)  # noqa: SLF001 - the layer's own float32 constant
            clip = _c_float(layer.clip)
            elementwise(f"float z = ({{v}} - {mean}[i]) * {inv_std}[i];\n"
                        f"        {{v}} = (z < -{clip}) ? -{clip} : ((z > {clip}) ? {clip} : z);")
        elif isinstance(layer, keras.layers.Dense):
            kernel, *bias = layer.get_weights()
            n_in, n_out = kernel.shape
            wn = e.array("float", np.ascontiguousarray(kernel.T), floats=True)
            bn = e.array("float", bias[0], floats=True) if bias else "0"
            e.use("dense_float")
            e.body.append(f"    ap_dense_float({bufs[cur]}, {n_in}, {bufs[1 - cur]}, {n_out}, {wn}, {bn});")
            cur, n, e.two_buffers = 1 - cur, n_out, True
            width = max(width, n)
            act = _FLOAT_ACTIVATIONS[_activation_name(layer)]
            if act:
                elementwise(act)
        elif isinstance(layer, BoundedAction):
            low, high = np.asarray(layer.low, np.float32), np.asarray(layer.high, np.float32)
            mid = e.array("float", (high + low) / np.float32(2), floats=True)
            half = e.array("float", (high - low) / np.float32(2), floats=True)
            elementwise(f"{{v}} = {mid}[i] + {half}[i] * tanhf({{v}});")
        elif isinstance(layer, keras.layers.Dropout):
            continue
        elif isinstance(layer, (keras.layers.Activation, keras.layers.ReLU)):
            act = _FLOAT_ACTIVATIONS[_activation_name(layer)]
            if act:
                elementwise(act)
        else:
            raise UnsupportedForC(f"layer '{layer.name}' of type {type(layer).__name__} is not supported "
                                  "by the C generator")
    e.body.append(f"    for (i = 0; i < {n}; ++i) {{\n        output[i] = {bufs[cur]}[i];\n    }}")
    return obs_dim, n, width


_DENSE_FLOAT = """
/* y = W x + b with W stored row by row (one row per output). */
static void ap_dense_float(const float *x, int n_in, float *y, int n_out, const float *w, const float *bias)
{
    int o, i;
    for (o = 0; o < n_out; ++o) {
        float acc = bias ? bias[o] : 0.0f;
        for (i = 0; i < n_in; ++i) {
            acc += w[o * n_in + i] * x[i];
        }
        y[o] = acc;
    }
}
"""


@dataclass
class CPolicy:
    """The generated files and what a caller needs to drive and check them."""

    ident: str
    header: str
    source: str
    observation_size: int
    output_size: int
    output_scale: float
    output_zero_point: int

    @property
    def files(self) -> Dict[str, str]:
        return {f"{self.ident}.h": self.header, f"{self.ident}.c": self.source}


def generate(actor: keras.Model, int8: bytes, scaling: Optional[FeatureScaling], ident: str = "actor_policy",
             model_name: str = "actor_int8.tflite") -> CPolicy:
    """``{ident}.h`` / ``{ident}.c`` for ``actor`` (float32 variant) and its int8 flatbuffer.

    ``scaling`` is the per-feature input map the int8 model was converted with
    (None for a per-tensor input). Raises UnsupportedForC, naming the layer or
    op, for anything the generator cannot reproduce exactly.
    """
    ident = c_identifier(ident)
    upper = ident.upper()
    fe = _Emitter("k_f")
    obs_dim, out_dim, f_width = _float_forward(actor, fe)
    g = _int8_graph(int8)
    inp, out = g.input, g.output
    if int(np.prod(inp.shape)) != obs_dim or int(np.prod(out.shape)) != out_dim:
        raise UnsupportedForC("the int8 model's input/output sizes differ from the Keras actor's")

    # Raw observation -> int8 input, in the float32 steps of input_scaling.quantize_observation.
    qe = _Emitter("k_in")
    if scaling is not None:
        offset = qe.array("float", scaling.offset, floats=True)
        inv = qe.array("float", scaling.inv_half_range, floats=True)
        # clip(z, -1, 1), written so that a NaN observation lands on -1 instead of undefined behaviour
        prepare = (f"        float z = (observation[i] - {offset}[i]) * {inv}[i];\n"
                   "        float v;\n        int32_t r;\n"
                   "        z = (z > -1.0f) ? z : -1.0f;\n        z = (z < 1.0f) ? z : 1.0f;\n"
                   f"        v = z / {_c_float(inp.scale)};\n")
    else:
        prepare = ("        float v = observation[i] / " + _c_float(inp.scale) + ";\n        int32_t r;\n"
                   "        /* far outside the int8 range either way; keeps the conversion below defined (and NaN low) */\n"
                   "        v = (v > -1000.0f) ? v : -1000.0f;\n        v = (v < 1000.0f) ? v : 1000.0f;\n")
    quantize = (
        f"void {ident}_quantize_observation(const float observation[{upper}_OBSERVATION_SIZE],\n"
        f"{' ' * len(f'void {ident}_quantize_observation(')}int8_t q[{upper}_OBSERVATION_SIZE])\n"
        "{\n    int i;\n"
        f"    for (i = 0; i < {obs_dim}; ++i) {{\n"
        + prepare +
        "        /* rounding half away from zero: v - 0.5f is exactly -(|v| + 0.5f) */\n"
        f"        r = (int32_t)(v + ((v < 0.0f) ? -0.5f : 0.5f)) + ({inp.zero_point});\n"
        "        q[i] = (int8_t)((r < -128) ? -128 : ((r > 127) ? 127 : r));\n"
        "    }\n}\n")

    int8_types = ""
    if g.layer_rows:
        int8_types = f"typedef {g.bias_type} ap_bias_t;\n" + _LAYER_STRUCT
    layer_table = ""
    if g.layer_rows:
        layer_table = (f"/* w, bias, m, shift, act_m, n_in, n_out, act_radius, x_zero_point, y_zero_point, y_min, y_max,\n"
                       f"   per_channel, act, act_shift */\n"
                       f"static const ap_layer k_layers[{len(g.layer_rows)}] = {{\n" + ",\n".join(g.layer_rows)
                       + "\n};\n")
    helpers = "".join(_HELPERS[h][1] for h in _helper_closure(g.helpers))
    if g.layer_rows:
        helpers += _run_layers_c(g.acts)
    if fe.helpers:
        helpers += _DENSE_FLOAT
    buffers = f"    int8_t a[{g.width}], b[{g.width}];" if g.layer_rows else f"    int8_t a[{g.width}];"
    source = (
        f"/* Generated by tflite_export: the compact actor as plain C99 ({obs_dim} observation features in,\n"
        f"   {out_dim} outputs out). See {ident}.h. The int8 variant holds the weights, biases, scales and zero\n"
        f"   points of {model_name} and reproduces TFLite Micro's reference int8 kernels bit for bit;\n"
        "   the float32 variant holds the Keras actor's float32 weights. No heap, no static RAM:\n"
        "   constants are const (flash), working buffers are on the stack. */\n"
        f"#include \"{ident}.h\"\n\n#include <math.h>\n\n"
        "/* ---- float32 variant: constants ---- */\n" + "".join(fe.constants) +
        "\n/* ---- int8 variant: constants ---- */\n" + int8_types + "".join(qe.constants) + "".join(g.constants)
        + layer_table +
        f"static const float k_output_scale = {_c_float(out.scale)};\n"
        f"static const int32_t k_output_zero_point = {out.zero_point};\n"
        + helpers + "\n" + quantize +
        f"\nvoid {ident}_int8_forward(const int8_t q[{upper}_OBSERVATION_SIZE], int8_t output[{upper}_OUTPUT_SIZE])\n"
        f"{{\n{buffers}\n    int8_t *v = a;\n    int i;\n"
        f"    for (i = 0; i < {obs_dim}; ++i) {{\n        a[i] = q[i];\n    }}\n"
        + "".join(line + "\n" for line in g.body) +
        f"    for (i = 0; i < {out_dim}; ++i) {{\n        output[i] = v[i];\n    }}\n}}\n"
        f"\nvoid {ident}_int8_raw(const float observation[{upper}_OBSERVATION_SIZE], "
        f"int8_t output[{upper}_OUTPUT_SIZE])\n"
        f"{{\n    int8_t q[{obs_dim}];\n    {ident}_quantize_observation(observation, q);\n"
        f"    {ident}_int8_forward(q, output);\n}}\n"
        f"\nvoid {ident}_int8(const float observation[{upper}_OBSERVATION_SIZE], float output[{upper}_OUTPUT_SIZE])\n"
        f"{{\n    int8_t raw[{out_dim}];\n    int i;\n    {ident}_int8_raw(observation, raw);\n"
        f"    for (i = 0; i < {out_dim}; ++i) {{\n"
        "        output[i] = (float)((int32_t)raw[i] - k_output_zero_point) * k_output_scale;\n    }\n}\n"
        f"\nvoid {ident}_float(const float observation[{upper}_OBSERVATION_SIZE], float output[{upper}_OUTPUT_SIZE])\n"
        f"{{\n{fe.buffers('float', f_width)}\n    int i;\n"
        + "\n".join(fe.body) + "\n}\n")

    header = (
        f"/* Generated by tflite_export: the compact actor as one plain C99 function per variant.\n"
        " *\n"
        f" *   float obs[{upper}_OBSERVATION_SIZE], out[{upper}_OUTPUT_SIZE];\n"
        f" *   {ident}_int8(obs, out);   or   {ident}_float(obs, out);\n"
        " *\n"
        " * obs is the raw observation from the environment; out is the logits (discrete actions: take\n"
        " * the argmax) or the bounded action (continuous). No heap, no static RAM, no runtime library:\n"
        " * the int8 variant uses only integer arithmetic after quantising the observation (a few\n"
        " * float operations per feature); the float variant needs tanhf/expf from <math.h>.\n"
        f" * {ident}_int8_raw returns the int8 output tensor of {model_name}, bit for bit what\n"
        " * TFLite Micro computes; the int8 variant dequantises it with the output's scale and zero\n"
        " * point (a continuous action is bounded inside the int8 model already). Compile as C99 (or\n"
        " * with -ffp-contract=off) so the float steps round as on the host.\n"
        " */\n"
        f"#ifndef {upper}_H_\n#define {upper}_H_\n\n#include <stdint.h>\n\n"
        "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
        f"#define {upper}_OBSERVATION_SIZE {obs_dim}\n#define {upper}_OUTPUT_SIZE {out_dim}\n\n"
        f"void {ident}_float(const float observation[{upper}_OBSERVATION_SIZE], float output[{upper}_OUTPUT_SIZE]);\n"
        f"void {ident}_int8(const float observation[{upper}_OBSERVATION_SIZE], float output[{upper}_OUTPUT_SIZE]);\n"
        f"void {ident}_int8_raw(const float observation[{upper}_OBSERVATION_SIZE], "
        f"int8_t output[{upper}_OUTPUT_SIZE]);\n"
        f"/* The int8 model's input map and quantisation, and the int8 graph on an already quantised input. */\n"
        f"void {ident}_quantize_observation(const float observation[{upper}_OBSERVATION_SIZE], "
        f"int8_t q[{upper}_OBSERVATION_SIZE]);\n"
        f"void {ident}_int8_forward(const int8_t q[{upper}_OBSERVATION_SIZE], int8_t output[{upper}_OUTPUT_SIZE]);\n"
        "\n#ifdef __cplusplus\n}\n#endif\n\n"
        f"#endif  /* {upper}_H_ */\n")
    return CPolicy(ident, header, source, obs_dim, out_dim, out.scale, out.zero_point)


# ---- building and calling the C on this machine ---------------------------------------
def host_compiler() -> Optional[str]:
    """The host C compiler ($CC, cc, gcc or clang), or None."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def compile_shared(files: Dict[str, str], directory: str, compiler: Optional[str] = None,
                   extra_flags: Sequence[str] = ()) -> str:
    """Builds the policy as a shared library with the strict flags; returns its path."""
    compiler = compiler or host_compiler()
    if compiler is None:
        raise RuntimeError("no C compiler found (set CC or install gcc or clang)")
    for name, text in files.items():
        with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
            f.write(text)
    sources = [os.path.join(directory, n) for n in files if n.endswith(".c")]
    lib = os.path.join(directory, "libpolicy.so")
    r = subprocess.run([compiler, *C_FLAGS, "-O2", "-shared", "-fPIC", *extra_flags, "-o", lib, *sources, "-lm"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"the generated C did not compile:\n{r.stderr[-4000:]}")
    return lib


class CPolicyLibrary:
    """The generated C, compiled on the host and called through ctypes (for checks and returns)."""

    def __init__(self, policy: CPolicy, compiler: Optional[str] = None):
        self.policy = policy
        with tempfile.TemporaryDirectory(prefix="c_policy_") as tmp:
            self._lib = ctypes.CDLL(compile_shared(policy.files, tmp, compiler))  # mapped, the file may go
        f32, i8 = ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_int8)
        for suffix, out_type in (("float", f32), ("int8", f32), ("int8_raw", i8)):
            fn = getattr(self._lib, f"{policy.ident}_{suffix}")
            fn.argtypes, fn.restype = [f32, out_type], None
        fwd = getattr(self._lib, f"{policy.ident}_int8_forward")
        fwd.argtypes, fwd.restype = [i8, i8], None

    def _call(self, suffix: str, x: np.ndarray, dtype) -> np.ndarray:
        fn = getattr(self._lib, f"{self.policy.ident}_{suffix}")
        x = np.ascontiguousarray(x, np.int8 if suffix == "int8_forward" else np.float32)
        if x.shape != (self.policy.observation_size,):
            raise ValueError(f"expected an observation of {self.policy.observation_size} values, got {x.shape}")
        out = np.zeros(self.policy.output_size, dtype)
        fn(x.ctypes.data_as(fn.argtypes[0]), out.ctypes.data_as(fn.argtypes[1]))
        return out

    def float32(self, obs: np.ndarray) -> np.ndarray:
        return self._call("float", obs, np.float32)

    def int8(self, obs: np.ndarray) -> np.ndarray:
        return self._call("int8", obs, np.float32)

    def int8_raw(self, obs: np.ndarray) -> np.ndarray:
        return self._call("int8_raw", obs, np.int8)

    def int8_forward(self, q: np.ndarray) -> np.ndarray:
        return self._call("int8_forward", q, np.int8)

    def batch(self, fn: Callable[[np.ndarray], np.ndarray], observations: np.ndarray) -> np.ndarray:
        return np.stack([fn(o) for o in np.asarray(observations)])
