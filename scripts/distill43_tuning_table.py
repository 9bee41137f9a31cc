"""The tuning score of issue 43's protocol (docs/protocols/2026-12-07-on-policy-distillation-for-shrinking.md):
each archived tuning student's confirmed return over its teacher's on the same confirmation episodes.

    python scripts/distill43_tuning_table.py docs/tuning/distill43

Reads only validation-side numbers (the confirmation episodes, apart from the test's); prints a Markdown
table per arm: the confirmed share per (environment, seed) and its mean, the student's env and gradient
steps. A run without a confirmation record is named, not dropped.
"""
from __future__ import annotations

import glob
import json
import os
import sys
from collections import defaultdict
from typing import Dict, List

from agents.evaluation import confirm_seeds, mean_return
from agents.inference import inference_model
from agents.teacher import load_teacher


def main(archive: str) -> None:
    teachers: Dict[tuple, float] = {}
    shares: Dict[str, Dict[str, float]] = defaultdict(dict)
    steps: Dict[str, List[str]] = defaultdict(list)
    for summary_path in sorted(glob.glob(os.path.join(archive, "*", "*", "summary.json"))):
        run = os.path.dirname(summary_path)
        env_slug, name = run.split(os.sep)[-2:]
        arm, seed = name.rsplit("_s", 1)
        with open(summary_path, encoding="utf-8") as f:
            summary = json.load(f)
        with open(os.path.join(run, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
        confirmation = summary.get("selection", {}).get("confirmation")
        if not confirmation:
            print(f"left out {run}: no confirmation record", file=sys.stderr)
            continue
        chosen = confirmation["candidates"][confirmation["chosen_rank"]]["confirmation_return"]
        key = (config["teacher"], config["seed"], confirmation["episodes"])
        if key not in teachers:
            teacher = load_teacher(config["teacher"], config["env"])
            teachers[key] = mean_return(inference_model(teacher.mlp, teacher.meta), config["env"],
                                        confirm_seeds(config["seed"], confirmation["episodes"]),
                                        teacher.meta.discrete)
        shares[arm][f"{env_slug} s{seed}"] = 100.0 * chosen / teachers[key]
        steps[arm].append(f"{summary['env_steps']:,} env / {summary.get('gradient_steps', '—')} gradient")
    columns = sorted({c for per_arm in shares.values() for c in per_arm})
    print("| arm | " + " | ".join(columns) + " | mean | student steps (first run) |")
    print("|---" * (len(columns) + 3) + "|")
    for arm in sorted(shares, key=lambda a: -sum(shares[a].values()) / len(shares[a])):
        per = shares[arm]
        mean = sum(per.values()) / len(per)
        cells = [f"{per[c]:.1f}%" if c in per else "—" for c in columns]
        print(f"| `{arm}` | " + " | ".join(cells) + f" | {mean:.1f}% ({len(per)} of {len(columns)}) | {steps[arm][0]} |")


if __name__ == "__main__":
    main(sys.argv[1])
