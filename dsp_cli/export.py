"""Export a training run's actor for TensorFlow Lite and TensorFlow Lite Micro.

    python -m tflite_export --root_dir=runs/hopper_dsp_s0 --output_dir=export/hopper

Writes actor_float32.tflite, actor_int8.tflite, actor_int8.cc/.h and
actor_int8_input.json (the compact actor; the last two hold the per-feature
input map, see tflite_export.input_scaling), actor_policy.c/.h (the compact
actor as plain C99, float32 and int8, see tflite_export.c_policy), the TFLite
files for the dense actor (actor_dense_*), export_report.json and, with --gif,
policy_int8.gif (one greedy episode rendered, tflite_export.animation).

The command keeps its name; its body lives here, on the floor above the agent
layer, because an export of a run is RL work: it reads the run directory, plays
the greedy policy to record the observations int8 is calibrated and checked on,
and scores every runtime on the run's test episodes. Conversion, C emission and
the checks on recorded observations are the tflite_export library's.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
from absl import flags

from agents import inference
from agents.config import RunConfig, from_dict
from agents.env_docs import interface_names
from agents.envs import is_driving, make_gym
from agents.layout import SUMMARY_FILE
from agents.evaluation import (DRIVING_METRICS, episode_metrics, final_test_seeds, greedy_episode, held_out_seeds,
                               run_episodes)
from agents.rundir import RunDirectory, read_finished_summary
from dsp_cli import cli
from dsp_tf.errors import UsageError
from dsp_tf.files import check_output_directory, prepare_output_directory
from dsp_tf.numpy_forward import keras_step
from tflite_export.animation import gif_bytes
from tflite_export.c_array import check_c_prefix
from tflite_export.c_int16 import parse_lsb
from tflite_export.c_tables import ACTIVATION_KERNELS
from tflite_export.checks import (Policy, c_policy_ratios, check_c_policy, model_report, outputs,
                                  size_ratios)
from tflite_export.exporter import MANIFEST, ConvertedActor, convert_actor, write_files
from tflite_export.input_range import (DEFAULT_INPUT_RANGE, INPUT_RANGES, SPREAD_OBSERVATIONS, InputRange,
                                       check_inside_window,
                                       choose_input_range, coverage, parse_calibration_pairs, parse_calibration_range)
from tflite_export.input_scaling import INT8_INPUTS, clip_window
from tflite_export.runtimes import INTERPRETER, MicroRunner

GIF_FILE = "policy_int8.gif"
REPORT_FILE = "export_report.json"
#: --c_prefix's default: the plain-C policy's name; the TFLite Micro arrays keep TFLite's own names with it.
DEFAULT_C_PREFIX = "actor_policy"
#: On a driving task the int8 actor may crash at most this many times more than the Keras actor per 50
#: episodes (issue 12's bar); export_report.json says whether it stayed within it.
INT8_EXTRA_COLLISIONS_PER_50 = 1
#: Where a failed off-screen render usually comes from (README, "Dependencies").
PYGAME_HINT = ("highway-env renders with pygame-ce's files, which tf-agents' pygame pin can overwrite: "
               "pip install --no-deps --force-reinstall pygame-ce==<the version setup.py's driving extra pins>")


# ---- the policy in its environment -----------------------------------------------------
def record_observations(policy: Policy, env_name: str, seeds: List[int], count: int,
                        discrete: bool) -> np.ndarray:
    """Observations met by the greedy policy, episode after episode, until ``count``."""
    env = make_gym(env_name)
    rows: List[np.ndarray] = []
    for seed in seeds:
        for step in greedy_episode(env, policy, seed, discrete):
            rows.append(step.observation)
            if len(rows) >= count:
                break
        if len(rows) >= count:
            break
    env.close()
    return np.stack(rows)


def observation_space_bounds(env_name: str) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """(low, high) of the environment's Box observation space, flattened; (None, None) otherwise."""
    env = make_gym(env_name)
    try:
        space = env.observation_space
        if hasattr(space, "low") and hasattr(space, "high"):
            return np.ravel(space.low).astype(np.float64), np.ravel(space.high).astype(np.float64)
        return None, None
    finally:
        env.close()


def episode_returns(policy: Policy, env_name: str, seeds: List[int], discrete: bool) -> Dict[str, object]:
    """Returns on ``seeds``; on a driving task also collisions and mean speed (agents.evaluation)."""
    driving = is_driving(env_name)
    m = episode_metrics(run_episodes(policy, env_name, seeds, discrete), driving)
    out = {"mean": m["return_mean"], "std": m["return_std"], "returns": m["returns"]}
    out.update({k: m[k] for k in DRIVING_METRICS} if driving else {})
    return out


def c_policy_report(converted: ConvertedActor, reference: np.ndarray, check: np.ndarray,
                    env_name: Optional[str] = None, seeds: Optional[List[int]] = None,
                    discrete: bool = True, spread: Optional[np.ndarray] = None) -> Dict[str, object]:
    """tflite_export.checks.check_c_policy, with the C variants' greedy returns on ``seeds``."""
    score = None
    if env_name is not None and seeds:
        score = lambda policy: episode_returns(policy, env_name, seeds, discrete)  # noqa: E731
    return check_c_policy(converted, reference, check, spread, score)


# ---- the animation -------------------------------------------------------------------
def _render_env(env_name: str):
    if not is_driving(env_name):
        raise UsageError(f"--gif renders driving tasks only; '{env_name}' is not one")
    return make_gym(env_name, render_mode="rgb_array")


def _frame(env) -> np.ndarray:
    try:
        frame = env.render()
    except Exception as e:  # noqa: BLE001 - pygame.error and whatever else the renderer raises
        env.close()
        raise UsageError(f"cannot render off-screen ({type(e).__name__}: {str(e).splitlines()[0]}); "
                         f"{PYGAME_HINT}") from None
    if np.ptp(frame) == 0:
        env.close()
        raise UsageError(f"off-screen rendering gave a blank frame; {PYGAME_HINT}")
    return frame


def check_rendering(env_name: str) -> None:
    """Renders one frame, so an export asked for a GIF fails before its conversions, not after.
    Driving tasks only: highway-env renders with pygame alone, where MuJoCo would need OpenGL."""
    env = _render_env(env_name)
    env.reset(seed=0)
    _frame(env)
    env.close()


def render_episode(policy: Policy, env_name: str, seed: int,
                   discrete: bool) -> Tuple[List[np.ndarray], float, float]:
    """(frames, return, frames per second) of one greedy episode, whole (driving episodes are
    bounded by the task's duration): the first frame after reset, then one per decision. The
    rate is the environment's own ``render_fps`` (highway-env's: twice real time)."""
    env = _render_env(env_name)
    steps = greedy_episode(env, policy, seed, discrete)
    frames, total = [_frame(env)], 0.0
    for step in steps:
        total += float(step.reward)
        frames.append(_frame(env))
    fps = float(env.metadata["render_fps"])
    env.close()
    return frames, total, fps


# ---- export_run, step by step --------------------------------------------------------
#: The C files the export writes besides the policy's: a --c_prefix naming one would overwrite it.
_TAKEN_C_NAMES = ("actor_int8", "actor_dense_int8")


def _check_arguments(root_dir: str, output_dir: str, num_observations: int, eval_episodes: Optional[int],
                     latency_invokes: int, input_range: Optional[str], c_prefix: str,
                     calibration_range: Optional[str] = None,
                     int16_lsb: Optional[str] = None, int8_input: str = "per_feature", c_tanh: str = "table") -> None:
    """Every check that needs no run, before any work: a bad flag is one line and exit code 2 with
    nothing made or changed. Only then is the output directory made ready, which finishes a
    replacement a killed export left half done (dsp_tf.files.prepare_output_directory)."""
    if not root_dir or not os.path.isdir(root_dir):
        raise UsageError(f"run directory '{root_dir}' does not exist")
    check_output_directory(output_dir)
    if num_observations < 10 or latency_invokes < 1:
        raise UsageError("--num_observations must be >= 10 and --latency_invokes >= 1")
    if eval_episodes is not None and eval_episodes <= 0:
        raise UsageError(f"--eval_episodes must be > 0, got {eval_episodes}")
    check_c_prefix(c_prefix, taken=_TAKEN_C_NAMES)
    if c_tanh not in ACTIVATION_KERNELS:
        raise UsageError(f"unknown --c_tanh '{c_tanh}' (choose from {', '.join(ACTIVATION_KERNELS)})")
    if input_range is not None and input_range not in INPUT_RANGES:
        raise UsageError(f"unknown --input_range '{input_range}' (choose from {', '.join(INPUT_RANGES)})")
    if int8_input not in INT8_INPUTS:
        raise UsageError(f"unknown --int8_input '{int8_input}' (choose from {', '.join(INT8_INPUTS)})")
    if calibration_range is not None:
        parse_calibration_pairs(calibration_range)
    if int16_lsb is not None and not int16_lsb.strip():
        raise UsageError("--int16_lsb is empty: give one LSB or one per feature (or leave the flag out for the "
                         "default power of two)")
    prepare_output_directory(output_dir, MANIFEST)


def _check_calibration_range(r: _Run, calibration_range: Optional[str], int8_input: str) -> None:
    """What ``--calibration_range`` needs the run for, checked once the actors are loaded and before
    any observation is recorded: as many pairs as features and, for a per-feature int8 input, each
    within the observation normaliser's clip window (or it would be narrowed to it)."""
    if calibration_range is None:
        return
    low, high = parse_calibration_range(calibration_range, len(r.meta.obs_mean))
    if int8_input == "per_feature":
        for _, model in r.actors.values():
            check_inside_window(low, high, *clip_window(model))


@dataclass
class _Run:
    """A finished run as the export needs it: its config, its two actors and how many test episodes."""

    run: RunDirectory
    cfg: RunConfig
    actors: Dict[str, tuple]  # "dense"/"compact" -> (trained MLP, deployable actor)
    meta: inference.ActorMeta
    episodes: int

    def h5_bytes(self, which: str) -> int:
        return os.path.getsize(self.run.path(inference.COMPACT_FILE if which == "compact" else inference.DENSE_FILE))


def _load_run(root_dir: str, eval_episodes: Optional[int], gif: bool) -> _Run:
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
    return _Run(run, cfg, actors, meta, episodes)


def run_identity(r: _Run) -> Dict[str, object]:
    """Which trained policy an export holds: env, method, seed, the training step of the shipped actor
    (the best validated one's, else the last) and the SHA-256 of the run's summary.json, which pins
    everything else (its returns, sizes and settings). For the C header and export_report.json."""
    summary = read_finished_summary(r.run.root)
    identity: Dict[str, object] = {"env": r.cfg.env, "method": r.cfg.method, "seed": r.cfg.seed}
    if summary is None:
        identity.update({"chosen_step": "unknown", "summary_json_sha256": "none (unfinished run)"})
        return identity
    selection = summary.get("selection") if isinstance(summary.get("selection"), dict) else {}
    identity["chosen_step"] = selection.get("chosen_step", summary.get("env_steps", "unknown"))
    with open(r.run.path(SUMMARY_FILE), "rb") as f:
        identity["summary_json_sha256"] = hashlib.sha256(f.read()).hexdigest()
    return identity


def c_interface(r: _Run, identity: Dict[str, object]) -> Dict[str, object]:
    """What the C header documents about the compact actor's interface: per input its name and unit, per
    output its meaning (agents.env_docs; "feature i" / "output i" where the registry has none), and the run."""
    obs_dim = len(r.meta.obs_mean)
    out_dim = int(r.actors["compact"][1].output_shape[-1])
    names, units, outputs = interface_names(r.cfg.env, obs_dim, out_dim)
    return {"input_names": names, "input_units": units, "output_names": outputs, "identity": identity}


@dataclass
class _Observations:
    calibration: np.ndarray
    check: np.ndarray
    claimed: InputRange  # the raw range the int8 input must cover
    spread: np.ndarray  # observations spread over that range
    space_low: Optional[np.ndarray]
    space_high: Optional[np.ndarray]


def _observations(r: _Run, policy: Policy, num_observations: int, input_range: Optional[str],
                  calibration_range: Optional[str]) -> _Observations:
    """Calibration and check observations from episodes on seeds that neither training nor the
    return evaluation uses, and the input range they and the flags choose."""
    seeds = held_out_seeds(r.cfg.seed, 10_000)
    observed = record_observations(policy, r.cfg.env, seeds, 2 * num_observations, r.meta.discrete)
    calibration, check = observed[: len(observed) // 2], observed[len(observed) // 2:]
    space_low, space_high = observation_space_bounds(r.cfg.env)
    if input_range is None:  # the measured default, where the actor has the statistics it needs
        input_range = DEFAULT_INPUT_RANGE if r.meta.obs_mean is not None and r.meta.obs_var is not None else "episodes"
    claimed = choose_input_range(input_range, calibration, r.meta.obs_mean, r.meta.obs_var, space_low, space_high,
                                 calibration_range)
    spread = claimed.spread(SPREAD_OBSERVATIONS, seed=1)  # not the calibration's own spread (seed 0)
    return _Observations(calibration, check, claimed, spread, space_low, space_high)


def _input_range_report(obs: _Observations, compact: ConvertedActor) -> Dict[str, object]:
    effective = (obs.claimed.low, obs.claimed.high)
    if compact.c_policy is not None:
        effective = (compact.c_policy.input_low, compact.c_policy.input_high)
    return {**coverage(obs.claimed, obs.check, obs.space_low, obs.space_high, effective),
            "note": compact.range_note or obs.claimed.note,  # the C header's, naming any narrowing
            "spread_observations": len(obs.spread),
            "check_observations_saturated_rate":
                float(np.mean(compact.c_policy.saturated_features(obs.check) > 0))
                if compact.c_policy is not None else None}


def _driving_report(keras_run: dict, int8_run: dict, episodes: int) -> Dict[str, object]:
    extra = int8_run["collisions"] - keras_run["collisions"]
    allowed = INT8_EXTRA_COLLISIONS_PER_50 * episodes / 50
    return {"episodes": episodes, "keras_collisions": keras_run["collisions"],
            "tflite_micro_int8_collisions": int8_run["collisions"],
            "int8_extra_collisions": extra, "int8_extra_collisions_allowed": allowed,
            "int8_within_limit": extra <= allowed,
            "keras_speed_mean": keras_run["speed_mean"],
            "tflite_micro_int8_speed_mean": int8_run["speed_mean"]}


def _returns(r: _Run, compact_keras: Policy, compact_int8: Policy, c_report: dict,
             eval_seeds: List[int]) -> Dict[str, object]:
    env, discrete = r.cfg.env, r.meta.discrete
    return {"seeds": eval_seeds,
            "keras_compact": episode_returns(compact_keras, env, eval_seeds, discrete),
            "tflite_micro_int8_compact": episode_returns(compact_int8, env, eval_seeds, discrete),
            **{f"{k}_compact": v for k, v in c_report.pop("returns", {}).items()}}


def export_run(root_dir: str, output_dir: str, num_observations: int = 1000,
               eval_episodes: Optional[int] = None, latency_invokes: int = 1000,
               int8_input: str = "per_feature", gif: bool = False, input_range: Optional[str] = None,
               calibration_range: Optional[str] = None, c_prefix: str = DEFAULT_C_PREFIX,
               int16_lsb: Optional[str] = None, c_tanh: str = "table") -> Dict[str, object]:
    """Exports a dsp_tf.train run (dense and compact actors) and writes export_report.json; with
    ``gif``, also policy_int8.gif: the int8 actor in TFLite Micro on the first evaluation episode.
    ``input_range``/``calibration_range`` choose the raw range the int8 input covers
    (tflite_export.input_range; None: DEFAULT_INPUT_RANGE, or ``episodes`` for an actor without
    observation statistics); ``c_prefix`` names the plain-C policy's files and symbols;
    ``int16_lsb`` ('a,b,...' or one value) is what one count of an int16 sensor reading is worth;
    ``c_tanh`` picks the C policy's TANH/LOGISTIC kernel (tflite_export.c_tables)."""
    _check_arguments(root_dir, output_dir, num_observations, eval_episodes, latency_invokes, input_range, c_prefix,
                     calibration_range, int16_lsb, int8_input, c_tanh)
    r = _load_run(root_dir, eval_episodes, gif)
    discrete, env = r.meta.discrete, r.cfg.env
    lsb = parse_lsb(int16_lsb, len(r.meta.obs_mean))
    _check_calibration_range(r, calibration_range, int8_input)
    compact_keras = keras_step(r.actors["compact"][1])
    identity = run_identity(r)
    interface = c_interface(r, identity)
    obs = _observations(r, compact_keras, num_observations, input_range, calibration_range)

    files, models, converted = {}, {}, {}
    for which, (mlp, model) in r.actors.items():
        c = converted[which] = convert_actor(model, obs.calibration, "actor" if which == "compact" else "actor_dense",
                                             int8_input, c_policy=which == "compact",
                                             c_prefix=None if c_prefix == DEFAULT_C_PREFIX else c_prefix,
                                             input_range=obs.claimed, discrete=discrete,
                                             int16_lsb=lsb if which == "compact" else None, c_tanh=c_tanh,
                                             c_interface=interface if which == "compact" else None,
                                             targets=which == "compact")
        taken = sorted(set(c.files) & set(files) | set(c.files) & {GIF_FILE, REPORT_FILE, MANIFEST})
        if taken:  # an export target's file name is one the export already uses
            raise UsageError(f"the {which} actor's export would write {taken[0]} twice")
        files.update(c.files)
        models[which] = model_report(mlp, model, c, obs.check, obs.spread, latency_invokes, discrete,
                                     r.h5_bytes(which))

    eval_seeds = final_test_seeds(r.cfg.seed, r.episodes)
    compact_int8 = converted["compact"].int8_runner(MicroRunner)
    compact_reference = outputs(compact_keras, obs.check)
    c_report = c_policy_report(converted["compact"], compact_reference, obs.check, env, eval_seeds, discrete,
                               obs.spread)
    report = {
        "root_dir": cli.portable_path(r.run.root), "env": env, "method": r.cfg.method, "seed": r.cfg.seed,
        "run_identity": identity,
        "observations": {"calibration": len(obs.calibration), "check": len(obs.check)},
        "int8_input": int8_input,
        "c_tanh": c_tanh,
        "input_range": _input_range_report(obs, converted["compact"]),
        "host_interpreter": INTERPRETER,  # runs the "tflite" checks: LiteRT where installed
        "latency_invokes": latency_invokes,
        "models": models,
        "returns": _returns(r, compact_keras, compact_int8, c_report, eval_seeds),
        "c_policy": c_report,
        "files": {name: len(data if isinstance(data, bytes) else data.encode()) for name, data in files.items()},
    }
    if is_driving(env):
        report["driving"] = _driving_report(report["returns"]["keras_compact"],
                                            report["returns"]["tflite_micro_int8_compact"], len(eval_seeds))
    report["ratios"] = {**size_ratios(models), **c_policy_ratios(models, c_report)}
    if gif:
        frames, total, fps = render_episode(compact_int8, env, eval_seeds[0], discrete)
        files[GIF_FILE] = gif_bytes(frames, fps)
        report["animation"] = {"file": GIF_FILE, "runtime": "tflite_micro_int8", "seed": eval_seeds[0],
                               "frames": len(frames), "frames_per_second": fps, "return": total}
    files[REPORT_FILE] = json.dumps(report, indent=2)
    write_files(output_dir, files)
    return report


# ---- the command ---------------------------------------------------------------------
def define_flags() -> None:
    """Defined on demand so that importing this module never claims flag names."""
    flags.DEFINE_string("root_dir", None, "Run directory written by dsp_tf.train.")
    flags.DEFINE_string("output_dir", None, "Where the exported files go. The directory is replaced as a whole "
                        "(killed at any point, it holds the complete old or new export); files in it that the "
                        "previous export did not write are kept, a subdirectory is refused.")
    flags.DEFINE_integer("num_observations", 1000, "Recorded observations for int8 calibration (as many again are used to check).")
    flags.DEFINE_integer("eval_episodes", None, "Episodes for the return check (default: the run's).")
    flags.DEFINE_enum("int8_input", "per_feature", ["per_feature", "per_tensor"],
                      "per_feature: each observation feature gets its own int8 range (the map is in the C header "
                      "and actor_int8_input.json); per_tensor: the raw observation with one scale, as TFLite does.")
    flags.DEFINE_bool("gif", False, "Driving tasks: also write policy_int8.gif, the int8 actor (TFLite Micro) "
                      "acting the run's first evaluation episode, rendered off-screen (one frame per decision).")
    flags.DEFINE_enum("input_range", None, list(INPUT_RANGES),
                      "Raw observation range the int8 input covers (beyond it a feature saturates): training (the "
                      "default) = the training rollouts' mean +- 4 std joined with the policy's episodes, within the "
                      "observation space; episodes = the policy's own greedy episodes (the default for an actor "
                      "without observation statistics); observation_space = the env's finite bounds. Measured in "
                      "docs/embedded_input_range.md; see tflite_export/input_range.py.")
    flags.DEFINE_string("calibration_range", None, "Overrides --input_range: 'lo:hi' for every feature or "
                        "'lo:hi,lo:hi,...' one pair per observation feature, in raw units, used exactly as given: "
                        "bounds beyond +-1e30 and, with the per-feature int8 input, a range wider than the actor's "
                        "observation normaliser clip window are refused.")
    flags.DEFINE_string("c_prefix", DEFAULT_C_PREFIX, "Names the plain-C policy's files (<prefix>.c/.h), functions, "
                        "macros and file-scope (static) names and, when not the default, the TFLite Micro arrays' "
                        "symbols (g_<prefix>_actor_int8_model_data, ...), so that two exports link and unity-build "
                        "into one firmware.")
    flags.DEFINE_enum("c_tanh", "table", list(ACTIVATION_KERNELS),
                      "How the plain-C int8 policy computes TANH/LOGISTIC, bit-identical either way: table = one "
                      "256-byte table per layer, generated from TFLite Micro's routine (about 3x fewer instructions "
                      "per call on a Cortex-M4); computed = TFLite Micro's fixed-point routine per neuron (no "
                      "tables: for parts short of flash).")
    flags.DEFINE_string("int16_lsb", None, "What one count of each feature's int16 reading is worth, in the "
                        "observation's units, for <prefix>_int16_q: one value or 'a,b,...' per feature (default: a "
                        "power of two per feature from the input range, the header's INT16_FRAC_BITS).")
    flags.DEFINE_integer("latency_invokes", 1000, "Invokes per latency measurement (the median is reported).")


FLAGS = flags.FLAGS


def _main() -> None:
    if not FLAGS.root_dir or not FLAGS.output_dir:
        raise UsageError("--root_dir and --output_dir are required")
    r = export_run(FLAGS.root_dir, FLAGS.output_dir, FLAGS.num_observations, FLAGS.eval_episodes,
                   FLAGS.latency_invokes, FLAGS.int8_input, FLAGS.gif, FLAGS.input_range,
                   FLAGS.calibration_range, FLAGS.c_prefix, FLAGS.int16_lsb, FLAGS.c_tanh)
    d, c = r["models"]["dense"], r["models"]["compact"]
    agree = ", ".join(f"{k} {v:.4g}" for k, v in c["int8_vs_keras"].items() if k != "tied_top_outputs_rate")
    print(f"{r['env']} {r['method']}: int8 model {c['int8_bytes']:,} B (dense {d['int8_bytes']:,} B), "
          f"TFLM int8 invoke {c['median_invoke_latency_us']['tflite_micro_int8_us']:.1f} us "
          f"(dense {d['median_invoke_latency_us']['tflite_micro_int8_us']:.1f} us), return keras "
          f"{r['returns']['keras_compact']['mean']:.1f} vs int8 {r['returns']['tflite_micro_int8_compact']['mean']:.1f} "
          f"(int8 vs Keras: {agree}); {_driving_line(r)}"
          f"{_c_policy_line(r)}; report in {FLAGS.output_dir}/export_report.json")


def _driving_line(r: dict) -> str:
    d = r.get("driving")
    if d is None:
        return ""
    verdict = "within" if d["int8_within_limit"] else "OVER"
    return (f"collisions in {d['episodes']} episodes keras {d['keras_collisions']} vs TFLM int8 "
            f"{d['tflite_micro_int8_collisions']} ({verdict} the limit of {d['int8_extra_collisions_allowed']:g} "
            f"more); ")


def _c_policy_line(r: dict) -> str:
    c = r["c_policy"]
    if not c["written"]:
        return f"no C policy ({c['reason']})"
    line = "C policy written"
    check = c.get("int8_vs_tflite_micro")
    if check:
        line += f", int8 identical to TFLM on {100 * check['identical_output_rate']:.1f}% of states"
    variants = c["footprint"].get("variants")
    if variants:
        v, q, dense = variants["int8"], variants["int8_q"], r["models"]["dense"]["tflite_micro_memory"]["int8"]
        line += (f", on {c['footprint']['target']}: int8 (float in) {v['flash_bytes']} B flash + {v['ram_bytes']} B RAM, "
                 f"integer-only int8_q {q['flash_bytes']} B + {q['ram_bytes']} B "
                 f"(dense TFLM int8: {dense['model_bytes']} B model + {dense['min_arena_bytes']} B arena)")
    else:
        line += f" ({c['footprint']['note']})"
    return line


def main() -> None:
    define_flags()
    cli.own_flags_are_key(__name__)
    cli.run(_main, prog="tflite_export")
