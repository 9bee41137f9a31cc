"""The scores of shrink tuning students, without their test returns (docs/protocols/2026-12-03-shrinking-a-trained-policy.md, "Tuning the
student's recipe on Walker2d"): a protocol that chooses on validation and training returns must not
print the test episodes next to them.

    python scripts/shrink_tuning_scores.py docs/shrink_tuning/walker2d
"""
import glob
import json
import math
import os
import statistics
import sys

from study.report_runs import training_score


def _json(run_dir: str, name: str) -> dict:
    with open(os.path.join(run_dir, name), encoding="utf-8") as f:
        return json.load(f)


def scores(run_dir: str):
    s = _json(run_dir, "summary.json")
    noise = [math.exp(x) for x in _json(run_dir, "actor_meta.json").get("action_log_std") or []]
    share = s["selection"]["validation_return"] / s["teacher_validation_return"]
    train = training_score({"dir": run_dir, "config": _json(run_dir, "config.json")})
    return share, train, s["compact_layers"][:-1], noise


def main(root: str) -> None:
    arms = {}
    for d in sorted(glob.glob(os.path.join(root, "*_s*"))):
        if not os.path.exists(os.path.join(d, "summary.json")):
            print(f"not finished, left out: {d}")
            continue
        arm, seed = os.path.basename(d).rsplit("_s", 1)
        arms.setdefault(arm, []).append((seed, *scores(d)))
    print("| arm | validation share per seed (mean) | training return, last 10% | hidden layers | action noise σ |")
    print("| --- | --- | --- | --- | --- |")
    for arm, v in arms.items():
        shares = " / ".join(f"{100 * x[1]:.1f}%" for x in v)
        noise = [n for x in v for n in x[4]]
        print(f"| {arm} | {shares} ({100 * statistics.mean(x[1] for x in v):.1f}%) | "
              f"{' / '.join(f'{x[2]:.1f}' for x in v)} | {', '.join(sorted({'-'.join(map(str, x[3])) for x in v}))} | "
              f"{f'{min(noise):.2f}–{max(noise):.2f}' if noise else '—'} |")


if __name__ == "__main__":
    main(sys.argv[1])
