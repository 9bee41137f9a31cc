"""Training throughput of dense PPO vs DSP-PPO on Hopper-v4, in one process.

    python benchmarks/throughput.py [--env_steps=40960] [--repeats=2]

Both runs use the same PPO schedule (2048-step rollouts, 10 epochs of 64-sample
minibatches, 128x128 actor and critic). Each is timed end to end (collection,
advantages, updates, mask updates, logging, checkpoints) after one warm-up
iteration that traces the graphs; runs alternate so background load hits both
alike. Writes benchmarks/results/throughput.{json,md}. Not a test: it measures.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import statistics
import tempfile
import time

from agents.config import RunConfig
from agents.training import train

HERE = os.path.dirname(os.path.abspath(__file__))


def run_once(method: str, env_steps: int, root: str) -> dict:
    cfg = RunConfig(env="Hopper-v4", method=method, seed=0, num_env_steps=env_steps, root_dir=root,
                    num_envs=1, rollout_steps=2048, num_epochs=10, minibatch_size=64,
                    prune_begin=2048, prune_end=max(4096, env_steps - 2048), prune_frequency=2048,
                    reg_strength=1e-5, eval_episodes=1, checkpoint_interval=env_steps)
    t0 = time.perf_counter()
    train(cfg)
    wall = time.perf_counter() - t0
    with open(os.path.join(root, "progress.csv"), encoding="utf-8") as f:
        rates = [float(r["steps_per_second"]) for r in csv.DictReader(f)][1:]  # drop the tracing iteration
    # Steady-state rate: env steps over the summed per-iteration times (harmonic mean).
    steady = len(rates) * 2048 / sum(2048 / r for r in rates)
    return {"wall_seconds": wall, "steady_steps_per_second": steady, "iterations_timed": len(rates)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env_steps", type=int, default=40960)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    results = {"ppo": [], "dsp": []}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for method in ("ppo", "dsp"):
                results[method].append(run_once(method, args.env_steps, os.path.join(tmp, f"{method}{rep}")))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    summary = {m: {"steady_steps_per_second": statistics.median(r["steady_steps_per_second"] for r in runs),
                   "wall_seconds": statistics.median(r["wall_seconds"] for r in runs), "runs": runs}
               for m, runs in results.items()}
    ratio = (1 / summary["dsp"]["steady_steps_per_second"]) / (1 / summary["ppo"]["steady_steps_per_second"])
    report = {"env": "Hopper-v4", "env_steps_per_run": args.env_steps, "repeats": args.repeats,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
              "load_average_at_end": os.getloadavg(), "peak_rss_mb": peak_mb, **summary,
              "dsp_over_dense_time_per_step": ratio,
              "reference_pytorch_ppo_steps_per_second": 900}
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "throughput.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    md = (f"| method | env-steps/s (steady) | wall s per {args.env_steps} steps |\n|---|---|---|\n"
          f"| dense PPO | {summary['ppo']['steady_steps_per_second']:.0f} | {summary['ppo']['wall_seconds']:.1f} |\n"
          f"| DSP-PPO | {summary['dsp']['steady_steps_per_second']:.0f} | {summary['dsp']['wall_seconds']:.1f} |\n\n"
          f"DSP/dense time per env step: {ratio:.3f}. Peak RSS of the process: {peak_mb:.0f} MB. "
          f"Load average at the end: {os.getloadavg()[0]:.2f}.\n")
    with open(os.path.join(HERE, "results", "throughput.md"), "w", encoding="utf-8") as f:
        f.write(md)
    print(md)


if __name__ == "__main__":
    main()
