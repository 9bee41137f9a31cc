"""Resuming a run: the newest intact checkpoint, whatever TensorFlow's state file says.

A killed run resumes with the same command to the same result; a damaged newest
checkpoint (a crash mid-write, a full disk) costs one checkpoint interval, not the run.
"""
from __future__ import annotations

import glob
import os
from typing import TYPE_CHECKING, Optional

from absl import logging

from agents.errors import UsageError
from dsp_tf._keras import tf
from tensorflow.python.checkpoint import checkpoint_management  # noqa: E402  (after _keras: Keras 2 first)

if TYPE_CHECKING:
    from agents.training import Learner

#: What a checkpoint holds, by the Learner fields' names (the names in the checkpoint too).
#: "progress" came later: checkpoints written before it hold the others only.
CHECKPOINT_MEMBERS = ("agent", "env_steps", "last_prune", "wall_seconds", "progress", "best")

#: Members added after checkpoints were written: a checkpoint without one restores the others.
LATER_MEMBERS = ("progress", "best")


def _checkpoint_number(prefix: str) -> int:
    try:
        return int(os.path.basename(prefix).rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def _is_corruption(error: BaseException) -> bool:
    """What reading a damaged checkpoint raises (truncated, garbage or foreign files);
    running out of memory or an OS error is not the file's fault."""
    if isinstance(error, tf.errors.ResourceExhaustedError):
        return False
    return isinstance(error, (tf.errors.OpError, AssertionError, ValueError, IndexError))


def _checkpoint_for(learner: Learner, prefix: str) -> tf.train.Checkpoint:
    """The learner's checkpoint, or, for one written before a later member existed
    (progress history, the best actor), the same objects without it."""
    present = {name.split("/", 1)[0] for name, _ in tf.train.list_variables(prefix)}
    if all(m in present for m in LATER_MEMBERS):
        return learner.checkpoint
    return learner.checkpoint_of([m for m in CHECKPOINT_MEMBERS if m not in LATER_MEMBERS or m in present])


def restore_latest(learner: Learner, checkpoint_dir: str, repair: bool = True) -> Optional[str]:
    """Restores the newest intact checkpoint and returns its path (None: nothing to resume).

    The checkpoint files themselves are the truth, not TensorFlow's ``checkpoint``
    state file (a garbage one would otherwise restart the run from step 0 in
    silence). A corrupt newest checkpoint is reported and removed, and the run
    resumes from the newest intact one; if none is intact the run is refused.
    The state file is rewritten to list what is on disk, for the manager.
    ``repair=False`` (a reader such as dsp_cli.evaluate) changes no file.
    """
    prefixes = sorted((p[:-len(".index")] for p in glob.glob(os.path.join(checkpoint_dir, "ckpt-*.index"))),
                      key=_checkpoint_number, reverse=True)
    broken = []
    for prefix in prefixes:
        try:
            _checkpoint_for(learner, prefix).restore(prefix).assert_existing_objects_matched()
        except Exception as e:  # noqa: BLE001 - sorted by _is_corruption
            if not _is_corruption(e):
                raise
            broken.append((prefix, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"))
            continue
        for bad, reason in broken:
            logging.warning("checkpoint %s is unreadable (%s); %s %s", os.path.basename(bad), reason,
                            "removed it and resumed from" if repair else "used", os.path.basename(prefix))
            for path in glob.glob(bad + ".*") if repair else ():
                os.remove(path)
        if not repair:
            return prefix
        intact = [p for p in prefixes if p not in dict(broken)]
        # The non-deprecated core of tf.compat.v1.train.update_checkpoint_state (which prints a
        # deprecation notice on every resume); TensorFlow is pinned to 2.15 for this layer.
        checkpoint_management.update_checkpoint_state_internal(
            checkpoint_dir, prefix, sorted(intact, key=_checkpoint_number), save_relative_paths=True)
        return prefix
    state = os.path.join(checkpoint_dir, "checkpoint")
    if broken:
        raise UsageError(f"no intact checkpoint in '{checkpoint_dir}' ({os.path.basename(broken[0][0])}: "
                         f"{broken[0][1]}); use --overwrite to start the run afresh")
    if repair and os.path.exists(state):
        os.remove(state)  # names checkpoints that are not there: start afresh, as the files say
    return None
