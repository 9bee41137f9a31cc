"""Export of trained runs to TFLite / TFLite Micro, checked in the Micro runtime."""
import json

import numpy as np
import pytest

from clitools import TINY, last_line, run_module
from dsp_tf import keras
from dsp_tf.errors import UsageError
from tflite_export import export_actor
from tflite_export.c_array import parse_c_array
from tflite_export.exporter import export_run
from tflite_export.runtimes import MicroRunner, TFLiteRunner

FILES = ["actor_float32.tflite", "actor_int8.tflite", "actor_int8.cc", "actor_int8.h", "export_report.json"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    cartpole, hopper = root / "cartpole", root / "hopper"
    r = run_module("dsp_tf.train", *TINY, f"--root_dir={cartpole}")
    assert r.returncode == 0, r.stderr[-2000:]
    r = run_module("dsp_tf.train", "--flagfile=hopper.cfg", "--num_env_steps=2048", "--rollout_steps=1024",
                   "--prune_begin=0", "--prune_end=2048", "--prune_frequency=1024", "--eval_episodes=2",
                   "--actor_layers=64,64", f"--root_dir={hopper}")
    assert r.returncode == 0, r.stderr[-2000:]
    return {"cartpole": cartpole, "hopper": hopper}


@pytest.mark.parametrize("name", ["cartpole", "hopper"])
def test_export_run_writes_every_file_and_passes_the_checks(runs, tmp_path, name):
    out = tmp_path / "export"
    report = export_run(str(runs[name]), str(out), num_observations=200, eval_episodes=2, latency_invokes=1000)
    for f in FILES + ["actor_dense_float32.tflite", "actor_dense_int8.tflite"]:
        assert (out / f).exists(), f
    on_disk = json.loads((out / "export_report.json").read_text())
    assert on_disk["models"]["compact"]["int8_bytes"] == (out / "actor_int8.tflite").stat().st_size

    int8 = (out / "actor_int8.tflite").read_bytes()
    assert parse_c_array((out / "actor_int8.cc").read_text()) == int8
    assert "g_actor_int8_model_data_size" in (out / "actor_int8.h").read_text()

    summary = json.loads((runs[name] / "summary.json").read_text())
    compact, dense = report["models"]["compact"], report["models"]["dense"]
    assert compact["hidden_units"] == summary["compact_layers"][:-1]
    assert compact["float32_max_abs_error"] <= 1e-5
    assert dense["float32_max_abs_error"] <= 1e-5
    assert compact["float32_bytes"] < dense["float32_bytes"]
    assert compact["int8_bytes"] < dense["int8_bytes"]
    # The Keras actor's return on the run's evaluation seeds is the one training reported.
    assert report["returns"]["keras_compact"]["mean"] == pytest.approx(summary["return_mean"])

    # The board runtime loads both files and computes what the desktop interpreter computes.
    obs_dim = len(json.loads((runs[name] / "actor_meta.json").read_text())["obs_mean"])
    obs = np.random.default_rng(0).normal(scale=0.5, size=(50, obs_dim)).astype(np.float32)
    for data, tol in (((out / "actor_float32.tflite").read_bytes(), 1e-5), (int8, None)):
        micro, lite = MicroRunner(data), TFLiteRunner(data)
        diffs = np.array([np.abs(micro(o) - lite(o)).max() for o in obs])
        if tol is None:  # int8: at most one quantisation step apart
            tol = 1.01 * float(lite._out["quantization"][0])
        assert diffs.max() <= tol
    if name == "hopper":
        agree = compact["int8_vs_keras"]
        assert agree["mean_abs_error"] < 0.05  # actions live in [-1, 1]
    else:
        assert 0.5 <= compact["int8_vs_keras"]["same_action_rate"] <= 1.0
    assert compact["median_invoke_latency_us"]["tflite_micro_int8_us"] > 0


def test_export_cli_refuses_bad_runs_without_partial_files(runs, tmp_path):
    out = tmp_path / "out"
    r = run_module("tflite_export", f"--root_dir={tmp_path / 'missing'}", f"--output_dir={out}")
    assert r.returncode == 2 and "does not exist" in last_line(r.stderr)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((runs["cartpole"] / "config.json").read_text())
    r = run_module("tflite_export", f"--root_dir={broken}", f"--output_dir={out}")
    assert r.returncode == 2 and "has no saved actor" in last_line(r.stderr)
    assert not out.exists()


def test_user_actor_api_and_unsupported_layers(tmp_path):
    keras.utils.set_random_seed(0)
    actor = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)])
    rep = np.random.default_rng(0).normal(size=(100, 6)).astype(np.float32)
    sizes = export_actor(actor, str(tmp_path / "mine"), rep, name="policy")
    assert set(sizes) == {"policy_float32.tflite", "policy_int8.tflite", "policy_int8.cc", "policy_int8.h"}
    lite = TFLiteRunner((tmp_path / "mine" / "policy_float32.tflite").read_bytes())
    np.testing.assert_allclose(lite(rep[0]), actor(rep[:1]).numpy()[0], atol=1e-5)
    bad = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8), keras.layers.BatchNormalization(),
                            keras.layers.Dense(2)])
    with pytest.raises(UsageError, match="batch_normalization"):
        export_actor(bad, str(tmp_path / "bad"), rep)
    assert not (tmp_path / "bad").exists()
