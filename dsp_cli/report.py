"""Tables and figures from a directory of finished runs (a sweep or any tree of runs).

    python -m dsp_tf.report --sweep_dir=runs/sweep_cartpole [--output_dir=docs]

Writes results.csv, results.md (return mean ± std over seeds; neurons, weights
and FLOPs and the share removed) and PNGs: learning curves (paper Fig. 9),
|W| heat maps of the first two actor layers (Fig. 10), hidden neurons per
layer over training (Fig. 11) and the λ × pruning-ratio grid (Figs. 3–8).
"""
from __future__ import annotations

import csv
import functools
import io
import json
import os
import sys
from collections import defaultdict
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from absl import flags

from agents.config import LEGACY_DEFAULTS, from_dict
from agents.layout import CONFIG_FILE, DENSE_FILE, PROGRESS_FILE, SUMMARY_FILE, SUPERSEDED_DIR
from dsp_tf import cli
from dsp_cli.archive import finished_runs
from dsp_cli.sweep import shipped_ranking, shipped_reg_strength
from dsp_tf.errors import UsageError
from dsp_tf.files import atomic_write
from dsp_tf.methods import DEFAULT_RANKING, METHOD_NAMES, get_method

def define_flags() -> None:
    """Defined on demand so that importing this module never claims flag names."""
    flags.DEFINE_string("sweep_dir", None, "Directory searched recursively for finished runs.")
    flags.DEFINE_string("output_dir", None, "Where results and figures go (default: --sweep_dir).")
    flags.DEFINE_string("figures_subdir", "figures", "Subdirectory of --output_dir for PNGs.")
    flags.DEFINE_string("results_markdown", None,
                        "Also write a full results document here (e.g. docs/RESULTS.md): --preamble, then per "
                        "environment the table, the paper's figures, DSP vs small, and the figures.")
    flags.DEFINE_string("preamble", None, "Markdown file placed at the top of --results_markdown.")


FLAGS = flags.FLAGS

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


def ranking_of(config: Dict):
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
    points = []
    for row in _progress(run["dir"]):
        try:
            step, value = int(row["step"]), float(row["eval_return"])
        except (KeyError, TypeError, ValueError):
            continue
        if step >= cfg.final_mask_step:
            points.append(value)
    return None if len(points) < 2 else bool(points[-1] < 0.9 * max(points))


def _count_or_none(values) -> Optional[int]:
    return None if any(v is None for v in values) else int(sum(values))


def _mean_or_none(values) -> Optional[float]:
    """The mean when every seed has a value: a mean over some seeds would mix two cells."""
    return None if any(v is None for v in values) else float(np.mean(values))


def write_csv(rows: List[Dict], path: str) -> None:
    buf = io.StringIO()
    if rows:
        fields = [k for k in rows[0] if not k.startswith("_")]
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    atomic_write(path, buf.getvalue())


def mean_std(row: Dict) -> str:
    """'mean ± sample std' over seeds, or the mean marked as a single seed's."""
    if row["return_std"] is None:
        return f"{row['return_mean']:.1f} (1 seed)"
    return f"{row['return_mean']:.1f} ± {row['return_std']:.1f}"


def markdown(rows: List[Dict]) -> str:
    lines = ["| env | method | λ | ratio | ranking | actor | steps | seeds | return (mean ± std over seeds) "
             "| hidden neurons kept | neurons removed | weights removed | FLOPs removed |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lam = "" if r["reg_strength"] is None else f"{r['reg_strength']:g}"
        ratio = "" if r["final_sparsity"] is None else f"{r['final_sparsity']:g}"
        lines.append(
            f"| {r['env']} | {r['method']} | {lam} | {ratio} | {r['ranking'] or ''} | {r['actor_layers']} "
            f"| {r['env_steps']:,} | {r['seeds']} | {mean_std(r)} "
            f"| {r['compact_layers']} | {r['neurons_removed_pct']:.1f}% | {r['weights_removed_pct']:.1f}% "
            f"| {r['flops_removed_pct']:.1f}% |")
    return "\n".join(lines) + "\n"


def _spread(row: Dict, key: str, digits: int) -> str:
    std = row[f"{key}_std"]
    return f"{row[key]:.{digits}f}" + (" (1 seed)" if std is None else f" ± {std:.{digits}f}")


def driving_table(rows: List[Dict], env: str) -> str:
    """Each method's headline cell judged as a road would judge it: collisions and speed beside the
    return (mean ± sample std over seeds; each seed's value is over its unseen evaluation episodes).
    Empty for an environment whose runs record no collisions."""
    heads = [r for r in headline_groups(rows, env) if r["collision_rate"] is not None]
    if not heads:
        return ""
    lines = ["| method | seeds | return | collision rate | mean speed (m/s) | episode length (steps) "
             "| hidden kept | neurons removed | weights removed | FLOPs removed |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in heads:
        lines.append(f"| {r['method']} | {r['seeds']} | {mean_std(r)} | {_spread(r, 'collision_rate', 3)} "
                     f"| {_spread(r, 'speed_mean', 2)} | {_spread(r, 'eval_length_mean', 1)} "
                     f"| {r['compact_layers']} | {r['neurons_removed_pct']:.1f}% "
                     f"| {r['weights_removed_pct']:.1f}% | {r['flops_removed_pct']:.1f}% |")
    return "\n".join(lines) + "\n"


def _save(fig, path: str) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write(path, buf.getvalue())


def _progress(run_dir: str) -> List[Dict[str, str]]:
    path = os.path.join(run_dir, PROGRESS_FILE)
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def training_score(run: Dict) -> Optional[float]:
    """Mean logged training-episode return over the last 10% of the run's env steps.

    What settings are chosen by (docs/RESULTS.md's protocols): it comes from
    training alone, never from the evaluation episodes on unseen seeds. None when
    the run logged no episode return in that stretch (or has no progress.csv).
    """
    steps = run["config"]["num_env_steps"]
    values = []
    for row in _progress(run["dir"]):
        try:
            step, ret = int(row["step"]), float(row["return"])
        except (KeyError, TypeError, ValueError):
            continue
        if step > 0.9 * steps and np.isfinite(ret):
            values.append(ret)
    return float(np.mean(values)) if values else None


def _label(run) -> str:
    c = run["config"]
    label = c["method"]
    if c["method"] == "small":
        label += f" {'x'.join(map(str, c['actor_layers']))}"
    if c["method"] in PENALIZED:
        label += f" λ={c['reg_strength']:g}"
    if c["method"] in PRUNING:
        label += f" p={c['final_sparsity']:g}"
    if ranking_of(c) not in (None, "global"):
        label += f" {ranking_of(c)}"
    return label


#: One colour per method in every figure (matplotlib's 10-colour cycle would repeat within one).
METHOD_COLORS = {m: f"C{i}" for i, m in enumerate(METHOD_ORDER)}


def headline_groups(rows: List[Dict], env: str, methods=METHOD_ORDER) -> List[Dict]:
    """Each method's headline row of ``env``: the per-run figures draw these only, so a
    λ × ratio grid sharing the tree adds cells to the sensitivity figure, not curves elsewhere."""
    picked = (headline_row(rows, env, m) for m in methods)
    return [r for r in picked if r is not None]


def _close_over_steps(fig, ax, drawn: bool, path: str, ylabel: str, title: str, legend_size: int) -> bool:
    """Labels and saves a plot over environment steps if anything was drawn; always frees the figure."""
    import matplotlib.pyplot as plt

    if drawn:
        ax.set_xlabel("environment steps")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(fontsize=legend_size)
        _save(fig, path)
    plt.close(fig)
    return drawn


def _mean_std_over_seeds(curves: np.ndarray):
    """Per bin: mean and sample std over the seeds that have a value there (NaN where none has,
    std 0 where one has), without NumPy's warnings about empty bins."""
    have = ~np.isnan(curves)
    n = have.sum(0)
    filled = np.where(have, curves, 0.0)
    mean = np.where(n > 0, filled.sum(0) / np.maximum(n, 1), np.nan)
    sq = np.where(have, (curves - mean) ** 2, 0.0).sum(0)
    std = np.where(n > 1, np.sqrt(sq / np.maximum(n - 1, 1)), 0.0)
    return mean, std


def seed_curve(members: List[Dict], column: str, bins: int):
    """(x, mean, std, seeds) of ``column`` over env steps, binned, or None when no run logged it.

    Bins where no seed has a value are left out rather than drawn as gaps: greedy evaluations
    come every --curve_interval steps, often sparser than the bins, and a line must join them.
    """
    total = max(m["config"]["num_env_steps"] for m in members)
    edges = np.linspace(0, total, bins + 1)
    curves = []
    for m in members:
        progress = [r for r in _progress(m["dir"]) if r.get(column)]
        steps = np.array([float(r["step"]) for r in progress])
        values = np.array([float(r[column]) for r in progress])
        if not len(steps):
            continue
        idx = np.clip(np.digitize(steps, edges) - 1, 0, bins - 1)
        curves.append(np.array([values[idx == b].mean() if np.any(idx == b) else np.nan for b in range(bins)]))
    if not curves:
        return None
    mean, std = _mean_std_over_seeds(np.array(curves))
    keep = ~np.isnan(mean)
    return ((edges[:-1] + edges[1:])[keep] / 2, mean[keep], std[keep], len(curves))


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
    without = [m["dir"] for m in drawn if not any(p.get("eval_return") for p in _progress(m["dir"]))]
    return CurveSource("return" if without else "eval_return", without, len(drawn))


def curve_caption(source: CurveSource) -> str:
    if source.column == "eval_return":
        return (f"Learning curves: greedy returns of the compact actor on held-out seeds during training, all "
                f"{source.drawn} runs drawn.")
    return (f"Learning curves: training-episode returns of the stochastic policy, not greedy evaluations: "
            f"{len(source.without)} of the {source.drawn} runs drawn were made without periodic greedy evaluation "
            f"(`--curve_interval`), and a figure does not mix the two.")


def learning_curves(rows: List[Dict], env: str, path: str, bins: int = 50,
                    source: Optional[CurveSource] = None) -> bool:
    import matplotlib.pyplot as plt

    heads = headline_groups(rows, env)
    column = (source or curve_source(rows, env)).column
    greedy = column == "eval_return"
    fig, ax = plt.subplots(figsize=(7, 4.2))
    drawn = False
    for row in heads:
        curve = seed_curve(row["_runs"], column, bins)
        if curve is None:
            continue
        x, mean, std, n = curve
        color = METHOD_COLORS.get(row["method"])
        ax.plot(x, mean, color=color, marker="." if len(x) < bins / 2 else None,
                label=f"{_label(row['_runs'][0])} (n={n})")
        ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.15)
        drawn = True
    ylabel = "greedy return, held-out seeds" if greedy else "training episode return (stochastic policy)"
    return _close_over_steps(fig, ax, drawn, path, ylabel, f"{env}: learning curves (mean ± std over seeds)",
                             legend_size=7)


def neurons_over_training(rows: List[Dict], env: str, path: str) -> bool:
    """Hidden neurons left per layer, each pruning method's lowest seed (paper Fig. 11)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    drawn = False
    for row in headline_groups(rows, env, [m for m in METHOD_ORDER if m in PRUNING]):
        run = row["_runs"][0]
        progress = [x for x in _progress(run["dir"]) if x.get("layer_neurons")]
        if not progress:
            continue
        steps = [float(x["step"]) for x in progress]
        per_layer = np.array([[int(v) for v in x["layer_neurons"].split(";")] for x in progress])
        for layer in range(per_layer.shape[1]):
            ax.plot(steps, per_layer[:, layer], color=METHOD_COLORS.get(row["method"]),
                    linestyle=("-", "--", ":", "-.")[layer % 4],
                    label=f"{_label(run)} s{run['config']['seed']} layer {layer + 1}")
        drawn = True
    return _close_over_steps(fig, ax, drawn, path, "hidden neurons left",
                             f"{env}: hidden neurons per layer during training", legend_size=6)


def weight_heatmaps(rows: List[Dict], env: str, path: str) -> bool:
    """|W| of the first two actor layers for ppo, dsp, ssl and l1, lowest seed (paper Fig. 10)."""
    import h5py
    import matplotlib.pyplot as plt

    picks = [(row["method"], row["_runs"][0]) for row in headline_groups(rows, env, ("ppo", "dsp", "ssl", "l1"))
             if os.path.exists(os.path.join(row["_runs"][0]["dir"], DENSE_FILE))]
    if not picks:
        return False
    weights = []
    for method, r in picks:
        with h5py.File(os.path.join(r["dir"], DENSE_FILE), "r") as f:
            kernels = []
            f["model_weights"].visititems(
                lambda name, obj: kernels.append((name, obj[()])) if name.endswith("kernel:0") else None)
        weights.append([np.abs(k) for _, k in sorted(kernels)])
    # One colour scale per layer across methods, so panels compare; no interpolation between inputs.
    fig, axes = plt.subplots(2, len(picks), figsize=(3.2 * len(picks) + 1.0, 6.4), squeeze=False,
                             constrained_layout=True)
    for row in range(2):
        vmax = max(float(w[row].max()) for w in weights) or 1.0
        for col, ((method, r), w) in enumerate(zip(picks, weights)):
            ax = axes[row, col]
            image = ax.imshow(w[row].T, aspect="auto", cmap="viridis", vmin=0.0, vmax=vmax,
                              interpolation="nearest")
            ax.set_title(f"{method} s{r['config']['seed']}: |W{row + 1}|", fontsize=9)
            ax.set_xlabel("input" if row == 0 else "layer-1 neuron")
            ax.set_ylabel("neuron")
        fig.colorbar(image, ax=list(axes[row]), shrink=0.9, label=f"|W{row + 1}|")
    fig.suptitle(f"{env}: absolute weights of the first two actor layers (dense-equivalent actor, "
                 "pruned weights are 0)")
    _save(fig, path)
    plt.close(fig)
    return True


def _grid_cells(rows: List[Dict], env: str, method: str) -> List[Dict]:
    """A method's (λ, ratio) points at its headline budget, actor size and ranking: one panel never mixes
    them, and two rankings of one point would otherwise fight over its cell."""
    ref = headline_row(rows, env, method)
    if ref is None:
        return []
    same = ("env_steps", "actor_layers", "ranking")
    return [r for r in rows if r["env"] == env and r["method"] == method
            and all(r[k] == ref[k] for k in same)]


def _grid_methods(rows: List[Dict], env: str) -> List[str]:
    """Pruning methods of ``env`` run at two or more (λ, ratio) points: those have a sensitivity panel."""
    return [m for m in METHOD_ORDER if m in PRUNING and len(_grid_cells(rows, env, m)) >= 2]


def sensitivity(rows: List[Dict], env: str, path: str) -> bool:
    """Greedy return over λ × pruning ratio, one panel per method (the paper's Figs. 3–8).

    A cell shows the mean over its seeds and, when there is more than one, how many,
    because a grid usually mixes one-seed points with a comparison's multi-seed point.
    """
    import matplotlib.pyplot as plt

    methods = _grid_methods(rows, env)
    if not methods:
        return False
    fig, axes = plt.subplots(1, len(methods), figsize=(5.2 * len(methods), 4.2), squeeze=False)
    for ax, method in zip(axes[0], methods):
        cells = _grid_cells(rows, env, method)
        lams = sorted({r["reg_strength"] or 0.0 for r in cells})
        ratios = sorted({r["final_sparsity"] for r in cells})
        grid = np.full((len(lams), len(ratios)), np.nan)
        labels = {}
        for r in cells:
            i, j = lams.index(r["reg_strength"] or 0.0), ratios.index(r["final_sparsity"])
            grid[i, j] = r["return_mean"]
            labels[i, j] = f"{r['return_mean']:.0f}" + (f"\n({_n_seeds(r)} seeds)" if _n_seeds(r) > 1 else "")
        im = ax.imshow(grid, cmap="viridis", aspect="auto")
        for (i, j), text in labels.items():  # dark text on viridis' bright end, white on its dark end
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="k" if im.norm(grid[i, j]) > 0.6 else "w")
        ax.set_xticks(range(len(ratios)), [f"{r:g}" for r in ratios])
        ax.set_yticks(range(len(lams)), [f"{lam:g}" for lam in lams])
        ax.set_xlabel("pruning ratio")
        ax.set_ylabel("λ" if method in PENALIZED else "(no λ)")
        ax.set_title(f"{env}: {method} greedy return", fontsize=9)
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return True


#: The paper's reported returns (../shared/SPEC.md), shown beside ours: PPO-DSP at 93%, dense PPO, a note.
PAPER = {
    "CartPole-v1": ("268.26 ± 124.96", "449.22", ""),
    "LunarLander-v3": ("−28.09 ± 157.55", "−61.03", "paper: LunarLander-v2"),
    "Hopper-v4": ("1476.62 ± 997.43", None, "paper: Hopper-v3"),
    "Walker2d-v4": ("2310.67", None, "the text also says 1310.67; paper: Walker2d-v3"),
}


def paper_sentence(env: str) -> str:
    dsp, dense, note = PAPER[env]
    text = f"PPO-DSP at 93%: {dsp}" + (f"; dense PPO: {dense}" if dense else "")
    return text + (f" ({note})" if note else "")


def _n_seeds(row: Dict) -> int:
    return len(row["seeds"].split())


def env_slug(env: str) -> str:
    """An environment's short name: its flagfile is configs/<slug>.cfg and its figures end in _<slug>.png."""
    return env.split("-")[0].lower()


def shipped_settings(env: str, method: str) -> Tuple[str, Optional[float]]:
    """(ranking, λ) a method trains with on ``env`` by its flagfile, where those settings live (read
    as the sweep reads them); an environment without a flagfile has the default ranking and no λ to
    prefer. A flagfile that exists but is broken is refused, not read as a default."""
    try:
        cli.find_flagfile(f"{env_slug(env)}.cfg")
    except UsageError:
        return DEFAULT_RANKING, None
    return shipped_ranking(env_slug(env), method), shipped_reg_strength(env_slug(env), method)


def headline_row(rows: List[Dict], env: str, method: str):
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
                                          _n_seeds(r), r["final_sparsity"] or 0))


def dsp_vs_small(rows: List[Dict], env: str) -> str:
    """One sentence: does pruning beat training the small network from scratch?"""
    d, m = headline_row(rows, env, "dsp"), headline_row(rows, env, "small")
    if d is None or m is None:
        return (f"**DSP vs small:** no `{'small' if d else 'dsp'}` run for {env} yet, so whether pruning beats "
                "training the small actor from scratch is not answered here.")
    return (f"**DSP vs small:** DSP at {d['final_sparsity']:g} ({mean_std(d)}, "
            f"{_n_seeds(d)} seed(s), {d['neurons']:.0f} hidden neurons) vs a {m['actor_layers']} actor trained from "
            f"scratch ({mean_std(m)}, {_n_seeds(m)} seed(s), {m['neurons']:.0f} "
            f"neurons): {_verdict(d, m)}.")


def _compare(d: Dict, m: Dict):
    """(sign of DSP − small, whether the gap exceeds the larger of the two standard deviations).

    A single-seed cell has no spread over seeds, so its gap is never called clear."""
    diff = d["return_mean"] - m["return_mean"]
    sign = 0 if abs(diff) < 1e-9 else (1 if diff > 0 else -1)
    if d["return_std"] is None or m["return_std"] is None:
        return sign, False
    return sign, abs(diff) > max(d["return_std"], m["return_std"])


def _verdict(d: Dict, m: Dict) -> str:
    sign, clear = _compare(d, m)
    if sign == 0:
        return "the two are equal, so pruning does not beat training small here"
    return ("DSP is higher" if sign > 0 else "DSP is lower") + (
        " by more than one standard deviation" if clear else ", within one standard deviation (no clear winner)")


def _short_verdict(d: Dict, m: Dict) -> str:
    sign, clear = _compare(d, m)
    if sign == 0:
        return "equal"
    return ("higher" if sign > 0 else "lower") + (" (> 1 std)" if clear else " (within 1 std)")


def summary_table(rows: List[Dict]) -> str:
    """Per environment: dense PPO, DSP, the small actor and the paper's DSP figure, side by side.

    The paper's environments are always listed, so one never run here shows as a gap, not as nothing.
    """
    def cell(r):
        if r is None:
            return "—"
        return mean_std(r) if r["return_std"] is None else f"{mean_std(r)} ({_n_seeds(r)})"

    lines = ["| env | budget | methods run | dense PPO (seeds) | DSP (seeds), hidden kept | small (seeds) "
             "| DSP vs small | paper PPO-DSP at 93% |", "|---|---|---|---|---|---|---|---|"]
    for env in sorted({r["env"] for r in rows} | set(PAPER)):
        paper = PAPER[env][0] if env in PAPER else "—"
        env_rows = [r for r in rows if r["env"] == env]
        if not env_rows:
            lines.append(f"| {env} | — | 0 of {len(METHOD_ORDER)} | not run | not run | not run | — | {paper} |")
            continue
        ppo, dsp, small = (headline_row(rows, env, m) for m in ("ppo", "dsp", "small"))
        budget = max(r["env_steps"] for r in env_rows)
        methods = f"{len({r['method'] for r in env_rows})} of {len(METHOD_ORDER)}"
        kept = f", {dsp['neurons']:.0f}" if dsp else ""
        verdict = "—" if dsp is None or small is None else _short_verdict(dsp, small)
        lines.append(f"| {env} | {budget:,} | {methods} | {cell(ppo)} | {cell(dsp)}{kept} | {cell(small)} "
                     f"| {verdict} | {paper} |")
    return "\n".join(lines) + "\n"


def _fmt(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.1f}"


def _seed_returns(row: Dict) -> List[float]:
    return [m["summary"]["return_mean"] for m in row["_runs"]]


def _interval(estimate: Tuple[float, float, float], digits: int = 1) -> str:
    point, lo, hi = estimate
    return f"{point:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def seed_statistics(rows: List[Dict], env: str) -> str:
    """Each method's headline cell as IQM with its 95% bootstrap interval, and how often a DSP
    run beats a run of small, dropout and dense PPO (probability of improvement, rliable).

    DSP's rows with other rankings at the headline's λ, ratio and budget are listed too, so
    the ranking comparison sits beside the methods. Single-seed cells have no interval.
    """
    from dsp_cli.statistics import improvement_probability, iqm_interval

    heads = headline_groups(rows, env)
    dsp = headline_row(rows, env, "dsp")
    if dsp is not None:
        same = [r for r in rows if r["env"] == env and r["method"] == "dsp" and r is not dsp
                and (r["reg_strength"], r["final_sparsity"], r["env_steps"], r["actor_layers"])
                == (dsp["reg_strength"], dsp["final_sparsity"], dsp["env_steps"], dsp["actor_layers"])]
        heads = heads + same
    lines = ["| method | ranking | seeds | return per seed | mean ± std | IQM [95% CI] | training return, last 10% "
             "| last actor (collapsed) | hidden kept |", "|---|---|---|---|---|---|---|---|---|"]
    for r in heads:
        iqm = "— (1 seed)" if _n_seeds(r) < 2 else _interval(iqm_interval(_seed_returns(r)))
        last = ("— (no validation)" if r["collapsed"] is None
                else f"{r['last_return_mean']:.1f} ({r['collapsed']} of {_n_seeds(r)})")
        lines.append(f"| {r['method']} | {r['ranking'] or ''} | {r['seeds']} | {r['seed_returns']} "
                     f"| {mean_std(r)} | {iqm} | {_fmt(r['train_score'])} | {last} | {r['compact_layers']} |")
    out = "\n".join(lines) + "\n"
    if dsp is None:
        return out
    sentences = []
    for other in ("small", "dropout", "ppo"):
        o = headline_row(rows, env, other)
        if o is None:
            sentences.append(f"P(DSP > {other}): no {other} run")
        elif min(_n_seeds(dsp), _n_seeds(o)) < 2:
            sentences.append(f"P(DSP > {other}): needs ≥ 2 seeds of each")
        else:
            sentences.append(f"P(DSP > {other}) = "
                             f"{_interval(improvement_probability(_seed_returns(dsp), _seed_returns(o)), 2)}")
    return out + "\nProbability of improvement (95% bootstrap CI): " + "; ".join(sentences) + ".\n"


def results_document(rows: List[Dict], figures: List[str], figures_rel: str, preamble: str,
                     unreadable: Sequence[Tuple[str, str]] = (), duplicates: Sequence[Tuple[str, str]] = (),
                     mixed: Sequence[Tuple[str, str]] = (), superseded: int = 0,
                     curve_sources: Optional[Dict[str, CurveSource]] = None) -> str:
    curve_sources = curve_sources or {}
    parts = [preamble.rstrip() + "\n"] if preamble else []
    parts.append("## Summary (generated from the runs below)\n")
    parts.append(summary_table(rows))
    if unreadable:
        parts.append("Runs left out because their files cannot be read:\n")
        parts.append("\n".join(f"- `{d}`: {reason}" for d, reason in unreadable) + "\n")
    if duplicates:
        parts.append("Runs left out because they repeat a seed of their cell (same settings; the first copy by "
                     "directory is used, never the better one):\n")
        parts.append("\n".join(f"- `{d}` (kept: `{k}`)" for d, k in duplicates) + "\n")
    if mixed:
        parts.append("Runs left out because their cell's other runs were trained with other settings:\n")
        parts.append("\n".join(f"- `{d}`: {why}" for d, why in mixed) + "\n")
    if superseded:
        parts.append(f"Not read: {superseded} run(s) of superseded settings under `{SUPERSEDED_DIR}/`.\n")
    for env in sorted({r["env"] for r in rows}):
        env_rows = [r for r in rows if r["env"] == env]
        parts.append(f"## {env}\n")
        parts.append(markdown(env_rows))
        if env in PAPER:
            parts.append(f"Paper (to beat, not to copy): {paper_sentence(env)}.\n")
        driving = driving_table(rows, env)
        if driving:
            parts.append("Driving metrics of the greedy compact actor (mean ± sample std over seeds):\n")
            parts.append(driving)
        parts.append(dsp_vs_small(rows, env) + "\n")
        parts.append("Statistics over seeds (rliable: interquartile mean with a 95% bootstrap interval):\n")
        parts.append(seed_statistics(rows, env))
        slug = env_slug(env)
        for f in figures:
            if f.endswith(f"_{slug}.png"):
                if f == f"learning_curves_{slug}.png":
                    source = curve_sources.get(env) or curve_source(rows, env)
                    parts.append(curve_caption(source) + "\n")
                parts.append(f"![{f}]({figures_rel}/{f})\n")
    return "\n".join(parts)


def make_report(sweep_dir: str, output_dir: str, figures_subdir: str = "figures",
                results_markdown: str = None, preamble: str = None) -> Dict[str, object]:
    import matplotlib

    matplotlib.use("Agg")
    if not sweep_dir or not os.path.isdir(sweep_dir):
        raise UsageError(f"sweep directory '{sweep_dir}' does not exist")
    runs, unreadable = load_runs(sweep_dir)
    for run_dir, reason in unreadable:
        print(f"dsp_tf.report: skipped unreadable run '{run_dir}': {reason}", file=sys.stderr)
    if not runs:
        raise UsageError(f"no readable finished runs (summary.json) under '{sweep_dir}'"
                         + (f" ({len(unreadable)} unreadable)" if unreadable else ""))
    superseded = superseded_runs(sweep_dir)
    if superseded:
        print(f"dsp_tf.report: {len(superseded)} run(s) under '{SUPERSEDED_DIR}/' not read (superseded settings)",
              file=sys.stderr)
    rows = aggregate(runs)
    mixed, duplicates = left_out_runs(runs)
    for run_dir, why in mixed:
        print(f"dsp_tf.report: left out '{run_dir}': {why}", file=sys.stderr)
    if duplicates:
        print(f"dsp_tf.report: {len(duplicates)} run(s) repeat a seed of their cell and are left out of the "
              f"statistics (listed in --results_markdown)", file=sys.stderr)
    for env, method in sorted({(r["env"], r["method"]) for r in rows}):
        shipped_settings(env, method)  # a broken flagfile stops the report before it writes anything
    text = ""
    if results_markdown and preamble:
        try:
            with open(preamble, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise UsageError(f"cannot read --preamble '{preamble}': {e}") from None
    figures = os.path.join(output_dir, figures_subdir)
    os.makedirs(figures, exist_ok=True)
    write_csv(rows, os.path.join(output_dir, "results.csv"))
    atomic_write(os.path.join(output_dir, "results.md"), markdown(rows))
    written = []
    sources = {env: curve_source(rows, env) for env in sorted({r["env"] for r in rows})}
    for env in sources:
        slug = env_slug(env)
        for name, fn in ((f"learning_curves_{slug}.png", functools.partial(learning_curves, source=sources[env])),
                         (f"neurons_per_layer_{slug}.png", neurons_over_training),
                         (f"weights_heatmap_{slug}.png", weight_heatmaps),
                         (f"sensitivity_{slug}.png", sensitivity)):
            if fn(rows, env, os.path.join(figures, name)):
                written.append(name)
    if results_markdown:
        rel = os.path.relpath(figures, os.path.dirname(os.path.abspath(results_markdown)))
        atomic_write(results_markdown, results_document(rows, written, rel, text, unreadable, duplicates, mixed,
                                                        len(superseded), sources))
    return {"runs": len(runs), "rows": rows, "figures": written, "unreadable": unreadable}


def _main() -> None:
    if not FLAGS.sweep_dir:
        raise UsageError("--sweep_dir is required")
    out = FLAGS.output_dir or FLAGS.sweep_dir
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--output_dir '{out}' is not a directory")
    result = make_report(FLAGS.sweep_dir, out, FLAGS.figures_subdir, FLAGS.results_markdown, FLAGS.preamble)
    skipped = f", skipped {len(result['unreadable'])} unreadable (named above)" if result["unreadable"] else ""
    print(f"{result['runs']} runs in {len(result['rows'])} groups{skipped}; wrote {out}/results.csv, "
          f"{out}/results.md and {len(result['figures'])} figures")


def main() -> None:
    define_flags()
    cli.run(_main, prog="dsp_tf.report")


if __name__ == "__main__":
    main()
