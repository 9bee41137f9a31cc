"""Whether the exported files still act like the Keras actor, and what they cost.

The checks compare outputs on observations the caller supplies (for an RL
policy, states its own greedy episodes met): the TFLite files against Keras,
the plain-C policy against TFLite Micro bit for bit, and each runtime's size,
memory and invoke latency. Scoring a policy in its environment is not done
here (this library has no environment); a caller that has one passes ``score``.
"""
from __future__ import annotations

import subprocess
from typing import Callable, Dict, Optional

import numpy as np

from dsp_tf._keras import keras
from dsp_tf.metrics import architecture_stats
from dsp_tf.numpy_forward import keras_step
from tflite_export.c_build import CPolicyLibrary, host_compiler
from tflite_export.exporter import ConvertedActor
from tflite_export.footprint import c_policy_footprint, target_table, tflite_micro_memory
from tflite_export.runtimes import MicroRunner, ScaledInput, TFLiteRunner, median_invoke_seconds
from tflite_export.writing import is_out_of_room

#: Check observations the per-target instruction counts average over.
TARGET_OBSERVATIONS = 32

Policy = Callable[[np.ndarray], np.ndarray]
#: How a caller scores a policy (observation -> output) in its environment, e.g. its greedy returns.
Score = Callable[[Policy], Dict[str, object]]


def outputs(fn: Policy, observations: np.ndarray) -> np.ndarray:
    return np.stack([np.asarray(fn(o), np.float32) for o in observations])


def agreement(reference: np.ndarray, other: np.ndarray, discrete: bool) -> Dict[str, float]:
    if discrete:
        # Ties: states where the two largest outputs quantised to the same value, so
        # the argmax falls to the lower action index whatever the float model chose.
        top2 = np.sort(other, axis=1)[:, -2:]
        return {"same_action_rate": float(np.mean(np.argmax(reference, 1) == np.argmax(other, 1))),
                "tied_top_outputs_rate": float(np.mean(top2[:, 0] == top2[:, 1]))}
    err = np.abs(reference - other)
    return {"max_abs_error": float(err.max()), "mean_abs_error": float(err.mean())}


def raw_int8_outputs(converted: ConvertedActor, observations: np.ndarray, runner_cls=MicroRunner) -> np.ndarray:
    """The int8 output tensor for raw observations (through the board's input map), in TFLite
    Micro by default or in the desktop interpreter (``runner_cls=TFLiteRunner``)."""
    runner = converted.int8_runner(runner_cls)
    inner = runner.runner if isinstance(runner, ScaledInput) else runner
    rows = []
    for o in observations:
        runner(o)
        if isinstance(inner, MicroRunner):
            raw = inner.interpreter.get_output(0)[0]
        else:
            raw = inner.interpreter.get_tensor(inner.interpreter.get_output_details()[0]["index"])[0]
        rows.append(np.array(raw, np.int8))
    return np.stack(rows)


def model_report(mlp: keras.Model, model: keras.Model, c: ConvertedActor, check: np.ndarray, spread: np.ndarray,
                 latency_invokes: int, discrete: bool, keras_h5_bytes: int) -> Dict[str, object]:
    """One actor's entry of export_report.json: sizes, agreement with Keras, latency and TFLM memory.
    ``mlp`` is the trained network (its size), ``model`` the deployable actor around it."""
    reference_policy = keras_step(model)
    reference = outputs(reference_policy, check)
    stats = architecture_stats(mlp)
    latency = {}
    for runtime_name, runner_cls in (("tflite", TFLiteRunner), ("tflite_micro", MicroRunner)):
        for kind, runner in (("float32", runner_cls(c.float32)), ("int8", c.int8_runner(runner_cls))):
            latency[f"{runtime_name}_{kind}_us"] = 1e6 * median_invoke_seconds(runner, check[0], latency_invokes)
    micro = c.int8_runner(MicroRunner)  # one interpreter for both agreement checks (it keeps no state between calls)
    return {
        "hidden_units": [l.units for l in mlp.layers[:-1]],
        "neurons": stats["neurons"], "weights": stats["weights"], "flops": stats["flops"],
        "keras_h5_bytes": keras_h5_bytes,
        "float32_bytes": len(c.float32), "int8_bytes": len(c.int8),
        "float32_max_abs_error": float(np.abs(outputs(TFLiteRunner(c.float32), check) - reference).max()),
        "int8_output_scale": TFLiteRunner(c.int8).output_quantization()[0],
        "int8_vs_keras": agreement(reference, outputs(micro, check), discrete),
        "int8_vs_keras_over_input_range": agreement(outputs(reference_policy, spread), outputs(micro, spread), discrete),
        "median_invoke_latency_us": latency,
        "tflite_micro_memory": {"int8": tflite_micro_memory(c.int8), "float32": tflite_micro_memory(c.float32)},
    }


def _c_policy_checks(converted: ConvertedActor, lib: CPolicyLibrary, reference: np.ndarray, check: np.ndarray,
                     spread: Optional[np.ndarray]) -> Dict[str, object]:
    policy, out = converted.c_policy, {}
    c_raw, tflm_raw = lib.batch(lib.int8_raw, check), raw_int8_outputs(converted, check)
    steps = np.abs(c_raw.astype(np.int32) - tflm_raw.astype(np.int32))
    out["int8_vs_tflite_micro"] = {"observations": int(len(check)),
                                   "identical_output_rate": float(np.mean(np.all(steps == 0, axis=1))),
                                   "max_step_difference": int(steps.max())}
    # For the record: the desktop interpreter's int8 kernels (a float-built TANH table, other
    # requantisation code) differ from TFLM's reference kernels by a step now and then.
    desktop = np.abs(c_raw.astype(np.int32) - raw_int8_outputs(converted, check, TFLiteRunner).astype(np.int32))
    out["int8_vs_tflite_desktop"] = {"identical_output_rate": float(np.mean(np.all(desktop == 0, axis=1))),
                                     "max_step_difference": int(desktop.max())}
    out["float32_vs_keras_max_abs_error"] = float(np.abs(lib.batch(lib.float32, check) - reference).max())
    if spread is not None:
        same = np.all(lib.batch(lib.int8_raw, spread) == raw_int8_outputs(converted, spread), axis=1)
        out["int8_vs_tflite_micro_over_input_range"] = {"observations": int(len(spread)),
                                                        "identical_output_rate": float(np.mean(same))}
    both = check if spread is None else np.concatenate([check, spread])
    counted = np.array([lib.saturated(o) for o in both])
    out["saturation_count_as_documented"] = bool(np.array_equal(counted, policy.saturated_features(both)))
    out["int16_input"] = (_int16_checks(policy, lib, both, counted) if policy.int16 is not None
                          else {"written": False, "reason": policy.int16_skipped})
    return out


def _int16_checks(policy, lib: CPolicyLibrary, observations: np.ndarray, float_saturated: np.ndarray
                  ) -> Dict[str, object]:
    """``<prefix>_int16_q`` on the observations read as int16 counts: its int8 input against the
    float wrapper's on the same (count * LSB) values, its saturation flag, and its output against
    ``_int8_q`` on the C's own int8 input."""
    counts = policy.int16.counts(observations)
    quantized = [lib.quantize_int16(x) for x in counts]
    q16, sat16 = np.stack([q for q, _ in quantized]), np.array([n for _, n in quantized])
    as_read = (counts.astype(np.float64) * policy.int16.lsb).astype(np.float32)
    q_float = np.stack([lib.quantize(o)[0] for o in as_read])
    steps = np.abs(q16.astype(np.int32) - q_float.astype(np.int32))
    same_out = all(np.array_equal(lib.int16_q(x), lib.int8_q(q)) for x, q in zip(counts[:200], q16[:200]))
    reference = policy.int16.quantize(counts)
    return {**policy.int16.to_dict(), "observations": int(len(counts)),
            "same_int8_input_as_float_wrapper_rate": float(np.mean(np.all(steps == 0, axis=1))),
            "max_step_difference": int(steps.max()),
            "same_saturation_count_as_float_wrapper_rate": float(np.mean(
                sat16 == np.array([lib.quantize(o)[1] for o in as_read]))),
            "as_numpy_reference": bool(np.array_equal(q16, reference[0]) and np.array_equal(sat16, reference[1])),
            "output_is_int8_q_of_its_input": bool(same_out),
            "float_saturation_of_raw_observations": int(np.sum(float_saturated > 0))}


def _c_policy_costs(converted: ConvertedActor, check: np.ndarray) -> Dict[str, object]:
    out: Dict[str, object] = {}
    try:
        out["footprint"] = c_policy_footprint(converted.c_policy)
    except RuntimeError as e:  # e.g. a host compiler without -fcallgraph-info (GCC < 10, Clang)
        out["footprint"] = {"target": None, "note": f"not measured: {str(e).splitlines()[0]}"}
    try:
        table = target_table(converted.c_policy, check[:TARGET_OBSERVATIONS], kernels=converted.c_policy_kernels)
        out["targets"] = table if table is not None else {"note": "not measured: arm-none-eabi-gcc not found"}
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        if is_out_of_room(e):  # a full disk ends the export with its one line, naming the file
            raise
        out["targets"] = {"note": f"not measured: {str(e).splitlines()[0]}"}
    return out


def check_c_policy(converted: ConvertedActor, reference: np.ndarray, check: np.ndarray,
                   spread: Optional[np.ndarray] = None, score: Optional[Score] = None) -> Dict[str, object]:
    """The plain-C policy checked against TFLite Micro (int8, bit for bit) and Keras (float32),
    with ``score`` also each C variant's score (under "returns"), and its flash/RAM. Compiled with
    the host C compiler; without one, the report says the checks were not run."""
    policy = converted.c_policy
    if policy is None:
        return {"written": False, "reason": converted.c_policy_skipped or "not requested"}
    out: Dict[str, object] = {"written": True, "files": sorted(policy.files)}
    compiler = host_compiler()
    if compiler is None:
        out["checks"] = "not run: no host C compiler (cc, gcc or clang)"
    else:
        lib = CPolicyLibrary(policy, compiler)
        out.update(_c_policy_checks(converted, lib, reference, check, spread))
        if score is not None:
            out["returns"] = {"c_float32": score(lib.float32), "c_int8": score(lib.int8)}
    out.update(_c_policy_costs(converted, check))
    return out


def c_policy_ratios(models: Dict[str, dict], c_report: Dict[str, object]) -> Dict[str, float]:
    """Dense TFLite Micro int8 (model in flash, arena in RAM) over the compact plain-C int8 policy."""
    variants = c_report.get("footprint", {}).get("variants") if c_report.get("written") else None
    if not variants:
        return {}
    c = variants["int8"]
    ratios = {}
    for which in ("dense", "compact"):
        tflm = models[which]["tflite_micro_memory"]["int8"]
        ratios[f"tflite_micro_int8_{which}_over_c_int8_flash"] = tflm["model_bytes"] / c["flash_bytes"]
        ratios[f"tflite_micro_int8_{which}_over_c_int8_ram"] = tflm["min_arena_bytes"] / c["ram_bytes"]
        ratios[f"tflite_micro_int8_{which}_over_c_int8_flash_plus_ram"] = \
            (tflm["model_bytes"] + tflm["min_arena_bytes"]) / (c["flash_bytes"] + c["ram_bytes"])
    return ratios


def size_ratios(models: Dict[str, dict]) -> Dict[str, float]:
    """Dense over compact: file sizes and TFLite Micro int8 latency."""
    return {
        "float32_bytes_dense_over_compact": models["dense"]["float32_bytes"] / models["compact"]["float32_bytes"],
        "int8_bytes_dense_over_compact": models["dense"]["int8_bytes"] / models["compact"]["int8_bytes"],
        "tflite_micro_int8_latency_dense_over_compact":
            models["dense"]["median_invoke_latency_us"]["tflite_micro_int8_us"]
            / models["compact"]["median_invoke_latency_us"]["tflite_micro_int8_us"],
    }
