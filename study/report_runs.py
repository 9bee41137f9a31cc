"""The report's data: finished runs read, grouped into cells of seeds, and each method's headline cell.

Kept apart from the figures and the Markdown so that what a number is (which
runs a cell holds, which cell a method is judged by) is decided in one place
and both outputs read the same rows.
"""
from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from agents.config import LEGACY_DEFAULTS, from_dict
from agents.envs import env_slug
from dsp_cli.flagfiles import env_flagfile
from agents.layout import CONFIG_FILE, PROGRESS_FILE, SUMMARY_FILE, SUPERSEDED_DIR
from study.archive import finished_runs
from dsp_cli.shipped import shipped_ranking, shipped_reg_strength
from dsp_tf.errors import UsageError
from dsp_tf.methods import DEFAULT_RANKING, METHOD_NAMES, get_method

METHOD_ORDER = list(METHOD_NAMES)


PENALIZED = [m for m in METHOD_ORDER if get_method(m).penalized]


PRUNING = [m for m in METHOD_ORDER if get_method(m).prunes]


RANKED = [m for m in METHOD_ORDER if get_method(m).ranks_neurons]


#: What the report reads from each run; a run missing any of it is named and left out.
SUMMARY_KEYS = ("return_mean", "return_std", "dense", "compact", "compact_layers")


CONFIG_KEYS = ("env", "method", "seed", "reg_strength", "final_sparsity", "actor_layers", "num_env_steps")


SIZE_KEYS = ("neurons", "weights", "flops")


#: summary.json's driving metrics (agents.evaluation), averaged over seeds where every run has them.
DRIVING_KEYS = ("collision_rate", "speed_mean", "eval_length_mean")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _read_run(run_dir: str) -> Dict:
    """One run's summary and config, or ValueError saying what is wrong with them."""
    parts = {}
    for name, keys in ((SUMMARY_FILE, SUMMARY_KEYS), (CONFIG_FILE, CONFIG_KEYS)):
        try:
            with open(os.path.join(run_dir, name), encoding="utf-8") as f:
                data = json.load(f)
        except OSError as e:
            raise ValueError(f"cannot read {name}: {e.strerror}") from None
        except ValueError as e:
            raise ValueError(f"{name} is not valid JSON ({e})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{name} is not a JSON object")
        missing = [k for k in keys if k not in data]
        if missing:
            raise ValueError(f"{name} lacks {', '.join(missing)}")
        parts[name] = data
    summary, config = parts[SUMMARY_FILE], parts[CONFIG_FILE]
    for size in ("dense", "compact"):
        entry = summary[size]
        if not isinstance(entry, dict) or not all(_is_number(entry.get(k)) for k in SIZE_KEYS):
            raise ValueError(f"summary.json's '{size}' needs numbers for {', '.join(SIZE_KEYS)}")
    bad = [k for k in ("return_mean", "return_std") if not _is_number(summary[k])]
    bad += [k for k in ("seed", "num_env_steps") if not _is_number(config[k])]
    if bad:
        raise ValueError(f"not a number: {', '.join(bad)}")
    return {"dir": run_dir, "summary": summary, "config": config}


def load_runs(root: str) -> Tuple[List[Dict], List[Tuple[str, str]]]:
    """(runs, unreadable): every finished run under ``root``, and (directory, reason)
    for each one whose files cannot be read, so that none is dropped silently."""
    runs, unreadable = [], []
    for run_dir in finished_runs(root):
        if _superseded(root, run_dir):
            continue
        try:
            runs.append(_read_run(run_dir))
        except ValueError as e:
            unreadable.append((run_dir, str(e)))
    return runs, unreadable


def _superseded(root: str, run_dir: str) -> bool:
    return SUPERSEDED_DIR in os.path.relpath(run_dir, root).split(os.sep)


def superseded_runs(root: str) -> List[str]:
    """Finished runs under ``root`` that load_runs leaves out as superseded."""
    return [d for d in finished_runs(root) if _superseded(root, d)]


def ranking_of(config: Dict) -> Optional[str]:
    """None for methods that rank no neurons; runs older than --ranking ranked globally."""
    return config.get("ranking", LEGACY_DEFAULTS["ranking"]) if config["method"] in RANKED else None


#: config.json keys that pick one run of a setting, not the setting: the seed, and the checkpoint interval,
#: which sets where episodes are cut and environments reseeded (a different draw of the same training).
NOT_SETTINGS = ("seed", "checkpoint_interval")


#: Settings that only a pruning method reads.
PRUNING_SETTINGS = ("final_sparsity", "initial_sparsity", "prune_begin", "prune_end", "prune_frequency",
                    "threshold", "min_neurons_per_layer")


def settings_of(config: Dict) -> Tuple[Tuple[str, str], ...]:
    """Everything that defines what a run trains, without the keys its method does not read, so that a cell
    holds only runs that differ in their seed."""
    method = get_method(config["method"])
    ignored = set(NOT_SETTINGS)
    if not method.penalized:
        ignored.add("reg_strength")
    if not method.prunes:
        ignored.update(PRUNING_SETTINGS)
    values = {**LEGACY_DEFAULTS, **config, "ranking": ranking_of(config)}
    return tuple(sorted((k, json.dumps(v)) for k, v in values.items() if k not in ignored))


def group_key(run: Dict) -> tuple:
    c = run["config"]
    return (c["env"], c["method"], c["reg_strength"] if c["method"] in PENALIZED else None,
            c["final_sparsity"] if c["method"] in PRUNING else None, ranking_of(c), tuple(c["actor_layers"]),
            c["num_env_steps"])


def duplicate_seeds(runs: List[Dict]) -> List[Tuple[str, str]]:
    """(left out, kept) directories of runs that repeat a cell's seed.

    Two sweeps may hold the same run (a sensitivity grid shares a point with the
    comparison, a re-run of the same settings after a code change); a seed counts
    once, and the copy kept is the first by directory, never the better return.
    """
    kept, left_out = {}, []
    for r in runs:
        key = (group_key(r), r["config"]["seed"])
        if key in kept:
            left_out.append((r["dir"], kept[key]))
        else:
            kept[key] = r["dir"]
    return left_out


def mixed_settings(runs: List[Dict]) -> List[Tuple[str, str]]:
    """(left out, why) for runs whose settings differ from their cell's other runs.

    A cell's label (environment, method, λ, ratio, ranking, actor, budget) does not
    show every PPO setting; when a cell's runs were trained differently, the
    variant with the most runs is kept (the first by directory on a tie, never the
    better return) and the others are named, so a headline never mixes settings.
    """
    cells = defaultdict(lambda: defaultdict(list))
    for r in runs:
        cells[group_key(r)][settings_of(r["config"])].append(r["dir"])
    left_out = []
    for variants in cells.values():
        if len(variants) < 2:
            continue
        kept = min(variants, key=lambda v: (-len(variants[v]), min(variants[v])))
        for settings, dirs in variants.items():
            if settings == kept:
                continue
            differ = sorted({k for k, _ in set(settings) ^ set(kept)})
            why = f"trained with other settings ({', '.join(differ)}) than its cell's {len(variants[kept])} run(s)"
            left_out += [(d, why) for d in sorted(dirs)]
    return sorted(left_out)


def left_out_runs(runs: List[Dict]) -> Tuple[List[Tuple[str, str]], List[Tuple[str, str]]]:
    """(mixed, duplicates): the runs a cell leaves out, first for other settings, then, among the rest,
    for repeating a seed; the statistics and the document's lists read both from here."""
    mixed = mixed_settings(runs)
    unmixed = {d for d, _ in mixed}
    return mixed, duplicate_seeds([r for r in runs if r["dir"] not in unmixed])


def aggregate(runs: List[Dict]) -> List[Dict]:
    mixed, duplicates = left_out_runs(runs)
    other_settings, repeated = {d for d, _ in mixed}, {d for d, _ in duplicates}
    runs = [r for r in runs if r["dir"] not in other_settings]
    groups = defaultdict(list)
    for r in runs:
        if r["dir"] not in repeated:
            groups[group_key(r)].append(r)
    dense_of_env = defaultdict(lambda: {"neurons": 0, "weights": 0, "flops": 0.0})
    for r in runs:  # the largest dense actor of each environment is the reference size
        d = r["summary"]["dense"]
        if d["weights"] > dense_of_env[r["config"]["env"]]["weights"]:
            dense_of_env[r["config"]["env"]] = d
    rows = []
    for key, members in groups.items():
        env, method, lam, ratio, ranking, layers, steps = key
        members = sorted(members, key=lambda m: m["config"]["seed"])
        returns = [m["summary"]["return_mean"] for m in members]
        ref = dense_of_env[env]
        row = {"env": env, "method": method, "reg_strength": lam, "final_sparsity": ratio, "ranking": ranking,
               "actor_layers": "x".join(map(str, layers)), "env_steps": steps,
               "seeds": " ".join(str(m["config"]["seed"]) for m in members),
               "return_mean": float(np.mean(returns)),
               # Sample std across seeds; a single seed has none (its episodes' spread is not seed spread).
               "return_std": float(np.std(returns, ddof=1)) if len(returns) > 1 else None,
               "seed_returns": " ".join(f"{x:.1f}" for x in returns),
               "train_score": _mean_or_none([training_score(m) for m in members]),
               # Runs that ship a validated actor also score their last one: a collapse is a last actor
               # below 90% of the chosen one's test return. None for runs made before validation existed.
               "last_return_mean": _mean_or_none([last_return(m) for m in members]),
               "collapsed": _count_or_none([collapsed(m) for m in members]),
               "curve_collapsed": _count_or_none([curve_collapsed(m) for m in members]),
               "_runs": members}
        for k in ("neurons", "weights", "flops"):
            value = float(np.mean([m["summary"]["compact"][k] for m in members]))
            row[k] = value
            row[f"{k}_removed_pct"] = 100.0 * (1 - value / ref[k]) if ref[k] else 0.0
        for k in DRIVING_KEYS:  # driving tasks: over seeds, each seed's value over its episodes
            values = [m["summary"].get(k) for m in members]
            row[k] = _mean_or_none(values)
            row[f"{k}_std"] = (float(np.std(values, ddof=1)) if row[k] is not None and len(values) > 1
                               else None)
        row["compact_layers"] = " / ".join(
            "-".join(map(str, m["summary"]["compact_layers"][:-1])) for m in members)
        rows.append(row)
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    rows.sort(key=lambda r: (r["env"], order.get(r["method"], 99), r["reg_strength"] or 0, r["final_sparsity"] or 0,
                             r["ranking"] or ""))
    return rows


def last_return(run: Dict) -> Optional[float]:
    """The test return of the run's last actor, when the run shipped a validated one instead."""
    selection = run["summary"].get("selection") or {}
    return selection.get("last_return_mean") if selection.get("rule") == "best_validation" else None


def collapsed(run: Dict) -> Optional[bool]:
    """Whether training ended below 90% of the shipped (validated) actor's test return."""
    last = last_return(run)
    return None if last is None else bool(last < 0.9 * run["summary"]["return_mean"])


def curve_collapsed(run: Dict) -> Optional[bool]:
    """Whether the held-out greedy curve ended below 90% of its best from the schedule's final mask on.

    Measured alike for runs made before and after validated actors existed (the curve and validation
    play the same held-out episodes), so collapses can be counted before and after. None without a curve.
    """
    cfg = from_dict({**run["config"], "root_dir": run["dir"]})
    points = [value for step, value in progress_points(run["dir"], "eval_return") if step >= cfg.final_mask_step]
    return None if len(points) < 2 else bool(points[-1] < 0.9 * max(points))


def _count_or_none(values) -> Optional[int]:
    return None if any(v is None for v in values) else int(sum(values))


def _mean_or_none(values) -> Optional[float]:
    """The mean when every seed has a value: a mean over some seeds would mix two cells."""
    return None if any(v is None for v in values) else float(np.mean(values))


def read_progress(run_dir: str) -> List[Dict[str, str]]:
    """A run's progress.csv rows; none for a run that has no progress.csv (an old or a hand-made one)."""
    path = os.path.join(run_dir, PROGRESS_FILE)
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def progress_points(run_dir: str, column: str) -> List[Tuple[int, float]]:
    """(step, value) of ``column`` in the rows that log it: most rows leave an evaluation column empty."""
    points = []
    for row in read_progress(run_dir):
        try:
            points.append((int(row["step"]), float(row[column])))
        except (KeyError, TypeError, ValueError):
            continue
    return points


def training_score(run: Dict) -> Optional[float]:
    """Mean logged training-episode return over the last 10% of the run's env steps.

    What settings are chosen by (docs/protocols/): it comes from
    training alone, never from the evaluation episodes on unseen seeds. None when
    the run logged no episode return in that stretch (or has no progress.csv).
    """
    steps = run["config"]["num_env_steps"]
    values = [ret for step, ret in progress_points(run["dir"], "return") if step > 0.9 * steps and np.isfinite(ret)]
    return float(np.mean(values)) if values else None


def n_seeds(row: Dict) -> int:
    """Counted from the cell's seed list, so a row read back from results.csv would count alike."""
    return len(row["seeds"].split())


def shipped_settings(env: str, method: str) -> Tuple[str, Optional[float]]:
    """(ranking, λ) a method trains with on ``env`` by its flagfile, where those settings live (read
    as the sweep reads them); an environment without a flagfile has the default ranking and no λ to
    prefer. A flagfile that exists but is broken is refused, not read as a default."""
    try:
        env_flagfile(env_slug(env))
    except UsageError:
        return DEFAULT_RANKING, None
    return shipped_ranking(env_slug(env), method), shipped_reg_strength(env_slug(env), method)


def headline_row(rows: List[Dict], env: str, method: str) -> Optional[Dict]:
    """The row a method is judged by: the shipped ranking, then the shipped λ, then the most seeds, then
    the highest pruning ratio.

    Never the best return: with a λ × ratio grid in the same tree, picking by
    return would tune on the evaluation episodes.
    """
    candidates = [r for r in rows if r["env"] == env and r["method"] == method]
    if not candidates:
        return None
    ranking, lam = shipped_settings(env, method)
    return max(candidates, key=lambda r: (r["ranking"] in (None, ranking), r["reg_strength"] in (None, lam),
                                          n_seeds(r), r["final_sparsity"] or 0))


def headline_groups(rows: List[Dict], env: str, methods: Sequence[str] = METHOD_ORDER) -> List[Dict]:
    """Each method's headline row of ``env``: the per-run figures draw these only, so a
    λ × ratio grid sharing the tree adds cells to the sensitivity figure, not curves elsewhere."""
    picked = (headline_row(rows, env, m) for m in methods)
    return [r for r in picked if r is not None]


class CurveSource(NamedTuple):
    """What an environment's learning-curve figure draws; computed once, read by figure and caption."""

    column: str  # progress column: "eval_return" (greedy) or "return" (training episodes)
    without: List[str]  # drawn runs made without periodic greedy evaluation
    drawn: int  # runs drawn


def curve_source(rows: List[Dict], env: str) -> CurveSource:
    """Greedy returns on held-out seeds (--curve_interval) when every drawn run has them.

    A figure never mixes them with stochastic training-episode returns, so one run made before
    periodic evaluation existed turns the whole figure to training returns, and the caption says so.
    """
    drawn = [m for row in headline_groups(rows, env) for m in row["_runs"]]
    without = [m["dir"] for m in drawn if not any(p.get("eval_return") for p in read_progress(m["dir"]))]
    return CurveSource("return" if without else "eval_return", without, len(drawn))
