"""Per-feature int8 input: each observation feature gets its own 256 levels.

A full-integer TFLite model has one scale for its whole input tensor, so a raw
observation whose features span different ranges (CartPole: cart position up
to 1.1, pole angle within ±0.03 rad) leaves the narrow features a handful of
levels: a trained CartPole actor exported that way picked the float actor's
action on only 89.8% of recorded states (99.5% per feature; docs/RESULTS.md).

The fix is the one TFLite applies to weights, per-channel scales, applied to
the input by the caller: the board maps each feature into [-1, 1] with its own
offset and range (``z = clip((obs - offset) * inv_half_range, -1, 1)``, eight
float operations for CartPole), then quantises ``z`` with the tensor's scale.
The affine map, and the observation normalisation in front of the first Dense
layer, are folded into that layer's weights, so the int8 graph is just the
Dense chain. The ranges are the calibration observations' ranges, narrowed to
the normalisation's clip window so the fold is exact over the whole int8 grid.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from dsp_tf._keras import keras
from dsp_tf.errors import UsageError
from tflite_export.actor_layers import computing_layers, is_normalization, normalization_constants
from tflite_export.input_range import MIN_HALF_WIDTH

#: The choices of --int8_input: per-feature scaling folded into the first layer, or TFLite's plain per-tensor input.
INT8_INPUTS = ("per_feature", "per_tensor")


@dataclass(frozen=True)
class FeatureScaling:
    """The board-side map from a raw observation to the int8 model's input, in float32."""

    offset: np.ndarray
    inv_half_range: np.ndarray

    def apply(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, np.float32)
        return np.clip((obs - self.offset) * self.inv_half_range, np.float32(-1), np.float32(1))

    def to_dict(self) -> dict:
        return {"offset": [float(v) for v in self.offset],
                "inv_half_range": [float(v) for v in self.inv_half_range]}


def _leading_affine(chain) -> Tuple[np.ndarray, np.ndarray, Tuple[np.ndarray, np.ndarray], int]:
    """(scale, shift, clip window in raw units, index of the first Dense) of what precedes the first Dense.

    Only an observation normalisation may come first: it is affine inside its
    clip window, which is what lets it fold into the Dense layer.
    """
    start = 0
    if chain and is_normalization(chain[0]):
        mean, var, clip, epsilon = normalization_constants(chain[0])
        inv_std = 1.0 / np.sqrt(var + epsilon)
        scale, shift = inv_std, -mean * inv_std
        window = (mean - clip / inv_std, mean + clip / inv_std)
        start = 1
    if len(chain) <= start or not isinstance(chain[start], keras.layers.Dense):
        raise UsageError("per-feature int8 input needs the actor to start with a Dense layer (after at most an "
                         "observation normalisation); export it with --int8_input=per_tensor")
    if start == 0:
        dim = int(chain[0].kernel.shape[0])
        scale, shift = np.ones(dim), np.zeros(dim)
        window = (np.full(dim, -np.inf), np.full(dim, np.inf))
    return scale, shift, window, start


def clip_window(model: keras.Model) -> Tuple[np.ndarray, np.ndarray]:
    """(low, high), raw units: the range of each feature the actor's observation normaliser passes
    unclipped (±inf without a normaliser). A per-feature int8 input covers at most this window:
    ``fit_feature_scaling`` narrows a wider range to it, so a range the user gave is checked
    against it first (tflite_export.input_range.check_inside_window)."""
    return _leading_affine(computing_layers(model))[2]


def fit_feature_scaling(model: keras.Model, representative: np.ndarray, low: Optional[np.ndarray] = None,
                        high: Optional[np.ndarray] = None) -> FeatureScaling:
    """Ranges of the calibration observations (or ``low``/``high`` when given: the range a deployment
    claims, tflite_export.input_range), clipped to the normalisation window."""
    rep = np.asarray(representative, np.float64)
    _, _, (low_clip, high_clip), _ = _leading_affine(computing_layers(model))
    low = np.maximum(rep.min(0) if low is None else np.asarray(low, np.float64), low_clip)
    high = np.minimum(rep.max(0) if high is None else np.asarray(high, np.float64), high_clip)
    half = (high - low) / 2
    # A feature that never moved gets a unit range: z is then 0 on every seen value.
    half = np.where(half > MIN_HALF_WIDTH, half, 1.0)
    return FeatureScaling(((low + high) / 2).astype(np.float32), (1.0 / half).astype(np.float32))


def fold_feature_scaling(model: keras.Model, scaling: FeatureScaling) -> keras.Model:
    """The same actor taking ``scaling.apply(obs)``: the affine maps are folded into the first Dense."""
    chain = computing_layers(model)
    scale, shift, _, first_index = _leading_affine(chain)
    first = chain[first_index]
    kernel, *bias = [w.astype(np.float64) for w in first.get_weights()]
    half = 1.0 / scaling.inv_half_range.astype(np.float64)
    # z -> obs = z * half + offset -> scale * obs + shift -> Dense
    a = scale * half
    c = scale * scaling.offset.astype(np.float64) + shift
    new_kernel = a[:, None] * kernel
    new_bias = (bias[0] if bias else 0.0) + c @ kernel

    inputs = keras.Input((kernel.shape[0],), name="scaled_observation")
    folded = keras.layers.Dense(kernel.shape[1], activation=first.activation, name=first.name)
    x = folded(inputs)
    folded.set_weights([new_kernel.astype(np.float32), new_bias.astype(np.float32)])
    for layer in chain[first_index + 1:]:
        x = layer(x)
    return keras.Model(inputs, x, name=f"{model.name}_scaled_input")


def check_fold(model: keras.Model, folded: keras.Model, scaling: FeatureScaling, observations: np.ndarray) -> None:
    """The folded actor must compute the original one on every observation inside the ranges.

    Catches actors that are not a plain chain (a skip connection would be
    silently dropped by the fold) before any file is written.
    """
    obs = np.asarray(observations, np.float32)
    half = 1.0 / scaling.inv_half_range
    inside = np.clip(obs, scaling.offset - half, scaling.offset + half)
    want = model(inside, training=False).numpy()
    got = folded(scaling.apply(inside), training=False).numpy()
    tol = 1e-4 * max(1.0, float(np.abs(want).max()))
    if not np.allclose(got, want, atol=tol):
        raise UsageError("the actor is not a plain chain of layers (folding its input scaling changed its "
                         "outputs); export it with --int8_input=per_tensor")


def c_declarations(ident: str, scaling: FeatureScaling, input_scale: float, input_zero_point: int) -> Tuple[str, str]:
    """(.h text, .cc text) for the input map and a helper that quantises a raw observation."""
    n = len(scaling.offset)
    floats = lambda values: ", ".join(f"{float(v):.9g}f" for v in values)  # noqa: E731
    header = (f"#include <math.h>\n#include <stdint.h>\n\n"
              f"// The int8 input is per feature: z = clip((obs - offset) * inv_half_range, -1, 1),\n"
              f"// then q = round(z / input_scale) + input_zero_point. {ident}_quantize_observation does both.\n"
              f"#define {ident.upper()}_OBSERVATION_SIZE {n}\n"
              f"extern const float g_{ident}_input_offset[{n}];\n"
              f"extern const float g_{ident}_input_inv_half_range[{n}];\n"
              f"extern const float g_{ident}_input_scale;\n"
              f"extern const int g_{ident}_input_zero_point;\n\n"
              f"static inline void {ident}_quantize_observation(const float* obs, int8_t* q) {{\n"
              f"  for (int i = 0; i < {n}; ++i) {{\n"
              f"    float z = (obs[i] - g_{ident}_input_offset[i]) * g_{ident}_input_inv_half_range[i];\n"
              f"    z = z < -1.0f ? -1.0f : (z > 1.0f ? 1.0f : z);\n"
              f"    float v = roundf(z / g_{ident}_input_scale) + (float)g_{ident}_input_zero_point;\n"
              f"    q[i] = (int8_t)(v < -128.0f ? -128.0f : (v > 127.0f ? 127.0f : v));\n"
              f"  }}\n}}\n")
    source = (f"const float g_{ident}_input_offset[{n}] = {{{floats(scaling.offset)}}};\n"
              f"const float g_{ident}_input_inv_half_range[{n}] = {{{floats(scaling.inv_half_range)}}};\n"
              f"const float g_{ident}_input_scale = {float(input_scale):.9g}f;\n"
              f"const int g_{ident}_input_zero_point = {int(input_zero_point)};\n")
    return header, source


def quantize_observation(obs: np.ndarray, scaling: FeatureScaling, input_scale: float,
                         input_zero_point: int) -> np.ndarray:
    """What the generated C helper computes, in the same float32 steps (rounding half away from zero)."""
    from tflite_export.runtimes import quantize_int8  # noqa: WPS433

    return quantize_int8(scaling.apply(obs), input_scale, input_zero_point)
