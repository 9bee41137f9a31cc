"""The training loop: collect → advantages → PPO epochs → prune → log → checkpoint.

Read it top to bottom in ``train`` and ``_Loop.iteration``. Everything a resumed run needs (networks,
masks, optimizer slots, normalisers, counters) is in one tf.train.Checkpoint,
and both action sampling and minibatch shuffling use stateless seeds derived
from (run seed, env step), so resuming reproduces the uninterrupted run.
Environments are re-seeded at every checkpoint boundary for the same reason.
"""
from __future__ import annotations

import collections
import contextlib
import functools
import glob
import math
import os
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from absl import logging
from tf_agents.specs import tensor_spec

import dsp_tf
from agents.config import LEGACY_DEFAULTS, RunConfig, from_dict
from agents.layout import CONFIG_FILE
from agents.envs import GymnasiumEnvironment, is_driving, training_seed
from agents.errors import UsageError
from agents.evaluation import held_out_seeds, run_episodes
from agents.networks import ActorNetwork, build_critic, build_mlp
from agents.ppo import ClipRange, PrunedPPOClipAgent, clip_epsilon, make_agent, penalty_scale
from agents.distill import Distiller, DistillState
from agents.selection import BestActor
from agents.teacher import Teacher, distillation, load_teacher, start_from_teacher
from dsp_tf.stopping import stop_point, stop_points
from dsp_tf.methods import get_method, make_pruner
from dsp_tf.pruner_base import PrunerBase
from dsp_tf.quiet import quiet_native_output
from agents.numpy_policy import NumpyCollectPolicy
from agents.rollout import DiscountedReturns, RolloutCollector
from agents.rundir import RunDirectory, parse_progress, progress_text
from dsp_tf._keras import keras, tf
from agents.checkpoints import CHECKPOINT_MEMBERS, restore_latest
from agents.results import dense_stats, finish, teacher_validation_return


@dataclass
class Learner:
    """The trainable objects of a run, built identically for training and evaluation."""
    cfg: RunConfig
    envs: List[GymnasiumEnvironment]
    mlp: keras.Model
    pruner: PrunerBase
    agent: PrunedPPOClipAgent
    collect_policy: NumpyCollectPolicy
    env_steps: tf.Variable
    last_prune: tf.Variable
    wall_seconds: tf.Variable
    progress: tf.Variable  # progress.csv's text up to the checkpoint: a lost file is restored from it
    best: BestActor  # the best validated actor so far (agents.selection)
    penalty_scale: tf.Variable  # set before every update (agents.ppo.penalty_scale)
    clip: Optional[ClipRange]  # set before every update with --anneal_clip
    teacher: Optional[Teacher]  # --teacher: the policy the student starts from and is distilled from
    distill: Optional[DistillState] = None  # --recipe=distill: its replay, optimizer and gradient steps

    @property
    def actor_state(self) -> List[tf.Variable]:
        return actor_state(self.pruner, self.agent)


    def checkpoint_of(self, members: Sequence[str] = CHECKPOINT_MEMBERS) -> tf.train.Checkpoint:
        """A checkpoint of some members: restoring one written before a member existed needs one without it."""
        # --recipe=distill's own state; a PPO run's checkpoint is what it always was.
        extra = {} if self.distill is None else {"distill": self.distill}
        return tf.train.Checkpoint(**{name: getattr(self, name) for name in members}, **extra)

    @functools.cached_property
    def checkpoint(self) -> tf.train.Checkpoint:
        """One object for the run, so tf.train.CheckpointManager saves what restore_latest restored."""
        return self.checkpoint_of()


def actor_state(pruner: PrunerBase, agent: PrunedPPOClipAgent) -> List[tf.Variable]:
    """Everything the deployable actor is made of: weights, masks, observation normaliser."""
    return list(pruner.model.variables) + list(agent._observation_normalizer.variables)  # noqa: SLF001


def build_learner(cfg: RunConfig, teacher: Optional[Teacher] = None) -> Learner:
    # The teacher (and its critic, built from its own seed) first: the student's seed then starts afresh.
    if teacher is None and cfg.teacher:
        teacher = load_teacher(cfg.teacher, cfg.env)
    teacher_critic = _teacher_critic(teacher) if teacher is not None else None
    keras.utils.set_random_seed(cfg.seed)
    envs = [GymnasiumEnvironment(cfg.env) for _ in range(cfg.num_envs)]
    time_step_spec = tensor_spec.from_spec(envs[0].time_step_spec())
    action_spec = tensor_spec.from_spec(envs[0].action_spec())
    obs_dim = int(np.prod(time_step_spec.observation.shape))
    discrete = tensor_spec.is_discrete(action_spec)
    out_dim = int(action_spec.maximum - action_spec.minimum + 1) if discrete else int(np.prod(action_spec.shape))
    mlp = build_mlp(obs_dim, cfg.actor_layers, out_dim, cfg.activation, cfg.use_bias)
    # seed + 7919: the random ranking's generator differs from every other stream seeded by the run seed.
    pruner = make_pruner(mlp, cfg.method, cfg.schedule(), cfg.reg_strength, seed=cfg.seed + 7919,
                         min_neurons_per_layer=cfg.min_neurons_per_layer, threshold=cfg.threshold, ranking=cfg.ranking)
    actor_net = ActorNetwork(time_step_spec.observation, action_spec, pruner.model)
    value_net = build_critic(time_step_spec.observation, cfg.critic_layers)
    penalty = tf.Variable(1.0, trainable=False, name="penalty_scale")
    # "keep" adds the penalty as it always was (a factor of 1.0 would change no bit, but needs no variable).
    actor_penalty = (pruner.regularization if cfg.penalty_after_schedule == "keep"
                     else lambda: penalty * pruner.regularization())
    clip = ClipRange(cfg.clip_ratio) if cfg.anneal_clip else None
    distill = distillation(teacher, cfg.distill_coef) if teacher is not None and cfg.distill_coef > 0 else None
    agent = make_agent(cfg, time_step_spec, action_spec, actor_net, value_net, actor_penalty, clip, distill)
    if teacher is not None:
        if teacher.note:
            logging.info("%s", teacher.note)
        if not start_from_teacher(teacher, mlp, agent._observation_normalizer):  # noqa: SLF001
            logging.info("the student's actor (%s) has other layers than its teacher's (%s): it starts from its own "
                         "initialisation, distilled from the teacher", "-".join(map(str, cfg.actor_layers)),
                         "-".join(map(str, teacher.hidden_layers)))
        same_critic = teacher_critic is not None and \
            [w.shape for w in value_net.get_weights()] == [w.shape for w in teacher_critic[0]]
        if teacher_critic is not None and not same_critic:
            logging.info("the teacher's critic does not have --critic_layers=%s: the student's critic starts afresh",
                         ",".join(map(str, cfg.critic_layers)))
        if same_critic:
            value_net.set_weights(teacher_critic[0])
            if teacher_critic[1] is not None and not discrete:
                actor_net.log_std.assign(np.reshape(teacher_critic[1], actor_net.log_std.shape))
        elif not discrete and teacher.meta.action_log_std is not None:
            # No checkpoint (an archived teacher): its saved action noise rather than std 1, with which
            # Hopper students fell over from their first rollouts (training returns ~300, teacher ~3,400).
            saved = np.asarray(teacher.meta.action_log_std, np.float32)
            actor_net.log_std.assign(saved.reshape(actor_net.log_std.shape))
    # Build optimizer slots now so a checkpoint restores them immediately, not lazily.
    agent._optimizer.build(actor_net.trainable_variables + value_net.trainable_variables)
    env_steps = tf.Variable(0, dtype=tf.int64, name="env_steps")
    last_prune = tf.Variable(-1, dtype=tf.int64, name="last_prune_step")
    wall_seconds = tf.Variable(0.0, dtype=tf.float64, name="wall_seconds")
    progress = tf.Variable("", dtype=tf.string, name="progress_csv")
    best = BestActor(actor_state(pruner, agent), keep=max(1, cfg.confirm_top))
    distill_state = (DistillState(cfg, obs_dim, out_dim, pruner.model.trainable_variables)
                     if cfg.recipe == "distill" else None)
    return Learner(cfg, envs, mlp, pruner, agent, NumpyCollectPolicy(agent, actor_net, value_net),
                   env_steps, last_prune, wall_seconds, progress, best, penalty, clip, teacher, distill_state)


def _teacher_critic(teacher: Teacher):
    """(critic weights, action log-std) from a teacher run's latest checkpoint or the teacher file's
    own critic (SB3), or None: an archived run keeps no checkpoint, and the student's critic then
    starts afresh."""
    if teacher.critic is not None:
        log_std = teacher.meta.action_log_std
        return teacher.critic, (None if log_std is None else np.asarray(log_std, np.float32))
    if teacher.run_dir is None:
        return None
    run = RunDirectory(teacher.run_dir)
    try:
        tcfg = from_dict({**run.read_config(), "root_dir": teacher.run_dir, "teacher": ""})
    except UsageError:
        return None
    if not glob.glob(os.path.join(run.checkpoints, "ckpt-*.index")):
        return None
    learner = build_learner(tcfg)
    if not restore_latest(learner, run.checkpoints, repair=False):
        return None
    actor = learner.agent._actor_net  # noqa: SLF001
    return learner.agent._value_net.get_weights(), (None if actor.discrete else actor.log_std.numpy())  # noqa: SLF001


def make_update(agent: PrunedPPOClipAgent, cfg: RunConfig):
    """All epochs × minibatches of one rollout in a single graph.

    The rollout size is fixed by the config, so the shuffles and every
    minibatch step (tf-agents' whole ``train``: loss, penalty, gradients, Adam)
    compile into one XLA program with static shapes: no per-op dispatch for
    320 minibatches of a few hundred small ops. tf-agents' code is traced
    without autograph (it needs none, and converting it took 9 of the first
    update's 10 seconds); the results are bit-identical.
    """
    mb = cfg.minibatch_size
    train_step = tf.function(agent.train, jit_compile=True, autograph=False)

    n = cfg.steps_per_iteration
    num_mb = n // mb

    @tf.function(jit_compile=True)
    def update(experience, seed):
        sums = tf.zeros([3])
        for epoch in tf.range(cfg.num_epochs):
            noise = tf.random.stateless_uniform([n], seed=seed + tf.stack([tf.constant(0, tf.int64),
                                                                           tf.cast(epoch, tf.int64)]))
            order = tf.reshape(tf.argsort(noise)[:num_mb * mb], [num_mb, mb])
            for i in tf.range(num_mb):
                batch = tf.nest.map_structure(lambda t: tf.gather(t, order[i]), experience)
                info = train_step(batch)
                sums += tf.stack([info.loss, info.extra.policy_gradient_loss,
                                  info.extra.value_estimation_loss])
        return sums / tf.cast(cfg.num_epochs * num_mb, tf.float32)

    return update


def flatten_rollout(experience):
    """[envs, T + 1, ...] → [envs·T, 1, ...]: drop the bootstrap column, one step per sample."""
    return tf.nest.map_structure(
        lambda t: tf.reshape(t[:, :-1], tf.concat([[-1, 1], tf.shape(t)[2:]], 0)), experience)


#: Without learning-curve points, a progress line at least this often (and after the first and last rollout).
PROGRESS_SECONDS = 30.0


def _fmt_seconds(s: float) -> str:
    s = int(max(s, 0))
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def use_threads(n: int) -> None:
    """TensorFlow's thread pools, settable only before TensorFlow starts: a command that loads a model
    first (dsp_tf.shrink reads its teacher) calls this before, and the run's own call then finds them set."""
    if (tf.config.threading.get_intra_op_parallelism_threads(),
            tf.config.threading.get_inter_op_parallelism_threads()) == (n, n):
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    except RuntimeError:  # TensorFlow already runs in this process (a notebook, the tests)
        logging.info("TensorFlow was started before this run: its thread pools stay as they are "
                     "(--tf_threads=%d not applied)", n)


#: What XLA's C++ logging prints at the first compile, in TF 2.15 whatever
#: TF_CPP_MIN_LOG_LEVEL says: notices a user cannot act on.
XLA_STARTUP_NOISE = ("Compiled cluster using XLA", "SetPriority unimplemented",
                     "All log messages before absl::InitializeLog()")


def quiet_xla_startup():
    return quiet_native_output(keep=lambda line: not any(noise in line for noise in XLA_STARTUP_NOISE))


class PhaseTimer:
    """Seconds spent per phase of the loop, reported in summary.json and by the benchmark."""

    def __init__(self):
        self.seconds: Dict[str, float] = collections.defaultdict(float)

    @contextlib.contextmanager
    def __call__(self, phase: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - start


def train(cfg: RunConfig) -> Dict:
    """Trains, evaluates and writes the run directory; under a command, Ctrl-C/SIGTERM during the
    iterations stop it at the top of the next one (never inside TensorFlow), before the final evaluation."""
    t_process = time.perf_counter()
    cfg.validate()
    run = RunDirectory(cfg.root_dir)
    done = None if cfg.overwrite else run.finished_as(CONFIG_FILE, cfg.identity(), LEGACY_DEFAULTS)
    if done is not None:  # the same command again on a finished run: nothing to do, nothing touched
        logging.info("already done: %s holds this run, finished (greedy return %.1f over %s test episodes); "
                     "--overwrite starts it afresh", run.root, float(done.get("return_mean", float("nan"))),
                     done.get("eval_episodes", "?"))
        return done
    # Before any file is made: a teacher that cannot be used (or does not fit --env) leaves nothing behind.
    teacher = load_teacher(cfg.teacher, cfg.env) if cfg.teacher else None
    run.prepare(cfg)
    use_threads(cfg.tf_threads)
    tf.config.experimental.enable_op_determinism()
    timer = PhaseTimer()
    with timer("build"):
        learner = build_learner(cfg, teacher)
        resumed = restore_latest(learner, run.checkpoints)
        manager = tf.train.CheckpointManager(learner.checkpoint, run.checkpoints, max_to_keep=2)
    start_iteration = int(learner.env_steps.numpy()) // cfg.steps_per_iteration
    if resumed:
        logging.info("resumed from %s at env step %d", resumed, learner.env_steps.numpy())
    trained = cfg.num_iterations * cfg.steps_per_iteration
    if trained != cfg.num_env_steps:
        logging.info("training %d env steps: --num_env_steps=%d rounded up to whole rollouts of %d "
                     "(--num_envs × --rollout_steps)", trained, cfg.num_env_steps, cfg.steps_per_iteration)
    loop = _Loop(learner, run, timer, manager, _restored_progress(learner, run))
    with stop_points():  # a signal held at the last iteration stops the run here, its checkpoint written
        for iteration in range(start_iteration, cfg.num_iterations):
            if loop.kept_share():  # --stop_share met (also when a run killed after meeting it resumes)
                break
            stop_point()
            loop.iteration(iteration, first=iteration == start_iteration)
    loop.writer.flush()
    run.write_progress(loop.rows)  # also when a finished run is re-run and no iteration was left

    summary = finish(learner, run, loop.wall_seconds(), cfg.eval_episodes, timer.seconds,
                     loop.collector.policy_seconds, time.perf_counter() - t_process)
    _log_done(cfg, summary)
    return summary


def _settings_note(cfg: RunConfig) -> str:
    """What the method trains with, on the run's first line: a λ or teacher inherited by mistake shows there."""
    method = get_method(cfg.method)
    parts = [f"λ {cfg.reg_strength:g}"] if method.penalized else []
    if method.ranks_neurons:
        parts.append(f"{cfg.ranking} ranking")
    if cfg.teacher:
        parts.append(f"from teacher {os.path.basename(cfg.teacher.rstrip('/'))} " + (
            f"(distillation {cfg.distill_coef:g})" if cfg.recipe == "ppo_kl" else
            f"(--recipe=distill: {cfg.distill_epochs} epochs per iteration over the latest {cfg.replay_size} states)"))
    return "".join(", " + p for p in parts)


class _Loop:
    """One PPO iteration in named steps (collect and update, prune, validate and plot, checkpoint),
    read top to bottom in ``iteration``; holds what the steps share across iterations."""

    def __init__(self, learner: Learner, run: RunDirectory, timer: PhaseTimer,
                 manager: tf.train.CheckpointManager, rows: List[Dict]):
        cfg = self.cfg = learner.cfg
        self.learner, self.run, self.timer, self.manager, self.rows = learner, run, timer, manager, rows
        #: --recipe=distill: who acts, and the supervised update in place of PPO's (agents.distill).
        self.distiller = Distiller(learner) if learner.distill is not None else None
        acting = self.distiller.acting if self.distiller is not None else learner.collect_policy
        self.collector = RolloutCollector(learner.envs, acting, cfg.rollout_steps)
        self.discounted = DiscountedReturns(cfg.num_envs, cfg.discount)
        self.update = make_update(learner.agent, cfg)
        self.advantages = tf.function(learner.agent.preprocess_sequence, autograph=False)
        self.writer = tf.summary.create_file_writer(run.summaries)
        self.iters_per_checkpoint = max(1, math.ceil(cfg.checkpoint_interval / cfg.steps_per_iteration))
        self.dense_stats = dense_stats(learner)
        logging.info("%s %s seed %d: actor %s, dense %d neurons / %d weights / %.0f FLOPs%s",
                     cfg.method, cfg.env, cfg.seed, cfg.actor_layers, self.dense_stats["neurons"],
                     self.dense_stats["weights"], self.dense_stats["flops"], _settings_note(cfg))
        self.recent_returns = collections.deque(maxlen=20)
        self.t_start = time.time()
        self.last_progress = self.t_start
        self.wall_at_start = float(learner.wall_seconds.numpy())
        self.steps_at_start = int(learner.env_steps.numpy())
        #: --stop_share: the validation return at which the run stops, the teacher's on the same episodes times it.
        self.stop_at = None
        if cfg.stop_share:
            teacher = teacher_validation_return(learner)
            if teacher > 0:
                self.stop_at = cfg.stop_share * teacher
                logging.info("stops at the first validation from step %d on scoring >= %.1f (%g of the teacher's "
                             "%.1f, --stop_share)", cfg.final_mask_step, self.stop_at, cfg.stop_share, teacher)
            else:  # a share of a score <= 0 is no bar (0 would stop at once, a negative one never)
                logging.info("the teacher's validation return is %.1f: --stop_share, a share of it, does not apply; "
                             "the run trains its whole budget", teacher)

    def kept_share(self) -> bool:
        """Whether a validation met --stop_share: read from the kept best validation, which is in the
        checkpoint, so a resumed run stops where the uninterrupted one did."""
        best = self.learner.best
        return (self.stop_at is not None and int(best.step.numpy()) >= self.cfg.final_mask_step
                and float(best.value.numpy()) >= self.stop_at)

    def wall_seconds(self) -> float:
        """The run's wall time over all its processes (a resumed run adds to the checkpoint's)."""
        return self.wall_at_start + time.time() - self.t_start

    def iteration(self, iteration: int, first: bool) -> None:
        cfg = self.cfg
        t_iter = time.time()
        step0 = iteration * cfg.steps_per_iteration
        returns, losses = self.collect_and_update(iteration, step0, first)
        env_steps = int(self.learner.env_steps.numpy())
        self.prune(env_steps)
        with self.timer("log"):
            self.recent_returns.extend(returns)
            self.rows.append(_log_iteration(self.learner, self.writer, env_steps, returns, losses,
                                            cfg.steps_per_iteration / max(time.time() - t_iter, 1e-9)))
        last_iteration = iteration + 1 == cfg.num_iterations
        held_out: Dict[int, float] = {}  # this iteration's greedy returns by episode count (curve and validation)
        if validation_due(cfg, step0, env_steps, last_iteration):
            self.validate(env_steps, held_out)
        if cfg.curve_interval and (env_steps // cfg.curve_interval > step0 // cfg.curve_interval or last_iteration):
            self.curve_point(env_steps, held_out)
        elif not cfg.curve_interval and (first or last_iteration
                                         or time.time() - self.last_progress >= PROGRESS_SECONDS):
            self.progress(env_steps)  # no learning curve asked for (a student): the run still says where it is
        stopping = self.kept_share()
        if stopping:
            logging.info("validation kept %g of the teacher's return: the run stops at step %d of %d (--stop_share)",
                         cfg.stop_share, env_steps, cfg.num_iterations * cfg.steps_per_iteration)
        if (iteration + 1) % self.iters_per_checkpoint == 0 or last_iteration or stopping:
            self.checkpoint(env_steps)

    def collect_and_update(self, iteration: int, step0: int, first: bool):
        cfg, learner = self.cfg, self.learner
        agent = learner.agent
        with self.timer("collect"):
            if first or iteration % self.iters_per_checkpoint == 0:
                self.collector.reset([training_seed(cfg.seed, iteration * cfg.num_envs + i)
                                      for i in range(cfg.num_envs)])
                self.discounted.reset()
            if self.distiller is not None:
                self.distiller.before_collect(step0)
            rollout, returns, _ = self.collector.collect((cfg.seed, step0 * 2))
        if self.distiller is not None:
            with self.timer("first_update" if first else "update"):
                losses = self.distiller.update(rollout, step0)
                if not np.all(np.isfinite(losses)):
                    raise UsageError(f"distillation diverged at env step {step0 + cfg.steps_per_iteration}: the "
                                     f"loss is not finite (lower --distill_learning_rate or --reg_strength)")
                learner.env_steps.assign(step0 + cfg.steps_per_iteration)
            return returns, losses
        # Functions of the rollout's first step only, so a resumed run sets what an uninterrupted one did.
        learner.penalty_scale.assign(penalty_scale(cfg, step0))
        if learner.clip is not None:
            learner.clip.variable.assign(clip_epsilon(cfg, step0))
        # The first update of a process includes tracing and XLA compilation.
        with self.timer("first_update" if first else "update"), \
                quiet_xla_startup() if first else contextlib.nullcontext():
            experience = flatten_rollout(self.advantages(rollout))
            losses = self.update(experience, tf.constant([cfg.seed, step0 * 2 + 1], tf.int64)).numpy()
            if not np.all(np.isfinite(losses)):
                raise UsageError(f"training diverged at env step {step0 + cfg.steps_per_iteration}: the loss is "
                                 f"not finite (lower --learning_rate or --reg_strength)")
            agent.update_observation_normalizer(rollout.observation)
            if cfg.reward_normalization == "return_std":
                agent.update_reward_normalizer(tf.constant(self.discounted(rollout)[None], tf.float32))
            elif cfg.reward_normalization == "reward_std":
                agent.update_reward_normalizer(rollout.reward)
            learner.env_steps.assign(step0 + cfg.steps_per_iteration)
        return returns, losses

    def prune(self, env_steps: int) -> None:
        """Eqs. 16-18: act on the latest pruning step of the schedule crossed by this rollout."""
        learner = self.learner
        with self.timer("prune"):
            if self.cfg.prunes:
                due = learner.pruner.schedule.last_pruning_step(env_steps)
                if due > int(learner.last_prune.numpy()):
                    learner.pruner.update_masks(due, force=True)
                    learner.last_prune.assign(due)

    def validate(self, env_steps: int, held_out: Dict[int, float]) -> None:
        cfg, learner = self.cfg, self.learner
        with self.timer("validation"):
            value = _held_out_return(learner, cfg.validation_episodes, held_out)
            self.rows[-1]["validation_return"] = round(value, 3)
            before = learner.best.candidates()[:1]  # [(step, return)] of the best so far, if any
            kept = learner.best.offer(learner.actor_state, env_steps, value)
            with self.writer.as_default(step=env_steps):
                tf.summary.scalar("eval/validation_return", value)
        logging.info("validation at step %d: return %.1f over %d held-out episodes%s", env_steps, value,
                     cfg.validation_episodes, validation_note(value, kept, before, learner.best.candidates()[0]))

    def curve_point(self, env_steps: int, held_out: Dict[int, float]) -> None:
        cfg = self.cfg
        with self.timer("curve_eval"):
            value = _held_out_return(self.learner, cfg.curve_episodes, held_out)
            self.rows[-1]["eval_return"] = round(value, 3)
            with self.writer.as_default(step=env_steps):
                tf.summary.scalar("eval/return", value)
        self.progress(env_steps)

    def progress(self, env_steps: int) -> None:
        """The line a person watches: where the run is, how fast, when it ends."""
        cfg = self.cfg
        self.last_progress = time.time()
        rate = (env_steps - self.steps_at_start) / max(time.time() - self.t_start, 1e-9)
        total = cfg.num_iterations * cfg.steps_per_iteration
        logging.info("step %d/%d (%.0f%%) | %.0f steps/s | ETA %s | return %s | neurons %d/%d",
                     env_steps, total, 100.0 * env_steps / total, rate,
                     _fmt_seconds((total - env_steps) / max(rate, 1e-9)),
                     f"{np.mean(self.recent_returns):.1f}" if self.recent_returns else "n/a",
                     self.rows[-1]["neurons"], self.dense_stats["neurons"])

    def checkpoint(self, env_steps: int) -> None:
        learner = self.learner
        with self.timer("checkpoint"):
            learner.wall_seconds.assign(self.wall_seconds())
            learner.progress.assign(progress_text(self.rows))
            self.run.write_progress(self.rows)
            self.manager.save(checkpoint_number=env_steps)


def _log_done(cfg: RunConfig, summary: Dict) -> None:
    """The run's last lines: which actor it ships, the teacher beside it, the result."""
    if summary["selection"]["rule"] == "best_validation":
        sel = summary["selection"]
        confirmation = sel.get("confirmation")
        how = (f"the best on {confirmation['episodes']} fresh episodes of the best {len(confirmation['candidates'])} "
               f"of {sel['validation_checks']} validations" if confirmation else
               f"best of {sel['validation_checks']} validations")
        logging.info("kept the actor of step %d: %s (return %.1f over %d held-out episodes, "
                     "from step %d on); the last actor (step %d) scores %.1f on the test episodes",
                     sel["chosen_step"], how, sel["validation_return"],
                     sel["validation_episodes"], cfg.final_mask_step, sel["last_step"], sel["last_return_mean"])
        if confirmation:
            logging.info("confirmation (step: validation → confirmed return): %s", ", ".join(
                f"{c['step']}: {c['validation_return']:.1f} → {c['confirmation_return']:.1f}"
                for c in confirmation["candidates"]))
    if "teacher_return" in summary:
        logging.info("teacher %s: greedy return %.1f (worst decile %.1f) on the same test episodes (student/teacher "
                     "%.1f%%; %.0f%% of the student's episodes below half the teacher's median)",
                     summary["teacher"], summary["teacher_return"], summary["teacher_return_cvar10"],
                     100.0 * summary["return_mean"] / summary["teacher_return"] if summary["teacher_return"] else float("nan"),
                     100.0 * summary["failure_rate"])
    driving = (f" | collision rate {summary['collision_rate']:.2f}, mean speed {summary['speed_mean']:.1f} m/s"
               if is_driving(cfg.env) else "")
    logging.info("done: greedy return %.1f ± %.1f over %d unseen episodes (worst decile %.1f)%s | neurons %d → %d, "
                 "weights %d → %d, FLOPs %.0f → %.0f", summary["return_mean"], summary["return_std"],
                 cfg.eval_episodes, summary["return_cvar10"], driving, summary["dense"]["neurons"], summary["compact"]["neurons"],
                 summary["dense"]["weights"], summary["compact"]["weights"],
                 summary["dense"]["flops"], summary["compact"]["flops"])


def validation_note(value: float, kept: bool, before: List[Tuple[int, float]], best: Tuple[int, float]) -> str:
    """What a validation's log line adds: a new best, a tie with the best (the later is kept, so a
    plateau of equal scores would otherwise read as a new best every time), or the best it fell short of."""
    if kept and before and value == before[0][1]:
        return f" (ties the best, step {before[0][0]}'s: the later is kept)"
    if kept:
        return " (new best: kept)"
    return f" (best {best[1]:.1f} at step {best[0]})"


def validation_due(cfg: RunConfig, step0: int, env_steps: int, last_iteration: bool) -> bool:
    """Whether the rollout [step0, env_steps) ends with a validation: once the schedule's final
    mask is on (the rollout that applied it, then every --validation_interval steps) and after
    the last rollout, so the last actor is always a candidate."""
    interval = cfg.validation_interval
    if not interval or env_steps < cfg.final_mask_step:
        return False
    return (last_iteration or step0 < cfg.final_mask_step <= env_steps
            or env_steps // interval > step0 // interval)


def _held_out_return(learner: Learner, episodes: int, done: Dict[int, float]) -> float:
    """Mean greedy return of the masked actor now (the compact actor's outputs are the same) on
    the held-out episodes, through the NumPy policy; no generator is drawn from, so training is
    unchanged. ``done`` holds this iteration's results: a curve point and a validation on the
    same episodes are played once."""
    if episodes not in done:
        cfg, policy = learner.cfg, learner.collect_policy
        policy.refresh()
        done[episodes] = float(np.mean([e.ret for e in run_episodes(
            policy.greedy, cfg.env, held_out_seeds(cfg.seed, episodes), policy.discrete)]))
    return done[episodes]


def _restored_progress(learner: Learner, run: RunDirectory) -> List[Dict]:
    """The progress rows up to the checkpoint: from the checkpoint itself, so a lost or
    edited progress.csv is rewritten whole; from the file for older checkpoints."""
    step = int(learner.env_steps.numpy())
    stored = learner.progress.numpy().decode()
    if stored:
        return parse_progress(stored)
    rows = run.read_progress(step)
    if step and (not rows or int(rows[-1]["step"]) < step):
        logging.warning("progress.csv holds no rows up to the checkpoint at step %d and the checkpoint "
                        "predates stored progress; earlier rows are missing from progress.csv", step)
    return rows


def _log_iteration(learner: Learner, writer, env_steps: int, returns: List[float], losses: np.ndarray,
                   steps_per_second: float) -> Dict:
    """One progress.csv row and the TensorBoard scalars of an iteration."""
    pruner = learner.pruner
    stats = pruner.stats()
    sparsity = pruner.sparsity()
    penalty = float(pruner.regularization())
    omega = float(sum(np.sum(o) for o in dsp_tf.neuron_importance(pruner.dense_layers, pruner.penalty_masks())))
    mean_return = float(np.mean(returns)) if returns else float("nan")
    with writer.as_default(step=env_steps):
        if returns:
            tf.summary.scalar("train/episode_return", mean_return)
        tf.summary.scalar("loss/total", losses[0])
        tf.summary.scalar("loss/policy", losses[1])
        tf.summary.scalar("loss/value", losses[2])
        tf.summary.scalar("pruning/penalty", penalty)
        tf.summary.scalar("pruning/sum_importance", omega)
        tf.summary.scalar("pruning/neuron_sparsity", sparsity)
        tf.summary.scalar("pruning/neurons", stats["neurons"])
        tf.summary.scalar("pruning/weights", stats["weights"])
        for layer in stats["layers"][:-1]:
            tf.summary.scalar(f"pruning/neurons_{layer['name']}", layer["neurons"])
        tf.summary.scalar("perf/steps_per_second", steps_per_second)
    return {"step": env_steps, "return": "" if not returns else round(mean_return, 3),
            "episodes": len(returns), "neurons": stats["neurons"], "weights": stats["weights"],
            "flops": round(stats["flops"], 1), "sparsity": round(sparsity, 5),
            "penalty": penalty, "layer_neurons": ";".join(str(l["neurons"]) for l in stats["layers"][:-1]),
            "steps_per_second": round(steps_per_second, 1)}
