"""A short DSP run on CartPole must learn and prune: the whole pipeline working."""
import json

from agents.config import RunConfig
from agents.training import train


def test_short_cartpole_dsp_run_learns_beyond_random_and_prunes_93_percent(tmp_path):
    cfg = RunConfig(env="CartPole-v1", method="dsp", seed=0, num_env_steps=30720, root_dir=str(tmp_path / "run"),
                    num_envs=4, rollout_steps=256, minibatch_size=256, learning_rate=1e-3,
                    reg_strength=1e-4, final_sparsity=0.93, prune_begin=4096, prune_end=20480,
                    prune_frequency=2048, eval_episodes=5, checkpoint_interval=10240)
    summary = train(cfg)
    # A uniformly random CartPole policy averages about 22; greedy PPO here reaches hundreds.
    assert summary["return_mean"] > 150
    assert summary["compact"]["neurons"] <= 0.07 * summary["dense"]["neurons"]
    assert summary["compact"]["weights"] < 0.02 * summary["dense"]["weights"]
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk["return_mean"] == summary["return_mean"]
    assert {"env", "method", "seed", "env_steps", "wall_seconds", "return_mean", "return_std",
            "dense", "compact"} <= set(on_disk)
    assert (tmp_path / "run" / "progress.csv").read_text().startswith("step,return")
    assert list((tmp_path / "run" / "summaries").glob("events.out.tfevents.*"))
