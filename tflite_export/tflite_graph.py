"""Reading a TFLite int8 flatbuffer, and TFLite Micro's Prepare() arithmetic in Python.

The C generator (tflite_export.c_policy) must reproduce what the TFLM
interpreter computes, so every multiplier, shift and clamp it writes into the C
is derived here exactly as TFLM's kernels derive them at Prepare time (same
float32/float64 steps, same rounding), from the tensors of the shipped
flatbuffer, never from Keras.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np


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
