"""The deployable actor: raw observation in, logits or bounded action out.

Training applies tf-agents' observation normaliser outside the Keras MLP; a
board has no tf-agents, so the normaliser is folded into a small Keras layer
in front of the compact MLP, and the Gaussian head is reduced to its mode
(the squashed mean). No tfp distribution survives into this model.
"""
from __future__ import annotations

from agents.errors import UsageError

import io
import json
import os
import warnings
from dataclasses import asdict, dataclass
from typing import List, Optional

import numpy as np

from dsp_tf._keras import keras, tf
from dsp_tf.files import atomic_write
from dsp_tf.chain import dense_chain
from dsp_tf.quiet import quiet_native_output
from dsp_tf.safe_load import load_model_safely
from agents.layout import COMPACT_FILE, DENSE_FILE, META_FILE, POLICY_FILE


@dataclass
class ActorMeta:
    env: str
    discrete: bool
    obs_mean: List[float]
    obs_var: List[float]
    obs_clip: float = 5.0
    obs_epsilon: float = 1e-3
    action_low: Optional[List[float]] = None
    action_high: Optional[List[float]] = None
    # The stochastic policy's action noise at the end of training (continuous actions): not needed to act,
    # but an archived run keeps no checkpoint, and a student distilled from it should explore as it did.
    action_log_std: Optional[List[float]] = None
    # How the mean becomes the greedy action: "tanh" squashes it into the bounds (this project's actors);
    # "clip" clips it (a Stable-Baselines3 teacher's, agents.sb3). Only teachers are "clip".
    action_head: str = "tanh"


class ObservationNormalization(keras.layers.Layer):
    """clip((x − μ)/√(σ² + ε), −c, c), exactly as tf-agents' StreamingTensorNormalizer."""

    def __init__(self, mean, var, clip=5.0, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.mean_values = [float(v) for v in np.ravel(mean)]
        self.var_values = [float(v) for v in np.ravel(var)]
        self.clip = float(clip)
        self.epsilon = float(epsilon)
        self._mean = tf.constant(self.mean_values, tf.float32)
        self._inv_std = tf.constant(1.0 / np.sqrt(np.asarray(self.var_values) + self.epsilon), tf.float32)

    def call(self, x):
        return tf.clip_by_value((x - self._mean) * self._inv_std, -self.clip, self.clip)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean_values, "var": self.var_values,
                "clip": self.clip, "epsilon": self.epsilon}


class BoundedAction(keras.layers.Layer):
    """mid + half·tanh(x): the Gaussian policy's mode inside the action bounds."""

    def __init__(self, low, high, **kwargs):
        super().__init__(**kwargs)
        self.low = [float(v) for v in np.ravel(low)]
        self.high = [float(v) for v in np.ravel(high)]
        low, high = np.asarray(self.low, np.float32), np.asarray(self.high, np.float32)
        self._mid = tf.constant((high + low) / 2.0)
        self._half = tf.constant((high - low) / 2.0)

    def call(self, x):
        return self._mid + self._half * tf.tanh(x)

    def get_config(self):
        return {**super().get_config(), "low": self.low, "high": self.high}


class ClippedAction(keras.layers.Layer):
    """clip(x, low, high): a Stable-Baselines3 Gaussian policy's greedy action (agents.sb3)."""

    def __init__(self, low, high, **kwargs):
        super().__init__(**kwargs)
        self.low = [float(v) for v in np.ravel(low)]
        self.high = [float(v) for v in np.ravel(high)]

    def call(self, x):
        return tf.clip_by_value(x, tf.constant(self.low, tf.float32), tf.constant(self.high, tf.float32))

    def get_config(self):
        return {**super().get_config(), "low": self.low, "high": self.high}


def action_head(meta: ActorMeta, name: str = "bounded_action") -> keras.layers.Layer:
    """The layer from a continuous actor's output to its greedy action, as ``meta.action_head`` says."""
    heads = {"tanh": BoundedAction, "clip": ClippedAction}
    if meta.action_head not in heads:
        raise UsageError(f"unknown action_head '{meta.action_head}' in {META_FILE} (one of {', '.join(heads)})")
    return heads[meta.action_head](meta.action_low, meta.action_high, name=name)


def inference_model(mlp: keras.Model, meta: ActorMeta, name: str = "actor") -> keras.Model:
    inputs = keras.Input((len(meta.obs_mean),), name="observation")
    x = ObservationNormalization(meta.obs_mean, meta.obs_var, meta.obs_clip, meta.obs_epsilon,
                                 name="normalize")(inputs)
    x = mlp(x)
    if not meta.discrete:
        x = action_head(meta)(x)
    return keras.Model(inputs, x, name=name)


def policy_model(mlp: keras.Model, meta: ActorMeta, name: str = "policy") -> keras.Model:
    """``inference_model`` made of Keras's own layers only, so that a colleague loads it with plain
    ``load_model("policy.keras")``, without this project: raw observation in, logits or the bounded
    action out.

    The normaliser clip((x − μ)/s, −c, c) becomes Normalization with its mean shifted by c·s
    (giving z + c), ReLU(max_value=2c) (giving clip(z, −c, c) + c) and the first Dense's bias
    lowered by c·Σ_i W_i (taking the + c back); the Gaussian head mid + half·tanh(x) becomes
    Activation("tanh") and a diagonal Dense. Equal to ``inference_model`` up to float rounding."""
    if not meta.discrete and meta.action_head != "tanh":
        raise UsageError(f"a policy file is made for tanh action heads, not '{meta.action_head}'")
    std = np.sqrt(np.asarray(meta.obs_var, np.float64) + meta.obs_epsilon)
    mean = np.asarray(meta.obs_mean, np.float64)
    c = float(meta.obs_clip)
    inputs = keras.Input((len(mean),), name="observation")
    x = keras.layers.Normalization(mean=(mean - c * std).astype(np.float32),
                                   variance=(std ** 2).astype(np.float32), name="normalize")(inputs)
    x = keras.layers.ReLU(max_value=2 * c, name="clip")(x)
    first = True
    for layer in dense_chain(mlp).layers:
        copy = layer.__class__.from_config(layer.get_config())
        x = copy(x)
        weights = layer.get_weights()
        if first and isinstance(layer, keras.layers.Dense):
            if not layer.use_bias:
                raise UsageError("a policy file needs a bias in the first layer to fold the normaliser's shift into")
            kernel, bias = weights
            weights = [kernel, (bias - c * kernel.sum(axis=0)).astype(np.float32)]
            first = False
        copy.set_weights(weights)
    if not meta.discrete:
        low, high = np.asarray(meta.action_low, np.float32), np.asarray(meta.action_high, np.float32)
        x = keras.layers.Activation("tanh", name="squash")(x)
        bounds = keras.layers.Dense(len(low), name="bounded_action")
        x = bounds(x)
        bounds.set_weights([np.diag((high - low) / 2.0).astype(np.float32), ((high + low) / 2.0).astype(np.float32)])
    return keras.Model(inputs, x, name=name)


def greedy_action(outputs: np.ndarray, discrete: bool):
    return int(np.argmax(outputs)) if discrete else np.asarray(outputs, np.float32)


# ---- files in a run directory ------------------------------------------------


def atomic_save_model(model: keras.Model, path: str) -> None:
    """HDF5, not ``.keras``: TF 2.15's ``.keras`` loader resolves classes through the
    standalone ``keras`` package instead of ``tf_keras`` and silently drops weights.

    The file is built in memory and written by ``atomic_write``: HDF5 writing straight to a
    full disk leaves its library in a state that crashes the process later (a segfault at
    exit after the one-line error); a plain write fails cleanly, naming the file."""
    import h5py

    buffer = io.BytesIO()
    # Keras calls HDF5 "legacy" (it is the format that round-trips here, see above),
    # and its legacy saver logs that an uncompiled model has no compiled metrics.
    with warnings.catch_warnings(), quiet_native_output():
        warnings.filterwarnings("ignore", message="You are saving your model as an HDF5 file")
        with h5py.File(buffer, "w") as f:
            model.save(f, save_format="h5")
    atomic_write(path, buffer.getvalue())


def save_actor(run_dir: str, compact: keras.Model, dense: keras.Model, meta: ActorMeta) -> None:
    """The tools' files (compact and dense actors, meta) and the policy file for people.

    The policy is HDF5 like the rest: a tf_keras ``.keras`` file loads only in tf_keras (TF 2.15's
    own ``tf.keras`` silently leaves its weights at their initial values, Keras 3 refuses it),
    while this ``.h5`` loads with the same outputs in tf_keras, TF 2.15's Keras and Keras 3."""
    atomic_save_model(compact, os.path.join(run_dir, COMPACT_FILE))
    atomic_save_model(dense, os.path.join(run_dir, DENSE_FILE))
    if meta.discrete or meta.action_head == "tanh":
        atomic_save_model(policy_model(compact, meta), os.path.join(run_dir, POLICY_FILE))
    atomic_write(os.path.join(run_dir, META_FILE), json.dumps(asdict(meta), indent=2))


def has_saved_actor(run_dir: str) -> bool:
    return all(os.path.exists(os.path.join(run_dir, f)) for f in (COMPACT_FILE, DENSE_FILE, META_FILE))


def load_actor(run_dir: str, which: str = "compact"):
    """Returns (mlp, meta). Raises ValueError with a one-line message when absent or unreadable."""
    path = os.path.join(run_dir, COMPACT_FILE if which == "compact" else DENSE_FILE)
    meta_path = os.path.join(run_dir, META_FILE)
    if not (os.path.exists(path) and os.path.exists(meta_path)):
        raise UsageError(f"no saved actor in '{run_dir}' (expected {os.path.basename(path)} and {META_FILE})")
    mlp = load_model_safely(path, ACTOR_CLASSES)
    return mlp, read_meta(meta_path)


def read_meta(path: str) -> ActorMeta:
    """actor_meta.json, or one line naming it."""
    try:
        with open(path, encoding="utf-8") as f:
            return ActorMeta(**json.load(f))
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
        raise UsageError(f"cannot read '{path}': {type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}") from None


#: The project's own layers a saved actor may hold besides Keras's (dsp_tf.safe_load).
ACTOR_CLASSES = (ObservationNormalization.__name__, BoundedAction.__name__, ClippedAction.__name__)
keras.utils.get_custom_objects().update({ObservationNormalization.__name__: ObservationNormalization,
                                         BoundedAction.__name__: BoundedAction,
                                         ClippedAction.__name__: ClippedAction})
