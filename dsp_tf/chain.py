"""Reading a Keras model as a chain of Dense layers.

Structured pruning needs to know, for every hidden neuron, its incoming column in
one kernel and its outgoing row in the next. That is only well defined for a
plain chain whose parameterised layers are Dense and whose other layers act
element-wise; anything else is refused with a message naming the layer, rather
than pruned wrongly.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

from dsp_tf.binding import (KerasBinding, NeuronMask, binding_of, keras3_binding, keras3_installed,
                            tf_keras_binding)

#: Keras activations that act on each unit alone. Softmax is not one: removing a
#: unit changes every other unit's output, so compact ≠ masked.
ELEMENTWISE_ACTIVATIONS = frozenset({
    "elu", "exponential", "gelu", "hard_sigmoid", "linear", "mish", "relu", "selu", "sigmoid",
    "softplus", "softsign", "swish", "silu", "tanh"})


def _binding_of_function(fn) -> Optional[KerasBinding]:
    """The Keras an activation function comes from, read from its module; None for a user's own."""
    root = (getattr(fn, "__module__", None) or "").split(".")[0]
    if root == "tf_keras":
        return tf_keras_binding()
    if root == "keras":
        if keras3_installed():
            return keras3_binding()
        return tf_keras_binding() if "tf_keras" in sys.modules else None
    return None


def activation_name(fn, binding: Optional[KerasBinding] = None) -> str:
    """The Keras name of an activation function (its __name__ for custom callables)."""
    binding = binding or _binding_of_function(fn)
    if binding is None:
        return getattr(fn, "__name__", repr(fn))
    name = binding.keras.activations.serialize(fn)
    if isinstance(name, dict):  # custom objects serialise as a config
        name = name.get("config", name.get("class_name", ""))
    return name if isinstance(name, str) else getattr(fn, "__name__", repr(fn))


def _check_elementwise(layer, binding: KerasBinding) -> None:
    name = activation_name(layer.activation, binding)
    if name not in ELEMENTWISE_ACTIVATIONS:
        raise ValueError(f"cannot prune through layer '{layer.name}': its activation '{name}' is not "
                         f"element-wise (supported: {', '.join(sorted(ELEMENTWISE_ACTIVATIONS))})")


def __getattr__(name: str):
    """The tf_keras layer tuples under their old module-level names (tflite_export reads
    ``ELEMENTWISE_LAYERS``); code for both Kerases asks ``binding_of(model)`` instead."""
    attrs = {"ELEMENTWISE_LAYERS": "elementwise_layers", "FRONT_LAYERS": "front_layers",
             "_MERGE_LAYERS": "merge_layers"}
    if name in attrs:
        return getattr(tf_keras_binding(), attrs[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class DenseChain:
    """A model seen as ``input → [Dense, element-wise*]+``.

    ``layers`` is the ordered list from the first Dense on (masks excluded); ``dense`` the Dense
    layers in order; the last Dense is the output layer and is never pruned.
    ``masks`` holds the NeuronMask layer after each hidden Dense when the model
    is already masked, else None. ``front`` holds the layers before the first
    Dense (Normalization, Flatten, Rescaling, element-wise): they act on the
    model's input, whose shape is ``input_shape``, and are kept as they are.
    """

    layers: List[Any]
    dense: List[Any]
    masks: Optional[List[NeuronMask]] = None
    input_dim: int = 0
    extras: dict = field(default_factory=dict)
    front: List[Any] = field(default_factory=list)
    input_shape: Tuple[Optional[int], ...] = ()
    #: The Keras the model was built with.
    binding: Optional[KerasBinding] = None

    @property
    def hidden(self) -> List[Any]:
        return self.dense[:-1]


#: A Keras model (Keras 3 or tf_keras), or the list of its Dense layers.
ModelOrLayers = Union[Any, Sequence[Any]]


def _check_plain_chain(model, layers, binding: KerasBinding) -> None:
    """Refuses what is not a chain (subclassed models, branches, skip connections,
    merges) in one line: pruning a neuron is only defined when every layer takes
    the previous layer's output alone."""
    if isinstance(model, binding.keras.Sequential):
        return
    if getattr(model, "inputs", None) is None or getattr(model, "outputs", None) is None:
        raise ValueError(
            f"cannot prune '{model.name}': it is a subclassed Keras model ({type(model).__name__}), whose "
            "layer graph cannot be read; build it with keras.Sequential or the functional API")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"cannot prune '{model.name}': it has {len(model.inputs)} inputs and "
                         f"{len(model.outputs)} outputs; only a one-input, one-output chain can be pruned")
    for layer in layers:
        if isinstance(layer, binding.merge_layers):
            raise ValueError(
                f"cannot prune '{model.name}': layer '{layer.name}' ({type(layer).__name__}) merges several "
                "tensors (a skip connection or branch); only a chain of layers can be pruned")
    x = np.random.default_rng(12).normal(size=(2,) + tuple(model.inputs[0].shape[1:])).astype(np.float32)
    y = x
    for layer in layers:
        try:
            y = layer(y, training=False)
        except Exception:  # noqa: BLE001  (Keras raises many types; the cause is the graph)
            raise ValueError(
                f"cannot prune '{model.name}': layer '{layer.name}' ({type(layer).__name__}) does not take the "
                "previous layer's output alone (a skip connection or branch?); only a chain of layers "
                "can be pruned") from None
    y, reference = binding.to_numpy(y), binding.to_numpy(model(x, training=False))
    if y.shape != reference.shape or not np.all(np.abs(y - reference) <= 1e-6):
        raise ValueError(f"cannot prune '{model.name}': it is not a plain chain of layers (a branch or a "
                         "layer used twice?); only a chain of layers can be pruned")


def dense_chain(model_or_layers: ModelOrLayers) -> DenseChain:
    """Parses a model (or a list of built Dense layers) of either Keras into a DenseChain."""
    binding = binding_of(model_or_layers)
    keras = binding.keras
    if isinstance(model_or_layers, keras.Model):
        model = model_or_layers
        if not model.built:
            raise ValueError("model must be built (call it once or give it an Input)")
        layers = [l for l in model.layers if not isinstance(l, keras.layers.InputLayer)]
        _check_plain_chain(model, layers, binding)
    elif isinstance(model_or_layers, keras.layers.Layer):
        raise ValueError(f"expected a Keras model or a list of its Dense layers, got the layer "
                         f"'{model_or_layers.name}' ({type(model_or_layers).__name__})")
    else:
        layers = list(model_or_layers)
        for l in layers:
            if not isinstance(l, keras.layers.Dense):
                raise ValueError(
                    f"expected Dense layers, got {type(l).__name__} '{getattr(l, 'name', l)}'")
            if not l.built:
                raise ValueError(f"Dense layer '{l.name}' is not built")
    plain, dense, masks, front = [], [], [], []
    for layer in layers:
        if isinstance(layer, NeuronMask):
            masks.append(layer)
            continue
        if isinstance(layer, binding.hook_layers):
            continue  # the pruner's penalty hook on Keras 3, an identity
        if isinstance(layer, keras.layers.Dense):
            dense.append(layer)
        elif not dense and isinstance(layer, binding.front_layers + binding.elementwise_layers):
            front.append(layer)  # acts on the model's input only
            continue
        elif isinstance(layer, binding.front_layers):
            raise ValueError(
                f"cannot prune through layer '{layer.name}' of type {type(layer).__name__}: it is "
                "supported only in front of the first Dense layer, where it touches no hidden neuron")
        elif not isinstance(layer, binding.elementwise_layers):
            raise ValueError(
                f"cannot prune through layer '{layer.name}' of type "
                f"{type(layer).__name__}: only Dense and element-wise layers are supported "
                f"(and {', '.join(t.__name__ for t in binding.front_layers)} before the first Dense)")
        plain.append(layer)
    if len(dense) < 2:
        raise ValueError("model needs at least one hidden Dense layer and an output Dense layer")
    for layer in plain[:plain.index(dense[-1])]:  # what acts on hidden units; the output may be anything
        if isinstance(layer, (keras.layers.Dense, keras.layers.Activation)):
            _check_elementwise(layer, binding)
    for a, b in zip(dense, dense[1:]):
        if a.units != b.kernel.shape[0]:
            raise ValueError(f"Dense '{b.name}' does not take '{a.name}' as its input")
    if masks and len(masks) != len(dense) - 1:
        raise ValueError("a masked model must have one NeuronMask per hidden Dense layer")
    input_dim = int(dense[0].kernel.shape[0])
    input_shape: Tuple[Optional[int], ...] = (input_dim,)
    if front:
        inputs = getattr(model_or_layers, "inputs", None)
        if not inputs:
            raise ValueError("a model with layers before its first Dense layer must have an Input")
        input_shape = tuple(inputs[0].shape[1:])
    return DenseChain(layers=plain, dense=dense, masks=masks or None, input_dim=input_dim,
                      front=front, input_shape=input_shape, binding=binding)
