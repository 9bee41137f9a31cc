"""Trains the Stable-Baselines3 teacher of docs/sb3_teacher/README.md (rl-baselines3-zoo's CartPole-v1
PPO hyperparameters), in a venv with torch and SB3 (not this project's .venv):

    python docs/sb3_teacher/train_teacher.py runs/sb3_cartpole/ppo.zip
"""
import sys

import gymnasium as gym
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env


def linear(start):
    return lambda progress: progress * start


def main(path):
    env = make_vec_env(lambda: gym.make("CartPole-v1"), n_envs=8, seed=0)
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20,
                ent_coef=0.0, learning_rate=linear(1e-3), clip_range=linear(0.2), seed=0, device="cpu", verbose=0)
    model.learn(100_000)
    model.save(path)


if __name__ == "__main__":
    main(sys.argv[1])
