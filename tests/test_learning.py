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
