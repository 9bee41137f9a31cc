"""Copy the light part of finished runs into a directory that is kept under version control.

    python -m dsp_tf.archive --source_dir=runs --archive_dir=docs/runs

A run directory is mostly checkpoints and TensorBoard events (megabytes), but the
report needs only its config, summary, progress log and saved actors (kilobytes).
Keeping those in the repository lets docs/RESULTS.md be regenerated, and a
half-finished comparison be continued, on a machine that never saw the runs:
``dsp_tf.report --sweep_dir=docs/runs`` reads an archive like any run tree, and
``dsp_tf.sweep --archived_dir=docs/runs/<sweep>`` skips the points archived there.
"""
from __future__ import annotations

import glob
import json
import os
from typing import List, Optional, Tuple

from absl import flags

from agents.config import from_dict
from agents.layout import ARCHIVED_FILES, CONFIG_FILE, SHRINK_FILE, SUMMARY_FILE, SUPERSEDED_DIR
from dsp_cli import cli
from dsp_tf.errors import UsageError
from dsp_tf.files import atomic_write

#: What the report and the exporter read from a finished run; everything else stays behind.
KEPT_FILES = ARCHIVED_FILES


def define_flags() -> None:
    """Defined on demand so that importing this module never claims flag names."""
    flags.DEFINE_string("source_dir", None, "Tree of run directories (searched recursively).")
    flags.DEFINE_string("archive_dir", None, "Where the light copies go, under the same relative paths.")


FLAGS = flags.FLAGS


def _kept_nothing(run_dir: str) -> bool:
    """A size search that finished without a student: ``dsp_tf.shrink --keep`` writes its shrink.json with
    ``chosen_ratio`` null and stops, so that ladder is its whole result. (A search that chose one writes
    shrink.json before copying the student in, summary.json last: it is finished only with that summary.)"""
    try:
        with open(os.path.join(run_dir, SHRINK_FILE), encoding="utf-8") as f:
            record = json.load(f)
        return record["chosen_ratio"] is None and isinstance(record["ladder"], list)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def finished_runs(source_dir: str) -> List[str]:
    """Run directories under ``source_dir`` that hold a summary, i.e. that finished, and size searches that
    finished keeping no ratio (``_kept_nothing``)."""
    runs = {os.path.dirname(p) for p in glob.glob(os.path.join(source_dir, "**", SUMMARY_FILE), recursive=True)}
    searches = {os.path.dirname(p) for p in glob.glob(os.path.join(source_dir, "**", SHRINK_FILE), recursive=True)}
    return sorted(runs | {d for d in searches if _kept_nothing(d)})


def _settings(run_dir: str) -> Optional[dict]:
    """What a run computed with (config.json without where or how verbosely it ran); for a search that kept
    nothing (no config.json), its whole ladder record; None if unreadable."""
    try:
        if not os.path.exists(os.path.join(run_dir, CONFIG_FILE)) and os.path.exists(os.path.join(run_dir, SHRINK_FILE)):
            with open(os.path.join(run_dir, SHRINK_FILE), encoding="utf-8") as f:
                return {"search": json.load(f)}
        with open(os.path.join(run_dir, CONFIG_FILE), encoding="utf-8") as f:
            return from_dict(json.load(f)).identity()
    except Exception:  # noqa: BLE001 - an unreadable config is compared as "not the same run"
        return None


def superseded_copy(archive_dir: str, rel: str, run_dir: str) -> Optional[str]:
    """Where the archive's tree keeps run ``run_dir`` (at ``rel``) as superseded, if it does: under the
    tree's superseded/ directory, for an archive of one sweep (docs/runs/<sweep>) or of the whole tree,
    with the same settings. A re-run under the same name with other settings (a re-run is why runs get
    superseded) is a new run and is archived."""
    tree, sweep = os.path.split(os.path.normpath(archive_dir))
    mine = _settings(run_dir)
    for path in (os.path.join(tree, SUPERSEDED_DIR, sweep, rel), os.path.join(archive_dir, SUPERSEDED_DIR, rel)):
        finished = os.path.isfile(os.path.join(path, SUMMARY_FILE)) or _kept_nothing(path)
        if finished and (mine is None or _settings(path) == mine):
            return path
    return None


def archive_runs(source_dir: str, archive_dir: str) -> Tuple[List[str], List[Tuple[str, str]]]:
    """Copies the kept files of every finished run; returns the archived runs' relative paths and
    (relative path, superseded copy) for each run left out because the archive keeps it as superseded.

    Each file is written atomically and summary.json goes last, so an
    interrupted archive never holds a run that looks finished but lacks its actor.
    A run moved to superseded/ stays there: a later archive of the sweep that made it
    does not copy it back among the current runs (a re-run with other settings is archived).
    """
    if not source_dir or not os.path.isdir(source_dir):
        raise UsageError(f"source directory '{source_dir}' does not exist")
    if not archive_dir:
        raise UsageError("--archive_dir is required")
    archived, skipped, todo = [], [], []
    for run in finished_runs(source_dir):
        rel = os.path.relpath(run, source_dir)
        dest = os.path.join(archive_dir, rel)
        if os.path.abspath(dest) == os.path.abspath(run):
            continue
        kept_as = superseded_copy(archive_dir, rel, run)
        if kept_as is not None:
            skipped.append((rel, kept_as))
            continue
        _refuse_other_run(dest, run)
        todo.append((run, rel, dest))
    for run, rel, dest in todo:  # every destination checked before the first file is copied
        os.makedirs(dest, exist_ok=True)
        for name in sorted(KEPT_FILES, key=lambda n: n == SUMMARY_FILE):
            src = os.path.join(run, name)
            if os.path.exists(src):
                with open(src, "rb") as f:
                    atomic_write(os.path.join(dest, name), f.read())
        archived.append(rel)
    return archived, skipped


def _refuse_other_run(dest: str, run: str) -> None:
    """The archive keeps one run under a name: a copy of the same run (same settings) is updated, another
    run there (other settings, or settings that cannot be read) is never written over."""
    if not os.path.exists(os.path.join(dest, CONFIG_FILE)) and not os.path.exists(os.path.join(dest, SHRINK_FILE)):
        return
    theirs = _settings(dest)
    if theirs is None or theirs != _settings(run):
        raise UsageError(f"'{dest}' already holds another run (other settings than '{run}'): nothing archived; "
                         f"move it to {SUPERSEDED_DIR}/ or archive into another --archive_dir")


def _main() -> None:
    if not FLAGS.source_dir:
        raise UsageError("--source_dir is required")
    archived, skipped = archive_runs(FLAGS.source_dir, FLAGS.archive_dir)
    for rel, kept_as in skipped:
        print(f"not archived: {rel} (superseded, kept in {kept_as})")
    print(f"archived {len(archived)} finished run(s) from {FLAGS.source_dir} into {FLAGS.archive_dir}")


def main() -> None:
    define_flags()
    cli.own_flags_are_key(__name__)
    cli.run(_main, prog="dsp_tf.archive")


if __name__ == "__main__":
    main()
