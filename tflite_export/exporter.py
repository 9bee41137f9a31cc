"""From a trained actor to files a microcontroller runs, with the checks that say
the files still act like the policy."""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np

from dsp_tf._keras import keras
from dsp_tf.errors import UsageError
from dsp_tf.files import check_output_directory, staged_directory, write_file_set
from dsp_tf.metrics import architecture_stats
from tflite_export.animation import check_rendering, gif_bytes, render_episode
from tflite_export.c_array import c_identifier, to_c_source
from tflite_export.c_policy import CPolicy, CPolicyLibrary, UnsupportedForC, generate, host_compiler
from tflite_export.convert import check_exportable, check_observations, to_float32, to_int8
from tflite_export.input_scaling import (INT8_INPUTS, FeatureScaling, c_declarations, check_fold,
                                         fit_feature_scaling, fold_feature_scaling)
from tflite_export.input_range import INPUT_RANGES, SPREAD_OBSERVATIONS, InputRange, choose_input_range, coverage
from tflite_export.footprint import c_policy_footprint, target_table, tflite_micro_memory
from tflite_export.runtimes import INTERPRETER, MicroRunner, ScaledInput, TFLiteRunner, median_invoke_seconds


GIF_FILE = "policy_int8.gif"
#: On a driving task the int8 actor may crash at most this many times more than the Keras actor per 50
#: episodes (issue 12's bar); export_report.json says whether it stayed within it.
INT8_EXTRA_COLLISIONS_PER_50 = 1
#: Check observations the per-target instruction counts average over.
TARGET_OBSERVATIONS = 32


@dataclass
class ConvertedActor:
    """One actor's files, in memory: nothing is written until every step succeeded."""

    float32: bytes
    int8: bytes
    scaling: Optional[FeatureScaling]  # None for a per-tensor int8 input
    files: Dict[str, object]
    c_policy: Optional[CPolicy] = None  # the plain-C policy, when asked for and reproducible
    c_policy_skipped: Optional[str] = None  # why there is none

    def int8_runner(self, runner_cls=MicroRunner):
        """A runner taking raw observations, as the board's code feeds the int8 model."""
        runner = runner_cls(self.int8)
        return runner if self.scaling is None else ScaledInput(runner, self.scaling)


def convert_actor(actor: keras.Model, representative: np.ndarray, name: str = "actor",
                  int8_input: str = "per_feature", c_policy: bool = True, c_prefix: Optional[str] = None,
                  input_range: Optional[InputRange] = None, discrete: Optional[bool] = None) -> ConvertedActor:
    """float32 and int8 flatbuffers, the C array and, for a per-feature input, its map;
    with ``c_policy``, also ``{c_prefix}.c/.h`` (default ``{name}_policy``, tflite_export.c_policy).
    ``input_range`` is the raw range the int8 input must cover (default: the representative
    observations' range); the int8 model is then calibrated on the representative observations
    plus observations spread over it. An actor the C generator cannot reproduce exactly still gets
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
                              discrete=discrete, range_note=note)
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


# ---- checks ---------------------------------------------------------------------
def outputs(fn: Callable[[np.ndarray], np.ndarray], observations: np.ndarray) -> np.ndarray:
    return np.stack([np.asarray(fn(o), np.float32) for o in observations])


def keras_fn(model: keras.Model) -> Callable[[np.ndarray], np.ndarray]:
    from agents.evaluation import keras_policy

    return keras_policy(model)


def agreement(reference: np.ndarray, other: np.ndarray, discrete: bool) -> Dict[str, float]:
    if discrete:
        # Ties: states where the two largest outputs quantised to the same value, so
        # the argmax falls to the lower action index whatever the float model chose.
        top2 = np.sort(other, axis=1)[:, -2:]
        return {"same_action_rate": float(np.mean(np.argmax(reference, 1) == np.argmax(other, 1))),
                "tied_top_outputs_rate": float(np.mean(top2[:, 0] == top2[:, 1]))}
    err = np.abs(reference - other)
    return {"max_abs_error": float(err.max()), "mean_abs_error": float(err.mean())}


def record_observations(policy: Callable[[np.ndarray], np.ndarray], env_name: str, seeds: List[int],
                        count: int, discrete: bool) -> np.ndarray:
    """Observations met by the greedy policy, episode after episode, until ``count``."""
    from agents.envs import make_gym
    from agents.inference import greedy_action

    env = make_gym(env_name)
    rows = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        done = False
        while not done and len(rows) < count:
            rows.append(np.asarray(obs, np.float32))
            obs, _, terminated, truncated, _ = env.step(greedy_action(policy(np.asarray(obs, np.float32)), discrete))
            done = terminated or truncated
        if len(rows) >= count:
            break
    env.close()
    return np.stack(rows)


def observation_space_bounds(env_name: str):
    """(low, high) of the environment's Box observation space, flattened; (None, None) otherwise."""
    from agents.envs import make_gym

    env = make_gym(env_name)
    try:
        space = env.observation_space
        if hasattr(space, "low") and hasattr(space, "high"):
            return np.ravel(space.low).astype(np.float64), np.ravel(space.high).astype(np.float64)
        return None, None
    finally:
        env.close()


def episode_returns(policy, env_name: str, seeds: List[int], discrete: bool) -> Dict[str, object]:
    """Returns on ``seeds``; on a driving task also collisions and mean speed (agents.evaluation)."""
    from agents.envs import is_driving
    from agents.evaluation import DRIVING_METRICS, episode_metrics, run_episodes

    driving = is_driving(env_name)
    m = episode_metrics(run_episodes(policy, env_name, seeds, discrete), driving)
    out = {"mean": m["return_mean"], "std": m["return_std"], "returns": m["returns"]}
    out.update({k: m[k] for k in DRIVING_METRICS} if driving else {})
    return out


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


def c_policy_report(converted: ConvertedActor, reference: np.ndarray, check: np.ndarray,
                    env_name: Optional[str] = None, seeds: Optional[List[int]] = None,
                    discrete: bool = True, spread: Optional[np.ndarray] = None) -> Dict[str, object]:
    """The plain-C policy checked against TFLite Micro (int8, bit for bit) and Keras (float32),
    its greedy returns on ``seeds`` and its flash/RAM. Compiled with the host C compiler; without
    one, the report says the checks were not run."""
    policy = converted.c_policy
    if policy is None:
        return {"written": False, "reason": converted.c_policy_skipped or "not requested"}
    out: Dict[str, object] = {"written": True, "files": sorted(policy.files)}
    compiler = host_compiler()
    if compiler is None:
        out["checks"] = "not run: no host C compiler (cc, gcc or clang)"
    else:
        lib = CPolicyLibrary(policy, compiler)
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
        if env_name is not None and seeds:
            out["returns"] = {"c_float32": episode_returns(lib.float32, env_name, seeds, discrete),
                              "c_int8": episode_returns(lib.int8, env_name, seeds, discrete)}
    try:
        out["footprint"] = c_policy_footprint(policy)
    except RuntimeError as e:  # e.g. a host compiler without -fcallgraph-info (GCC < 10, Clang)
        out["footprint"] = {"target": None, "note": f"not measured: {str(e).splitlines()[0]}"}
    try:
        table = target_table(policy, check[:TARGET_OBSERVATIONS])
        out["targets"] = table if table is not None else {"note": "not measured: arm-none-eabi-gcc not found"}
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        out["targets"] = {"note": f"not measured: {str(e).splitlines()[0]}"}
    return out


def _c_policy_ratios(models: Dict[str, dict], c_report: Dict[str, object]) -> Dict[str, float]:
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


def export_run(root_dir: str, output_dir: str, num_observations: int = 1000,
               eval_episodes: Optional[int] = None, latency_invokes: int = 1000,
               int8_input: str = "per_feature", gif: bool = False, input_range: str = "episodes",
               calibration_range: Optional[str] = None, c_prefix: str = "actor_policy") -> Dict[str, object]:
    """Exports a dsp_tf.train run (dense and compact actors) and writes export_report.json; with
    ``gif``, also policy_int8.gif: the int8 actor in TFLite Micro on the first evaluation episode.
    ``input_range``/``calibration_range`` choose the raw range the int8 input covers
    (tflite_export.input_range); ``c_prefix`` names the plain-C policy's files and symbols."""
    from agents import inference
    from agents.config import from_dict
    from agents.envs import evaluation_seed, is_driving
    from agents.rundir import RunDirectory

    if not root_dir or not os.path.isdir(root_dir):
        raise UsageError(f"run directory '{root_dir}' does not exist")
    check_output_directory(output_dir)
    if num_observations < 10 or latency_invokes < 1:
        raise UsageError("--num_observations must be >= 10 and --latency_invokes >= 1")
    if eval_episodes is not None and eval_episodes <= 0:
        raise UsageError(f"--eval_episodes must be > 0, got {eval_episodes}")
    if c_identifier(c_prefix) != c_prefix:
        raise UsageError(f"--c_prefix '{c_prefix}' is not a C identifier (letters, digits and _, not a digit first)")
    if input_range not in INPUT_RANGES:
        raise UsageError(f"unknown --input_range '{input_range}' (choose from {', '.join(INPUT_RANGES)})")
    run = RunDirectory(root_dir)
    cfg = from_dict({**run.read_config(), "root_dir": root_dir})
    if not inference.has_saved_actor(run.root):
        raise UsageError(f"'{run.root}' has no saved actor; finish the run (re-run its train command) first")
    if gif:
        check_rendering(cfg.env)  # before the conversions, not after them
    # As many evaluation episodes as training's final evaluation ran (it is not part of the run's identity).
    episodes = eval_episodes if eval_episodes is not None else run.final_eval_episodes(cfg.eval_episodes)
    actors = {}
    for which in ("dense", "compact"):
        mlp, meta = inference.load_actor(run.root, which)
        actors[which] = (mlp, inference.inference_model(mlp, meta, name=f"actor_{which}"))
    discrete = meta.discrete
    compact_keras = keras_fn(actors["compact"][1])

    # Calibration and check observations come from episodes on seeds that neither
    # training nor the return evaluation below uses.
    seeds = [evaluation_seed(cfg.seed, 100_000 + i) for i in range(10_000)]
    observed = record_observations(compact_keras, cfg.env, seeds, 2 * num_observations, discrete)
    calibration, check = observed[: len(observed) // 2], observed[len(observed) // 2:]
    space_low, space_high = observation_space_bounds(cfg.env)
    claimed = choose_input_range(input_range, calibration, meta.obs_mean, meta.obs_var, space_low, space_high,
                                 calibration_range)
    spread = claimed.spread(SPREAD_OBSERVATIONS, seed=1)  # not the calibration's own spread (seed 0)

    files, models, converted = {}, {}, {}
    for which, (mlp, model) in actors.items():
        c = converted[which] = convert_actor(model, calibration, "actor" if which == "compact" else "actor_dense",
                                             int8_input, c_policy=which == "compact", c_prefix=c_prefix,
                                             input_range=claimed, discrete=discrete)
        files.update(c.files)
        reference = outputs(keras_fn(model), check)
        stats = architecture_stats(mlp)
        latency = {}
        for runtime_name, runner_cls in (("tflite", TFLiteRunner), ("tflite_micro", MicroRunner)):
            for kind, runner in (("float32", runner_cls(c.float32)), ("int8", c.int8_runner(runner_cls))):
                latency[f"{runtime_name}_{kind}_us"] = 1e6 * median_invoke_seconds(runner, check[0],
                                                                                   latency_invokes)
        models[which] = {
            "hidden_units": [l.units for l in mlp.layers[:-1]],
            "neurons": stats["neurons"], "weights": stats["weights"], "flops": stats["flops"],
            "keras_h5_bytes": os.path.getsize(run.path(inference.COMPACT_FILE if which == "compact"
                                                        else inference.DENSE_FILE)),
            "float32_bytes": len(c.float32), "int8_bytes": len(c.int8),
            "float32_max_abs_error": float(np.abs(outputs(TFLiteRunner(c.float32), check) - reference).max()),
            "int8_output_scale": TFLiteRunner(c.int8).output_quantization()[0],
            "int8_vs_keras": agreement(reference, outputs(c.int8_runner(MicroRunner), check), discrete),
            "int8_vs_keras_over_input_range": agreement(outputs(keras_fn(model), spread),
                                                        outputs(c.int8_runner(MicroRunner), spread), discrete),
            "median_invoke_latency_us": latency,
            "tflite_micro_memory": {"int8": tflite_micro_memory(c.int8), "float32": tflite_micro_memory(c.float32)},
        }
        if which == "compact":
            compact_reference = reference
            effective = (claimed.low, claimed.high)
            if c.c_policy is not None:
                effective = (c.c_policy.input_low, c.c_policy.input_high)

    eval_seeds = [evaluation_seed(cfg.seed, i) for i in range(episodes)]
    compact_int8 = converted["compact"].int8_runner(MicroRunner)
    c_report = c_policy_report(converted["compact"], compact_reference, check, cfg.env, eval_seeds, discrete, spread)
    report = {
        "root_dir": run.root, "env": cfg.env, "method": cfg.method, "seed": cfg.seed,
        "observations": {"calibration": len(calibration), "check": len(check)},
        "int8_input": int8_input,
        "input_range": {**coverage(claimed, check, space_low, space_high, effective),
                        "spread_observations": len(spread),
                        "check_observations_saturated_rate":
                            float(np.mean(converted["compact"].c_policy.saturated_features(check) > 0))
                            if converted["compact"].c_policy is not None else None},
        "host_interpreter": INTERPRETER,  # runs the "tflite" checks: LiteRT where installed
        "latency_invokes": latency_invokes,
        "models": models,
        "returns": {"seeds": eval_seeds,
                    "keras_compact": episode_returns(compact_keras, cfg.env, eval_seeds, discrete),
                    "tflite_micro_int8_compact": episode_returns(compact_int8, cfg.env, eval_seeds, discrete),
                    **{f"{k}_compact": v for k, v in c_report.pop("returns", {}).items()}},
        "c_policy": c_report,
        "files": {name: len(data if isinstance(data, bytes) else data.encode()) for name, data in files.items()},
    }
    keras_run, int8_run = report["returns"]["keras_compact"], report["returns"]["tflite_micro_int8_compact"]
    if is_driving(cfg.env):
        extra = int8_run["collisions"] - keras_run["collisions"]
        allowed = INT8_EXTRA_COLLISIONS_PER_50 * len(eval_seeds) / 50
        report["driving"] = {"episodes": len(eval_seeds), "keras_collisions": keras_run["collisions"],
                             "tflite_micro_int8_collisions": int8_run["collisions"],
                             "int8_extra_collisions": extra, "int8_extra_collisions_allowed": allowed,
                             "int8_within_limit": extra <= allowed,
                             "keras_speed_mean": keras_run["speed_mean"],
                             "tflite_micro_int8_speed_mean": int8_run["speed_mean"]}
    report["ratios"] = {
        "float32_bytes_dense_over_compact": models["dense"]["float32_bytes"] / models["compact"]["float32_bytes"],
        "int8_bytes_dense_over_compact": models["dense"]["int8_bytes"] / models["compact"]["int8_bytes"],
        "tflite_micro_int8_latency_dense_over_compact":
            models["dense"]["median_invoke_latency_us"]["tflite_micro_int8_us"]
            / models["compact"]["median_invoke_latency_us"]["tflite_micro_int8_us"],
    }
    report["ratios"].update(_c_policy_ratios(models, c_report))
    if gif:
        frames, total, fps = render_episode(compact_int8, cfg.env, eval_seeds[0], discrete)
        files[GIF_FILE] = gif_bytes(frames, fps)
        report["animation"] = {"file": GIF_FILE, "runtime": "tflite_micro_int8", "seed": eval_seeds[0],
                               "frames": len(frames), "frames_per_second": fps, "return": total}
    files["export_report.json"] = json.dumps(report, indent=2)
    write_files(output_dir, files)
    return report
