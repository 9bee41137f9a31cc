"""How well each size-search judge predicts a rung's test return (docs/protocols/2026-12-03-shrinking-a-trained-policy.md, "A judge of its own
for the size search"): per rung the validation share (the old judge), the judged share (the new one) and
the test share, and per judge the mean absolute gap to the test share over every rung.

    python scripts/ladder_judge_table.py docs/ladder_judge
"""
import glob
import json
import os
import statistics
import sys


def _json(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def rows(ladder_dir: str):
    """One row per trained rung: (ratio, neurons, weights, validation, judged, test share, kept)."""
    record = _json(os.path.join(ladder_dir, "shrink.json"))
    for rung in record["ladder"]:
        s = _json(os.path.join(ladder_dir, rung["run"], "summary.json"))
        yield (rung["ratio"], rung["neurons"], rung["weights"],
               s["selection"]["validation_return"] / s["teacher_validation_return"],
               rung["judged_return"] / record["teacher_judged_return"],
               s["return_mean"] / s["teacher_return"], rung["kept"]), record["chosen_ratio"]


def main(root: str) -> None:
    gaps = {"validation": [], "judged": []}
    print("| teacher | ratio | neurons | weights | validation share | judged share | test share | kept |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for ladder_dir in sorted(glob.glob(os.path.join(root, "*"))):
        if not os.path.exists(os.path.join(ladder_dir, "shrink.json")):
            print(f"(no shrink.json, not a finished ladder: {ladder_dir})", file=sys.stderr)
            continue
        chosen = None
        for (ratio, neurons, weights, val, judged, test, kept), chosen in rows(ladder_dir):
            gaps["validation"].append(abs(val - test))
            gaps["judged"].append(abs(judged - test))
            print(f"| {os.path.basename(ladder_dir)} | {ratio} | {neurons} | {weights} | {100 * val:.1f}% | "
                  f"{100 * judged:.1f}% | {100 * test:.1f}% | {'yes' if kept else 'no'} |")
        print(f"| {os.path.basename(ladder_dir)} | chosen: {chosen} | | | | | | |")
    for judge, values in gaps.items():
        print(f"mean |{judge} share − test share| over {len(values)} rungs: "
              f"{100 * statistics.mean(values):.1f} points")


if __name__ == "__main__":
    main(sys.argv[1])
