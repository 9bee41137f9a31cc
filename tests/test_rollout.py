"""The running discounted return PPO's rewards are scaled by (--reward_normalization=return_std)."""
import numpy as np

from agents.rollout import DiscountedReturns, RolloutCollector


class _CountingEnv:
    """Rewards 1, 2, 3, ... within an episode; episodes last ``length`` steps, then terminate."""

    def __init__(self, length):
        self.length, self.t = length, 0

    def seed(self, seed):
        pass

    def reset_raw(self):
        self.t = 0
        return np.zeros(1, np.float32)

    def step_raw(self, action):
        self.t += 1
        return np.zeros(1, np.float32), float(self.t), self.t == self.length, False


class _Policy:
    def refresh(self):
        pass

    def sample(self, observation, rng):
        n = len(observation)
        return np.zeros(n, np.int64), {"dist_params": {"logits": np.zeros((n, 2), np.float32)},
                                      "value_prediction": np.zeros(n, np.float32)}


def _gym_reference(lengths, steps_per_env, gamma):
    """gym's NormalizeReward return, written out per environment over its real env steps."""
    out = []
    for length, steps in zip(lengths, steps_per_env):
        g, t, values = 0.0, 0, []
        for _ in range(steps):
            t += 1
            g = gamma * g + t
            values.append(g)
            if t == length:
                g, t = 0.0, 0
        out.append(values)
    return out


def test_discounted_returns_follow_gym_across_episode_ends_and_rollouts():
    gamma, lengths, rollouts, horizon = 0.9, (3, 50), 3, 8
    collector = RolloutCollector([_CountingEnv(n) for n in lengths], _Policy(), horizon)
    collector.reset([0, 1])
    returns = DiscountedReturns(len(lengths), gamma)
    got = [returns(collector.collect((0, k))[0]) for k in range(rollouts)]

    # Env 0 ends an episode every 3 steps, and each end costs one reset step of the
    # rollout's 8: 3 + 3 real steps in the first rollout, and so on; env 1 never ends.
    steps_env0 = sum(1 for k in range(rollouts * horizon) if k % 4 != 3)
    reference = _gym_reference(lengths, (steps_env0, rollouts * horizon), gamma)
    assert len(np.concatenate(got)) == steps_env0 + rollouts * horizon
    real = [[], []]  # each rollout's output is env-major: regroup it per environment
    for k, values in enumerate(got):
        n0 = sum(1 for s in range(k * horizon, (k + 1) * horizon) if s % 4 != 3)
        real[0] += list(values[:n0])
        real[1] += list(values[n0:])
    np.testing.assert_allclose(real[0], reference[0])
    np.testing.assert_allclose(real[1], reference[1])

    returns.reset()  # a collector reset starts new episodes: the carry starts again at 0
    collector.reset([0, 1])
    assert returns(collector.collect((0, 9))[0])[0] == 1.0
