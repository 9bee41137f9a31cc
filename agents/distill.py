"""``--recipe=distill``: a student trained by supervised policy distillation on its own states while
the cubic schedule prunes it (issue 43).

PPO with a KL term (``--recipe=ppo_kl``) lets RL do most of a student's learning; on MuJoCo its
students kept ~90% of their teachers. Students trained on the *student's own* states labelled by the
teacher (DAgger-style on-policy distillation: Rusu et al. 2016; Czarnecki et al. 2019) reach their
teachers with fewer parameters and far fewer env steps, because every gradient step is a supervised
one and the states are the ones the student will meet when it ships.

Each iteration of the loop (``agents.training._Loop``, whose pruning, validation, selection,
checkpoints and run directory this recipe shares) does, in ``Distiller``:

1. collect ``--num_envs × --rollout_steps`` env steps in the batched environments; the first
   iteration of a run the teacher acts (the student's first states would be those of an untrained or
   freshly pruned policy), after that the student; discrete actions are sampled from the actor's
   softmax, continuous ones get Gaussian noise of σ = ``--action_noise`` fading linearly to 0, so
   the student also sees states just off its own path, where a greedy student will drift;
2. label every visited state with the teacher's output (logits, or its pre-squash mean) and add it to
   a replay of the ``--replay_size`` most recent states (DAgger's aggregation: the states of earlier,
   worse students are the ones a student falls back into);
3. train ``--distill_epochs`` epochs over the replay in minibatches of ``--distill_batch_size``:
   KL(π_T ‖ π_S) of the softmaxes, or for continuous actions the teacher's mean under the fixed σ of
   the actor's action noise (Σ_d (m_T − m_S)² / 2σ², the KL of two Gaussians sharing that σ, on the
   pre-squash means: tanh flattens the gap of a saturated mean to nothing), plus the method's pruning
   penalty (λΣΩ for dsp) scaled as in PPO's loss (``agents.ppo.penalty_scale``).

The student's observation normaliser stays the teacher's: its targets are functions of the
teacher's view of an observation, and moving statistics would move the inputs under the labels.
Collection draws from a generator seeded by (run seed, env step) and shuffling from another, and
the replay, optimizer and gradient-step count are in the run's checkpoint, so a killed run resumes
to the same result.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from agents.config import RunConfig
from agents.numpy_policy import NumpyCollectPolicy
from agents.ppo import penalty_scale
from agents.rollout import LAST
from dsp_tf._keras import keras, tf

#: The distillation learning rate falls linearly to this share of --distill_learning_rate over training.
FINAL_LR_SHARE = 0.1


def supervised_loss(teacher_out: tf.Tensor, student_out: tf.Tensor, discrete: bool,
                    log_std: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Mean over the batch of KL(π_T ‖ π_S): of the softmaxes of the logits, or of two Gaussians with the
    same fixed σ = exp(log_std) around the pre-squash means, Σ_d (m_T − m_S)² / 2σ²."""
    if discrete:
        p = tf.nn.softmax(teacher_out)
        return tf.reduce_mean(tf.reduce_sum(p * (tf.nn.log_softmax(teacher_out) - tf.nn.log_softmax(student_out)), -1))
    variance = tf.exp(2.0 * tf.stop_gradient(tf.cast(log_std, tf.float32)))
    return tf.reduce_mean(tf.reduce_sum(tf.square(teacher_out - student_out) / (2.0 * variance), -1))


class DistillState(tf.Module):
    """What a distill run adds to its checkpoint: the replay of labelled states, its own optimizer
    and the count of its gradient steps."""

    def __init__(self, cfg: RunConfig, obs_dim: int, out_dim: int, variables: List[tf.Variable]):
        super().__init__(name="distill")
        self.observations = tf.Variable(tf.zeros([cfg.replay_size, obs_dim]), trainable=False, name="observations")
        self.labels = tf.Variable(tf.zeros([cfg.replay_size, out_dim]), trainable=False, name="labels")
        self.added = tf.Variable(0, dtype=tf.int64, trainable=False, name="added")  # states ever added
        self.gradient_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="gradient_steps")
        self.optimizer = keras.optimizers.Adam(learning_rate=cfg.distill_learning_rate)
        self.optimizer.build(variables)  # slots now, so a checkpoint restores them at once

    @property
    def size(self) -> int:
        return min(int(self.added.numpy()), int(self.observations.shape[0]))

    def add(self, observations: np.ndarray, labels: np.ndarray) -> None:
        """The newest states in the ring, the oldest overwritten once it is full."""
        capacity = int(self.observations.shape[0])
        observations, labels = observations[-capacity:], labels[-capacity:]
        at = (int(self.added.numpy()) + np.arange(len(observations))) % capacity
        self.observations.scatter_nd_update(at[:, None], observations)
        self.labels.scatter_nd_update(at[:, None], labels)
        self.added.assign_add(len(observations))


class Acting:
    """Who acts in the batched environments, with the recipe's exploration, in the interface of
    ``NumpyCollectPolicy`` the rollout collector calls (``refresh``, ``sample``)."""

    def __init__(self, student: NumpyCollectPolicy, teacher: Callable[[np.ndarray], np.ndarray],
                 bounds: Optional[Tuple[np.ndarray, np.ndarray]]):
        self.student, self.teacher = student, teacher
        self.discrete = student.discrete
        self.bounds = bounds
        self.teacher_acts = False
        self.sigma = 0.0

    def refresh(self) -> None:
        self.student.refresh()

    def outputs(self, observation: np.ndarray) -> np.ndarray:
        """Logits, or the bounded mean action, of whoever acts."""
        if self.teacher_acts:
            out = self.teacher(observation)
            if self.discrete:
                return out
            low, high = self.bounds
            return ((high + low) / 2 + (high - low) / 2 * np.tanh(out)).astype(np.float32)
        params, _ = self.student.distribution(observation)
        return params["logits"] if self.discrete else params["loc"]

    def sample(self, observation: np.ndarray, rng: np.random.Generator):
        out = self.outputs(observation)
        if self.discrete:
            action = np.argmax(out + rng.gumbel(size=out.shape), axis=-1).astype(self.student.action_dtype)
        else:
            noise = rng.standard_normal(out.shape, dtype=np.float32)
            action = np.clip(out + np.float32(self.sigma) * noise, *self.bounds).astype(np.float32)
        return action, {"dist_params": {}, "value_prediction": np.zeros(len(observation), np.float32)}


class Distiller:
    """The recipe's part of an iteration: who acts (before collecting), then labelling, the replay
    and the supervised epochs (after)."""

    def __init__(self, learner):
        cfg = self.cfg = learner.cfg
        self.learner, self.state = learner, learner.distill
        self.teacher_model = learner.teacher.model()
        actor_net = learner.agent._actor_net  # noqa: SLF001
        self.discrete = actor_net.discrete
        self.acting = Acting(learner.collect_policy, lambda obs: self.teacher_model(obs, training=False).numpy(),
                             None if self.discrete else actor_net.action_bounds)
        model, normalizer = learner.pruner.model, learner.agent._observation_normalizer  # noqa: SLF001
        variables = model.trainable_variables
        log_std = None if self.discrete else actor_net.log_std
        optimizer, batch = self.state.optimizer, cfg.distill_batch_size
        obs_dim, out_dim = self.state.observations.shape[1], self.state.labels.shape[1]
        penalty = learner.pruner.regularization

        @tf.function(input_signature=[tf.TensorSpec([None, obs_dim], tf.float32),
                                      tf.TensorSpec([None, out_dim], tf.float32),
                                      tf.TensorSpec([None, batch], tf.int32), tf.TensorSpec([], tf.float32)])
        def epochs(observations, labels, batches, penalty_scale):
            sums = tf.zeros([2])
            for i in tf.range(tf.shape(batches)[0]):
                index = batches[i]
                x = normalizer.normalize(tf.gather(observations, index))
                with tf.GradientTape() as tape:
                    fit = supervised_loss(tf.gather(labels, index), model(x, training=False), self.discrete, log_std)
                    loss = fit + penalty_scale * penalty()
                optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
                sums += tf.stack([loss, fit])
            return sums / tf.cast(tf.maximum(tf.shape(batches)[0], 1), tf.float32)

        self._epochs = epochs

    @property
    def total_steps(self) -> int:
        return self.cfg.num_iterations * self.cfg.steps_per_iteration

    def before_collect(self, step0: int) -> None:
        """The run's first iteration the teacher acts; the noise fades linearly to 0 over training."""
        self.acting.teacher_acts = step0 == 0
        self.acting.sigma = self.cfg.action_noise * (1.0 - step0 / self.total_steps)

    def labelled_states(self, rollout) -> Tuple[np.ndarray, np.ndarray]:
        """The rollout's visited states (a LAST step's observation is where an episode ended, not a
        decision; the padding column is the next rollout's first) with the teacher's outputs."""
        observation, step_type = np.asarray(rollout.observation), np.asarray(rollout.step_type)
        decided = step_type[:, :-1] != LAST
        states = observation[:, :-1][decided].astype(np.float32)
        return states, self.teacher_model(states, training=False).numpy().astype(np.float32)

    def update(self, rollout, step0: int) -> np.ndarray:
        """Labels the rollout into the replay and trains on the replay; returns the mean (loss, supervised
        term, 0): the loop logs three losses."""
        cfg, state = self.cfg, self.state
        states, labels = self.labelled_states(rollout)
        state.add(states, labels)
        n = state.size
        rng = np.random.default_rng([cfg.seed, step0 * 2 + 1])
        per_epoch = max(1, n // cfg.distill_batch_size)
        batches = np.concatenate([rng.permutation(n)[:per_epoch * cfg.distill_batch_size].reshape(per_epoch, -1)
                                  if n >= cfg.distill_batch_size else rng.integers(0, n, (1, cfg.distill_batch_size))
                                  for _ in range(cfg.distill_epochs)]).astype(np.int32)
        state.optimizer.learning_rate = cfg.distill_learning_rate * (1.0 - (1.0 - FINAL_LR_SHARE) * step0
                                                                     / self.total_steps)
        loss, fit = self._epochs(state.observations[:n], state.labels[:n], tf.constant(batches),
                                 tf.constant(penalty_scale(cfg, step0), tf.float32)).numpy()
        state.gradient_steps.assign_add(len(batches))
        return np.array([loss, fit, 0.0], np.float32)


def summary_fields(learner) -> Dict:
    """What a distill run's summary.json adds: the recipe and its replay (its env steps, gradient steps and
    the teacher's env steps are there already)."""
    return {"recipe": "distill", "replay_size": learner.cfg.replay_size, "distill_epochs": learner.cfg.distill_epochs}
