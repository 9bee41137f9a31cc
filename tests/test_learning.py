"""A short DSP run on CartPole must learn and prune: the whole pipeline working."""
import json


def test_short_cartpole_dsp_run_learns_beyond_random_and_prunes_93_percent(learned_cartpole):
    root, summary = learned_cartpole
    # A uniformly random CartPole policy averages about 22; greedy PPO here reaches hundreds.
    assert summary["return_mean"] > 150
    assert summary["compact"]["neurons"] <= 0.07 * summary["dense"]["neurons"]
    assert summary["compact"]["weights"] < 0.02 * summary["dense"]["weights"]
    on_disk = json.loads((root / "summary.json").read_text())
    assert on_disk["return_mean"] == summary["return_mean"]
    assert {"env", "method", "seed", "env_steps", "wall_seconds", "return_mean", "return_std",
            "dense", "compact"} <= set(on_disk)
    assert (root / "progress.csv").read_text().startswith("step,return")
    assert list((root / "summaries").glob("events.out.tfevents.*"))


PLAY = """
import sys, json
import numpy as np, gymnasium
import {loader} as k
policy = k.models.load_model(sys.argv[1], compile=False)
returns = []
for seed in json.loads(sys.argv[2]):
    env = gymnasium.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        action = int(np.argmax(policy(np.asarray(obs, np.float32)[None], training=False)[0]))
        obs, reward, terminated, truncated, _ = env.step(action)
        total, done = total + reward, terminated or truncated
    returns.append(total)
assert "dsp_tf" not in sys.modules and "agents" not in sys.modules
print(json.dumps(returns))
"""


def test_the_policy_file_plays_without_the_project(learned_cartpole, tmp_path):
    """policy.h5 is what a colleague is handed: raw observations in, and Keras alone (tf_keras, or TF 2.15's
    own tf.keras) plays the run's test episodes with it, scoring what the run scored."""
    import subprocess
    import sys

    from agents.evaluation import final_test_seeds

    root, summary = learned_cartpole
    seeds = final_test_seeds(summary["seed"], summary["eval_episodes"])
    for loader in ("tf_keras", "tensorflow.keras"):
        script = tmp_path / "play.py"
        script.write_text(PLAY.format(loader=loader) if loader == "tf_keras"
                          else PLAY.replace("import {loader} as k", "import tensorflow as tf\nk = tf.keras"))
        played = subprocess.run([sys.executable, str(script), str(root / "policy.h5"), json.dumps(seeds)],
                                cwd=tmp_path, capture_output=True, text=True, timeout=300,
                                env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"})
        assert played.returncode == 0, played.stderr[-2000:]
        returns = json.loads(played.stdout.strip().splitlines()[-1])
        assert returns == summary["eval_returns"], loader
