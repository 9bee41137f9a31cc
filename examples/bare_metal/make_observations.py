"""Writes observations.bin for the bare-metal example: states the run's own policy meets on held-out episodes.

    python examples/bare_metal/make_observations.py --root_dir=runs/cartpole_demo --policy_dir=export/cartpole
    python examples/bare_metal/make_observations.py --root_dir=... --policy_dir=... --format=int16   # integer-only

The board should be fed the states it will meet, not random numbers: the run's greedy policy plays
episodes on seeds from the end of the held-out range (agents.evaluation.held_out_seeds), which neither
training (even seeds), the test episodes, validation nor the export's calibration (the range's start)
uses. The records are what main.c reads, little-endian, one per decision, one value per feature:

    float32  the raw observation                      (build.sh ... : <prefix>_int8_raw)
    int16    sensor counts, observation / INT16_LSB   (build.sh ... integer-only: <prefix>_int16_q)
    int8     the int8 input, quantised as the header says (build.sh ... int8-input: <prefix>_int8_q)

The int16 and int8 encodings are computed from the macros of ``<policy_dir>/<c_prefix>.h``, the file the
board compiles, so the host and the board cannot disagree about the map. A header that names another
run (its "Trained policy" line holds the run's summary.json hash) is refused, as are an observation
size other than the run's and an int16 format for a policy without ``<prefix>_int16_q``; every refusal
is one line, exit code 2, and no file. The file is written atomically.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
from typing import Dict, List

import numpy as np
from absl import flags

from agents import inference
from agents.evaluation import HELD_OUT_OFFSET, held_out_seeds
from agents.rundir import RunDirectory
from dsp_cli import cli
from dsp_cli.export import record_observations
from dsp_tf.errors import UsageError
from dsp_tf.files import atomic_write
from dsp_tf.numpy_forward import keras_step
from tflite_export.c_policy import features_outside
from tflite_export.input_scaling import FeatureScaling
from tflite_export.runtimes import quantize_int8

FORMATS = ("float32", "int16", "int8")

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defined on demand, so that importing this file (the tests do) claims no flag names."""
    flags.DEFINE_string("root_dir", None, "The training run (dsp_tf.train) whose policy plays the episodes.")
    flags.DEFINE_string("policy_dir", None, "Where the exported <c_prefix>.h is (python -m tflite_export's --output_dir).")
    flags.DEFINE_string("c_prefix", "actor_policy", "The export's --c_prefix: the header is <policy_dir>/<c_prefix>.h.")
    flags.DEFINE_string("output", "observations.bin", "The file to write.")
    flags.DEFINE_enum("format", "float32", list(FORMATS), "Record format: float32 (default build), int16 (build.sh "
                      "integer-only) or int8 (build.sh int8-input).")
    flags.DEFINE_integer("episodes", 3, "Held-out episodes to play (from the end of the held-out seed range).")
    flags.DEFINE_integer("max_observations", 400, "At most this many records (the first ones, episode after episode).")


def _floats(text: str) -> np.ndarray:
    return np.array([float(t.rstrip("fF")) for t in re.findall(r"-?[0-9][0-9.eE+-]*[fF]?", text)], np.float32)


def header_macros(header: str, prefix: str) -> Dict[str, str]:
    """``NAME -> value text`` of the header's ``#define <PREFIX>_NAME value`` lines."""
    upper = prefix.upper()
    return {m.group(1): m.group(2).strip() for m in re.finditer(rf"^#define {upper}_(\w+) (.+)$", header, re.M)}


def _read_header(policy_dir: str, prefix: str) -> str:
    path = os.path.join(policy_dir, f"{prefix}.h")
    if not os.path.isfile(path):
        raise UsageError(f"'{path}' not found (--policy_dir is the export's --output_dir, --c_prefix its prefix)")
    with open(path, encoding="utf-8") as f:
        return f.read()


def _check(header: str, macros: Dict[str, str], run_root: str, obs_dim: int, fmt: str, path: str) -> None:
    """Everything that can be refused, before an episode is played."""
    if "OBSERVATION_SIZE" not in macros or int(macros["OBSERVATION_SIZE"]) != obs_dim:
        raise UsageError(f"'{path}' takes {macros.get('OBSERVATION_SIZE', 'no')} observation features; the run's "
                         f"actor takes {obs_dim}: not this run's export")
    named = re.search(r"summary_json_sha256\s+([0-9a-f]{64})", header.replace("\n *   ", " "))
    summary = os.path.join(run_root, "summary.json")
    if named and os.path.isfile(summary):
        with open(summary, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != named.group(1):
                raise UsageError(f"'{path}' was exported from another run (its summary.json hash differs from "
                                 f"'{summary}')")
    if fmt == "int16" and "INT16_LSB" not in macros:
        raise UsageError(f"'{path}' has no int16 input (the header says why); use --format=float32 or int8")


def encode(observations: np.ndarray, macros: Dict[str, str], fmt: str) -> np.ndarray:
    """The records main.c reads for ``fmt``, from the header's macros; float32 as they are."""
    obs = np.asarray(observations, np.float32)
    if fmt == "float32":
        return obs.astype("<f4")
    if fmt == "int16":  # a sensor's reading: round(observation / LSB), clamped to int16
        lsb = _floats(macros["INT16_LSB"]).astype(np.float64)
        return np.clip(np.round(obs.astype(np.float64) / lsb), -32768, 32767).astype("<i2")
    scale, zero_point = np.float32(_floats(macros["INPUT_SCALE"])[0]), int(macros["INPUT_ZERO_POINT"].strip("()"))
    return quantize_int8(_scaling(macros).apply(obs) if "INPUT_OFFSET" in macros else obs, scale, zero_point)


def _scaling(macros: Dict[str, str]) -> FeatureScaling:
    return FeatureScaling(_floats(macros["INPUT_OFFSET"]), _floats(macros["INPUT_INV_HALF_RANGE"]))


def outside_range(observations: np.ndarray, macros: Dict[str, str]) -> np.ndarray:
    """Per observation, how many features the board will count as outside the calibrated range."""
    scaling = _scaling(macros) if "INPUT_OFFSET" in macros else None
    return features_outside(observations, scaling, float(_floats(macros["INPUT_SCALE"])[0]),
                            int(macros["INPUT_ZERO_POINT"].strip("()")))


def held_out_episode_seeds(run_seed: int, episodes: int) -> List[int]:
    """The last ``episodes`` seeds of the run's held-out range: apart from every episode the run and its
    export played (they take held-out seeds from the range's start)."""
    return held_out_seeds(run_seed, HELD_OUT_OFFSET)[-episodes:]


def make_observations(root_dir: str, policy_dir: str, output: str, fmt: str = "float32", c_prefix: str = "actor_policy",
                      episodes: int = 3, max_observations: int = 400) -> Dict[str, object]:
    """Plays the run's greedy policy on held-out episodes and writes their observations to ``output``
    in ``fmt``; returns what it wrote (records, episodes' seeds, records with a feature out of range)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format '{fmt}' (choose from {', '.join(FORMATS)})")
    if episodes < 1 or max_observations < 1:
        raise UsageError("--episodes and --max_observations must be >= 1")
    if not root_dir or not os.path.isdir(root_dir):
        raise UsageError(f"run directory '{root_dir}' does not exist")
    if os.path.isdir(output) or not os.path.isdir(os.path.dirname(os.path.abspath(output))):
        raise UsageError(f"--output '{output}' is a directory or lies in a directory that does not exist")
    header = _read_header(policy_dir, c_prefix)
    macros = header_macros(header, c_prefix)
    run = RunDirectory(root_dir)
    cfg = run.read_config()
    if not inference.has_saved_actor(run.root):
        raise UsageError(f"'{run.root}' has no saved actor; finish the run first")
    mlp, meta = inference.load_actor(run.root, "compact")
    _check(header, macros, run.root, len(meta.obs_mean), fmt, os.path.join(policy_dir, f"{c_prefix}.h"))
    seeds = held_out_episode_seeds(int(cfg.get("seed", 0)), episodes)
    policy = keras_step(inference.inference_model(mlp, meta))
    observations = record_observations(policy, meta.env, seeds, max_observations, meta.discrete)
    records = encode(observations, macros, fmt)
    atomic_write(output, np.ascontiguousarray(records).tobytes())
    return {"records": int(len(records)), "bytes_per_record": int(records.itemsize * records.shape[1]),
            "seeds": seeds, "env": meta.env, "saturated_records": int(np.sum(outside_range(observations, macros) > 0))}


def _main() -> None:
    if not FLAGS.root_dir or not FLAGS.policy_dir:
        raise UsageError("--root_dir and --policy_dir are required")
    done = make_observations(FLAGS.root_dir, FLAGS.policy_dir, FLAGS.output, FLAGS.format, FLAGS.c_prefix,
                             FLAGS.episodes, FLAGS.max_observations)
    print(f"{FLAGS.output}: {done['records']} {FLAGS.format} records of {done['bytes_per_record']} B from "
          f"{done['env']} held-out episodes (seeds {', '.join(map(str, done['seeds']))}); "
          f"{done['saturated_records']} with a feature outside the calibrated range")


if __name__ == "__main__":
    define_flags()
    cli.run(_main, prog="make_observations.py", argv=sys.argv)
