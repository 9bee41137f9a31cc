"""Issue 43 evidence: each student arm's share of its teachers' test return over Hopper, Walker2d and
LunarLander, and the ranking that sets dsp_tf.shrink's default --recipe and --method (protocol
docs/protocols/2026-12-07-on-policy-distillation-for-shrinking.md: the arm first on the mean share, ties
within 1 point going to the cheaper).

Two scores per arm: on the run's own test episodes (10 on MuJoCo, 20 on LunarLander; what both recipes have)
and on 50 test episodes where student and teacher were evaluated again (the distill arms; study.report_shrink).

    python scripts/distill43_evidence_table.py docs/shrink
"""
import json
import os
import sys
from collections import defaultdict

import numpy as np

from study.report_shrink import load_students

ENVS = ("Hopper-v4", "Walker2d-v4", "LunarLander-v3")
ARMS = ("dsp", "dropout", "small", "dsp_distill", "dropout_distill", "small_distill")


def own_share(shrink_dir: str):
    """(env, arm) -> {seed: the run's own test return over its teacher's on the same episodes}."""
    out = defaultdict(dict)
    for env_dir in os.listdir(shrink_dir):
        for name in os.listdir(os.path.join(shrink_dir, env_dir)):
            path = os.path.join(shrink_dir, env_dir, name, "summary.json")
            if "_s" not in name or not os.path.exists(path):
                continue
            arm, seed = name.rsplit("_s", 1)
            with open(path) as f:
                s = json.load(f)
            out[(s["env"], arm)][int(seed)] = s["return_mean"] / s["teacher_return"]
    return out


def main(shrink_dir: str) -> None:
    own = own_share(shrink_dir)
    students, _ = load_students(shrink_dir)
    print("| arm | env | seeds | own test: share | 50 episodes: share | worst decile share | failure rate |")
    print("|---|---|---|---|---|---|---|")
    ranking = []
    for arm in ARMS:
        means = []
        for env in ENVS:
            runs = students.get(env, {}).get(arm, [])
            shares = own.get((env, arm), {})
            fifty = [s for s in runs if s["test_episodes"] == 50]
            f_share = np.mean([s["return_mean"] / s["teacher_return"] for s in fifty]) if fifty else np.nan
            tail = np.mean([s["return_cvar10"] / s["teacher_return_cvar10"] for s in fifty]) if fifty else np.nan
            fail = np.mean([s["failure_rate"] for s in fifty]) if fifty else np.nan
            print(f"| `{arm}` | {env} | {','.join(map(str, sorted(shares)))} | "
                  f"{100 * np.mean(list(shares.values())):.1f}% | {100 * f_share:.1f}% | {100 * tail:.1f}% | "
                  f"{100 * fail:.1f}% |")
            means.append(f_share if fifty and len(fifty) == len(shares) else np.mean(list(shares.values())))
        ranking.append((float(np.mean(means)), arm))
    print()
    print("Mean share over the three tasks (50 episodes where every student of the arm has them, else the own test):")
    for value, arm in sorted(ranking, reverse=True):
        print(f"- `{arm}`: {100 * value:.1f}%")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/shrink")
