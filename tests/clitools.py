"""Running the command lines as a user would, in a subprocess."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A tiny CartPole run: 4 envs x 128 steps per iteration.
TINY = ["--flagfile=cartpole.cfg", "--num_env_steps=4096", "--rollout_steps=128", "--num_envs=4",
        "--prune_begin=1024", "--prune_end=3072", "--prune_frequency=512", "--checkpoint_interval=1024",
        "--eval_episodes=2", "--actor_layers=32,32", "--critic_layers=32,32"]
# The student procedure the shrink tests exercise (DSP pruning, PPO with the KL term), whatever dsp_tf.shrink's
# defaults are (they follow the evidence: dsp_cli.shrink.STUDENT_METHOD, STUDENT_RECIPE).
PPO_KL_DSP = ["--method=dsp", "--recipe=ppo_kl"]


def run_module(module, *args, timeout=600, cwd=REPO):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def start_module(module, *args, cwd=REPO):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1")
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def last_line(text):
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return lines[-1] if lines else ""


def progress_without_timing(run_dir):
    """progress.csv's rows without the one column that measures time (steps/s), which no rerun repeats."""
    import csv

    with open(os.path.join(str(run_dir), "progress.csv"), encoding="utf-8", newline="") as f:
        return [{k: v for k, v in row.items() if k != "steps_per_second"} for row in csv.DictReader(f)]
