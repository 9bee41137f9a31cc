"""The shrink protocol's table (docs/RESULTS_preamble.md, "Shrinking a trained policy"): one row per arm.

    python scripts/shrink_table.py docs/shrink/cartpole

Reads <dir>/<arm>_s<seed>/summary.json (students of dsp_tf.shrink with --final_sparsity) and prints
a Markdown table: the student's greedy test return (mean ± sample std over seeds, IQM with its 95%
bootstrap CI), its share of the teacher's return on the same episodes, its size and env steps
beside the teacher's, then P(dsp > X) for every other arm. A run without summary.json is named.
"""
from __future__ import annotations

import glob
import json
import os
import re
import sys
from collections import defaultdict
from typing import Dict, List

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from dsp_cli.statistics import improvement_probability, iqm_interval  # noqa: E402

ORDER = ("dsp", "dsp_nodistill", "dropout", "small")
RUN = re.compile(r"^(?P<arm>.+)_s(?P<seed>\d+)$")


def load(root: str) -> Dict[str, List[dict]]:
    arms: Dict[str, List[dict]] = defaultdict(list)
    for path in sorted(glob.glob(os.path.join(root, "*"))):
        match = RUN.match(os.path.basename(path))
        if not match or not os.path.isdir(path):
            continue
        summary = os.path.join(path, "summary.json")
        if not os.path.exists(summary):
            print(f"not finished (no summary.json): {path}", file=sys.stderr)
            continue
        with open(summary, encoding="utf-8") as f:
            s = json.load(f)
        s["seed"] = int(match.group("seed"))
        arms[match.group("arm")].append(s)
    return arms


def table(arms: Dict[str, List[dict]]) -> str:
    names = [a for a in ORDER if a in arms] + sorted(a for a in arms if a not in ORDER)
    rows = ["| student | seeds | test return (mean ± std) | IQM [95% CI] | of the teacher's | teacher's return | "
            "neurons | weights | env steps (teacher's) |", "| --- " * 9 + "|"]
    for name in names:
        runs = sorted(arms[name], key=lambda s: s["seed"])
        r = np.array([s["return_mean"] for s in runs])
        t = np.array([s["teacher_return"] for s in runs])
        iqm, lo, hi = iqm_interval(r)
        share = r / np.where(t > 0, t, np.nan)
        std = r.std(ddof=1) if len(r) > 1 else float("nan")
        rows.append(f"| `{name}` | {','.join(str(s['seed']) for s in runs)} | {r.mean():.1f} ± {std:.1f} | "
                    f"{iqm:.1f} [{lo:.1f}, {hi:.1f}] | {100 * np.nanmean(share):.1f}% | {t.mean():.1f} | "
                    f"{np.mean([s['compact']['neurons'] for s in runs]):.1f} | "
                    f"{np.mean([s['compact']['weights'] for s in runs]):.1f} | "
                    f"{runs[0]['env_steps']:,} ({runs[0]['teacher_env_steps']:,}) |")
    lines = ["\n".join(rows), ""]
    if "dsp" in arms:
        dsp = [s["return_mean"] for s in sorted(arms["dsp"], key=lambda s: s["seed"])]
        for name in names:
            if name != "dsp":
                other = [s["return_mean"] for s in sorted(arms[name], key=lambda s: s["seed"])]
                p, lo, hi = improvement_probability(dsp, other)
                lines.append(f"- P(dsp > {name}) = {p:.2f} [{lo:.2f}, {hi:.2f}]")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        print("usage: python scripts/shrink_table.py <directory of <arm>_s<seed> student runs>", file=sys.stderr)
        sys.exit(2)
    print(table(load(sys.argv[1])))
