"""The float32 variant of the plain-C policy, emitted from the Keras actor layer by layer.

It is the reference a board can run where float is cheap (an M4F) and the
yardstick of the int8 variant: its outputs must equal Keras's to float32
rounding, so it follows the Keras layers, not the flatbuffer.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from dsp_tf._keras import keras
from dsp_tf.chain import activation_name
from tflite_export.actor_layers import (action_bounds, computing_layers, is_bounded_action, is_normalization,
                                        normalization_constants, normalization_inv_std)
from tflite_export.c_int8 import _c_float, _Emitter
from tflite_export.tflite_graph import UnsupportedForC

_FLOAT_ACTIVATIONS = {
    "linear": None,
    "tanh": "{v} = tanhf({v});",
    "relu": "{v} = ({v} > 0.0f) ? {v} : 0.0f;",
    "sigmoid": "{v} = 1.0f / (1.0f + expf(-{v}));",
}


def _activation_statement(layer):
    """The C statement of the layer's activation (None: linear); UnsupportedForC for what C does not mirror."""
    if isinstance(layer, keras.layers.ReLU):
        if layer.max_value is not None or float(layer.negative_slope) != 0.0 or float(layer.threshold) != 0.0:
            raise UnsupportedForC(f"layer '{layer.name}': only a plain ReLU is supported")
        return _FLOAT_ACTIVATIONS["relu"]
    act = getattr(layer, "activation", None)
    name = activation_name(act) if act is not None else "linear"
    if name not in _FLOAT_ACTIVATIONS:
        raise UnsupportedForC(f"layer '{layer.name}': activation '{name}' is not supported by the C generator")
    return _FLOAT_ACTIVATIONS[name]


class _FloatChain:
    """Emits statements that run on one of two float buffers, ``a`` and ``b``."""

    def __init__(self, e: _Emitter, obs_dim: int):
        self.e, self.n, self.cur, self.width = e, obs_dim, 0, obs_dim

    @property
    def buffer(self) -> str:
        return ("a", "b")[self.cur]

    def elementwise(self, statement: str) -> None:
        self.e.body.append(f"    for (i = 0; i < {self.n}; ++i) {{\n        " + statement.format(v=f"{self.buffer}[i]")
                           + "\n    }")

    def activation(self, layer) -> None:
        statement = _activation_statement(layer)
        if statement:
            self.elementwise(statement)

    def normalization(self, layer) -> None:
        e = self.e
        mean = e.array("float", np.asarray(normalization_constants(layer)[0], np.float32), floats=True)
        inv_std = e.array("float", normalization_inv_std(layer), floats=True)
        clip = _c_float(normalization_constants(layer)[2])
        self.elementwise(f"float z = ({{v}} - {mean}[i]) * {inv_std}[i];\n"
                         f"        {{v}} = (z < -{clip}) ? -{clip} : ((z > {clip}) ? {clip} : z);")

    def dense(self, layer) -> None:
        e = self.e
        kernel, *bias = layer.get_weights()
        n_in, n_out = kernel.shape
        wn = e.array("float", np.ascontiguousarray(kernel.T), floats=True)
        bn = e.array("float", bias[0], floats=True) if bias else "0"
        e.use("dense_float")
        e.body.append(f"    ap_dense_float({self.buffer}, {n_in}, {('a', 'b')[1 - self.cur]}, {n_out}, {wn}, {bn});")
        self.cur, self.n, e.two_buffers = 1 - self.cur, n_out, True
        self.width = max(self.width, self.n)
        self.activation(layer)

    def bounded_action(self, layer) -> None:
        low, high = action_bounds(layer)
        mid = self.e.array("float", (high + low) / np.float32(2), floats=True)
        half = self.e.array("float", (high - low) / np.float32(2), floats=True)
        self.elementwise(f"{{v}} = {mid}[i] + {half}[i] * tanhf({{v}});")


def _float_forward(actor: keras.Model, e: _Emitter) -> Tuple[int, int, int]:
    """Emits the Keras actor into ``e``; returns (observation size, output size, buffer width)."""
    obs_dim = int(actor.inputs[0].shape[-1])
    chain = _FloatChain(e, obs_dim)
    e.body.append(f"    for (i = 0; i < {obs_dim}; ++i) {{\n        a[i] = observation[i];\n    }}")
    for layer in computing_layers(actor):
        if is_normalization(layer):
            chain.normalization(layer)
        elif isinstance(layer, keras.layers.Dense):
            chain.dense(layer)
        elif is_bounded_action(layer):
            chain.bounded_action(layer)
        elif isinstance(layer, keras.layers.Dropout):
            continue
        elif isinstance(layer, (keras.layers.Activation, keras.layers.ReLU)):
            chain.activation(layer)
        else:
            raise UnsupportedForC(f"layer '{layer.name}' of type {type(layer).__name__} is not supported "
                                  "by the C generator")
    e.body.append(f"    for (i = 0; i < {chain.n}; ++i) {{\n        output[i] = {chain.buffer}[i];\n    }}")
    return obs_dim, chain.n, chain.width


def bounded_action(actor: keras.Model):
    """The actor's last action-bounds layer, or None (its outputs are then logits or unbounded)."""
    found = [l for l in computing_layers(actor) if is_bounded_action(l)]
    return found[-1] if found else None


DENSE_FLOAT = """
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
