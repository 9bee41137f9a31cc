"""tf-agents PPOClipAgent with the actor's pruning penalty in its loss.

tf-agents never adds Keras ``layer.losses`` to PPO's objective, so the penalty
(λ·ΣΩ for DSP) is added by overriding ``get_loss``: J_PPO − λΣΩ maximised is
loss_PPO + λΣΩ minimised (Eq. 13). The value loss shares the optimizer step
but not the penalty, since the critic is never pruned.
"""
from __future__ import annotations

from typing import Callable

from tf_agents.agents.ppo import ppo_clip_agent

from agents.config import RunConfig
from dsp_tf._keras import keras, tf


class PrunedPPOClipAgent(ppo_clip_agent.PPOClipAgent):
    def __init__(self, *args, actor_penalty: Callable[[], tf.Tensor], **kwargs):
        self._actor_penalty = actor_penalty
        super().__init__(*args, **kwargs)

    def get_loss(self, *args, **kwargs):
        loss_info = super().get_loss(*args, **kwargs)
        return loss_info._replace(loss=loss_info.loss + self._actor_penalty())


def make_agent(cfg: RunConfig, time_step_spec, action_spec, actor_net, value_net,
               actor_penalty: Callable[[], tf.Tensor]) -> PrunedPPOClipAgent:
    """PPO as in common MuJoCo setups: GAE, per-minibatch advantage normalisation,
    observation and reward normalisation, gradient clipping.

    Rewards are divided by the running std the agent's reward normaliser holds; what
    it is fed (rewards or discounted returns) is the training loop's
    ``--reward_normalization``.

    Advantages are computed once per rollout (``preprocess_sequence``) and each
    ``train`` call is one minibatch step, which is what lets the loop shuffle
    64-sample minibatches the way other PPO code does.
    """
    updates = cfg.num_iterations * cfg.num_epochs * (cfg.steps_per_iteration // cfg.minibatch_size)
    lr = (keras.optimizers.schedules.PolynomialDecay(cfg.learning_rate, updates, 0.0)
          if cfg.anneal_lr else cfg.learning_rate)
    optimizer = keras.optimizers.Adam(learning_rate=lr, epsilon=1e-5)
    agent = PrunedPPOClipAgent(
        time_step_spec, action_spec, optimizer=optimizer, actor_net=actor_net, value_net=value_net,
        actor_penalty=actor_penalty, greedy_eval=True, importance_ratio_clipping=cfg.clip_ratio,
        lambda_value=cfg.gae_lambda, discount_factor=cfg.discount,
        entropy_regularization=cfg.entropy_coef, value_pred_loss_coef=cfg.value_coef, num_epochs=1,
        use_gae=True, use_td_lambda_return=True, normalize_rewards=cfg.reward_normalization != "none",
        normalize_observations=True,
        gradient_clipping=cfg.max_grad_norm, compute_value_and_advantage_in_train=False,
        update_normalizers_in_train=False, train_step_counter=tf.Variable(0, dtype=tf.int64))
    agent.initialize()
    return agent
