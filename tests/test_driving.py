"""The driving task (highway-env): adapter, collision metrics, a tiny run, its export and report."""
import json
import subprocess
import sys

import numpy as np
import pytest

from clitools import REPO, last_line, run_module

pytest.importorskip("highway_env")

from agents.envs import GymnasiumEnvironment, is_driving, make_gym  # noqa: E402
from agents.evaluation import Episode, episode_metrics, run_episodes  # noqa: E402

ENV = "highway-fast-v0"
FASTER, SLOWER, LANE_LEFT = 3, 4, 0


# gymnasium points merge-v0 to merge-v1, which is another task (connected lanes); v0 is the classic merge.
@pytest.mark.filterwarnings("ignore:.*The environment merge-v0 is out of date")
@pytest.mark.parametrize("name", [ENV, "merge-v0"])
def test_adapter_flattens_kinematics_and_keeps_discrete_meta_actions(name):
    import gymnasium as gym

    env = GymnasiumEnvironment(name, seed=5)
    assert env.observation_spec().shape == (25,) and env.observation_spec().dtype == np.float32
    spec = env.action_spec()
    assert spec.shape == () and spec.dtype == np.int64 and (spec.minimum, spec.maximum) == (0, 4)
    raw = gym.make(name)  # highway-env's own env, unwrapped by us: 5 vehicles x 5 features
    expected, _ = raw.reset(seed=5)
    assert expected.shape == (5, 5)
    np.testing.assert_array_equal(env.reset().observation, expected.reshape(-1))
    for _ in range(3):  # the same actions give the same flattened observations
        np.testing.assert_array_equal(env.step(np.int64(SLOWER)).observation, raw.step(SLOWER)[0].reshape(-1))
    assert is_driving(name) and not is_driving("CartPole-v1")


def test_episode_metrics_by_hand():
    a, b, c = Episode(), Episode(), Episode()
    for speed in (20.0, 22.0):
        a.add(0.5, {"crashed": False, "speed": speed}, driving=True)
    for speed, crashed in ((25.0, False), (27.0, False), (29.0, True)):
        b.add(1.0, {"crashed": crashed, "speed": speed}, driving=True)
    c.add(0.25, {"crashed": False, "speed": 30.0}, driving=True)
    m = episode_metrics([a, b, c], driving=True)
    assert m["returns"] == [1.0, 3.0, 0.25] and m["lengths"] == [2, 3, 1]
    assert m["collision_rate"] == pytest.approx(1 / 3) and m["collisions"] == 1
    assert m["crashed"] == [False, True, False]
    assert m["speed_mean"] == pytest.approx((21.0 + 27.0 + 30.0) / 3)  # per-episode means, then their mean
    assert m["length_mean"] == pytest.approx(2.0)
    plain = episode_metrics([a], driving=False)
    assert "collision_rate" not in plain and plain["return_mean"] == 1.0


def _scripted(script):
    """A policy that plays ``script`` over and over, as one-hot logits."""
    step = {"n": 0}

    def policy(obs):
        action = script[step["n"] % len(script)]
        step["n"] += 1
        return np.eye(5, dtype=np.float32)[action]
    return policy


@pytest.mark.parametrize("script, crashes", [((LANE_LEFT, FASTER, FASTER, FASTER), True), ((SLOWER,), False)])
def test_collisions_and_speed_come_from_info_on_scripted_episodes(script, crashes):
    seeds = [0, 1]
    episodes = run_episodes(_scripted(script), ENV, seeds, discrete=True)
    env, policy = make_gym(ENV), _scripted(script)
    for seed, episode in zip(seeds, episodes):
        obs, _ = env.reset(seed=seed)
        infos, total, done = [], 0.0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(int(np.argmax(policy(obs))))
            infos.append(info)
            total += reward
            done = terminated or truncated
        assert episode.crashed is infos[-1]["crashed"] is crashes
        assert episode.length == len(infos) and episode.ret == pytest.approx(total)
        assert episode.mean_speed == pytest.approx(np.mean([i["speed"] for i in infos]))
    m = episode_metrics(episodes, driving=True)
    assert m["collision_rate"] == (1.0 if crashes else 0.0)


@pytest.fixture(scope="module")
def highway_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("highway") / "run"
    r = run_module("dsp_tf.train", "--flagfile=highway.cfg", "--num_env_steps=768", "--num_envs=2",
                   "--rollout_steps=192", "--prune_begin=0", "--prune_end=768", "--prune_frequency=384",
                   "--checkpoint_interval=384", "--eval_episodes=3", "--curve_interval=0",
                   "--actor_layers=32,32", "--critic_layers=32,32", f"--root_dir={run}")
    assert r.returncode == 0, r.stderr[-2000:]
    return run


def test_tiny_highway_run_finishes_with_driving_metrics(highway_run):
    s = json.loads((highway_run / "summary.json").read_text())
    assert s["env"] == ENV and s["env_steps"] == 768 and s["compact"]["neurons"] < s["dense"]["neurons"]
    assert len(s["crashed"]) == len(s["speeds"]) == len(s["eval_returns"]) == 3
    assert s["collisions"] == sum(s["crashed"]) and s["collision_rate"] == pytest.approx(s["collisions"] / 3)
    assert s["speed_mean"] == pytest.approx(np.mean(s["speeds"]), abs=1e-3) and s["speed_mean"] > 0
    assert 1 <= s["eval_length_mean"] <= 30  # highway-fast-v0: 30 decisions at most

    r = run_module("dsp_tf.evaluate", f"--root_dir={highway_run}")
    assert r.returncode == 0, r.stderr[-2000:]
    evaluation = json.loads((highway_run / "evaluation.json").read_text())
    assert evaluation["crashed"] == s["crashed"] and evaluation["speed_mean"] == pytest.approx(s["speed_mean"])
    assert f"collision rate {s['collision_rate']:.2f}" in r.stdout


def test_export_counts_int8_collisions_on_the_same_episodes_and_draws_the_drive(highway_run, tmp_path):
    from PIL import Image

    out = tmp_path / "export"
    r = run_module("tflite_export", f"--root_dir={highway_run}", f"--output_dir={out}", "--num_observations=50",
                   "--latency_invokes=10", "--gif")
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads((out / "export_report.json").read_text())
    s = json.loads((highway_run / "summary.json").read_text())
    keras_run, int8_run = report["returns"]["keras_compact"], report["returns"]["tflite_micro_int8_compact"]
    assert keras_run["crashed"] == s["crashed"]  # the Keras actor on the run's own evaluation episodes
    d = report["driving"]
    assert d["episodes"] == 3 and d["keras_collisions"] == s["collisions"]
    assert d["tflite_micro_int8_collisions"] == sum(int8_run["crashed"])
    assert d["int8_extra_collisions"] == d["tflite_micro_int8_collisions"] - d["keras_collisions"]
    assert d["int8_extra_collisions_allowed"] == pytest.approx(3 / 50)  # one per 50 episodes
    assert d["int8_within_limit"] == (d["int8_extra_collisions"] <= 0)
    # Off-screen rendering works beside tf-agents' pygame pin: frames of the road, not blank ones.
    gif = Image.open(out / "policy_int8.gif")
    assert gif.n_frames == report["animation"]["frames"] >= 2
    frame = np.asarray(gif.convert("RGB"))
    assert frame.shape == (150, 600, 3) and frame.std() > 5


def test_driving_task_without_the_driving_extra_names_it(tmp_path):
    code = ("import runpy, sys; sys.modules['highway_env'] = None; sys.argv = ['dsp_tf.train'] + sys.argv[1:]; "
            "runpy.run_module('dsp_tf.train', run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code, "--flagfile=highway.cfg", f"--root_dir={tmp_path / 'run'}"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2
    assert [l for l in proc.stderr.splitlines() if l.strip()] == [
        "dsp_tf.train: error: environment 'highway-fast-v0' needs the 'driving' extra (highway_env not installed): "
        "pip install 'dsp-tf[driving]'"]
    assert not (tmp_path / "run").exists()


def test_report_driving_table_by_hand(tmp_path):
    from study.report import aggregate, driving_table, load_runs, results_document

    cells = [("dsp", 0, 0.1, 22.0, 28.0, 20.0, 0.93), ("dsp", 1, 0.3, 24.0, 26.0, 18.0, 0.93),
             ("ppo", 0, 0.0, 21.0, 30.0, 21.0, 0.0)]
    for method, seed, collision_rate, speed, length, ret, ratio in cells:
        run = tmp_path / f"{method}_s{seed}"
        run.mkdir()
        (run / "config.json").write_text(json.dumps(
            {"env": ENV, "method": method, "reg_strength": 1e-4, "final_sparsity": 0.93, "actor_layers": [128, 128],
             "num_env_steps": 20000, "seed": seed}))
        kept = 18 if ratio else 256
        (run / "summary.json").write_text(json.dumps(
            {"return_mean": ret, "return_std": 1.0, "dense": {"neurons": 256, "weights": 20224, "flops": 40187.0},
             "compact": {"neurons": kept, "weights": 20224 if not ratio else 500, "flops": 1000.0},
             "compact_layers": [14, 4, 5] if ratio else [128, 128, 5], "collision_rate": collision_rate,
             "speed_mean": speed, "eval_length_mean": length}))
    rows = aggregate(load_runs(str(tmp_path))[0])
    table = driving_table(rows, ENV)
    assert "| ppo | 0 | 21.0 (1 seed) | 0.000 (1 seed) | 21.00 (1 seed) | 30.0 (1 seed) | 128-128 | 0.0% |" in table
    assert "| dsp | 0 1 | 19.0 ± 1.4 | 0.200 ± 0.141 | 23.00 ± 1.41 | 27.0 ± 1.4 | 14-4 / 14-4 | 93.0% " \
           "| 97.5% |" in table
    assert "Driving metrics" in results_document(rows, [], "figures", "")
    assert driving_table([dict(r, env="CartPole-v1", collision_rate=None) for r in rows], "CartPole-v1") == ""


def test_export_refuses_a_gif_of_a_task_it_cannot_draw_and_zero_episodes(highway_run, learned_cartpole, tmp_path):
    cartpole, _ = learned_cartpole
    for run, args, message in ((cartpole, ["--gif"], "--gif renders driving tasks only; 'CartPole-v1' is not one"),
                               (highway_run, ["--eval_episodes=0"], "--eval_episodes must be > 0, got 0")):
        r = run_module("tflite_export", f"--root_dir={run}", f"--output_dir={tmp_path / 'out'}", *args)
        assert r.returncode == 2 and last_line(r.stderr) == f"tflite_export: error: {message}"
        assert not (tmp_path / "out").exists()
