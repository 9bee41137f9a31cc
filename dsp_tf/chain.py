"""Reading a Keras model as a chain of Dense layers.

Structured pruning needs to know, for every hidden neuron, its incoming column in
one kernel and its outgoing row in the next. That is only well defined for a
plain chain whose parameterised layers are Dense and whose other layers act
element-wise; anything else is refused with a message naming the layer, rather
than pruned wrongly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Union

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

    ``layers`` is the full ordered list (masks excluded); ``dense`` the Dense
    layers in order; the last Dense is the output layer and is never pruned.
    ``masks`` holds the NeuronMask layer after each hidden Dense when the model
    is already masked, else None.
    """

    layers: List[keras.layers.Layer]
    dense: List[keras.layers.Dense]
    masks: Optional[List[NeuronMask]] = None
    input_dim: int = 0
    extras: dict = field(default_factory=dict)

    @property
    def hidden(self) -> List[keras.layers.Dense]:
        return self.dense[:-1]


ModelOrLayers = Union[keras.Model, Sequence[keras.layers.Dense]]


def _check_plain_chain(model: keras.Model, layers) -> None:
    """Refuses branching functional models: the chain must reproduce the model."""
    if isinstance(model, keras.Sequential):
        return
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError("model must have one input and one output to be pruned")
    x = tf.random.stateless_normal((2,) + tuple(model.inputs[0].shape[1:]), seed=(1, 2))
    y = x
    for layer in layers:
        y = layer(y, training=False)
    if y.shape != model(x, training=False).shape or not bool(
            tf.reduce_all(tf.abs(y - model(x, training=False)) <= 1e-6)):
        raise ValueError("model is not a plain chain of layers; only chains can be pruned")


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
    plain, dense, masks = [], [], []
    for layer in layers:
        if isinstance(layer, NeuronMask):
            masks.append(layer)
            continue
        if isinstance(layer, keras.layers.Dense):
            dense.append(layer)
        elif not isinstance(layer, ELEMENTWISE_LAYERS):
            raise ValueError(
                f"cannot prune through layer '{layer.name}' of type "
                f"{type(layer).__name__}: only Dense and element-wise layers are supported")
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
    return DenseChain(layers=plain, dense=dense, masks=masks or None,
                      input_dim=int(dense[0].kernel.shape[0]))


# A saved masked model reloads with a plain keras.models.load_model.
keras.utils.get_custom_objects()[NeuronMask.__name__] = NeuronMask
