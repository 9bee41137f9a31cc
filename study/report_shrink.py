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
from typing import Dict, List, Optional, Tuple

import numpy as np

from agents.layout import EVALUATION_FILE, SUMMARY_FILE, SUPERSEDED_DIR
from agents.tails import cvar10, failure_rate
from agents.teacher import identify
from study.report_markdown import left_out_list
from study.statistics import improvement_probability, iqm_interval

#: Arms in this order first (the proposed method, its ablations, then the baselines, for each recipe);
#: others after, by name. An arm's recipe is its name's suffix (``_distill``: --recipe=distill).
ORDER = ("dsp", "dsp_per_layer", "dsp_nodistill", "dropout", "small", "dsp_distill", "dropout_distill",
         "small_distill")
RECIPE_SUFFIXES = ("_distill",)
RUN = re.compile(r"^(?P<arm>.+)_s(?P<seed>\d+)$")
CSV_FIELDS = ("env", "arm", "seeds", "return_mean", "return_std", "iqm", "iqm_low", "iqm_high", "share_of_teacher",
              "validation_share", "cvar10_share_of_teacher", "failure_rate", "teacher_return", "neurons", "weights",
              "env_steps", "gradient_steps", "teacher_env_steps")

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
            rescored = rescored_test(run, s)
            if rescored is not None:  # the longer test of student and teacher replaces the run's own
                s.update(rescored)
            s["test_episodes"] = len(s.get("eval_returns") or []) or int(s.get("eval_episodes") or 0)
            students[env][match.group("arm")].append(s)
    return students, left_out


def _json(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def rescored_test(run: str, s: dict) -> Optional[dict]:
    """A student's and its teacher's scores on more test episodes than the run played, from
    ``python -m dsp_tf.evaluate --eval_episodes=N`` beside each one's summary.json (issue 43: 50 episodes
    where the students inherited their teachers' 10): summary.json's test fields recomputed on those, or
    None unless both have them on the same seeds and the teacher found at the recorded path is the one the
    student learnt from (the SHA-256 of its summary.json)."""
    try:
        mine = _json(os.path.join(run, EVALUATION_FILE))
        source = s["teacher_source"]
        teacher = os.path.normpath(os.path.join(run, source["path"]))
        if identify(teacher)["sha256"] != source["sha256"]:
            return None
        theirs = _json(os.path.join(teacher, EVALUATION_FILE))
        if mine["seeds"] != theirs["seeds"] or len(mine["returns"]) <= len(s.get("eval_returns") or []):
            return None
        student, teacher_returns = mine["returns"], theirs["returns"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {"return_mean": float(np.mean(student)), "eval_returns": student, "return_cvar10": cvar10(student),
            "teacher_return": float(np.mean(teacher_returns)), "teacher_return_cvar10": cvar10(teacher_returns),
            "failure_rate": failure_rate(student, teacher_returns)}


def _arms(by_arm: Dict[str, List[dict]]) -> List[str]:
    return [a for a in ORDER if a in by_arm] + sorted(a for a in by_arm if a not in ORDER)


def arm_row(env: str, arm: str, runs: List[dict]) -> Dict[str, object]:
    runs = sorted(runs, key=lambda s: s["seed"])
    r = np.array([s["return_mean"] for s in runs])
    t = np.array([s["teacher_return"] for s in runs])
    v = np.array([s["selection"]["validation_return"] / s["teacher_validation_return"]
                  if s.get("selection") and s.get("teacher_validation_return") else np.nan for s in runs])
    tails = [s["return_cvar10"] / s["teacher_return_cvar10"] for s in runs  # students since issue 43 only
             if s.get("return_cvar10") is not None and s.get("teacher_return_cvar10", 0) > 0]
    failures = [s["failure_rate"] for s in runs if s.get("failure_rate") is not None]
    iqm, lo, hi = iqm_interval(r)
    return {"env": env, "arm": arm, "seeds": ",".join(str(s["seed"]) for s in runs), "return_mean": r.mean(),
            "return_std": r.std(ddof=1) if len(r) > 1 else float("nan"), "iqm": iqm, "iqm_low": lo, "iqm_high": hi,
            "share_of_teacher": float(np.nanmean(r / np.where(t > 0, t, np.nan))),
            "validation_share": float(np.nanmean(v)) if np.isfinite(v).any() else float("nan"),
            "cvar10_share_of_teacher": float(np.mean(tails)) if len(tails) == len(runs) else float("nan"),
            "failure_rate": float(np.mean(failures)) if len(failures) == len(runs) else float("nan"),
            "gradient_steps": runs[0].get("gradient_steps"),
            "test_episodes": "/".join(str(n) if n else "?" for n in sorted({s["test_episodes"] for s in runs})),
            "teacher_return": t.mean(), "neurons": np.mean([s["compact"]["neurons"] for s in runs]),
            "weights": np.mean([s["compact"]["weights"] for s in runs]),
            "env_steps": runs[0]["env_steps"], "teacher_env_steps": runs[0].get("teacher_env_steps"),
            "hidden": ", ".join("-".join(str(n) for n in s["compact_layers"][:-1]) for s in runs)}


def rows(students: Students) -> List[Dict[str, object]]:
    return [arm_row(env, arm, students[env][arm]) for env in sorted(students) for arm in _arms(students[env])]


def recipe(arm: str) -> str:
    """The recipe an arm's students were trained with, from its name (RECIPE_SUFFIXES; else ppo_kl)."""
    return next((suffix[1:] for suffix in RECIPE_SUFFIXES if arm.endswith(suffix)), "ppo_kl")


def _percent(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{100 * value:.1f}%"


def env_table(students: Students, env: str) -> str:
    """The env's Markdown table and, for each DSP arm, rliable's P(arm > other) over paired seeds, against
    the arms of the same recipe."""
    lines = ["| student | seeds | test return (mean ± std) | IQM [95% CI] | of the teacher's | worst decile, of the "
             "teacher's | failure rate | validation share | teacher's return | hidden layers per seed | weights | "
             "env steps (teacher's) / gradient steps | test episodes |", "| --- " * 13 + "|"]
    for row in (arm_row(env, arm, students[env][arm]) for arm in _arms(students[env])):  # this env's only
        steps = f"{row['env_steps']:,}" + (f" ({row['teacher_env_steps']:,})" if row["teacher_env_steps"] else "")
        steps += f" / {row['gradient_steps']:,}" if row["gradient_steps"] else ""
        one = "," not in row["seeds"]  # a single seed is an anecdote, and marked as one
        spread = " (one seed)" if one else f" ± {row['return_std']:.1f}"
        iqm = "—" if one else f"{row['iqm']:.1f} [{row['iqm_low']:.1f}, {row['iqm_high']:.1f}]"
        lines.append(f"| `{row['arm']}` | {row['seeds']} | {row['return_mean']:.1f}{spread} | {iqm} | "
                     f"{_percent(row['share_of_teacher'])} | {_percent(row['cvar10_share_of_teacher'])} | "
                     f"{_percent(row['failure_rate'])} | {_percent(row['validation_share'])} | "
                     f"{row['teacher_return']:.1f} | {row['hidden']} | {row['weights']:.1f} | {steps} | "
                     f"{row['test_episodes']} |")
    by_arm = students[env]
    probabilities = []
    dsp_arms = [a for a in _arms(by_arm) if a.startswith("dsp")]
    for i, arm in enumerate(dsp_arms):
        mine = {s["seed"]: s["return_mean"] for s in by_arm[arm]}
        for other in (o for o in _arms(by_arm) if o != arm and o not in dsp_arms[:i] and recipe(o) == recipe(arm)):
            theirs = {s["seed"]: s["return_mean"] for s in by_arm[other]}
            seeds = sorted(set(mine) & set(theirs))
            if len(seeds) > 1:
                p, lo, hi = improvement_probability([mine[s] for s in seeds], [theirs[s] for s in seeds])
                probabilities.append(f"P({arm} > {other}) = {p:.2f} [{lo:.2f}, {hi:.2f}]")
    text = "\n".join(lines) + "\n"
    if probabilities:
        text += "\n" + "; ".join(probabilities) + " (seeds both arms have).\n"
    return text


def selection_gap(runs: List[dict]) -> Tuple[float, float]:
    """(best-of-N validation, confirmed score) of the chosen actors over their own test return, minus 1,
    averaged over students: how far the score that chose an actor flattered it. NaN where no student has
    it (the confirmed score exists only for students run with --confirm_top)."""
    raw = [s["selection"]["validation_return"] / s["return_mean"] - 1 for s in runs
           if s.get("selection") and s["return_mean"] > 0]
    confirmed = []
    for s in runs:
        confirmation = (s.get("selection") or {}).get("confirmation")
        if confirmation and s["return_mean"] > 0:
            chosen = confirmation["candidates"][confirmation["chosen_rank"] - 1]
            confirmed.append(chosen["confirmation_return"] / s["return_mean"] - 1)
    return (float(np.mean(raw)) if raw else float("nan"),
            float(np.mean(confirmed)) if confirmed else float("nan"))


def selection_gap_table(students: Students) -> str:
    """Per env and recipe: how far the chosen actor's best-of-N validation return, and its confirmed
    return, sat above its test return."""
    lines = ["| env | recipe | students | best-of-N validation over test | confirmed over test |",
             "| --- " * 5 + "|"]
    for env in sorted(students):
        by_recipe: Dict[str, List[dict]] = defaultdict(list)
        for arm, runs in students[env].items():
            by_recipe[recipe(arm)] += runs
        for name in sorted(by_recipe):
            raw, confirmed = selection_gap(by_recipe[name])
            lines.append(f"| {env} | `{name}` | {len(by_recipe[name])} | {100 * raw:+.1f}% | "
                         + ("—" if not np.isfinite(confirmed) else f"{100 * confirmed:+.1f}%") + " |")
    return "\n".join(lines) + "\n"


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
             "(rliable); *worst decile*: the student's mean over its worst 10% of test episodes over the teacher's "
             "(CVaR 10%), and *failure rate*: the share of test episodes below half the teacher's median, both recorded "
             "since issue 43 (— before); *validation share*: the chosen actor's validation return over the "
             "teacher's on the same held-out episodes (what a protocol may choose by). Arms ending in `_distill` were "
             "trained with `--recipe=distill`, the others with `--recipe=ppo_kl`; P(a > b) compares arms of one recipe."
             "\n"]
    for env in sorted(students):
        parts += [f"### {env}\n", env_table(students, env)]
    parts += ["### How far the score that chose an actor sat above its test return\n",
              "The best-of-N validation return (the best of the periodic five-episode validations) flatters the "
              "actor it picks (winner's curse); students run with `--confirm_top` re-evaluate the best few on fresh "
              "episodes and ship the best of those (*confirmed*). Mean over students of score / test return − 1:\n",
              selection_gap_table(students)]
    parts += left_out_list("Students left out:\n", left_out)
    return "\n".join(parts)
