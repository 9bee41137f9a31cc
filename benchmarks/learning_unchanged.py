"""Before/after table: did the fast training path change what training learns?

    python benchmarks/learning_unchanged.py --before=docs/runs/sweep_mujoco/hopper \
        --after=docs/speed_check/hopper

Reads the archived runs (summary.json) of the same flagfiles trained with the
old and the new code, and prints, per method, the final greedy return of each
seed and the mean ± sample std (ddof = 1) over seeds. Wall times are left out:
the old runs ran under different load; benchmarks/throughput.py measures speed.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
from typing import Dict, List, Tuple


def load(tree: str) -> Dict[str, List[Tuple[int, float]]]:
    """method → [(seed, return)] for the ppo and dsp runs under ``tree``."""
    out: Dict[str, List[Tuple[int, float]]] = {}
    for path in sorted(glob.glob(os.path.join(tree, "*", "summary.json"))):
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", required=True)
    args = parser.parse_args()
    before, after = load(args.before), load(args.after)
    print("| method | before: greedy return, mean ± std over seeds (per seed) | after |")
    print("| --- | --- | --- |")
    for method in ("ppo", "dsp"):
        b, a = before.get(method, []), after.get(method, [])
        if not (a and b):
            continue
        print(f"| {method} | {cell(b)} | {cell(a)} |")


if __name__ == "__main__":
    main()
