"""The report's figures (matplotlib PNGs): learning curves (paper Fig. 9), |W| heat maps (Fig. 10),
hidden neurons per layer over training (Fig. 11) and the λ × pruning-ratio grid (Figs. 3–8).

Each figure draws the rows report_runs chose, so a picture never shows a cell
the tables leave out. matplotlib is imported inside the functions: loading
runs or writing tables needs no plotting stack.
"""
from __future__ import annotations

import functools
import io
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from agents.envs import env_slug
from agents.layout import DENSE_FILE
from study.paper import HEATMAP_METHODS, SMALL
from study.report_runs import (METHOD_ORDER, PENALIZED, PRUNING, CurveSource, curve_source, headline_groups,
                                 headline_row, n_seeds, ranking_of, read_progress)
from dsp_tf.files import atomic_write
from dsp_tf.methods import DEFAULT_RANKING

def _save(fig, path: str) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write(path, buf.getvalue())


def _label(run) -> str:
    c = run["config"]
    label = c["method"]
    if c["method"] == SMALL:
        label += f" {'x'.join(map(str, c['actor_layers']))}"
    if c["method"] in PENALIZED:
        label += f" λ={c['reg_strength']:g}"
    if c["method"] in PRUNING:
        label += f" p={c['final_sparsity']:g}"
    if ranking_of(c) not in (None, DEFAULT_RANKING):
        label += f" {ranking_of(c)}"
    return label


#: One colour per method in every figure (matplotlib's 10-colour cycle would repeat within one).
METHOD_COLORS = {m: f"C{i}" for i, m in enumerate(METHOD_ORDER)}


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


def seed_curve(members: List[Dict], column: str,
               bins: int) -> Optional[Tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """(x, mean, std, seeds) of ``column`` over env steps, binned, or None when no run logged it.

    Bins where no seed has a value are left out rather than drawn as gaps: greedy evaluations
    come every --curve_interval steps, often sparser than the bins, and a line must join them.
    """
    total = max(m["config"]["num_env_steps"] for m in members)
    edges = np.linspace(0, total, bins + 1)
    curves = []
    for m in members:
        progress = [r for r in read_progress(m["dir"]) if r.get(column)]
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
        progress = [x for x in read_progress(run["dir"]) if x.get("layer_neurons")]
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

    picks = [(row["method"], row["_runs"][0]) for row in headline_groups(rows, env, HEATMAP_METHODS)
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
            labels[i, j] = f"{r['return_mean']:.0f}" + (f"\n({n_seeds(r)} seeds)" if n_seeds(r) > 1 else "")
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


#: Every figure of an environment, by the name its file starts with.
FIGURES = (("learning_curves", learning_curves), ("neurons_per_layer", neurons_over_training),
           ("weights_heatmap", weight_heatmaps), ("sensitivity", sensitivity))


def figure_name(kind: str, env: str) -> str:
    """``<kind>_<slug>.png``: the document finds an environment's figures by the slug they end in."""
    return f"{kind}_{env_slug(env)}.png"


def draw_figures(rows: List[Dict], env: str, directory: str, source: CurveSource) -> List[str]:
    """The names of the figures of ``env`` drawn into ``directory``; a figure with nothing to draw is not made.
    ``source`` is passed in because the caption must say what the curves drew."""
    written = []
    for kind, draw in FIGURES:
        if kind == "learning_curves":
            draw = functools.partial(learning_curves, source=source)
        name = figure_name(kind, env)
        if draw(rows, env, os.path.join(directory, name)):
            written.append(name)
    return written
