"""What a finished run hands over: the shipped actor's files, its test evaluation and summary.json.

The shipped actor is the best validated one when the run validated (agents.selection), else the
last; the last actor is scored on the same test episodes too, for the record.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict

import numpy as np
from absl import logging

import dsp_tf
from agents.envs import is_driving
from agents.distill import summary_fields
from agents.evaluation import (DRIVING_METRICS, confirm_seeds, episode_metrics, evaluate_actor, final_test_seeds,
                               held_out_seeds, run_episodes)
from agents.inference import ActorMeta, inference_model, save_actor
from agents.numpy_policy import observation_stats
from agents.rundir import RunDirectory
from agents.selection import confirm
from agents.tails import cvar10, failure_rate

if TYPE_CHECKING:
    from agents.training import Learner


def gradient_steps(learner: Learner) -> int:
    """The actor's optimizer steps, beside its env steps: what a student costs besides the environment
    (issue 43). tf-agents counts one per PPO minibatch (checkpointed with the agent); --recipe=distill
    counts its supervised steps."""
    steps = int(learner.agent.train_step_counter.numpy())
    return steps + (0 if learner.distill is None else int(learner.distill.gradient_steps.numpy()))


def actor_meta(learner: Learner) -> ActorMeta:
    mean, var = observation_stats(learner.agent)
    spec = learner.envs[0].action_spec()
    discrete = np.issubdtype(spec.dtype, np.integer)
    return ActorMeta(env=learner.cfg.env, discrete=bool(discrete), obs_mean=mean.tolist(),
                     obs_var=var.tolist(),
                     action_low=None if discrete else np.broadcast_to(spec.minimum, spec.shape).tolist(),
                     action_high=None if discrete else np.broadcast_to(spec.maximum, spec.shape).tolist(),
                     action_log_std=None if discrete else learner.agent._actor_net.log_std.numpy().tolist())  # noqa: SLF001


def _stats(model) -> Dict[str, float]:
    s = dsp_tf.model_stats(model)
    return {"neurons": s["neurons"], "weights": s["weights"], "flops": s["flops"]}


def dense_stats(learner: Learner) -> Dict[str, float]:
    """Size before pruning: the actor's shape (weight pruners zero the shared kernels)."""
    return dsp_tf.metrics.architecture_stats(learner.mlp)


def finish(learner: Learner, run: RunDirectory, wall_seconds: float, eval_episodes: int,
           phase_seconds: Dict[str, float], policy_seconds: float, process_seconds: float) -> Dict:
    """Compacts, saves and evaluates the actor; writes summary.json.

    ``time_breakdown`` covers this process only (a resumed run's earlier
    processes are in ``wall_seconds`` but not broken down).
    """
    cfg = learner.cfg
    # Scoring takes a while on long episodes (Hopper: up to ~200k greedy steps): say what comes, not silence.
    parts = [f"the last actor on {eval_episodes} test episodes"] if learner.best.chosen else []
    if learner.best.chosen and cfg.confirm_top:
        parts.append(f"the best {cfg.confirm_top} validated actors on {cfg.confirm_episodes} fresh episodes each")
    parts.append(f"the shipped actor on {eval_episodes} test episodes" + (", its teacher on the same"
                                                                          if learner.teacher is not None else ""))
    logging.info("training done; playing %s", "; ".join(parts))
    last = learner.pruner.compact()
    selection = {"rule": "last", "chosen_step": int(learner.env_steps.numpy())}
    if learner.best.chosen:
        # The last actor is scored on the test episodes too, for the record (collapse counts), not chosen
        # by it; through the NumPy mirror of the masked actor (same outputs to float32 rounding), 20x faster.
        policy = learner.collect_policy
        policy.refresh()
        last_result = episode_metrics(run_episodes(policy.greedy, cfg.env, final_test_seeds(cfg.seed, eval_episodes),
                                                   policy.discrete), is_driving(cfg.env))
        rank, confirmation = 0, None
        if cfg.confirm_top:
            rank, candidates = confirm(learner.best, learner.actor_state, lambda: _confirmation_return(learner))
            confirmation = {"episodes": cfg.confirm_episodes, "top": cfg.confirm_top, "chosen_rank": rank,
                            "candidates": candidates}
        chosen_step, chosen_value = learner.best.candidates()[rank]
        with learner.best.swapped_in(learner.actor_state, rank):
            # Saved inside: a weight pruner's dense equivalent shares the live variables (tfmot's strip_pruning).
            compact, meta = learner.pruner.compact(), actor_meta(learner)
            save_actor(run.root, compact, learner.pruner.dense_equivalent(), meta)
        selection = {"rule": "best_validation", "chosen_step": chosen_step,
                     "validation_return": round(chosen_value, 3),
                     "validation_checks": int(learner.best.checks.numpy()),
                     "validation_episodes": cfg.validation_episodes, "validation_interval": cfg.validation_interval,
                     "last_step": int(learner.env_steps.numpy()),
                     "last_return_mean": last_result["return_mean"], "last_return_std": last_result["return_std"],
                     "last_compact_layers": [l.units for l in last.layers]}
        if confirmation is not None:
            selection["confirmation"] = confirmation
    else:
        compact, meta = last, actor_meta(learner)
        save_actor(run.root, compact, learner.pruner.dense_equivalent(), meta)
    result = evaluate_actor(inference_model(compact, meta), cfg.env, cfg.seed, eval_episodes, meta.discrete)
    teacher = {} if learner.teacher is None else _teacher_scores(learner, eval_episodes, result["returns"])
    summary = {
        "env": cfg.env, "method": cfg.method, "seed": cfg.seed,
        "env_steps": int(learner.env_steps.numpy()), "gradient_steps": gradient_steps(learner),
        "wall_seconds": round(wall_seconds, 1),
        "return_mean": result["return_mean"], "return_std": result["return_std"],
        "return_cvar10": round(cvar10(result["returns"]), 3),
        "eval_episodes": eval_episodes, "eval_returns": result["returns"], "eval_seeds": result["seeds"],
        "eval_length_mean": result["length_mean"],
        **({k: result[k] for k in DRIVING_METRICS} if is_driving(cfg.env) else {}),
        "dense": dense_stats(learner), "compact": _stats(compact),
        "compact_layers": [l.units for l in compact.layers],
        "threshold": cfg.threshold, "ranking": cfg.ranking, "use_bias": cfg.use_bias, "reg_strength": cfg.reg_strength,
        "final_sparsity": cfg.final_sparsity, "selection": selection, **teacher,
        **(summary_fields(learner) if learner.distill is not None else {}),
        "time_breakdown": {"process_seconds": round(process_seconds, 2),
                           "policy_inference_seconds": round(policy_seconds, 2),
                           **{f"{k}_seconds": round(v, 2) for k, v in phase_seconds.items()}},
    }
    run.write_summary(summary)
    return summary


def teacher_validation_return(learner: Learner) -> float:
    """The teacher on the student's validation episodes: what a validation is compared with
    (--stop_share) and what summary.json states beside the student's."""
    cfg = learner.cfg
    return float(np.mean(learner.teacher.returns(cfg.env, held_out_seeds(cfg.seed, cfg.validation_episodes))))


def _confirmation_return(learner: Learner) -> float:
    """The masked actor now in the live variables on the confirmation episodes (NumPy mirror)."""
    cfg, policy = learner.cfg, learner.collect_policy
    policy.refresh()
    return float(np.mean([e.ret for e in run_episodes(policy.greedy, cfg.env,
                                                      confirm_seeds(cfg.seed, cfg.confirm_episodes), policy.discrete)]))


def _teacher_scores(learner: Learner, eval_episodes: int, student_returns) -> Dict:
    """The teacher on the student's own test and validation episodes, so the ratio student/teacher
    (of means, of worst deciles, and the student's failures against the teacher's median) is read
    from one summary.json; and the teacher's env steps, so compute is stated whole."""
    cfg, teacher = learner.cfg, learner.teacher
    test = teacher.returns(cfg.env, final_test_seeds(cfg.seed, eval_episodes))  # the student's test episodes
    validation = teacher_validation_return(learner)
    return {"teacher": teacher.name, "teacher_source": teacher.record(cfg.root_dir),
            "teacher_return": float(np.mean(test)), "teacher_return_std": float(np.std(test)),
            "teacher_return_cvar10": round(cvar10(test), 3),
            "failure_rate": round(failure_rate(student_returns, test), 4),
            "teacher_validation_return": round(validation, 3),
            "teacher_env_steps": teacher.env_steps, "teacher_layers": teacher.hidden_layers,
            "distill_coef": cfg.distill_coef}
