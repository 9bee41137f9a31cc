"""Every setting of a training run, defined once.

The absl flags of ``dsp_tf.train`` are generated from ``RunConfig``'s fields,
so a flag, its default, its help text and its validation cannot drift apart,
and a run directory's ``config.json`` is exactly this dataclass.
"""
from __future__ import annotations

from agents.errors import UsageError

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List

from agents.envs import check_env_name
from agents.evaluation import HELD_OUT_OFFSET as HELD_OUT_EPISODES
from dsp_tf.masks import check_ranking, check_sparsity, check_threshold
from dsp_tf.regularizers import check_strength
from dsp_tf.methods import DEFAULT_RANKING, METHOD_NAMES, get_method
from dsp_tf.schedule import DynamicPruningSchedule

#: Fields that say where or how verbosely a run goes, not what it computes.
NOT_IDENTITY = ("root_dir", "overwrite", "eval_episodes", "tf_threads", "curve_interval", "curve_episodes")

#: Settings added after runs were archived, with the value those runs used: a
#: config.json without the key reads as that value, not as today's default.
LEGACY_DEFAULTS = {"ranking": "global", "reward_normalization": "reward_std", "validation_interval": 0,
                   "validation_episodes": 5, "penalty_after_schedule": "keep", "anneal_clip": False,
                   "teacher": "", "distill_coef": 1.0, "stop_share": 0.0,
                   "confirm_top": 0, "confirm_episodes": 20, "recipe": "ppo_kl", "distill_epochs": 10,
                   "distill_batch_size": 256, "distill_learning_rate": 1e-3, "replay_size": 100_000,
                   "action_noise": 0.1}

#: How a student learns from its teacher (--recipe, agents.distill): PPO with the distillation term in
#: its loss, or supervised distillation on the student's own states labelled by the teacher.
RECIPES = ("ppo_kl", "distill")

#: What the pruning penalty does once the schedule has applied its final mask: it keeps
#: acting on the live neurons (the paper), stops, or fades linearly to 0 by the end of training.
PENALTY_AFTER_SCHEDULE = ("keep", "off", "anneal")

#: How PPO scales rewards before its value targets and advantages: tf-agents' own
#: rule, gym's NormalizeReward rule (CleanRL's MuJoCo PPO), or not at all.
REWARD_NORMALIZATIONS = ("reward_std", "return_std", "none")


def _f(default, help_text):
    if isinstance(default, list):
        return field(default_factory=lambda d=tuple(default): list(d), metadata={"help": help_text})
    return field(default=default, metadata={"help": help_text})


def _library_check(flag: str, check: Callable[[Any], Any], value: Any) -> None:
    """A setting the library validates itself (its one rule), said as a flag's usage error."""
    try:
        check(value)
    except ValueError as e:
        raise UsageError(f"--{flag}: {e}") from None


@dataclass
class RunConfig:
    env: str = _f("CartPole-v1", "Environment name: CartPole-v1, LunarLander-v3, Hopper-v4, Walker2d-v4, or the driving "
                                         "tasks highway-fast-v0 and merge-v0 (the driving extra).")
    method: str = _f("dsp", "Training method: " + ", ".join(METHOD_NAMES) + " (dsp_tf.methods).")
    seed: int = _f(0, "Run seed: network init, action sampling, environment resets.")
    num_env_steps: int = _f(200_000, "Total environment steps of training.")
    root_dir: str = _f("", "Run directory (checkpoints, summaries, results). Required.")
    overwrite: bool = _f(False, "Start afresh: delete what --root_dir holds (a run made with other flags is "
                                "otherwise refused, one made with the same flags resumed).")
    actor_layers: List[int] = _f([128, 128], "Hidden layer sizes of the actor.")
    critic_layers: List[int] = _f([128, 128], "Hidden layer sizes of the critic (never pruned).")
    activation: str = _f("tanh", "Hidden activation of actor and critic (tanh or relu).")
    use_bias: bool = _f(True, "Biases in the actor. The paper uses none (--nouse_bias).")
    num_envs: int = _f(1, "Parallel environment copies.")
    rollout_steps: int = _f(2048, "Steps per environment per PPO iteration.")
    num_epochs: int = _f(10, "PPO epochs over each rollout.")
    minibatch_size: int = _f(64, "PPO minibatch size.")
    learning_rate: float = _f(3e-4, "Adam learning rate.")
    anneal_lr: bool = _f(True, "Anneal the learning rate linearly to 0 over training.")
    discount: float = _f(0.99, "Discount factor gamma.")
    gae_lambda: float = _f(0.95, "GAE lambda.")
    clip_ratio: float = _f(0.2, "PPO importance-ratio clipping epsilon.")
    anneal_clip: bool = _f(False, "Anneal the clipping epsilon linearly towards 0 over training, once per rollout "
                                  "(rl-baselines3-zoo's clip_range: lin_0.2).")
    entropy_coef: float = _f(0.0, "Entropy regularization coefficient.")
    value_coef: float = _f(0.5, "Value loss coefficient.")
    max_grad_norm: float = _f(0.5, "Global gradient-norm clipping.")
    reward_normalization: str = _f("reward_std", "Reward scaling: reward_std (tf-agents: each reward over the running "
                                                 "std of rewards), return_std (gym 0.23's NormalizeReward, as in "
                                                 "CleanRL: over the running std of the discounted return; both "
                                                 "clipped to ±10) or none.")
    reg_strength: float = _f(1e-5, "Lambda: weight of the pruning regularizer (dsp, ssl, sgs, l1).")
    penalty_after_schedule: str = _f("keep", "The pruning penalty after the schedule's final mask: keep (it acts "
                                             "on the live neurons to the end, the paper), off, or anneal (linearly "
                                             "to 0 at the end of training).")
    teacher: str = _f("", "A trained policy to start from and distil: a finished run directory of this project, "
                          "a .h5/.keras actor file with actor_meta.json beside it, or a Stable-Baselines3 .zip "
                          "(agents.teacher). Empty: train from scratch.")
    distill_coef: float = _f(1.0, "Weight of the distillation term KL(teacher || student) in the actor's loss "
                                  "(with --teacher only).")
    recipe: str = _f("ppo_kl", "How a student learns from --teacher: ppo_kl (PPO with the distillation term) or "
                               "distill (supervised on its own states labelled by the teacher, DAgger-style, "
                               "agents.distill; an iteration is --num_envs × --rollout_steps env steps).")
    distill_epochs: int = _f(10, "--recipe=distill: epochs over the replay after each iteration's states.")
    distill_batch_size: int = _f(256, "--recipe=distill: states per gradient step.")
    distill_learning_rate: float = _f(1e-3, "--recipe=distill: Adam's learning rate, falling linearly to a tenth "
                                            "of it over training.")
    replay_size: int = _f(100_000, "--recipe=distill: the most recent labelled states trained on.")
    action_noise: float = _f(0.1, "--recipe=distill: σ of the Gaussian noise on the acting policy's continuous "
                                  "actions, fading linearly to 0 over training (discrete actions are sampled).")
    initial_sparsity: float = _f(0.0, "p_i: sparsity at prune_begin.")
    final_sparsity: float = _f(0.93, "p_f: target share of hidden neurons (or weights, for l1/pops) removed.")
    prune_begin: int = _f(40_000, "t_0: env step at which pruning starts.")
    prune_end: int = _f(120_000, "t_0 + N*dt: env step at which the target sparsity is reached.")
    prune_frequency: int = _f(4096, "dt: env steps between mask updates.")
    threshold: str = _f("count", "Mask rule: count (prune the p_t share of neurons) or mass (literal Eq. 16).")
    ranking: str = _f(DEFAULT_RANKING, "How neuron scores of different layers compare: global (raw scores, the paper), "
                                "layer_normalized (each layer's scores over its live mean) or per_layer (each "
                                "layer loses the scheduled share of its own neurons). Neuron methods only.")
    min_neurons_per_layer: int = _f(1, "No hidden layer is pruned below this many neurons.")
    eval_episodes: int = _f(10, "Greedy evaluation episodes of the final compact actor (unseen seeds).")
    curve_interval: int = _f(0, "Env steps between greedy evaluations of the masked actor during training, on "
                                "held-out seeds (progress.csv's eval_return, TensorBoard eval/return): the "
                                "learning curves. 0: none. Does not change training.")
    curve_episodes: int = _f(5, "Episodes per learning-curve evaluation.")
    validation_interval: int = _f(10_000, "Env steps between greedy validations of the masked actor on held-out "
                                          "episodes (the learning curves' seeds, never the test episodes), from "
                                          "the pruning schedule's final mask on and at the end; the best actor "
                                          "(ties: the later) is the one the run saves, evaluates and exports. "
                                          "0: the last actor.")
    validation_episodes: int = _f(5, "Episodes per validation.")
    confirm_top: int = _f(0, "At the end of training, play the best this many validated actors again on "
                             "--confirm_episodes fresh episodes of their own and ship the best on those: a best "
                             "of many short validations flatters the actor it picks. 0: ship the best validated.")
    confirm_episodes: int = _f(20, "Episodes on which each of the --confirm_top candidates is played again.")
    stop_share: float = _f(0.0, "A student stops training at the first validation (from the final mask on) that "
                                "keeps this share of its teacher's return on the same episodes; 0: it trains its "
                                "whole budget. dsp_tf.shrink sets it to --keep.")
    checkpoint_interval: int = _f(50_000, "Env steps between checkpoints (rounded up to whole rollouts).")
    tf_threads: int = _f(1, "TensorFlow threads of a run. 1 by default: a minibatch update is too small to "
                            "share, and runs of a sweep on different cores then do not fight.")

    # ---- derived -----------------------------------------------------------
    @property
    def steps_per_iteration(self) -> int:
        return self.rollout_steps * self.num_envs

    @property
    def num_iterations(self) -> int:
        return math.ceil(self.num_env_steps / self.steps_per_iteration)

    @property
    def prunes(self) -> bool:
        return get_method(self.method).prunes

    def schedule(self) -> DynamicPruningSchedule:
        return DynamicPruningSchedule(self.initial_sparsity, self.final_sparsity, self.prune_begin,
                                      self.prune_end, self.prune_frequency)

    @property
    def final_mask_step(self) -> int:
        """The env step at which the schedule applies its last mask (the actor's final size):
        validation starts there, for every method alike."""
        return self.schedule().last_pruning_step(self.prune_end)

    def identity(self) -> Dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in NOT_IDENTITY}

    def validate(self) -> None:
        """Raises UsageError with a one-line message for the first bad setting."""
        check_env_name(self.env)
        if self.method not in METHOD_NAMES:
            raise UsageError(f"unknown method '{self.method}' (choose from {', '.join(METHOD_NAMES)})")
        if not self.root_dir:
            raise UsageError("--root_dir is required")
        for f in config_fields():
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise UsageError(f"--{f.name} must be a finite number, got {value}")
        if not 0 <= self.seed < 2 ** 31:
            raise UsageError(f"--seed must be in [0, 2^31), got {self.seed}")
        for name in ("initial_sparsity", "final_sparsity"):
            try:
                check_sparsity(getattr(self, name), f"--{name}")
            except ValueError as e:
                raise UsageError(str(e)) from None
        if self.final_sparsity < self.initial_sparsity:
            raise UsageError(f"--final_sparsity ({self.final_sparsity}) must be >= --initial_sparsity "
                             f"({self.initial_sparsity})")
        _library_check("reg_strength", check_strength, self.reg_strength)
        if self.prune_begin < 0 or self.prune_end <= self.prune_begin:
            raise UsageError(f"need 0 <= --prune_begin < --prune_end, got {self.prune_begin} and {self.prune_end}")
        if self.prune_frequency <= 0:
            raise UsageError(f"--prune_frequency must be > 0, got {self.prune_frequency}")
        if self.prune_frequency > self.prune_end - self.prune_begin:
            raise UsageError(f"--prune_frequency ({self.prune_frequency}) must be at most --prune_end - --prune_begin "
                             f"({self.prune_end - self.prune_begin}): the schedule would never prune")
        _library_check("threshold", check_threshold, self.threshold)
        _library_check("ranking", check_ranking, self.ranking)
        if self.reward_normalization not in REWARD_NORMALIZATIONS:
            raise UsageError(f"--reward_normalization must be one of {', '.join(REWARD_NORMALIZATIONS)}, "
                             f"got '{self.reward_normalization}'")
        if self.activation not in ("tanh", "relu"):
            raise UsageError(f"--activation must be tanh or relu, got '{self.activation}'")
        for name, sizes in (("actor_layers", self.actor_layers), ("critic_layers", self.critic_layers)):
            bad = [n for n in sizes if n < 1]
            if not sizes or bad:
                raise UsageError(f"--{name}: " + (f"layer size {bad[0]} is not positive (got "
                                 f"{','.join(map(str, sizes))})" if bad else "needs at least one layer size"))
        if self.min_neurons_per_layer < 1 or self.min_neurons_per_layer > min(self.actor_layers):
            raise UsageError(f"--min_neurons_per_layer must be in [1, {min(self.actor_layers)}]")
        for name in ("curve_interval", "validation_interval", "confirm_top"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{name} must be >= 0, got {getattr(self, name)}")
        if self.penalty_after_schedule not in PENALTY_AFTER_SCHEDULE:
            raise UsageError(f"--penalty_after_schedule must be one of {', '.join(PENALTY_AFTER_SCHEDULE)}, "
                             f"got '{self.penalty_after_schedule}'")
        for name in ("num_env_steps", "num_envs", "rollout_steps", "num_epochs", "minibatch_size",
                     "eval_episodes", "curve_episodes", "validation_episodes", "confirm_episodes",
                     "checkpoint_interval", "tf_threads"):
            if getattr(self, name) <= 0:
                raise UsageError(f"--{name} must be > 0, got {getattr(self, name)}")
        for name in ("eval_episodes", "curve_episodes", "validation_episodes", "confirm_episodes"):
            if getattr(self, name) > HELD_OUT_EPISODES:
                raise UsageError(f"--{name} must be <= {HELD_OUT_EPISODES}, got {getattr(self, name)}")
        if self.rollout_steps < 2:
            raise UsageError("--rollout_steps must be >= 2")
        if self.num_env_steps < self.steps_per_iteration:
            raise UsageError(f"--num_env_steps ({self.num_env_steps}) is less than one rollout "
                             f"(--num_envs × --rollout_steps = {self.steps_per_iteration} steps)")
        trained = self.num_iterations * self.steps_per_iteration
        if self.prunes and trained < self.final_mask_step:
            raise UsageError(f"--num_env_steps ({self.num_env_steps}) ends before the pruning schedule's last mask "
                             f"at step {self.final_mask_step} (--prune_end={self.prune_end}): the {self.method} "
                             f"actor would never reach --final_sparsity; raise --num_env_steps or lower "
                             f"--prune_begin/--prune_end")
        if self.minibatch_size > self.steps_per_iteration:
            raise UsageError(f"--minibatch_size ({self.minibatch_size}) exceeds the rollout "
                             f"({self.steps_per_iteration} steps)")
        if self.recipe not in RECIPES:
            raise UsageError(f"--recipe must be one of {', '.join(RECIPES)}, got '{self.recipe}'")
        if self.recipe == "distill" and not self.teacher:
            raise UsageError("--recipe=distill learns from a teacher: give --teacher")
        for name in ("distill_epochs", "distill_batch_size", "replay_size"):
            if getattr(self, name) <= 0:
                raise UsageError(f"--{name} must be > 0, got {getattr(self, name)}")
        if not self.distill_learning_rate > 0 or self.action_noise < 0:
            raise UsageError("--distill_learning_rate must be > 0 and --action_noise >= 0")
        for name in ("learning_rate", "clip_ratio", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise UsageError(f"--{name} must be > 0, got {getattr(self, name)}")
        for name in ("entropy_coef", "value_coef", "distill_coef"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{name} must be >= 0, got {getattr(self, name)}")
        for name in ("discount", "gae_lambda", "stop_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UsageError(f"--{name} must be in [0, 1]")
        if self.confirm_top and not self.validation_interval:
            raise UsageError("--confirm_top plays the best validated actors again: it needs --validation_interval > 0")
        if self.stop_share and not (self.teacher and self.validation_interval):
            raise UsageError("--stop_share compares validations with the teacher's: it needs --teacher and "
                             "--validation_interval > 0")


def config_fields():
    return dataclasses.fields(RunConfig)


def from_dict(values: Dict[str, Any]) -> RunConfig:
    known = {f.name for f in config_fields()}
    unknown = set(values) - known
    if unknown:
        raise UsageError(f"unknown config keys: {', '.join(sorted(unknown))}")
    return RunConfig(**{**LEGACY_DEFAULTS, **values})
