"""What an exported actor is made of, read without the classes that built it.

A deployable RL actor wraps its Dense chain in two small layers: an observation
normaliser in front and, for a continuous action, the squashing into the action
bounds behind (``agents.inference`` builds both). The exporter folds the first
into the int8 input and reproduces the second in C, yet it is a library with no
RL in it, so it cannot import their classes. It recognises them by the
configuration they save (the keys their ``.h5`` files already depend on) and,
before converting, checks on a few inputs that each one computes what that
configuration says: a look-alike layer doing something else is refused, not
exported wrongly.
"""
from __future__ import annotations

from typing import List

import numpy as np

from dsp_tf._keras import keras

#: get_config keys of an observation normaliser: clip((x - mean) / sqrt(var + epsilon), -clip, clip).
NORMALIZATION_KEYS = frozenset({"mean", "var", "clip", "epsilon"})
#: get_config keys of an action squashing: mid + half * tanh(x), with mid/half from low/high.
BOUNDED_ACTION_KEYS = frozenset({"low", "high"})


def computing_layers(model: keras.Model) -> List[keras.layers.Layer]:
    """The model's computing layers in call order, nested models flattened (an actor is
    usually the trained MLP nested between its normaliser and its action bounds)."""
    layers = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            layers.extend(computing_layers(layer))
        elif not isinstance(layer, keras.layers.InputLayer):
            layers.append(layer)
    return layers


def _config_keys(layer: keras.layers.Layer) -> frozenset:
    if isinstance(layer, (keras.layers.Dense, keras.layers.InputLayer)):
        return frozenset()
    try:
        return frozenset(layer.get_config())
    except NotImplementedError:  # a custom layer without get_config is none of ours
        return frozenset()


def is_normalization(layer: keras.layers.Layer) -> bool:
    return NORMALIZATION_KEYS <= _config_keys(layer)


def is_bounded_action(layer: keras.layers.Layer) -> bool:
    return BOUNDED_ACTION_KEYS <= _config_keys(layer) and not is_normalization(layer)


def normalization_constants(layer: keras.layers.Layer):
    """(mean, var, clip, epsilon) as float64 arrays and floats."""
    c = layer.get_config()
    return (np.ravel(np.asarray(c["mean"], np.float64)), np.ravel(np.asarray(c["var"], np.float64)),
            float(c["clip"]), float(c["epsilon"]))


def normalization_inv_std(layer: keras.layers.Layer) -> np.ndarray:
    """The float32 1/sqrt(var + epsilon) the layer multiplies by (rounded once from float64, as it is)."""
    _, var, _, epsilon = normalization_constants(layer)
    return (1.0 / np.sqrt(var + epsilon)).astype(np.float32)


def action_bounds(layer: keras.layers.Layer, dtype=np.float32):
    """(low, high) as arrays of ``dtype`` (float32: what the layer computes with)."""
    c = layer.get_config()
    return np.ravel(np.asarray(c["low"], dtype)), np.ravel(np.asarray(c["high"], dtype))


def _expected(layer: keras.layers.Layer, x: np.ndarray) -> np.ndarray:
    if is_normalization(layer):
        mean, _, clip, _ = normalization_constants(layer)
        return np.clip((x - mean) * normalization_inv_std(layer), -clip, clip)
    low, high = action_bounds(layer)
    return (high + low) / 2 + (high - low) / 2 * np.tanh(x)


def check_recognised(layer: keras.layers.Layer) -> None:
    """Raises ValueError when a layer recognised by its configuration computes something else."""
    width = len(normalization_constants(layer)[0]) if is_normalization(layer) else len(action_bounds(layer)[0])
    x = np.random.default_rng(0).normal(scale=3.0, size=(4, width)).astype(np.float32)
    got = np.asarray(layer(x, training=False), np.float64)
    if got.shape != x.shape or not np.allclose(got, _expected(layer, x), rtol=1e-5, atol=1e-5):
        kind = "an observation normalisation" if is_normalization(layer) else "an action bound"
        raise ValueError(f"layer '{layer.name}' ({type(layer).__name__}) is configured as {kind} but does not "
                         "compute one")
