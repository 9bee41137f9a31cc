"""tf-agents PPOClipAgent with the actor's pruning penalty in its loss.

tf-agents never adds Keras ``layer.losses`` to PPO's objective, so the penalty
(λ·ΣΩ for DSP) is added by overriding ``get_loss``: J_PPO − λΣΩ maximised is
loss_PPO + λΣΩ minimised (Eq. 13). The value loss shares the optimizer step
but not the penalty, since the critic is never pruned.
"""
from __future__ import annotations

from typing import Callable, Optional

import tensorflow_probability as tfp

from tf_agents.agents.ppo import ppo_clip_agent

from agents.config import RunConfig
from dsp_tf._keras import keras, tf


class ClipRange:
    """PPO's ε in a variable, so the loop can anneal it without retracing the XLA update.

    tf-agents reads ε twice over: in Python, ``ε > 0`` decides at trace time whether
    to clip at all (always, here: the flag is validated > 0 and annealing stops
    short of 0), and as a number inside the loss, where it becomes this variable.
    """

    def __init__(self, epsilon: float):
        self.variable = tf.Variable(float(epsilon), trainable=False, name="clip_ratio")

    def __gt__(self, other: float) -> bool:
        return float(other) <= 0.0

    def __radd__(self, other):
        return other + self.variable

    def __rsub__(self, other):
        return other - self.variable


tf.register_tensor_conversion_function(
    ClipRange, lambda value, dtype=None, name=None, as_ref=False: tf.convert_to_tensor(value.variable, dtype=dtype, name=name))


def clip_epsilon(cfg: RunConfig, step0: int) -> float:
    """ε for the rollout that starts at env step ``step0``: linear from --clip_ratio to 0
    over training with --anneal_clip (SB3 sets it once per rollout from the progress left)."""
    total = cfg.num_iterations * cfg.steps_per_iteration
    return cfg.clip_ratio * (1.0 - step0 / total) if cfg.anneal_clip else cfg.clip_ratio


def penalty_scale(cfg: RunConfig, step0: int) -> float:
    """The pruning penalty's factor for the rollout that starts at ``step0``: 1 until the
    schedule's final mask, then --penalty_after_schedule decides (1, 0, or linear to 0)."""
    start = cfg.final_mask_step
    if step0 < start or cfg.penalty_after_schedule == "keep":
        return 1.0
    if cfg.penalty_after_schedule == "off":
        return 0.0
    total = cfg.num_iterations * cfg.steps_per_iteration
    return max(0.0, (total - step0) / max(total - start, 1))


#: distillation(raw observations, the student's action distribution) → the term added to the loss.
Distillation = Callable[[tf.Tensor, tfp.distributions.Distribution], tf.Tensor]


class PrunedPPOClipAgent(ppo_clip_agent.PPOClipAgent):
    def __init__(self, *args, actor_penalty: Callable[[], tf.Tensor], distillation: Optional[Distillation] = None,
                 **kwargs):
        self._actor_penalty = actor_penalty
        self._distillation = distillation
        super().__init__(*args, **kwargs)

    def get_loss(self, time_steps, *args, **kwargs):
        loss_info = super().get_loss(time_steps, *args, **kwargs)
        extra = self._actor_penalty()
        if self._distillation is not None:  # a student (agents.teacher): stay close to the teacher
            student, _ = self._actor_net(self._observation_normalizer.normalize(time_steps.observation),
                                         time_steps.step_type)
            extra += self._distillation(time_steps.observation, student)
        return loss_info._replace(loss=loss_info.loss + extra)


def make_agent(cfg: RunConfig, time_step_spec, action_spec, actor_net, value_net,
               actor_penalty: Callable[[], tf.Tensor], clip: Optional[ClipRange] = None,
               distillation: Optional[Distillation] = None) -> PrunedPPOClipAgent:
    """PPO as in common MuJoCo setups: GAE, per-minibatch advantage normalisation,
    observation and reward normalisation, gradient clipping.

    Rewards are divided by the running std the agent's reward normaliser holds; what
    it is fed (rewards or discounted returns) is the training loop's
    ``--reward_normalization``.

    Advantages are computed once per rollout (``preprocess_sequence``) and each
    ``train`` call is one minibatch step, which is what lets the loop shuffle
    64-sample minibatches the way other PPO code does. ``clip`` is a ClipRange
    the loop anneals, or None for the constant --clip_ratio.
    """
    updates = cfg.num_iterations * cfg.num_epochs * (cfg.steps_per_iteration // cfg.minibatch_size)
    lr = (keras.optimizers.schedules.PolynomialDecay(cfg.learning_rate, updates, 0.0)
          if cfg.anneal_lr else cfg.learning_rate)
    optimizer = keras.optimizers.Adam(learning_rate=lr, epsilon=1e-5)
    agent = PrunedPPOClipAgent(
        time_step_spec, action_spec, optimizer=optimizer, actor_net=actor_net, value_net=value_net,
        actor_penalty=actor_penalty, distillation=distillation, greedy_eval=True, importance_ratio_clipping=cfg.clip_ratio if clip is None else clip,
        lambda_value=cfg.gae_lambda, discount_factor=cfg.discount,
        entropy_regularization=cfg.entropy_coef, value_pred_loss_coef=cfg.value_coef, num_epochs=1,
        use_gae=True, use_td_lambda_return=True, normalize_rewards=cfg.reward_normalization != "none",
        normalize_observations=True,
        gradient_clipping=cfg.max_grad_norm, compute_value_and_advantage_in_train=False,
        update_normalizers_in_train=False, train_step_counter=tf.Variable(0, dtype=tf.int64))
    agent.initialize()
    return agent
