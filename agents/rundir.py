"""What lives in a run directory, and refusing to mix two runs in one."""
from __future__ import annotations

from agents.errors import UsageError

import atexit
import csv
import fcntl
import glob
import io
import json
import os
import shutil
from typing import Dict, List, Optional

from agents.config import LEGACY_DEFAULTS, RunConfig
from dsp_tf.files import atomic_write

from agents.layout import (CHECKPOINT_DIR, CONFIG_FILE, LOCK_FILE, PROGRESS_FILE, SEARCH_FILE, SUMMARIES_DIR,
                           SUMMARY_FILE)
PROGRESS_FIELDS = ["step", "return", "episodes", "neurons", "weights", "flops", "sparsity",
                   "penalty", "layer_neurons", "steps_per_second", "eval_return", "validation_return"]



class RunDirectory:
    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.checkpoints = os.path.join(self.root, CHECKPOINT_DIR)
        self.summaries = os.path.join(self.root, SUMMARIES_DIR)
        self._lock_fd = None

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def prepare(self, cfg: RunConfig) -> None:
        """Creates and locks the directory, or checks that an existing one belongs to this run.

        A directory made with other flags is refused (its checkpoints would be
        silently mixed with this run); one made with the same flags is resumed.
        ``--overwrite`` clears either first and starts afresh. The
        lock is held until the process exits, so a second process on the same
        directory (even with ``--overwrite``) is refused instead of wiping it.
        If the directory is refused, nothing this call created is left behind.
        The teacher's own files are never the run's: that is refused, with or without --overwrite.
        """
        self._claim(CONFIG_FILE, cfg.identity(), cfg.overwrite, cfg.teacher, LEGACY_DEFAULTS)
        try:
            os.makedirs(self.checkpoints, exist_ok=True)
        except OSError as e:
            raise UsageError(f"cannot write to --root_dir '{self.root}': {e.strerror}") from None
        atexit.register(self._remove_partial_files)

    def finished_as(self, identity_file: str, identity: Dict, legacy: Dict) -> Optional[Dict]:
        """The summary of this very run when it is finished (same identity, summary.json there), read
        without creating, locking or writing anything: the same command again on a finished run (an
        archived one included) is answered, not touched."""
        try:
            with open(self.path(identity_file), encoding="utf-8") as f:
                previous = json.load(f)
        except (OSError, ValueError):
            return None
        other = SEARCH_FILE if identity_file == CONFIG_FILE else None
        if not isinstance(previous, dict) or with_legacy(previous, legacy) != identity or \
                (other and os.path.exists(self.path(other))):
            return None
        return read_finished_summary(self.root)

    def prepare_search(self, identity: Dict, overwrite: bool, teacher: str, legacy: Optional[Dict] = None) -> None:
        """The same claim for the root of a size search (dsp_tf.shrink --keep), whose identity is
        the search's settings (search.json): held for the whole ladder and the final copy, so a
        second search (or a train) into the same root is refused instead of mixing with it.
        ``legacy``: what a setting added later meant to a search.json without it."""
        self._claim(SEARCH_FILE, identity, overwrite, teacher, legacy or {})

    def _claim(self, identity_file: str, identity: Dict, overwrite: bool, teacher: str, legacy: Dict) -> None:
        refuse_teacher_overlap(self.root, teacher)
        created = not os.path.lexists(self.root)
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError as e:
            raise UsageError(f"cannot create --root_dir '{self.root}': {e.strerror}") from None
        try:
            self._lock()
            same = self._check_or_clear(identity_file, identity, overwrite, legacy)
            self._remove_leftovers()
            if not same:  # a resumed run's identity is already there: nothing rewritten
                atomic_write(self.path(identity_file), json.dumps(identity, indent=2, sort_keys=True))
        except OSError as e:
            self._undo(created)
            raise UsageError(f"cannot write to --root_dir '{self.root}': {e.strerror}") from None
        except BaseException:
            self._undo(created)
            raise

    def _undo(self, created: bool) -> None:
        """Removes what this call created, while still holding the lock (never another
        process's directory: without the lock nothing is touched)."""
        if self._lock_fd is None:
            return
        if created:
            shutil.rmtree(self.root, ignore_errors=True)
        elif self._created_lock:
            os.remove(self.path(LOCK_FILE))
        os.close(self._lock_fd)
        self._lock_fd = None

    def _remove_partial_files(self) -> None:
        """At exit, however the process ends short of kill -9: a checkpoint or file it left half-written
        (a full disk, Ctrl-C, SIGTERM) is removed, not left for the next run; nothing on a normal exit."""
        if self._lock_fd is not None and os.path.isdir(self.root):
            try:
                self._remove_leftovers()
            except OSError:
                pass  # the next run removes them (prepare)

    def _lock(self) -> None:
        self._created_lock = not os.path.exists(self.path(LOCK_FILE))
        fd = os.open(self.path(LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise UsageError(f"--root_dir '{self.root}' is in use by another training process "
                             f"(pid {owner})") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def _check_or_clear(self, identity_file: str, identity: Dict, overwrite: bool, legacy: Dict) -> bool:
        """True when the directory already holds this run (resume it); clears it under --overwrite;
        refuses another run's directory, or one of another command (a train run vs a size search)."""
        contents = [n for n in os.listdir(self.root) if n != LOCK_FILE]
        other_file = SEARCH_FILE if identity_file == CONFIG_FILE else CONFIG_FILE
        if os.path.exists(self.path(identity_file)):
            try:
                with open(self.path(identity_file), encoding="utf-8") as f:
                    previous = json.load(f)
            except (OSError, ValueError):
                previous = None
            if isinstance(previous, dict):
                previous = with_legacy(previous, legacy)
            if previous == identity and not overwrite and not (
                    identity_file == CONFIG_FILE and os.path.exists(self.path(SEARCH_FILE))):
                return True  # the same run: resume it
            if not overwrite:
                if identity_file == CONFIG_FILE and os.path.exists(self.path(SEARCH_FILE)):
                    raise UsageError(f"--root_dir '{self.root}' holds a size search of dsp_tf.shrink, not a "
                                     "dsp_tf.train run; use another directory (or --overwrite to replace it)")
                changed = sorted(k for k in set(identity) | set(previous or {})
                                 if (previous or {}).get(k) != identity.get(k))
                what = "a run" if identity_file == CONFIG_FILE else "a size search"
                raise UsageError(f"--root_dir '{self.root}' holds {what} made with other flags "
                                 f"({', '.join(changed[:5]) or f'unreadable {identity_file}'}); "
                                 "use --overwrite to replace it")
        elif contents and not overwrite:
            if os.path.exists(self.path(other_file)):
                what = "a dsp_tf.train run" if other_file == CONFIG_FILE else "a size search of dsp_tf.shrink"
                raise UsageError(f"--root_dir '{self.root}' holds {what}, not this command's; use another "
                                 "directory (or --overwrite to replace it)")
            raise UsageError(f"--root_dir '{self.root}' is not empty and holds no run; "
                             "use --overwrite or another directory")
        for name in contents:  # --overwrite: start afresh, keeping only the lock we hold
            path = self.path(name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        return False

    def _remove_leftovers(self) -> None:
        """Temporary files of a killed process: half-written actors and checkpoints."""
        for pattern in ("*.tmp[0-9]*", os.path.join("checkpoints", "*_temp*"),
                        os.path.join("checkpoints", "*.tmp[0-9]*")):
            for path in glob.glob(os.path.join(self.root, pattern)):
                if os.path.isdir(path):
                    shutil.rmtree(path)
                else:
                    os.remove(path)

    def read_config(self) -> Dict:
        path = self.path(CONFIG_FILE)
        if not os.path.exists(path):
            raise UsageError(f"'{self.root}' is not a run directory (no {CONFIG_FILE})")
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except ValueError as e:
            raise UsageError(f"'{path}' is not valid JSON: {e}") from None

    def read_progress(self, up_to_step: int) -> List[Dict[str, str]]:
        """Rows of progress.csv up to ``up_to_step`` (for checkpoints that predate the
        progress history stored in the checkpoint itself)."""
        path = self.path(PROGRESS_FILE)
        if not os.path.exists(path):
            return []
        with open(path, encoding="utf-8", newline="") as f:
            return [row for row in parse_progress(f.read()) if int(row["step"]) <= up_to_step]

    def write_progress(self, rows: List[Dict]) -> None:
        atomic_write(self.path(PROGRESS_FILE), progress_text(rows))

    def final_eval_episodes(self, default: int) -> int:
        """How many episodes training's final evaluation ran (summary.json); ``default`` before it did.

        Not in config.json (it is not part of a run's identity), but a later evaluation or
        export should judge the actor on those same episodes by default."""
        summary = read_finished_summary(self.root)
        try:
            return int(summary["eval_episodes"])
        except (ValueError, KeyError, TypeError):  # no readable summary (None), or no such entry
            return default

    def write_summary(self, summary: Dict) -> None:
        atomic_write(self.path(SUMMARY_FILE), json.dumps(summary, indent=2))


def with_legacy(previous: Dict, legacy: Dict) -> Dict:
    """A stored identity read as today's: a key it lacks (a setting added since) takes the value it had
    then, ``legacy``'s, one level into a nested identity too (a size search's student settings)."""
    merged = {**legacy, **previous}
    for key, value in legacy.items():
        if isinstance(value, dict) and isinstance(previous.get(key), dict):
            merged[key] = {**value, **previous[key]}
    return merged


def refuse_teacher_overlap(root: str, teacher: str) -> None:
    """A run never writes where its teacher lives: not the teacher's directory, not a directory
    holding the teacher file, not one inside the teacher's run (--overwrite would wipe the teacher)."""
    if not teacher:
        return
    mine, theirs = os.path.realpath(root), os.path.realpath(teacher)
    if mine == theirs:
        raise UsageError(f"--root_dir '{root}' is the teacher's own directory: the student would overwrite it; "
                         "choose another --root_dir")
    if theirs.startswith(mine + os.sep):
        raise UsageError(f"--root_dir '{root}' holds the teacher '{teacher}': the student would overwrite it; "
                         "choose another --root_dir")
    if mine.startswith(theirs + os.sep):
        raise UsageError(f"--root_dir '{root}' is inside the teacher's run '{teacher}'; choose another --root_dir")


def read_finished_summary(root: str) -> Optional[Dict]:
    """A finished run's summary.json (its presence marks a finished run); None when there is none."""
    path = os.path.join(root, SUMMARY_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            summary = json.load(f)
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def progress_text(rows: List[Dict]) -> str:
    buf = io.StringIO()
    # restval: rows logged before a column existed (or between evaluations) leave it empty.
    writer = csv.DictWriter(buf, fieldnames=PROGRESS_FIELDS, lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def parse_progress(text: str) -> List[Dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))
