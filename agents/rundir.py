"""What lives in a run directory, and refusing to mix two runs in one."""
from __future__ import annotations

from agents.errors import UsageError

import csv
import io
import json
import os
import shutil
from typing import Dict, List

from agents.config import RunConfig
from dsp_tf.files import atomic_write

CONFIG_FILE = "config.json"
PROGRESS_FILE = "progress.csv"
SUMMARY_FILE = "summary.json"
PROGRESS_FIELDS = ["step", "return", "episodes", "neurons", "weights", "flops", "sparsity",
                   "penalty", "layer_neurons", "steps_per_second"]


class RunDirectory:
    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.checkpoints = os.path.join(self.root, "checkpoints")
        self.summaries = os.path.join(self.root, "summaries")

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def prepare(self, cfg: RunConfig) -> None:
        """Creates the directory, or checks that an existing one belongs to this run.

        A directory made with other flags is refused (its checkpoints would be
        silently mixed with this run) unless ``--overwrite`` clears it first.
        """
        config_path = self.path(CONFIG_FILE)
        if os.path.exists(config_path):
            try:
                with open(config_path, encoding="utf-8") as f:
                    previous = json.load(f)
            except (OSError, ValueError):
                previous = None
            if previous != cfg.identity():
                if not cfg.overwrite:
                    changed = sorted(k for k in set(cfg.identity()) | set(previous or {})
                                     if (previous or {}).get(k) != cfg.identity().get(k))
                    raise UsageError(f"--root_dir '{self.root}' holds a run made with other flags "
                                     f"({', '.join(changed[:5]) or 'unreadable config.json'}); "
                                     "use --overwrite to replace it")
                shutil.rmtree(self.root)
        elif os.path.isdir(self.root) and os.listdir(self.root) and not cfg.overwrite:
            raise UsageError(f"--root_dir '{self.root}' is not empty and holds no run; "
                             "use --overwrite or another directory")
        elif os.path.isdir(self.root) and cfg.overwrite:
            shutil.rmtree(self.root)
        os.makedirs(self.checkpoints, exist_ok=True)
        atomic_write(config_path, json.dumps(cfg.identity(), indent=2, sort_keys=True))

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
        """Rows logged before the checkpoint we resume from (later ones will be redone)."""
        path = self.path(PROGRESS_FILE)
        if not os.path.exists(path):
            return []
        with open(path, encoding="utf-8", newline="") as f:
            return [row for row in csv.DictReader(f) if int(row["step"]) <= up_to_step]

    def write_progress(self, rows: List[Dict]) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=PROGRESS_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write(self.path(PROGRESS_FILE), buf.getvalue())

    def write_summary(self, summary: Dict) -> None:
        atomic_write(self.path(SUMMARY_FILE), json.dumps(summary, indent=2))
