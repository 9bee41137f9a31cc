"""The int8 graph of a TFLite flatbuffer, op by op, as C statements and constant tables.

Only what the exported actors contain is accepted (a single chain of
FULLY_CONNECTED, TANH, LOGISTIC and element-wise ops against constants);
anything else raises UnsupportedForC naming the op, so the export keeps its
TFLite files and says why there is no plain-C policy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Dict, List, Tuple

import numpy as np

from tflite_export.c_kernels import both_table_kernels
from tflite_export.c_tables import ACTIVATION_KERNELS, activation_table, odd_half, trim
from tflite_export.tflite_graph import (UnsupportedForC, _activation_range, _read_graph, _schema, _Tensor,
                                        _sigmoid_like_params, quantize_multiplier)


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


def c_float_literal(v: float) -> str:
    """A ``float`` literal (``f`` suffix) whose value is exactly float32(v): the exact decimal when it
    has at most 24 digits (2^-14 is 0.00006103515625f, 2^-30 has 21: a power-of-two LSB reads as
    what it is), else the shortest digits that read back to it. A header macro made of these
    initialises a ``float`` array under -Werror=float-conversion (a double literal such as
    6.10351562e-05 is neither 2^-14 nor a float)."""
    f = np.float32(v)
    if not np.isfinite(f):
        raise ValueError(f"{v} has no C float literal")
    exact = Decimal(float(f)).normalize()
    if len(exact.as_tuple().digits) <= 24:
        text = format(exact, "f") if -12 <= exact.adjusted() <= 12 else format(exact, "e")
    elif 1e-4 <= abs(float(f)) < 1e7:
        text = np.format_float_positional(f, unique=True, trim="-")
    else:
        text = np.format_float_scientific(f, unique=True, trim="-")
    text = text.lower()
    if not any(ch in text for ch in ".e"):
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
    per_channel: bool = False  # some layer has per-channel weight scales
    all_bias: bool = True  # every layer has a bias
    reads_input: bool = False  # the first statement's layers read the caller's q (no copy into a)
    writes_output: bool = False  # the last layer writes the caller's output (no copy out of v)
    uses_v: bool = True  # some statement reads or sets the running pointer v
    tables: bool = False  # TANH/LOGISTIC by table (the layer rows hold a table pointer)
    activation_tables: Dict[str, tuple] = field(default_factory=dict)  # array name -> activation_table's args
    table_kinds: Dict[str, Tuple[str, int, int]] = field(default_factory=dict)  # array -> kernel, first, last


class _ChainReader:
    """Turns the op chain into C, op by op: FULLY_CONNECTED ops become rows of a layer table (with the
    activation op after each fused into its row), other ops straight-line statements on ``v``."""

    def __init__(self, e: _Emitter, tables: bool = True):
        self.schema = _schema()
        self.e = e
        self.tables = tables  # TANH/LOGISTIC by int8 tables (c_tables) rather than TFLM's routine
        self.table_names: dict = {}  # (act, zero point, radius, m, shift) -> the array holding its table
        # array -> (its C kernel, first, last): "lookup" stores inputs first..last (c_tables.trim),
        # "lookup_odd" entries 0..last of half a TANH/LOGISTIC table (c_tables.odd_half)
        self.table_kinds: Dict[str, Tuple[str, int, int]] = {}
        self.layers: List[dict] = []  # FULLY_CONNECTED ops, each with the activation op after it
        self.steps: List[object] = []  # layer indices (ints) and C statements (str) in graph order
        self.acts: List[str] = []

    def op(self, name: str, ins, x, y, n: int, op, options) -> None:
        fused = getattr(options, "fusedActivationFunction", 0) if options is not None else 0
        if name == "FULLY_CONNECTED":
            self.fully_connected(ins, x, y, op, options, fused)
        elif name in ("TANH", "LOGISTIC"):
            self.sigmoid_like(name, x, y, n)
        elif name in ("ADD", "SUB", "MUL", "MINIMUM", "MAXIMUM"):
            self.binary(name, ins, x, y, n, fused)
        else:
            raise UnsupportedForC(f"op {name} of the int8 model is not supported by the C generator")

    def fully_connected(self, ins, x, y, op, options, fused: int) -> None:
        schema = self.schema
        if len(ins) < 2:
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
        self.layers.append({"w": w.data, "bias": None if b is None else b.data, "m": mults, "shift": shifts,
                            "n_in": n_in, "n_out": n_out, "x_zp": x.zero_point, "y_zp": y.zero_point,
                            "lo": lo, "hi": hi, "per_channel": int(per_channel), "act": 0, "act_m": 0,
                            "act_radius": 0, "act_shift": 0, "act_table": "0", "act_first": 0, "act_last": 0})
        self.steps.append(len(self.layers) - 1)

    def sigmoid_like(self, name: str, x, y, n: int) -> None:
        expected = (1.0 / 128, 0) if name == "TANH" else (1.0 / 256, -128)
        if (y.scale, y.zero_point) != (np.float32(expected[0]), expected[1]):
            raise UnsupportedForC(f"{name} output quantisation {y.scale}/{y.zero_point} is not TFLite's")
        m, shift, radius = _sigmoid_like_params(x.scale)
        radius = min(radius, 256)  # |input - zero point| <= 255: a larger radius never saturates
        act = name.lower()
        steps, layers = self.steps, self.layers
        fuse = bool(steps) and isinstance(steps[-1], int) and layers[steps[-1]]["act"] == 0
        if self.tables:
            key = (act, x.zero_point, radius, m, shift)
            if key not in self.table_names:  # layers quantised alike share one table
                full = activation_table(*key)
                half = odd_half(full, x.zero_point)
                if half is not None:
                    name, kind = self.e.array("int8_t", half), ("lookup_odd", 0, len(half) - 1)
                else:
                    first, entries = trim(full)
                    name, kind = self.e.array("int8_t", entries), ("lookup", first, first + len(entries) - 1)
                self.table_names[key] = name
                self.table_kinds[name] = kind
            table = self.table_names[key]
            kernel, first, last = self.table_kinds[table]
            if kernel not in self.acts:
                self.acts.append(kernel)
            self.e.use(kernel)
            if fuse and layers[steps[-1]]["y_zp"] == x.zero_point:
                layers[steps[-1]].update(act=1 if kernel == "lookup" else 2, act_table=table, act_first=first,
                                         act_last=last)
            elif kernel == "lookup":
                steps.append(f"    ap_lookup(v, {n}, {table}, {first}, {last});")
            else:
                steps.append(f"    ap_lookup_odd(v, {n}, {table}, {x.zero_point}, {last});")
            return
        if act not in self.acts:
            self.acts.append(act)
        self.e.use(act)
        if fuse:
            layers[steps[-1]].update(act=1 if act == "tanh" else 2, act_m=m, act_radius=radius, act_shift=shift)
        else:
            steps.append(f"    ap_{act}(v, {n}, {x.zero_point}, {radius}, {m}, {shift});")

    def binary(self, name: str, ins, x, y, n: int, fused: int) -> None:
        e = self.e
        c, const_first = _constant_operand(ins, name)
        if c.dtype != self.schema.TensorType.INT8 or len(c.scales) != 1:
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
            self.steps.append(f"    ap_min_max(v, {n}, {cn}, {step}, {int(name == 'MAXIMUM')});")
        elif name == "MUL":
            m, shift = quantize_multiplier(float(np.float64(x.scale) * np.float64(c.scale) / np.float64(y.scale)))
            e.use("mul")
            self.steps.append(f"    ap_mul(v, {n}, {cn}, {step}, {-x.zero_point}, {-c.zero_point}, {m}, "
                              f"{shift}, {y.zero_point}, {lo}, {hi});")
        else:
            pn = e.array("int32_t", _add_sub_params(name, x, c, y, const_first, lo, hi))
            e.use("add_sub")
            self.steps.append(f"    ap_add_sub(v, {n}, {cn}, {step}, {pn});")

    def layer_rows(self) -> Tuple[List[str], str]:
        """(the layer table's rows, the C type of its biases)."""
        e = self.e
        biases = [l["bias"] for l in self.layers if l["bias"] is not None]
        bias_type = "int16_t" if all(np.all(np.abs(b) < 2 ** 15) for b in biases) else "int32_t"
        rows = []
        per_channel = any(l["per_channel"] for l in self.layers)
        # per-tensor multiplier and shift sit in the row itself (layer_struct): two pointers fewer per layer
        scale = ("per_channel",) if per_channel else ("shift",)
        if self.tables:
            fields = ("act_table", "n_in", "n_out", "act_first", "act_last", "x_zp", "y_zp", "lo", "hi",
                      *scale, *(("act",) if both_table_kernels(self.acts) else ()))
        else:
            fields = ("act_m", "n_in", "n_out", "act_radius", "x_zp", "y_zp", "lo", "hi", *scale, "act", "act_shift")
        for l in self.layers:
            names = [e.array("int8_t", l["w"]), e.array(bias_type, l["bias"]) if l["bias"] is not None else "0"]
            if per_channel:
                names += [e.array("int32_t", l["m"]), e.array("int8_t", l["shift"])]
            else:
                names.append(str(l["m"][0]))
            values = {**l, "shift": l["shift"][0]}
            rows.append("    {" + ", ".join(names + [str(values[k]) for k in fields]) + "}")
        return rows, bias_type

    def body(self) -> Tuple[List[str], bool, bool, bool]:
        """(the statements, whether they read ``q``, write ``output`` and use ``v``): each run of
        consecutive layers is one ``ap_run_layers`` call; the first reads ``q`` when nothing comes before
        it, the last writes to ``output`` (what follows it works there in place: an element-wise op keeps
        the output's size)."""
        steps, body, i = self.steps, [], 0
        uses_v = False
        last_run = max((k for k, s in enumerate(steps) if isinstance(s, int)), default=-1)
        while i < len(steps):
            if isinstance(steps[i], int):
                j = i
                while j < len(steps) and isinstance(steps[j], int):
                    j += 1
                source = "q" if i == 0 else "v"
                out = "output" if j - 1 == last_run else "0"
                result = "v = " if j < len(steps) else ""  # what follows works on v
                uses_v = uses_v or bool(result) or source == "v"
                body.append(f"    {result}ap_run_layers({source}, a, b, {out}, k_layers + {steps[i]}, {j - i});")
                i = j
            else:
                body.append(steps[i])
                uses_v = True
                i += 1
        return body, bool(steps) and isinstance(steps[0], int), last_run >= 0, uses_v


def _add_sub_params(name: str, x, c, y, const_first: bool, lo: int, hi: int) -> List[int]:
    """ADD/SUB's parameter block: (zero point, multiplier, shift, sign) of the running vector and of the
    constant, then the output's multiplier, shift, zero point and range, as TFLite Micro computes them."""
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
    return [*v_params, *c_params, mo, sho, y.zero_point, lo, hi]


def _int8_graph(flatbuffer: bytes, prefix: str = "k_q", c_tanh: str = "table") -> _Int8Graph:
    """Reads the int8 flatbuffer op by op into C (raises UnsupportedForC for anything else); ``c_tanh``
    (ACTIVATION_KERNELS) says whether TANH/LOGISTIC become tables or TFLM's computed routine."""
    if c_tanh not in ACTIVATION_KERNELS:
        raise ValueError(f"unknown activation kernel {c_tanh!r} (choose from {', '.join(ACTIVATION_KERNELS)})")
    schema = _schema()
    e = _Emitter(prefix)
    inp, out, ops, graph = _read_graph(flatbuffer)
    for t, what in ((inp, "input"), (out, "output")):
        if t.dtype != schema.TensorType.INT8 or len(t.scales) != 1:
            raise UnsupportedForC(f"the model's {what} is not a per-tensor int8 tensor")
    width = int(np.prod(inp.shape))
    reader = _ChainReader(e, tables=c_tanh == "table")
    running_index = graph.inputs[0]
    for name, ins, outs, op, options in ops:
        running = [i for i, t in zip(op.inputs, ins) if t is not None and t.data is None]
        if len(running) != 1 or running[0] != running_index or len(outs) != 1:
            raise UnsupportedForC(f"op {name} does not continue a single chain of ops")
        y = outs[0]
        if y.dtype != schema.TensorType.INT8:
            raise UnsupportedForC(f"op {name} has a non-int8 output")
        position = list(op.inputs).index(running_index)
        if name == "FULLY_CONNECTED" and position != 0:
            raise UnsupportedForC("FULLY_CONNECTED must take the running vector as its input")
        n = int(np.prod(y.shape))
        width = max(width, n)
        reader.op(name, ins, ins[position], y, n, op, options)
        running_index = op.outputs[0]
    if running_index != graph.outputs[0]:
        raise UnsupportedForC("the op chain does not end at the model's output")
    rows, bias_type = reader.layer_rows()
    body, reads_input, writes_output, uses_v = reader.body()
    if reader.layers:
        e.use("fully_connected")
    return _Int8Graph(inp, out, width, e.constants, e.helpers, rows, body, bias_type, reader.acts,
                      any(l["per_channel"] for l in reader.layers), all(l["bias"] is not None for l in reader.layers),
                      reads_input, writes_output, uses_v, reader.tables,
                      {name: key for key, name in reader.table_names.items()}, reader.table_kinds)
