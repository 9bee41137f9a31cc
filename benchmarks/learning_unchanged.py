"""Before/after table: did the fast training path change what training learns?

    python benchmarks/learning_unchanged.py --before=docs/runs/sweep_mujoco/hopper \
        --after=docs/speed_check/hopper

Reads the archived runs (summary.json) of the same flagfiles trained with the
old and the new code, and prints, per method, the final greedy return of each
seed, the mean ± sample std (ddof = 1) over seeds, and the difference of the
means with its Welch t and a 95% bootstrap interval (10,000 resamples of the
seeds of each side, seed 0). Wall times are left out:
the old runs ran under different load; benchmarks/throughput.py measures speed.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
from typing import Dict, List, Tuple

import numpy as np

from agents.layout import SUMMARY_FILE


def load(tree: str) -> Dict[str, List[Tuple[int, float]]]:
    """method → [(seed, return)] for the ppo and dsp runs under ``tree``."""
    out: Dict[str, List[Tuple[int, float]]] = {}
    for path in sorted(glob.glob(os.path.join(tree, "*", SUMMARY_FILE))):
        with open(path, encoding="utf-8") as f:
            s = json.load(f)
        if s["method"] in ("ppo", "dsp"):
            out.setdefault(s["method"], []).append((s["seed"], s["return_mean"]))
    return out


def cell(rows: List[Tuple[int, float]]) -> str:
    returns = [r for _, r in rows]
    spread = f" ± {statistics.stdev(returns):.0f}" if len(returns) > 1 else " (one seed: an anecdote)"
    per_seed = ", ".join(f"s{seed} {r:.0f}" for seed, r in sorted(rows))
    return f"{statistics.mean(returns):.0f}{spread} ({per_seed})"


def difference(before: List[float], after: List[float]) -> str:
    diff = statistics.mean(after) - statistics.mean(before)
    se = (statistics.variance(before) / len(before) + statistics.variance(after) / len(after)) ** 0.5
    rng = np.random.default_rng(0)
    boot = [rng.choice(after, len(after)).mean() - rng.choice(before, len(before)).mean() for _ in range(10_000)]
    low, high = np.percentile(boot, [2.5, 97.5])
    return f"{diff:+.0f} (Welch t {diff / se:+.2f}; 95% CI {low:+.0f} … {high:+.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", required=True)
    args = parser.parse_args()
    before, after = load(args.before), load(args.after)
    print("| method | before: greedy return, mean ± std over seeds (per seed) | after | after − before |")
    print("| --- | --- | --- | --- |")
    for method in ("ppo", "dsp"):
        b, a = before.get(method, []), after.get(method, [])
        if not (a and b):
            continue
        diff = difference([r for _, r in b], [r for _, r in a]) if min(len(a), len(b)) > 1 else "—"
        print(f"| {method} | {cell(b)} | {cell(a)} | {diff} |")


if __name__ == "__main__":
    main()
