"""Students of ``dsp_tf.shrink`` against their teachers: one table per environment, one row per arm.

A tree of students is ``<shrink_dir>/<env>/<arm>_s<seed>/`` (each a run directory with ``teacher`` and
``teacher_return`` in its summary.json); ``superseded/`` is not read. The test return is compared with the
teacher's on the same test episodes; the validation share (the chosen actor's validation return over the
teacher's, held-out episodes) is what a protocol may choose by, never the test return.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
from collections import defaultdict
from typing import Dict, List, Tuple

import numpy as np

from agents.layout import SUMMARY_FILE, SUPERSEDED_DIR
from study.statistics import improvement_probability, iqm_interval

#: Arms in this order first (the proposed method, its ablations, then the baselines); others after, by name.
ORDER = ("dsp", "dsp_per_layer", "dsp_nodistill", "dropout", "small")
RUN = re.compile(r"^(?P<arm>.+)_s(?P<seed>\d+)$")
CSV_FIELDS = ("env", "arm", "seeds", "return_mean", "return_std", "iqm", "iqm_low", "iqm_high", "share_of_teacher",
              "validation_share", "teacher_return", "neurons", "weights", "env_steps", "teacher_env_steps")

Students = Dict[str, Dict[str, List[dict]]]  # env -> arm -> summaries (with "seed")


def load_students(shrink_dir: str) -> Tuple[Students, List[Tuple[str, str]]]:
    """(students by env and arm, [(run dir, why)] of the runs left out: unfinished or unreadable)."""
    students: Students = defaultdict(lambda: defaultdict(list))
    left_out: List[Tuple[str, str]] = []
    for env_dir in sorted(os.listdir(shrink_dir)):
        path = os.path.join(shrink_dir, env_dir)
        if env_dir == SUPERSEDED_DIR or not os.path.isdir(path):
            continue
        for name in sorted(os.listdir(path)):
            match, run = RUN.match(name), os.path.join(path, name)
            if not match or not os.path.isdir(run):
                continue
            try:
                with open(os.path.join(run, SUMMARY_FILE), encoding="utf-8") as f:
                    s = json.load(f)
                s["seed"], s["teacher_return"] = int(match.group("seed")), float(s["teacher_return"])
                env = str(s["env"])
            except FileNotFoundError:
                left_out.append((run, f"not finished (no {SUMMARY_FILE})"))
                continue
            except KeyError as e:
                left_out.append((run, f"not a student of dsp_tf.shrink ({SUMMARY_FILE} has no {e})"))
                continue
            except (OSError, ValueError, TypeError) as e:
                left_out.append((run, f"unreadable {SUMMARY_FILE}: {e!r}"))
                continue
            students[env][match.group("arm")].append(s)
    return students, left_out


def _arms(by_arm: Dict[str, List[dict]]) -> List[str]:
    return [a for a in ORDER if a in by_arm] + sorted(a for a in by_arm if a not in ORDER)


def arm_row(env: str, arm: str, runs: List[dict]) -> Dict[str, object]:
    runs = sorted(runs, key=lambda s: s["seed"])
    r = np.array([s["return_mean"] for s in runs])
    t = np.array([s["teacher_return"] for s in runs])
    v = np.array([s["selection"]["validation_return"] / s["teacher_validation_return"]
                  if s.get("selection") and s.get("teacher_validation_return") else np.nan for s in runs])
    iqm, lo, hi = iqm_interval(r)
    return {"env": env, "arm": arm, "seeds": ",".join(str(s["seed"]) for s in runs), "return_mean": r.mean(),
            "return_std": r.std(ddof=1) if len(r) > 1 else float("nan"), "iqm": iqm, "iqm_low": lo, "iqm_high": hi,
            "share_of_teacher": float(np.nanmean(r / np.where(t > 0, t, np.nan))),
            "validation_share": float(np.nanmean(v)) if np.isfinite(v).any() else float("nan"),
            "teacher_return": t.mean(), "neurons": np.mean([s["compact"]["neurons"] for s in runs]),
            "weights": np.mean([s["compact"]["weights"] for s in runs]),
            "env_steps": runs[0]["env_steps"], "teacher_env_steps": runs[0].get("teacher_env_steps"),
            "hidden": ", ".join("-".join(str(n) for n in s["compact_layers"][:-1]) for s in runs)}


def rows(students: Students) -> List[Dict[str, object]]:
    return [arm_row(env, arm, students[env][arm]) for env in sorted(students) for arm in _arms(students[env])]


def env_table(students: Students, env: str) -> str:
    """The env's Markdown table and, for each DSP arm, rliable's P(arm > other) over paired seeds."""
    lines = ["| student | seeds | test return (mean ± std) | IQM [95% CI] | of the teacher's | validation share | "
             "teacher's return | hidden layers per seed | weights | env steps (teacher's) |", "| --- " * 10 + "|"]
    for row in (arm_row(env, arm, students[env][arm]) for arm in _arms(students[env])):  # this env's only
        steps = f"{row['env_steps']:,}" + (f" ({row['teacher_env_steps']:,})" if row["teacher_env_steps"] else "")
        one = "," not in row["seeds"]  # a single seed is an anecdote, and marked as one
        spread = " (one seed)" if one else f" ± {row['return_std']:.1f}"
        iqm = "—" if one else f"{row['iqm']:.1f} [{row['iqm_low']:.1f}, {row['iqm_high']:.1f}]"
        lines.append(f"| `{row['arm']}` | {row['seeds']} | {row['return_mean']:.1f}{spread} | {iqm} | "
                     f"{100 * row['share_of_teacher']:.1f}% | {100 * row['validation_share']:.1f}% | "
                     f"{row['teacher_return']:.1f} | {row['hidden']} | {row['weights']:.1f} | {steps} |")
    by_arm = students[env]
    probabilities = []
    dsp_arms = [a for a in _arms(by_arm) if a.startswith("dsp")]
    for i, arm in enumerate(dsp_arms):
        mine = {s["seed"]: s["return_mean"] for s in by_arm[arm]}
        for other in (o for o in _arms(by_arm) if o != arm and o not in dsp_arms[:i]):  # each pair once
            theirs = {s["seed"]: s["return_mean"] for s in by_arm[other]}
            seeds = sorted(set(mine) & set(theirs))
            if len(seeds) > 1:
                p, lo, hi = improvement_probability([mine[s] for s in seeds], [theirs[s] for s in seeds])
                probabilities.append(f"P({arm} > {other}) = {p:.2f} [{lo:.2f}, {hi:.2f}]")
    text = "\n".join(lines) + "\n"
    if probabilities:
        text += "\n" + "; ".join(probabilities) + " (seeds both arms have).\n"
    return text


def shrink_csv(students: Students) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows(students):
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, (float, np.floating)) else v) for k, v in row.items()})
    return out.getvalue()


def shrink_section(students: Students, left_out: List[Tuple[str, str]], shrink_dir: str) -> str:
    """The results document's section on shrunk students, generated like the tables above it."""
    parts = ["## Shrinking trained policies (generated from the students)\n",
             f"Students of `dsp_tf.shrink` under `{shrink_dir}`, one per teacher (seed = the teacher's), scored on the "
             "teacher's own test episodes; mean ± sample std over seeds, IQM with a 95% stratified bootstrap interval "
             "(rliable); *validation share*: the chosen actor's validation return over the teacher's on the same "
             "held-out episodes (what a protocol may choose by).\n"]
    for env in sorted(students):
        parts += [f"### {env}\n", env_table(students, env)]
    if left_out:
        parts.append("Students left out:\n")
        parts.append("\n".join(f"- `{d}`: {why}" for d, why in left_out) + "\n")
    return "\n".join(parts)
