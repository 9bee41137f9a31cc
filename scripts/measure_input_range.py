"""Issue 39: int8-vs-float action agreement per --input_range, on held-out episodes and the training box."""
import json
import sys

import numpy as np

from agents import inference
from agents.config import from_dict
from agents.evaluation import final_test_seeds, held_out_seeds
from agents.rundir import RunDirectory
from dsp_cli.export import episode_returns, observation_space_bounds, record_observations
from dsp_tf.numpy_forward import keras_step
from tflite_export.exporter import convert_actor
from tflite_export.input_range import SPREAD_OBSERVATIONS, TRAINING_STDS, _finite_space_bounds, choose_input_range
from tflite_export.runtimes import MicroRunner

NUM_OBSERVATIONS = 1000  # the exporter's default --num_observations
TOLERANCE = 0.1  # continuous actions: every component within this of float's


def agree(ref, got, discrete):
    if discrete:
        return float(np.mean(np.argmax(ref, 1) == np.argmax(got, 1)))
    return float(np.mean(np.all(np.abs(ref - got) <= TOLERANCE, axis=1)))


def measure(root):
    run = RunDirectory(root)
    cfg = from_dict({**run.read_config(), "root_dir": root})
    mlp, meta = inference.load_actor(root, "compact")
    model = inference.inference_model(mlp, meta)
    policy = keras_step(model)
    # calibration exactly as export_run records it (held-out seeds, first half)
    observed = record_observations(policy, cfg.env, held_out_seeds(cfg.seed, 10_000), 2 * NUM_OBSERVATIONS,
                                   meta.discrete)
    calibration = observed[:NUM_OBSERVATIONS]
    # (a) held-out episodes: the run's 10 final test episodes (not used for calibration), float policy acting
    test_seeds = final_test_seeds(cfg.seed, 10)
    episodes = record_observations(policy, cfg.env, test_seeds, 10 ** 6, meta.discrete)
    # (b) the training box: uniform over the normaliser's mean +- 4 std, within the observation space
    space_low, space_high = observation_space_bounds(cfg.env)
    mean, std = np.asarray(meta.obs_mean, np.float64), np.sqrt(np.asarray(meta.obs_var, np.float64))
    s_low, s_high = _finite_space_bounds(space_low, space_high, len(mean))
    low, high = np.maximum(mean - TRAINING_STDS * std, s_low), np.minimum(mean + TRAINING_STDS * std, s_high)
    box = np.random.default_rng(2).uniform(low, high, size=(SPREAD_OBSERVATIONS, len(mean))).astype(np.float32)
    out = {"run": root, "env": cfg.env, "seed": cfg.seed, "test_seeds": test_seeds, "held_out_states": len(episodes),
           "box_states": len(box), "ranges": {}}
    ref_ep, ref_box = model(episodes).numpy(), model(box).numpy()
    out["float_returns"] = episode_returns(policy, cfg.env, test_seeds, meta.discrete)["returns"]
    for kind in ("episodes", "training", "observation_space"):
        claimed = choose_input_range(kind, calibration, meta.obs_mean, meta.obs_var, space_low, space_high)
        c = convert_actor(model, calibration, input_range=claimed, discrete=meta.discrete)
        runner = c.int8_runner(MicroRunner)
        got_ep = np.stack([np.asarray(runner(o), np.float32) for o in episodes])
        got_box = np.stack([np.asarray(runner(o), np.float32) for o in box])
        out["ranges"][kind] = {
            "held_out_agreement": agree(ref_ep, got_ep, meta.discrete),
            "box_agreement": agree(ref_box, got_box, meta.discrete),
            "held_out_max_abs_error": float(np.abs(ref_ep - got_ep).max()),
            "held_out_saturated_rate": float(np.mean(c.c_policy.saturated_features(episodes) > 0)),
            "box_saturated_rate": float(np.mean(c.c_policy.saturated_features(box) > 0)),
            "note": c.range_note,
            "int8_returns": episode_returns(runner, cfg.env, test_seeds, meta.discrete)["returns"]}
        if meta.discrete:  # held-out states whose two top int8 outputs are equal (argmax falls to index 0)
            top2 = np.sort(got_ep, axis=1)[:, -2:]
            out["ranges"][kind]["held_out_tied_rate"] = float(np.mean(top2[:, 0] == top2[:, 1]))
        print(root, kind, json.dumps(out["ranges"][kind]), flush=True)
    return out


if __name__ == "__main__":
    results = [measure(root) for root in sys.argv[2:]]
    with open(sys.argv[1], "w") as f:
        json.dump(results, f, indent=2)
