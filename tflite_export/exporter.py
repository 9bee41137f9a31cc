"""From a trained actor to files a microcontroller runs: all of them in memory first,
then written together, so a failed step leaves nothing half-exported.

No RL here: the actor is any Keras model of supported layers, and its
observations come from the caller (``dsp_cli.export`` records them by playing
the policy; the checks that the files still act like it are in
tflite_export.checks)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Dict, Optional

import numpy as np

from dsp_tf._keras import keras
from dsp_tf.errors import UsageError
from dsp_tf.files import check_output_directory, staged_directory, write_file_set
from tflite_export.c_array import c_identifier, to_c_source
from tflite_export.c_policy import CPolicy, UnsupportedForC, generate
from tflite_export.convert import check_exportable, check_observations, to_float32, to_int8
from tflite_export.input_scaling import (INT8_INPUTS, FeatureScaling, c_declarations, check_fold,
                                         fit_feature_scaling, fold_feature_scaling)
from tflite_export.input_range import SPREAD_OBSERVATIONS, InputRange
from tflite_export.runtimes import MicroRunner, ScaledInput, TFLiteRunner


@dataclass
class ConvertedActor:
    """One actor's files, in memory: nothing is written until every step succeeded."""

    float32: bytes
    int8: bytes
    scaling: Optional[FeatureScaling]  # None for a per-tensor int8 input
    files: Dict[str, object]
    c_policy: Optional[CPolicy] = None  # the plain-C policy, when asked for and reproducible
    c_policy_skipped: Optional[str] = None  # why there is none

    def int8_runner(self, runner_cls=MicroRunner) -> Callable[[np.ndarray], np.ndarray]:
        """A runner taking raw observations, as the board's code feeds the int8 model."""
        runner = runner_cls(self.int8)
        return runner if self.scaling is None else ScaledInput(runner, self.scaling)


def convert_actor(actor: keras.Model, representative: np.ndarray, name: str = "actor",
                  int8_input: str = "per_feature", c_policy: bool = True, c_prefix: Optional[str] = None,
                  input_range: Optional[InputRange] = None, discrete: Optional[bool] = None,
                  int16_lsb: Optional[np.ndarray] = None) -> ConvertedActor:
    """float32 and int8 flatbuffers, the C array and, for a per-feature input, its map;
    with ``c_policy``, also ``{c_prefix}.c/.h`` (default ``{name}_policy``, tflite_export.c_policy).
    ``input_range`` is the raw range the int8 input must cover (default: the representative
    observations' range); the int8 model is then calibrated on the representative observations
    plus observations spread over it. ``int16_lsb`` is what one count of each feature's int16
    reading is worth for ``<prefix>_int16_q`` (None: a power of two, tflite_export.c_int16). An actor the C generator cannot reproduce exactly still gets
    its TFLite files: the reason is kept in ``c_policy_skipped`` instead of failing the export."""
    if int8_input not in INT8_INPUTS:
        raise UsageError(f"unknown int8 input '{int8_input}' (choose from {', '.join(INT8_INPUTS)})")
    prefix = c_prefix or f"{name}_policy"
    if c_identifier(prefix) != prefix:
        raise UsageError(f"--c_prefix '{prefix}' is not a C identifier (letters, digits and _, not a digit first)")
    check_exportable(actor)
    float32 = to_float32(actor)
    ident = c_identifier(f"{name}_int8")
    calibration = np.asarray(representative, np.float32)
    if input_range is not None:
        calibration = np.concatenate([calibration, input_range.spread(SPREAD_OBSERVATIONS)])
    scaling = None
    if int8_input == "per_feature":
        low, high = (input_range.low, input_range.high) if input_range is not None else (None, None)
        scaling = fit_feature_scaling(actor, representative, low, high)
        folded = fold_feature_scaling(actor, scaling)
        check_fold(actor, folded, scaling, calibration)
        int8 = to_int8(folded, scaling.apply(calibration))
        scale, zero_point = TFLiteRunner(int8).input_quantization()
        extra_header, extra_source = c_declarations(ident, scaling, scale, zero_point)
    else:
        int8 = to_int8(actor, calibration)
        extra_header = extra_source = ""
    header, source = to_c_source(int8, f"{name}_int8", f"{name}_int8.h", extra_header, extra_source)
    files = {f"{name}_float32.tflite": float32, f"{name}_int8.tflite": int8,
             f"{name}_int8.h": header, f"{name}_int8.cc": source}
    if scaling is not None:
        files[f"{name}_int8_input.json"] = json.dumps(
            {**scaling.to_dict(), "input_scale": scale, "input_zero_point": zero_point}, indent=2)
    policy, skipped = None, None
    if c_policy:
        note = input_range.note if input_range is not None else "the calibration observations' range"
        try:
            policy = generate(actor, int8, scaling, ident=prefix, model_name=f"{name}_int8.tflite",
                              discrete=discrete, range_note=note, int16_lsb=int16_lsb)
            files.update(policy.files)
        except UnsupportedForC as e:
            skipped = str(e)
    return ConvertedActor(float32, int8, scaling, files, policy, skipped)


def write_files(output_dir: str, files: Dict[str, object]) -> None:
    """All files or none: a failed write leaves ``output_dir`` as it was."""
    with staged_directory(output_dir) as staging:
        write_file_set(staging, files)


def export_actor(actor: keras.Model, output_dir: str, representative: np.ndarray,
                 name: str = "actor", int8_input: str = "per_feature") -> Dict[str, int]:
    """Python API for your own Keras actor: writes float32/int8 TFLite and the C array.

    ``actor`` must map a raw observation vector to the output the board should
    compute (fold any normalisation into the model first, e.g. with
    ``agents.inference.inference_model``). ``representative`` is an [N, obs_dim]
    array of real observations used to calibrate int8. With the default
    per-feature int8 input, ``{name}_int8_input.json`` and the C header hold the
    map the board applies to an observation before the int8 model (see
    ``tflite_export.input_scaling``). ``{name}_policy.c/.h`` hold the same actor
    as plain C99 (``tflite_export.c_policy``) unless it has a layer or op the
    generator does not reproduce. Returns file sizes.
    """
    check_output_directory(output_dir)
    representative = check_observations(actor, representative)
    converted = convert_actor(actor, representative, name, int8_input)
    write_files(output_dir, converted.files)
    return {k: len(v if isinstance(v, bytes) else v.encode()) for k, v in converted.files.items()}
