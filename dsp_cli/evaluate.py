"""Evaluate a finished or interrupted training run with its greedy compact actor.

    python -m dsp_tf.evaluate --root_dir=runs/cartpole [--eval_episodes=20]

A finished run is evaluated from its saved actor; an interrupted one is rebuilt
from config.json and its latest checkpoint and compacted first. Episodes use
the run's evaluation seeds, which training never uses. Writes evaluation.json.
"""
from __future__ import annotations

import json
import os

from absl import flags

from agents import inference
from agents.config import from_dict
from agents.envs import is_driving
from agents.evaluation import evaluate_actor
from agents.layout import EVALUATION_FILE
from agents.rundir import RunDirectory
from agents.checkpoints import restore_latest
from agents.results import actor_meta
from agents.training import build_learner
from dsp_cli import cli
from dsp_tf.errors import UsageError
from dsp_tf.files import atomic_write

def define_flags() -> None:
    """Defined on demand so that importing this module never claims flag names."""
    flags.DEFINE_string("root_dir", None, "Run directory written by dsp_tf.train.")
    flags.DEFINE_integer("eval_episodes", None, "Episodes (default: the run's --eval_episodes).")
    flags.DEFINE_enum("actor", "compact", ["compact", "dense"],
                      "Which saved actor of a finished run: compact or the full-size equivalent.")


FLAGS = flags.FLAGS


def evaluate_run(root_dir: str, episodes=None, actor: str = "compact") -> dict:
    if root_dir and os.path.exists(root_dir) and not os.path.isdir(root_dir):
        raise UsageError(f"run directory '{root_dir}' is not a directory")
    if not root_dir or not os.path.isdir(root_dir):
        raise UsageError(f"run directory '{root_dir}' does not exist")
    run = RunDirectory(root_dir)
    cfg = from_dict({**run.read_config(), "root_dir": root_dir})
    # By default the episodes of training's final evaluation (--eval_episodes is not in config.json).
    episodes = run.final_eval_episodes(cfg.eval_episodes) if episodes is None else episodes
    if episodes <= 0:
        raise UsageError(f"--eval_episodes must be > 0, got {episodes}")
    if inference.has_saved_actor(run.root):
        mlp, meta = inference.load_actor(run.root, actor)
        source = f"saved {actor} actor"
    else:
        learner = build_learner(cfg)
        if not restore_latest(learner, run.checkpoints, repair=False):
            raise UsageError(f"'{run.root}' has no saved actor and no checkpoint to evaluate")
        at = f"checkpoint at env step {int(learner.env_steps.numpy())}"
        if learner.best.chosen:  # the actor the run would ship if it ended now
            with learner.best.swapped_in(learner.actor_state):
                mlp, meta = learner.pruner.compact(), actor_meta(learner)
            source = f"best validated actor so far, of step {int(learner.best.step.numpy())} ({at})"
        else:
            mlp, meta = learner.pruner.compact(), actor_meta(learner)
            source = at
    result = evaluate_actor(inference.inference_model(mlp, meta), cfg.env, cfg.seed, episodes, meta.discrete)
    result.update({"env": cfg.env, "method": cfg.method, "seed": cfg.seed, "source": source,
                   "hidden_units": [l.units for l in mlp.layers[:-1]]})
    atomic_write(run.path(EVALUATION_FILE), json.dumps(result, indent=2))
    return result


def _main() -> None:
    if not FLAGS.root_dir:
        raise UsageError("--root_dir is required")
    r = evaluate_run(FLAGS.root_dir, FLAGS.eval_episodes, FLAGS.actor)
    print(f"{r['env']} {r['method']} seed {r['seed']} ({r['source']}, hidden {r['hidden_units']}): "
          f"return {r['return_mean']:.2f} ± {r['return_std']:.2f} over {len(r['returns'])} episodes "
          f"(mean length {r['length_mean']:.1f} steps)"
          + (f", collision rate {r['collision_rate']:.2f} ({r['collisions']} of {len(r['returns'])}), "
             f"mean speed {r['speed_mean']:.1f} m/s" if is_driving(r["env"]) else ""))


def main() -> None:
    define_flags()
    cli.own_flags_are_key(__name__)
    cli.run(_main, prog="dsp_tf.evaluate")


if __name__ == "__main__":
    main()
