"""Makes the Stable-Baselines3 teachers tests/test_sb3_teacher.py reads, with SB3's own outputs.

Not run by the tests (they must not need torch): run it once in a separate venv with
``pip install torch stable-baselines3 "gymnasium[mujoco]==1.3.0"``, from the repository root:

    python tests/data/sb3/make_fixtures.py

Two teachers, as a user would save them: CartPole-v1 (SB3's default MlpPolicy, tanh, no
VecNormalize) and Hopper-v4 (ReLU, 16-16 actor and 8-8 critic, VecNormalize beside the model
as rl-baselines3-zoo saves it). Their weights are drawn at random (unit scale, Hopper's action_net small), so that
some of Hopper's means leave the action bounds and some do not, and every logit differs; each folder's
expected.json holds observations and what SB3 computes for them: deterministic actions, logits,
values, log-std.
"""
import json
import os

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

HERE = os.path.dirname(os.path.abspath(__file__))


def randomize(policy, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in policy.named_parameters():
            scale = {"log_std": 0.5, "action_net.weight": 0.01}.get(name, 1.0)  # some means in bounds, some out
            p.copy_(torch.randn(p.shape, generator=g) * scale)


def save(name, model, venv, observations):
    folder = os.path.join(HERE, name)
    os.makedirs(folder, exist_ok=True)
    model.save(os.path.join(folder, "ppo.zip"))
    if isinstance(venv, VecNormalize):
        venv.save(os.path.join(folder, "vecnormalize.pkl"))
        normalized = venv.normalize_obs(observations)
    else:
        normalized = observations
    policy = model.policy
    obs = torch.as_tensor(normalized, dtype=torch.float32)
    with torch.no_grad():
        dist = policy.get_distribution(obs).distribution
        values = policy.predict_values(obs).numpy()[:, 0]
    actions, _ = model.predict(normalized, deterministic=True)
    expected = {"observations": observations.tolist(), "actions": np.asarray(actions).tolist(),
                "values": values.tolist()}
    if hasattr(dist, "logits"):
        expected["logits"] = dist.logits.numpy().tolist()
    else:
        expected["log_std"] = policy.log_std.detach().numpy().tolist()
    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)


def main():
    rng = np.random.default_rng(0)
    venv = DummyVecEnv([lambda: gym.make("CartPole-v1")])
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, seed=0, device="cpu")
    randomize(model.policy, 1)
    save("cartpole", model, venv, rng.normal(size=(16, 4)).astype(np.float32))

    venv = VecNormalize(DummyVecEnv([lambda: gym.make("Hopper-v4")]), norm_obs=True, norm_reward=True)
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, seed=0, device="cpu",
                policy_kwargs=dict(net_arch=dict(pi=[16, 16], vf=[8, 8]), activation_fn=torch.nn.ReLU))
    model.learn(128)  # a few steps, so that VecNormalize has statistics of its own
    randomize(model.policy, 2)
    save("hopper", model, venv, rng.normal(size=(16, 11)).astype(np.float32) * 3)


if __name__ == "__main__":
    main()
