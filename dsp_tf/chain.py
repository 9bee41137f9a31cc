"""Reading a Keras model as a chain of Dense layers.

Structured pruning needs to know, for every hidden neuron, its incoming column in
one kernel and its outgoing row in the next. That is only well defined for a
plain chain whose parameterised layers are Dense and whose other layers act
element-wise; anything else is refused with a message naming the layer, rather
than pruned wrongly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple, Union

from dsp_tf._keras import keras, tf

#: Layers that keep the feature count and act per unit, so a neuron removed
#: before them is simply absent after them.
ELEMENTWISE_LAYERS = (
    keras.layers.Activation,
    keras.layers.Dropout,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.GaussianNoise,
)


#: Keras activations that act on each unit alone. Softmax is not one: removing a
#: unit changes every other unit's output, so compact ≠ masked.
ELEMENTWISE_ACTIVATIONS = frozenset({
    "elu", "exponential", "gelu", "hard_sigmoid", "linear", "mish", "relu", "selu", "sigmoid",
    "softplus", "softsign", "swish", "silu", "tanh"})


def activation_name(fn) -> str:
    """The Keras name of an activation function (its __name__ for custom callables)."""
    name = keras.activations.serialize(fn)
    if isinstance(name, dict):  # custom objects serialise as a config
        name = name.get("config", name.get("class_name", ""))
    return name if isinstance(name, str) else getattr(fn, "__name__", repr(fn))


def _check_elementwise(layer: keras.layers.Layer) -> None:
    name = activation_name(layer.activation)
    if name not in ELEMENTWISE_ACTIVATIONS:
        raise ValueError(f"cannot prune through layer '{layer.name}': its activation '{name}' is not "
                         f"element-wise (supported: {', '.join(sorted(ELEMENTWISE_ACTIVATIONS))})")


class NeuronMask(keras.layers.Layer):
    """Multiplies each unit by a fixed 0/1 value (Eq. 8: h = σ(θh) ⊙ m).

    The mask is a non-trainable variable so that it is checkpointed with the
    model and so that compiled graphs read its current value after an update.
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, input_shape):
        self.mask = self.add_weight(
            name="mask", shape=(self.units,), initializer="ones",
            trainable=False, dtype=self.dtype)
        super().build(input_shape)

    def call(self, inputs):
        return inputs * tf.cast(self.mask, inputs.dtype)

    def get_config(self):
        config = super().get_config()
        config["units"] = self.units
        return config


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

    layers: List[keras.layers.Layer]
    dense: List[keras.layers.Dense]
    masks: Optional[List[NeuronMask]] = None
    input_dim: int = 0
    extras: dict = field(default_factory=dict)
    front: List[keras.layers.Layer] = field(default_factory=list)
    input_shape: Tuple[Optional[int], ...] = ()

    @property
    def hidden(self) -> List[keras.layers.Dense]:
        return self.dense[:-1]


#: Layers that take several tensors: a model that has one is not a chain.
_MERGE_LAYERS = (keras.layers.Add, keras.layers.Subtract, keras.layers.Multiply, keras.layers.Average,
                 keras.layers.Maximum, keras.layers.Minimum, keras.layers.Concatenate, keras.layers.Dot)

#: Layers allowed in front of the first Dense layer only: they reshape or rescale
#: the model's input but touch no hidden neuron, so pruning passes them through
#: (the masked and compact models keep them, with their weights).
FRONT_LAYERS = (keras.layers.Normalization, keras.layers.Flatten, keras.layers.Rescaling)

ModelOrLayers = Union[keras.Model, Sequence[keras.layers.Dense]]


def _check_plain_chain(model: keras.Model, layers) -> None:
    """Refuses what is not a chain (subclassed models, branches, skip connections,
    merges) in one line: pruning a neuron is only defined when every layer takes
    the previous layer's output alone."""
    if isinstance(model, keras.Sequential):
        return
    if getattr(model, "inputs", None) is None or getattr(model, "outputs", None) is None:
        raise ValueError(
            f"cannot prune '{model.name}': it is a subclassed Keras model ({type(model).__name__}), whose "
            "layer graph cannot be read; build it with keras.Sequential or the functional API")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"cannot prune '{model.name}': it has {len(model.inputs)} inputs and "
                         f"{len(model.outputs)} outputs; only a one-input, one-output chain can be pruned")
    for layer in layers:
        if isinstance(layer, _MERGE_LAYERS):
            raise ValueError(
                f"cannot prune '{model.name}': layer '{layer.name}' ({type(layer).__name__}) merges several "
                "tensors (a skip connection or branch); only a chain of layers can be pruned")
    x = tf.random.stateless_normal((2,) + tuple(model.inputs[0].shape[1:]), seed=(1, 2))
    y = x
    for layer in layers:
        try:
            y = layer(y, training=False)
        except Exception:  # noqa: BLE001  (Keras raises many types; the cause is the graph)
            raise ValueError(
                f"cannot prune '{model.name}': layer '{layer.name}' ({type(layer).__name__}) does not take the "
                "previous layer's output alone (a skip connection or branch?); only a chain of layers "
                "can be pruned") from None
    reference = model(x, training=False)
    if y.shape != reference.shape or not bool(tf.reduce_all(tf.abs(y - reference) <= 1e-6)):
        raise ValueError(f"cannot prune '{model.name}': it is not a plain chain of layers (a branch or a "
                         "layer used twice?); only a chain of layers can be pruned")


def dense_chain(model_or_layers: ModelOrLayers) -> DenseChain:
    """Parses a model (or a list of built Dense layers) into a DenseChain."""
    if isinstance(model_or_layers, keras.Model):
        model = model_or_layers
        if not model.built:
            raise ValueError("model must be built (call it once or give it an Input)")
        layers = [l for l in model.layers if not isinstance(l, keras.layers.InputLayer)]
        _check_plain_chain(model, layers)
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
        if isinstance(layer, keras.layers.Dense):
            dense.append(layer)
        elif not dense and isinstance(layer, FRONT_LAYERS + ELEMENTWISE_LAYERS):
            front.append(layer)  # acts on the model's input only
            continue
        elif isinstance(layer, FRONT_LAYERS):
            raise ValueError(
                f"cannot prune through layer '{layer.name}' of type {type(layer).__name__}: it is "
                "supported only in front of the first Dense layer, where it touches no hidden neuron")
        elif not isinstance(layer, ELEMENTWISE_LAYERS):
            raise ValueError(
                f"cannot prune through layer '{layer.name}' of type "
                f"{type(layer).__name__}: only Dense and element-wise layers are supported "
                f"(and {', '.join(t.__name__ for t in FRONT_LAYERS)} before the first Dense)")
        plain.append(layer)
    if len(dense) < 2:
        raise ValueError("model needs at least one hidden Dense layer and an output Dense layer")
    for layer in plain[:plain.index(dense[-1])]:  # what acts on hidden units; the output may be anything
        if isinstance(layer, (keras.layers.Dense, keras.layers.Activation)):
            _check_elementwise(layer)
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
                      front=front, input_shape=input_shape)


# A saved masked model reloads with a plain keras.models.load_model.
keras.utils.get_custom_objects()[NeuronMask.__name__] = NeuronMask
