"""The running discounted return PPO's rewards are scaled by (--reward_normalization=return_std)."""
import numpy as np

from agents.rollout import DiscountedReturns, RolloutCollector


class _CountingEnv:
    """Rewards 1, 2, 3, ... within an episode; episodes last ``length`` steps, then end."""

    def __init__(self, length, truncate=False):
        self.length, self.truncate, self.t = length, truncate, 0

    def seed(self, seed):
        pass

    def reset_raw(self):
        self.t = 0
        return np.zeros(1, np.float32)

    def step_raw(self, action):
        self.t += 1
        end = self.t == self.length
        return np.zeros(1, np.float32), float(self.t), end and not self.truncate, end and self.truncate


class _Policy:
    def refresh(self):
        pass

    def sample(self, observation, rng):
        n = len(observation)
        return np.zeros(n, np.int64), {"dist_params": {"logits": np.zeros((n, 2), np.float32)},
                                      "value_prediction": np.zeros(n, np.float32)}


def _gym_reference(length, columns, gamma):
    """gym 0.23's NormalizeReward return, written out over one environment's rollout columns:
    {column: return} for the columns that are real steps (an episode's end costs one reset column)."""
    g, t, after_end, out = 0.0, 0, False, {}
    for k in range(columns):
        if after_end:
            after_end = False
            continue
        t += 1
        g = gamma * g + t
        out[k] = g
        if t == length:  # terminated or truncated: gym 0.23 restarts the return either way
            g, t, after_end = 0.0, 0, True
    return out


def test_discounted_returns_follow_gym_across_episode_ends_truncation_and_rollouts():
    # Env 0 terminates every 3 steps; env 1 is truncated every 8, so its first episode ends in the
    # rollout's last column and the next rollout opens with its reset step.
    gamma, horizon, rollouts = 0.9, 8, 3
    envs = [_CountingEnv(3), _CountingEnv(8, truncate=True)]
    collector = RolloutCollector(envs, _Policy(), horizon)
    returns = DiscountedReturns(len(envs), gamma)
    collector.reset([0, 1])
    got = [returns(collector.collect((0, r))[0]) for r in range(rollouts)]

    reference = [_gym_reference(e.length, rollouts * horizon, gamma) for e in envs]
    expected = [np.array([g for ref in reference for k, g in ref.items() if r * horizon <= k < (r + 1) * horizon])
                for r in range(rollouts)]  # env-major within each rollout
    for r in range(rollouts):
        np.testing.assert_allclose(got[r], expected[r], err_msg=f"rollout {r}")

    returns.reset()  # a collector reset starts new episodes: the carry starts again at 0
    collector.reset([0, 1])
    np.testing.assert_allclose(returns(collector.collect((0, 9))[0]), expected[0])
