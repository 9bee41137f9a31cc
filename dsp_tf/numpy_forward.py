"""A NumPy copy of a pruned chain's forward pass, for acting without TensorFlow.

An RL loop calls its policy once per environment step on a batch of one to a
few observations; there a TensorFlow call costs ~400 µs of dispatch while the
arithmetic of a 128×128 MLP costs ~5 µs. ``NumpyChain`` reads a (masked,
weight-pruned or plain) chain once, and ``refresh()`` re-reads the current
weights and masks after each update, so a loop acts on exactly the network it
trains. Layers it cannot mirror are refused by name, like everywhere else.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Sequence, Tuple, Union

import numpy as np
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import PruneLowMagnitude

from dsp_tf._keras import keras, tf
from dsp_tf.chain import NeuronMask, activation_name

Array = np.ndarray


def _sigmoid(x: Array) -> Array:
    # exp(-x) overflows to inf for large negative x, where 1 / (1 + inf) = 0 is the right answer:
    # not a warning to show a user.
    with np.errstate(over="ignore"):
        return (1.0 / (1.0 + np.exp(-x))).astype(x.dtype)


def _elu(x: Array, alpha: float = 1.0) -> Array:
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype)


#: Keras activation name → NumPy function (float32 in, float32 out).
ACTIVATIONS: Dict[str, Callable[[Array], Array]] = {
    "linear": lambda x: x,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": _sigmoid,
    "elu": _elu,
    "softplus": lambda x: np.logaddexp(x, 0).astype(x.dtype),
    "swish": lambda x: x * _sigmoid(x),
    "silu": lambda x: x * _sigmoid(x),
    "selu": lambda x: np.float32(1.0507009873554805) * _elu(x, 1.6732632423543772),
    "softsign": lambda x: x / (np.float32(1) + np.abs(x)),
    "exponential": np.exp,
    "hard_sigmoid": lambda x: np.clip(np.float32(0.2) * x + np.float32(0.5), 0, 1).astype(x.dtype),
    "mish": lambda x: x * np.tanh(np.logaddexp(x, 0).astype(x.dtype)),
}

#: Layers that are the identity at inference time (Flatten: on [batch, features]).
INFERENCE_IDENTITY = (keras.layers.Dropout, keras.layers.GaussianNoise, keras.layers.Flatten)


def _activation(layer: keras.layers.Layer, fn) -> Callable[[Array], Array]:
    name = activation_name(fn)
    if name not in ACTIVATIONS:
        raise ValueError(f"cannot mirror activation '{name}' of layer '{layer.name}' in NumPy "
                         f"(supported: {', '.join(sorted(ACTIVATIONS))})")
    return ACTIVATIONS[name]


def _elementwise(layer: keras.layers.Layer) -> Callable[[Array], Array]:
    if isinstance(layer, keras.layers.Activation):
        return _activation(layer, layer.activation)
    if isinstance(layer, keras.layers.ReLU):
        cfg = layer.get_config()
        if cfg.get("max_value") is not None or cfg.get("negative_slope", 0) or cfg.get("threshold", 0):
            raise ValueError(f"cannot mirror layer '{layer.name}': only a plain ReLU is supported")
        return ACTIVATIONS["relu"]
    if isinstance(layer, keras.layers.LeakyReLU):
        alpha = float(layer.get_config()["alpha"])
        return lambda x: np.where(x > 0, x, alpha * x).astype(x.dtype)
    if isinstance(layer, keras.layers.ELU):
        alpha = float(layer.get_config()["alpha"])
        return lambda x: _elu(x, alpha)
    if isinstance(layer, INFERENCE_IDENTITY):
        return lambda x: x
    raise ValueError(f"cannot mirror layer '{layer.name}' of type {type(layer).__name__} in NumPy")


class NumpyChain:
    """``model(x, training=False)`` computed in float32 NumPy.

    Dense layers (plain or inside tfmot's ``PruneLowMagnitude``, whose kernel is
    used times its mask, as the wrapper does), NeuronMask layers and element-wise
    layers are mirrored; anything else raises ValueError naming the layer.

    A NeuronMask right in front of a Dense layer is folded into that layer's
    kernel rows at ``refresh``, and the units it zeroes are dropped from the
    Dense layer before it when only activations lie between (they act per unit):
    the mirror computes with the compact network, so a pruned actor acts faster
    than a dense one, and exactly as the masked model does.
    """

    def __init__(self, model_or_layers: Union[keras.Model, Sequence[keras.layers.Layer]]):
        layers = model_or_layers.layers if isinstance(model_or_layers, keras.Model) else list(model_or_layers)
        self._ops: List[Tuple[str, object]] = []  # ("dense", index) | ("mask", index) | ("fn", callable)
        self._sources: List[Tuple[tf.Variable, object, object]] = []  # kernel, bias, weight mask
        self._mask_sources: List[tf.Variable] = []
        self._folds: List[Tuple[int, object, int]] = []  # (mask, Dense before or None, Dense after)
        last_dense = None  # op position of the Dense layer the current units come from
        for layer in layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            if isinstance(layer, (PruneLowMagnitude, keras.layers.Dense)):
                dense, weight_mask = ((layer.layer, layer.pruning_vars[0][1]) if isinstance(layer, PruneLowMagnitude)
                                      else (layer, None))
                if not isinstance(dense, keras.layers.Dense):
                    raise ValueError(f"cannot mirror pruned layer '{dense.name}' of type {type(dense).__name__}")
                index = len(self._sources)
                if self._ops and self._ops[-1][0] == "mask":  # a mask right in front: fold it
                    _, m = self._ops.pop()
                    between = self._ops[last_dense + 1:] if last_dense is not None else [("mask", None)]
                    # Units can be dropped from the Dense before if only activations lie between.
                    before = self._ops[last_dense][1] if all(k == "fn" for k, _ in between) else None
                    self._folds.append((m, before, index))
                last_dense = len(self._ops)
                self._ops.append(("dense", index))
                self._ops.append(("fn", _activation(dense, dense.activation)))
                self._sources.append((dense.kernel, dense.bias if dense.use_bias else None, weight_mask))
            elif isinstance(layer, NeuronMask):
                self._ops.append(("mask", len(self._mask_sources)))
                self._mask_sources.append(layer.mask)
            else:
                self._ops.append(("fn", _elementwise(layer)))
        if not self._sources:
            raise ValueError("no Dense layer to mirror")
        self.refresh()

    def refresh(self) -> None:
        """Re-reads weights and masks (call after every update of the model)."""
        weights = []
        for kernel, bias, weight_mask in self._sources:
            k = kernel.numpy().astype(np.float32)
            if weight_mask is not None:
                k = k * weight_mask.numpy().astype(np.float32)
            weights.append([k, None if bias is None else bias.numpy().astype(np.float32)])
        self._masks = [m.numpy().astype(np.float32) for m in self._mask_sources]
        for m, before, after in self._folds:
            mask = self._masks[m]
            weights[after][0] = weights[after][0] * mask[:, None]
            if before is not None:
                keep = mask != 0
                weights[before][0] = weights[before][0][:, keep]
                if weights[before][1] is not None:
                    weights[before][1] = weights[before][1][keep]
                weights[after][0] = weights[after][0][keep]
        self._weights = [tuple(w) for w in weights]

    def __call__(self, x: Array) -> Array:
        h = np.asarray(x, np.float32)
        for kind, arg in self._ops:
            if kind == "dense":
                k, b = self._weights[arg]
                h = h @ k if b is None else h @ k + b
            elif kind == "mask":
                h = h * self._masks[arg]
            else:
                h = arg(h)
        return h


def keras_step(model: keras.Model) -> Callable[[Array], Array]:
    """One observation in, one output row out, compiled once: the Keras reference that evaluation acts
    with and that NumpyChain, TFLite and the C policy are held to (eager calls cost ~100× more)."""
    forward = tf.function(lambda x: model(x, training=False), autograph=False)  # no control flow; a lambda warns
    return lambda obs: forward(tf.constant(obs[None], tf.float32))[0].numpy()
