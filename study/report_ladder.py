"""Size searches of ``dsp_tf.shrink --keep`` against their teachers: one row per search.

A tree of searches is ``<ladder_dir>/<name>/`` (each a search's root: ``shrink.json`` with its ladder, and the
chosen student's run files beside it; ``superseded/`` is not read). What a search promises is read from its
judge (``--judge_episodes`` of its own); what it delivers, from the chosen student's test episodes against its
teacher's on the same episodes, so the row shows both, and the worst decile where the run recorded it.
"""
from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Tuple

from agents.config import LEGACY_DEFAULTS
from agents.layout import SHRINK_FILE, SUMMARY_FILE, SUPERSEDED_DIR
from dsp_cli.shrink import SEARCH_LEGACY
from study.report_markdown import left_out_list

Search = Dict[str, object]


def _json(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_searches(ladder_dir: str) -> Tuple[List[Search], List[Tuple[str, str]]]:
    """(one row per finished search, [(search dir, why)] of those left out: unfinished or unreadable)."""
    searches: List[Search] = []
    left_out: List[Tuple[str, str]] = []
    for name in sorted(os.listdir(ladder_dir)):
        root = os.path.join(ladder_dir, name)
        if name == SUPERSEDED_DIR or not os.path.isdir(root):
            continue
        try:
            record = _json(os.path.join(root, SHRINK_FILE))
            chosen = record["chosen_ratio"]
            summary = _json(os.path.join(root, SUMMARY_FILE)) if chosen is not None else None
            searches.append(search_row(name, record, summary))
        except FileNotFoundError as e:
            left_out.append((root, f"not finished (no {os.path.basename(str(e.filename))})"))
        except (OSError, ValueError, KeyError, TypeError) as e:
            left_out.append((root, f"unreadable: {e!r}"))
    return searches, left_out


def _share(value: Optional[float], of: Optional[float]) -> Optional[float]:
    """A share of the teacher's score means something only for a positive score (as in report_shrink)."""
    return None if value is None or of is None or float(of) <= 0 else float(value) / float(of)


def search_row(name: str, record: dict, summary: Optional[dict]) -> Search:
    """The search's settings and ladder, and (if it chose a ratio) its chosen student's test against the
    teacher's on the same test episodes."""
    rungs = sorted(((float(r["ratio"]), bool(r["kept"])) for r in record["ladder"]))
    # A search from before its own judge has no judge_episodes: it judged on its rungs' validation episodes.
    row: Search = {"name": name, "keep": float(record["keep"]), "rungs": rungs, "chosen_ratio": record["chosen_ratio"],
                   "keep_on": record.get("keep_on", SEARCH_LEGACY["keep_on"]),
                   "judge_episodes": record.get("judge_episodes")}
    if summary is not None:
        row.update({
            "method": summary["method"], "recipe": summary.get("recipe", LEGACY_DEFAULTS["recipe"]),
            "layers": summary["compact_layers"][:-1],  # the last is the output
            "weights": summary["compact"]["weights"], "test_episodes": len(summary["eval_returns"]),
            "return_mean": summary["return_mean"], "teacher_return": summary["teacher_return"],
            "mean_share": _share(summary["return_mean"], summary["teacher_return"]),
            "cvar10_share": _share(summary.get("return_cvar10"), summary.get("teacher_return_cvar10"))})
    return row


def _pct(value: Optional[float]) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def ladder_table(searches: List[Search]) -> str:
    lines = ["| search | method, recipe | --keep (judge) | rungs (ratio: kept ✓ / below ✗) | chosen | hidden layers | "
             "weights | test return (teacher) | mean share | worst-decile share | test episodes |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in searches:
        rungs = ", ".join(f"{r:g} {'✓' if kept else '✗'}" for r, kept in s["rungs"])
        judge = "validation" if s["judge_episodes"] is None else f"{s['judge_episodes']} episodes"
        keep = f"{s['keep']:g}" + ("" if s["keep_on"] == "mean" else f" on {s['keep_on']}") + f" ({judge})"
        if s["chosen_ratio"] is None:
            lines.append(f"| `{s['name']}` | — | {keep} | {rungs} | nothing kept | — | — | — | — | — | — |")
            continue
        lines.append(f"| `{s['name']}` | {s['method']}, {s['recipe']} | {keep} | {rungs} | {s['chosen_ratio']:g} | "
                     f"{'-'.join(map(str, s['layers']))} | {s['weights']:,} | {s['return_mean']:.1f} "
                     f"({s['teacher_return']:.1f}) | {_pct(s['mean_share'])} | {_pct(s['cvar10_share'])} | "
                     f"{s['test_episodes']} |")
    return "\n".join(lines) + "\n"


def ladder_section(searches: List[Search], left_out: List[Tuple[str, str]], ladder_dir: str) -> str:
    """The results document's section on size searches, generated like the tables above it."""
    parts = ["## Size searches (generated from the searches)\n",
             f"Searches of `dsp_tf.shrink --keep` under `{ladder_dir}`, each an anecdote (one search of one teacher). A "
             "rung is *kept* when its shipped actor keeps `--keep` of the teacher's score on the judge's episodes (the "
             "search's own, or for older searches the rungs' validation episodes); "
             "the chosen student (the largest ratio kept) is then scored on its test episodes, against its teacher on "
             "the same episodes: *mean share* and *worst-decile share* (CVaR 10%, — where the run did not record "
             "it). Their protocols say how each search was run.\n",
             ladder_table(searches)]
    parts += left_out_list("Searches left out:\n", left_out)
    return "\n".join(parts)
