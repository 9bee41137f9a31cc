"""Stable-Baselines3 PPO with the same networks and schedule as configs/hopper_ppo.cfg.

    python benchmarks/sb3_ppo.py --env_steps=163840

The reference that benchmarks/throughput.py times beside dsp_tf.train: 128×128
tanh actor and critic with orthogonal init, 2048-step rollouts of one env,
10 epochs of 64-sample minibatches, Adam 3e-4 annealed linearly to 0, GAE 0.95,
clip 0.2, no entropy bonus, value coefficient 0.5, gradient norm 0.5, and
observation and reward normalisation (VecNormalize) as tf-agents does. One
torch thread, as each of our runs uses one core. Needs the `bench` extra.
"""
from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env_steps", type=int, default=163840)
    parser.add_argument("--env", default="Hopper-v4")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(1)
    env = VecNormalize(make_vec_env(args.env, n_envs=1, seed=args.seed), norm_obs=True, norm_reward=True,
                       clip_obs=5.0, gamma=0.99)
    model = PPO("MlpPolicy", env, n_steps=2048, batch_size=64, n_epochs=10,
                learning_rate=lambda remaining: 3e-4 * remaining, gamma=0.99, gae_lambda=0.95,
                clip_range=0.2, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5, seed=args.seed, device="cpu",
                policy_kwargs=dict(net_arch=dict(pi=[128, 128], vf=[128, 128]), activation_fn=torch.nn.Tanh))
    start = time.perf_counter()
    model.learn(total_timesteps=args.env_steps)
    print(f"sb3 learn seconds {time.perf_counter() - start:.2f}")


if __name__ == "__main__":
    main()
