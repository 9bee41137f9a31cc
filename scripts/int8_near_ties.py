"""Issue 39: where CartPole's int8 and float actions disagree on held-out states, and whether calibrating
the int8 model differently (without the 2,000 observations spread over the input range, or on 5,000
observations instead of 1,000) brings agreement to 99%. Usage: python scripts/int8_near_ties.py RUN_DIR"""
import sys
import numpy as np
from agents import inference
from agents.config import from_dict
from agents.evaluation import final_test_seeds, held_out_seeds
from agents.rundir import RunDirectory
from dsp_cli.export import observation_space_bounds, record_observations
from dsp_tf.numpy_forward import keras_step
import tflite_export.exporter as ex
from tflite_export.input_range import choose_input_range
from tflite_export.runtimes import MicroRunner

root = sys.argv[1]
run = RunDirectory(root)
cfg = from_dict({**run.read_config(), "root_dir": root})
mlp, meta = inference.load_actor(root, "compact")
model = inference.inference_model(mlp, meta)
policy = keras_step(model)
observed = record_observations(policy, cfg.env, held_out_seeds(cfg.seed, 10_000), 20000, meta.discrete)
episodes = record_observations(policy, cfg.env, final_test_seeds(cfg.seed, 10), 10 ** 6, meta.discrete)
space_low, space_high = observation_space_bounds(cfg.env)
ref = model(episodes).numpy()
margin = np.abs(ref[:, 0] - ref[:, 1])
print("states", len(episodes), "float margin quantiles", np.quantile(margin, [0.01, 0.05, 0.1, 0.5]))
for label, n_cal, spread in [("default", 1000, True), ("no_spread", 1000, False), ("cal5000", 5000, True), ("cal5000_nospread", 5000, False)]:
    calibration = observed[:n_cal]
    claimed = choose_input_range("training", observed[:1000], meta.obs_mean, meta.obs_var, space_low, space_high)
    if not spread:
        orig = ex.SPREAD_OBSERVATIONS
        ex.SPREAD_OBSERVATIONS = 1
    c = ex.convert_actor(model, calibration, input_range=claimed, discrete=meta.discrete)
    if not spread:
        ex.SPREAD_OBSERVATIONS = orig
    runner = c.int8_runner(MicroRunner)
    got = np.stack([np.asarray(runner(o), np.float32) for o in episodes])
    a, b = np.argmax(ref, 1), np.argmax(got, 1)
    bad = a != b
    ties = bad & (got[:, 0] == got[:, 1])
    print(label, "agreement %.4f" % np.mean(~bad), "disagree", bad.sum(), "of which int8 ties", ties.sum(),
          "output lsb", np.min(np.abs(np.diff(np.unique(got)))), "median float margin at disagreements",
          np.median(margin[bad]) if bad.any() else None)
