"""Tables and figures from a directory of finished runs (a sweep or any tree of runs).

    python -m dsp_tf.report --sweep_dir=runs/sweep_cartpole [--output_dir=docs]

Writes results.csv, results.md (return mean ± std over seeds; neurons, weights
and FLOPs and the share removed) and PNGs: learning curves (paper Fig. 9),
|W| heat maps of the first two actor layers (Fig. 10), hidden neurons per
layer over training (Fig. 11) and the λ × pruning-ratio grid (Figs. 3–8).
With --shrink_dir, also shrink.csv and a section on dsp_tf.shrink's students
against their teachers; with --ladder_dir, a section on the size searches
(--keep); with --export_dir, a section on the plain-C policy per target from
tflite_export's reports.

This is the command body only: report_runs reads and groups the runs,
report_figures draws, report_markdown writes the text, report_shrink the
students', report_ladder the size searches', report_export the plain-C policy's, study.paper holds the paper's numbers.
"""
from __future__ import annotations

import os
import sys
from typing import Dict, Optional

from absl import flags

from agents.layout import SUPERSEDED_DIR
from study.report_figures import draw_figures
from study.report_markdown import markdown, results_document, write_csv
from study.report_markdown import driving_table  # noqa: F401  (tests/test_driving.py imports it from here)
from study.report_export import export_section, read_exports
from study.report_shrink import load_students, shrink_csv, shrink_section
from study.report_ladder import ladder_section, load_searches
from study.report_runs import aggregate, curve_source, left_out_runs, load_runs, shipped_settings, superseded_runs
from dsp_cli import cli
from dsp_tf.errors import UsageError
from dsp_tf.files import atomic_write

def define_flags() -> None:
    """Defined on demand so that importing this module never claims flag names."""
    flags.DEFINE_string("sweep_dir", None, "Directory searched recursively for finished runs.")
    flags.DEFINE_string("output_dir", None, "Where results and figures go (default: --sweep_dir).")
    flags.DEFINE_string("figures_subdir", "figures", "Subdirectory of --output_dir for PNGs.")
    flags.DEFINE_string("results_markdown", None,
                        "Also write a full results document here (e.g. docs/RESULTS.md): --preamble, then per "
                        "environment the table, the paper's figures, DSP vs small, and the figures.")
    flags.DEFINE_string("preamble", None, "Markdown file placed at the top of --results_markdown.")
    flags.DEFINE_string("shrink_dir", None, "Also report the students of dsp_tf.shrink under this directory "
                                            "(<env>/<arm>_s<seed>/): shrink.csv, and a section of "
                                            "--results_markdown.")
    flags.DEFINE_string("ladder_dir", None, "Also a section of --results_markdown on the size searches of "
                                            "dsp_tf.shrink --keep under this directory (<name>/shrink.json).")
    flags.DEFINE_string("export_dir", None, "Also a section of --results_markdown on the plain-C policy per target, "
                                            "from the export reports (<name>.json copies of export_report.json) "
                                            "in this directory.")


FLAGS = flags.FLAGS


def make_report(sweep_dir: str, output_dir: str, figures_subdir: str = "figures",
                results_markdown: Optional[str] = None, preamble: Optional[str] = None,
                shrink_dir: Optional[str] = None, export_dir: Optional[str] = None,
                ladder_dir: Optional[str] = None) -> Dict[str, object]:
    """Everything is checked (runs, flagfiles, the preamble) before the first file is written, so a
    refused report leaves the output directory as it was."""
    import matplotlib

    matplotlib.use("Agg")
    runs, unreadable, superseded = _read_tree(sweep_dir)
    rows = aggregate(runs)
    mixed, duplicates = left_out_runs(runs)
    for run_dir, why in mixed:
        print(f"dsp_tf.report: left out '{run_dir}': {why}", file=sys.stderr)
    if duplicates:
        print(f"dsp_tf.report: {len(duplicates)} run(s) repeat a seed of their cell and are left out of the "
              f"statistics (listed in --results_markdown)", file=sys.stderr)
    for env, method in sorted({(r["env"], r["method"]) for r in rows}):
        shipped_settings(env, method)  # a broken flagfile stops the report before it writes anything
    text = _preamble(preamble) if results_markdown else ""
    students, left_students = _read_students(shrink_dir) if shrink_dir else ({}, [])
    exports, left_exports = read_exports(export_dir) if export_dir else ([], [])
    searches, left_searches = _read_searches(ladder_dir) if ladder_dir else ([], [])
    for name, why in left_exports:
        print(f"dsp_tf.report: left out export report '{name}': {why}", file=sys.stderr)
    figures = os.path.join(output_dir, figures_subdir)
    os.makedirs(figures, exist_ok=True)
    write_csv(rows, os.path.join(output_dir, "results.csv"))
    atomic_write(os.path.join(output_dir, "results.md"), markdown(rows))
    sources = {env: curve_source(rows, env) for env in sorted({r["env"] for r in rows})}
    written = [name for env in sources for name in draw_figures(rows, env, figures, sources[env])]
    if students:
        atomic_write(os.path.join(output_dir, "shrink.csv"), shrink_csv(students))
    if results_markdown:
        rel = os.path.relpath(figures, os.path.dirname(os.path.abspath(results_markdown)))
        document = results_document(rows, written, rel, text, unreadable, duplicates, mixed, len(superseded), sources)
        if students:
            document += "\n" + shrink_section(students, left_students, shrink_dir)
        if searches or left_searches:
            document += "\n" + ladder_section(searches, left_searches, ladder_dir)
        if exports:
            document += "\n" + export_section(exports, left_exports, export_dir)
        atomic_write(results_markdown, document)
    return {"runs": len(runs), "rows": rows, "figures": written, "unreadable": unreadable,
            "students": sum(len(arm) for by_arm in students.values() for arm in by_arm.values())}


def _read_searches(ladder_dir: str):
    """Size searches, and the ones left out, each named on stderr."""
    if not os.path.isdir(ladder_dir):
        raise UsageError(f"--ladder_dir '{ladder_dir}' does not exist")
    searches, left_out = load_searches(ladder_dir)
    for root, why in left_out:
        print(f"dsp_tf.report: left out search '{root}': {why}", file=sys.stderr)
    return searches, left_out


def _read_students(shrink_dir: str):
    """Students by env and arm, and the ones left out, each named on stderr; none at all is a usage error."""
    if not os.path.isdir(shrink_dir):
        raise UsageError(f"--shrink_dir '{shrink_dir}' does not exist")
    students, left_out = load_students(shrink_dir)
    for run_dir, why in left_out:
        print(f"dsp_tf.report: left out student '{run_dir}': {why}", file=sys.stderr)
    if not students:
        raise UsageError(f"no finished students (<env>/<arm>_s<seed>/summary.json) under --shrink_dir '{shrink_dir}'")
    return students, left_out


def _read_tree(sweep_dir: str):
    """(runs, unreadable, superseded) of ``sweep_dir``, each left-out run named on stderr; a tree with
    nothing readable is a usage error, not an empty report."""
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
    return runs, unreadable, superseded


def _preamble(path: Optional[str]) -> str:
    if not path:
        return ""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise UsageError(f"cannot read --preamble '{path}': {e}") from None


def _main() -> None:
    if not FLAGS.sweep_dir:
        raise UsageError("--sweep_dir is required")
    out = FLAGS.output_dir or FLAGS.sweep_dir
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--output_dir '{out}' is not a directory")
    result = make_report(FLAGS.sweep_dir, out, FLAGS.figures_subdir, FLAGS.results_markdown, FLAGS.preamble,
                         FLAGS.shrink_dir, FLAGS.export_dir, FLAGS.ladder_dir)
    skipped = f", skipped {len(result['unreadable'])} unreadable (named above)" if result["unreadable"] else ""
    students = f", {out}/shrink.csv ({result['students']} students)" if result["students"] else ""
    print(f"{result['runs']} runs in {len(result['rows'])} groups{skipped}; wrote {out}/results.csv, "
          f"{out}/results.md{students} and {len(result['figures'])} figures")


def main() -> None:
    define_flags()
    cli.own_flags_are_key(__name__)
    cli.run(_main, prog="dsp_tf.report")


if __name__ == "__main__":
    main()
