"""From a trained actor to files a microcontroller runs: all of them in memory first,
then written together, so a failed step leaves nothing half-exported.

No RL here: the actor is any Keras model of supported layers, and its
observations come from the caller (``dsp_cli.export`` records them by playing
the policy; the checks that the files still act like it are in
tflite_export.checks)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Callable, Dict, Mapping, Optional

import numpy as np

from dsp_tf._keras import keras
from dsp_tf.errors import UsageError
from dsp_tf.files import prepare_output_directory, staged_directory
from tflite_export.c_array import c_identifier, check_c_prefix, to_c_source
from tflite_export.c_tables import ACTIVATION_KERNELS
from tflite_export.c_policy import CPolicy, UnsupportedForC, _input_ranges, generate
from tflite_export.convert import check_exportable, check_observations, to_float32, to_int8
from tflite_export.input_scaling import (INT8_INPUTS, FeatureScaling, c_declarations, check_fold, clip_window,
                                         fit_feature_scaling, fold_feature_scaling)
from tflite_export.input_range import SPREAD_OBSERVATIONS, InputRange, check_inside_window
from tflite_export.runtimes import MicroRunner, ScaledInput, TFLiteRunner
from tflite_export.targets import TARGETS, Exported
from tflite_export.writing import write_file

#: The file an export writes into its output directory listing its own files, so that the next
#: export replaces exactly those and keeps everything else there (dsp_tf.files.staged_directory).
MANIFEST = ".tflite_export_files.json"


@dataclass
class ConvertedActor:
    """One actor's files, in memory: nothing is written until every step succeeded."""

    float32: bytes
    int8: bytes
    scaling: Optional[FeatureScaling]  # None for a per-tensor int8 input
    files: Dict[str, object]
    c_policy: Optional[CPolicy] = None  # the plain-C policy, when asked for and reproducible
    c_policy_skipped: Optional[str] = None  # why there is none
    range_note: str = ""  # where the int8 input's range comes from, as the C header says it
    #: The same policy with each TANH/LOGISTIC kernel (tflite_export.c_tables), c_policy among them: the
    #: per-target figures show both, since which one fits depends on the part's flash.
    c_policy_kernels: Optional[Dict[str, CPolicy]] = None

    def int8_runner(self, runner_cls=MicroRunner) -> Callable[[np.ndarray], np.ndarray]:
        """A runner taking raw observations, as the board's code feeds the int8 model."""
        runner = runner_cls(self.int8)
        return runner if self.scaling is None else ScaledInput(runner, self.scaling)


def convert_actor(actor: keras.Model, representative: np.ndarray, name: str = "actor",
                  int8_input: str = "per_feature", c_policy: bool = True, c_prefix: Optional[str] = None,
                  input_range: Optional[InputRange] = None, discrete: Optional[bool] = None,
                  int16_lsb: Optional[np.ndarray] = None, c_tanh: str = "table",
                  c_interface: Optional[Mapping[str, object]] = None, targets: bool = True) -> ConvertedActor:
    """float32 and int8 flatbuffers, the C array and, for a per-feature input, its map;
    with ``c_policy``, also ``{c_prefix}.c/.h`` (default ``{name}_policy``, tflite_export.c_policy); another
    ``c_prefix`` also names the C array's symbols (``array_name``).
    ``input_range`` is the raw range the int8 input must cover (default: the representative
    observations' range); the int8 model is then calibrated on the representative observations
    plus observations spread over it. ``int16_lsb`` is what one count of each feature's int16
    reading is worth for ``<prefix>_int16_q`` (None: a power of two, tflite_export.c_int16);
    ``c_tanh`` picks the C policy's TANH/LOGISTIC kernel (tflite_export.c_tables); ``c_interface`` holds
    ``generate``'s optional ``input_names``, ``input_units``, ``output_names`` and ``identity`` (the header's
    documentation of the interface, which only the caller knows); ``targets``: also the extra targets' files
    (tflite_export.targets). An actor the C generator cannot reproduce exactly still gets
    its TFLite files: the reason is kept in ``c_policy_skipped`` instead of failing the export."""
    if int8_input not in INT8_INPUTS:
        raise UsageError(f"unknown int8 input '{int8_input}' (choose from {', '.join(INT8_INPUTS)})")
    if c_tanh not in ACTIVATION_KERNELS:
        raise UsageError(f"unknown --c_tanh '{c_tanh}' (choose from {', '.join(ACTIVATION_KERNELS)})")
    prefix = f"{name}_policy" if c_prefix is None else c_prefix
    if c_policy:
        check_c_prefix(prefix, taken=[c_identifier(f"{name}_int8")])
    ident = c_identifier(array_name(name, c_prefix))
    check_exportable(actor)
    float32 = to_float32(actor)
    calibration = np.asarray(representative, np.float32)
    if input_range is not None:
        calibration = np.concatenate([calibration, input_range.spread(SPREAD_OBSERVATIONS)])
    scaling = None
    if int8_input == "per_feature":
        low, high = (input_range.low, input_range.high) if input_range is not None else (None, None)
        if input_range is not None and input_range.source == "calibration_range":
            check_inside_window(low, high, *clip_window(actor))  # the user's range is used as given or refused
        scaling = fit_feature_scaling(actor, representative, low, high)
        folded = fold_feature_scaling(actor, scaling)
        check_fold(actor, folded, scaling, calibration)
        int8 = to_int8(folded, scaling.apply(calibration))
        scale, zero_point = TFLiteRunner(int8).input_quantization()
        extra_header, extra_source = c_declarations(ident, scaling, scale, zero_point)
    else:
        int8 = to_int8(actor, calibration)
        scale, zero_point = TFLiteRunner(int8).input_quantization()
        extra_header = extra_source = ""
    header, source = to_c_source(int8, ident, f"{name}_int8.h", extra_header, extra_source)
    files = {f"{name}_float32.tflite": float32, f"{name}_int8.tflite": int8,
             f"{name}_int8.h": header, f"{name}_int8.cc": source}
    if scaling is not None:
        files[f"{name}_int8_input.json"] = json.dumps(
            {**scaling.to_dict(), "input_scale": scale, "input_zero_point": zero_point}, indent=2)
    policy, skipped, kernels = None, None, None
    note = range_note(input_range, *_input_ranges(scaling, scale, zero_point, actor.input_shape[-1]),
                      per_feature=scaling is not None) if input_range is not None \
        else "the calibration observations' range"
    if c_policy:
        try:
            kernels = {kernel: generate(actor, int8, scaling, ident=prefix, model_name=f"{name}_int8.tflite",
                                        discrete=discrete, range_note=note, int16_lsb=int16_lsb, c_tanh=kernel,
                                        **dict(c_interface or {}))
                       for kernel in ACTIVATION_KERNELS}
            policy = kernels[c_tanh]
            files.update(policy.files)
        except UnsupportedForC as e:
            skipped = str(e)
    exported = Exported(name, actor, float32, int8, scaling)
    for target in TARGETS if targets else ():
        made = target.files(exported)
        taken = sorted(set(made) & set(files))
        if taken:
            raise UsageError(f"export target '{target.name}' would write {taken[0]}, which the export already writes")
        files.update(made)
    return ConvertedActor(float32, int8, scaling, files, policy, skipped, note, kernels)


def array_name(name: str, c_prefix: Optional[str]) -> str:
    """What the TFLite Micro array's symbols (``g_<it>_model_data``, the input map's ``g_<it>_input_*``,
    its macros and include guard) are named after: ``<name>_int8`` as TFLite Micro's tools name them,
    unless a ``c_prefix`` other than the default ``<name>_policy`` is given; then ``<c_prefix>_<name>_int8``,
    so that two exports' arrays link into one firmware and their headers go into one file (the files
    keep their names: they go into different directories)."""
    if c_prefix is None or c_prefix == f"{name}_policy":
        return f"{name}_int8"
    return f"{c_prefix}_{name}_int8"


def range_note(asked: InputRange, low: np.ndarray, high: np.ndarray, per_feature: bool) -> str:
    """What the C header and export_report.json say about the int8 input's range: where the range
    came from and, when the input covers another one (``low``/``high``, what it really covers),
    how it differs, so that a note never vouches for numbers it did not produce. A per-feature
    input narrows a range wider than the normaliser's clip window to it (a --calibration_range
    is refused instead: ``check_inside_window``); a per-tensor input has one range for all
    features."""
    low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    width = asked.high - asked.low
    # float32 offsets and scales move the ends by rounding; that is not another range
    slack = 1e-6 * width + np.spacing(np.maximum(np.abs(asked.low), np.abs(asked.high)).astype(np.float32))
    if np.all(np.abs(low - asked.low) <= slack) and np.all(np.abs(high - asked.high) <= slack):
        return asked.note
    if per_feature:
        return f"{asked.note}; narrowed to the observation normaliser's clip window where wider"
    uniform = np.all(asked.low == asked.low[0]) and np.all(asked.high == asked.high[0])
    given = f": {asked.low[0]:.6g} .. {asked.high[0]:.6g}" if uniform else " (per feature in export_report.json)"
    holds = bool(np.all(low <= asked.low + slack) and np.all(high >= asked.high - slack))
    return (f"{asked.note}{given}; one per-tensor range for all features, fitted by the converter (integer zero "
            f"point), which {'holds it' if holds else 'cuts it short'}")


def write_file_set(directory: str, files: Dict[str, object]) -> None:
    """Writes every file of ``files`` into ``directory``; a write that finds no room raises an
    OSError naming the file (the command's one-line message says which), not a bare errno."""
    for name, data in files.items():
        write_file(os.path.join(directory, name), data)


def write_files(output_dir: str, files: Dict[str, object]) -> None:
    """All files or none: ``output_dir`` is replaced as a whole, so a failed write, or a process
    killed at any point, leaves it as it was or as the complete new export, never a mix; the
    user's own files in it are kept, the previous export's (listed in MANIFEST) replaced
    (dsp_tf.files.staged_directory)."""
    with staged_directory(output_dir, manifest=MANIFEST) as staging:
        try:
            write_file_set(staging, files)
        except OSError as e:  # name the file as the user knows it, not by the hidden staging directory's name
            name = os.path.relpath(str(e.filename), staging) if e.filename is not None else ""
            if not name or name.startswith(os.pardir):
                raise
            raise OSError(e.errno, e.strerror, os.path.join(os.path.abspath(output_dir), name)) from None


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
    prepare_output_directory(output_dir, MANIFEST)
    representative = check_observations(actor, representative)
    converted = convert_actor(actor, representative, name, int8_input)
    write_files(output_dir, converted.files)
    return {k: len(v if isinstance(v, bytes) else v.encode()) for k, v in converted.files.items()}
