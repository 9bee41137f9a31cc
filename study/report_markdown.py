"""The report's text: results.csv, the results tables in Markdown and the full results document.

Only formatting lives here: which runs a row holds and which row a method is
judged by come from report_runs, the paper's figures from study.paper, so a
sentence cannot disagree with the table beside it.
"""
from __future__ import annotations

import csv
import io
from typing import Dict, List, Optional, Sequence, Tuple

from agents.envs import env_slug
from agents.layout import SUPERSEDED_DIR
from study.paper import DENSE, PAPER, PROPOSED, RIVALS, SMALL
from study.report_figures import figure_name
from study.report_runs import METHOD_ORDER, CurveSource, curve_source, headline_groups, headline_row, n_seeds
from dsp_tf.files import atomic_write


def left_out_list(heading: str, left_out: Sequence[Tuple[str, str]]) -> List[str]:
    """The results document's parts naming what a section left out and why (nothing is dropped silently);
    none when nothing was."""
    if not left_out:
        return []
    return [heading, "\n".join(f"- `{name}`: {why}" for name, why in left_out) + "\n"]

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


def paper_sentence(env: str) -> str:
    dsp, dense, note = PAPER[env]
    text = f"PPO-DSP at 93%: {dsp}" + (f"; dense PPO: {dense}" if dense else "")
    return text + (f" ({note})" if note else "")


def dsp_vs_small(rows: List[Dict], env: str) -> str:
    """One sentence: does pruning beat training the small network from scratch?"""
    d, m = headline_row(rows, env, PROPOSED), headline_row(rows, env, SMALL)
    if d is None or m is None:
        return (f"**DSP vs small:** no `{SMALL if d else PROPOSED}` run for {env} yet, so whether pruning beats "
                "training the small actor from scratch is not answered here.")
    return (f"**DSP vs small:** DSP at {d['final_sparsity']:g} ({mean_std(d)}, "
            f"{n_seeds(d)} seed(s), {d['neurons']:.0f} hidden neurons) vs a {m['actor_layers']} actor trained from "
            f"scratch ({mean_std(m)}, {n_seeds(m)} seed(s), {m['neurons']:.0f} "
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
        return mean_std(r) if r["return_std"] is None else f"{mean_std(r)} ({n_seeds(r)})"

    lines = ["| env | budget | methods run | dense PPO (seeds) | DSP (seeds), hidden kept | small (seeds) "
             "| DSP vs small | paper PPO-DSP at 93% |", "|---|---|---|---|---|---|---|---|"]
    for env in sorted({r["env"] for r in rows} | set(PAPER)):
        paper = PAPER[env][0] if env in PAPER else "—"
        env_rows = [r for r in rows if r["env"] == env]
        if not env_rows:
            lines.append(f"| {env} | — | 0 of {len(METHOD_ORDER)} | not run | not run | not run | — | {paper} |")
            continue
        ppo, dsp, small = (headline_row(rows, env, m) for m in (DENSE, PROPOSED, SMALL))
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
    from study.statistics import improvement_probability, iqm_interval

    heads = headline_groups(rows, env)
    dsp = headline_row(rows, env, PROPOSED)
    if dsp is not None:
        same = [r for r in rows if r["env"] == env and r["method"] == PROPOSED and r is not dsp
                and (r["reg_strength"], r["final_sparsity"], r["env_steps"], r["actor_layers"])
                == (dsp["reg_strength"], dsp["final_sparsity"], dsp["env_steps"], dsp["actor_layers"])]
        heads = heads + same
    lines = ["| method | ranking | seeds | return per seed | mean ± std | IQM [95% CI] | training return, last 10% "
             "| last actor (collapsed) | hidden kept |", "|---|---|---|---|---|---|---|---|---|"]
    for r in heads:
        iqm = "— (1 seed)" if n_seeds(r) < 2 else _interval(iqm_interval(_seed_returns(r)))
        last = ("— (no validation)" if r["collapsed"] is None
                else f"{r['last_return_mean']:.1f} ({r['collapsed']} of {n_seeds(r)})")
        lines.append(f"| {r['method']} | {r['ranking'] or ''} | {r['seeds']} | {r['seed_returns']} "
                     f"| {mean_std(r)} | {iqm} | {_fmt(r['train_score'])} | {last} | {r['compact_layers']} |")
    out = "\n".join(lines) + "\n"
    if dsp is None:
        return out
    sentences = []
    for other in RIVALS:
        o = headline_row(rows, env, other)
        if o is None:
            sentences.append(f"P(DSP > {other}): no {other} run")
        elif min(n_seeds(dsp), n_seeds(o)) < 2:
            sentences.append(f"P(DSP > {other}): needs ≥ 2 seeds of each")
        else:
            sentences.append(f"P(DSP > {other}) = "
                             f"{_interval(improvement_probability(_seed_returns(dsp), _seed_returns(o)), 2)}")
    return out + "\nProbability of improvement (95% bootstrap CI): " + "; ".join(sentences) + ".\n"


def curve_caption(source: CurveSource) -> str:
    if source.column == "eval_return":
        return (f"Learning curves: greedy returns of the compact actor on held-out seeds during training, all "
                f"{source.drawn} runs drawn.")
    return (f"Learning curves: training-episode returns of the stochastic policy, not greedy evaluations: "
            f"{len(source.without)} of the {source.drawn} runs drawn were made without periodic greedy evaluation "
            f"(`--curve_interval`), and a figure does not mix the two.")


def results_document(rows: List[Dict], figures: List[str], figures_rel: str, preamble: str,
                     unreadable: Sequence[Tuple[str, str]] = (), duplicates: Sequence[Tuple[str, str]] = (),
                     mixed: Sequence[Tuple[str, str]] = (), superseded: int = 0,
                     curve_sources: Optional[Dict[str, CurveSource]] = None) -> str:
    curve_sources = curve_sources or {}
    parts = [preamble.rstrip() + "\n"] if preamble else []
    parts.append("## Summary (generated from the runs below)\n")
    parts.append(summary_table(rows))
    parts += left_out_list("Runs left out because their files cannot be read:\n", unreadable)
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
        parts += _env_section(rows, env, figures, figures_rel, curve_sources.get(env) or curve_source(rows, env))
    return "\n".join(parts)


def _env_section(rows: List[Dict], env: str, figures: List[str], figures_rel: str, source: CurveSource) -> List[str]:
    parts = [f"## {env}\n", markdown([r for r in rows if r["env"] == env])]
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
    mine = [f for f in figures if f.endswith(f"_{slug}.png")]
    if figure_name("learning_curves", env) in mine:
        parts.append(curve_caption(source) + "\n")
    if mine:  # one paragraph: the figures side by side where the page is wide enough
        parts.append(" ".join(f"![{f}]({figures_rel}/{f})" for f in mine) + "\n")
    return parts
