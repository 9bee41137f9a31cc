"""The training command line: bad input, flagfiles, kill and resume."""
import csv
import json
import os
import signal
import time

import pytest

from clitools import TINY, last_line, progress_without_timing, run_module, start_module
from dsp_cli.flagfiles import expand_flagfiles, find_flagfile
from dsp_tf.errors import UsageError


@pytest.mark.parametrize("args, message", [
    (["--env=Pong-v9"], "unknown environment 'Pong-v9'"),
    (["--method=magic"], "unknown method 'magic'"),
    (["--final_sparsity=1.0"], "--final_sparsity must be in [0, 1)"),
    (["--initial_sparsity=-0.1"], "--initial_sparsity must be in [0, 1)"),
    (["--initial_sparsity=0.5", "--final_sparsity=0.3"], "must be >= --initial_sparsity"),
    (["--reg_strength=-1e-4"], "--reg_strength: strength (lambda) must be finite and >= 0, got -0.0001"),
    (["--reward_normalization=zscore"], "--reward_normalization must be one of reward_std, return_std, none"),
    (["--flagfile=does_not_exist.cfg"], "flagfile 'does_not_exist.cfg' not found"),
    (["--no_such_flag=1"], "Unknown command line flag 'no_such_flag'"),
    (["--num_env_steps=4096"], "--num_env_steps (4096) ends before the pruning schedule's last mask at step 81920"),
    (["--num_env_steps=10"], "--num_env_steps (10) is less than one rollout"),
    (["--validation_interval=-1"], "--validation_interval must be >= 0"),
    (["--penalty_after_schedule=sometimes"], "--penalty_after_schedule must be one of keep, off, anneal"),
    (["--validation_episodes=0"], "--validation_episodes must be > 0"),
    (["--actor_layers=-5,8"], "--actor_layers: layer size -5 is not positive (got -5,8)"),
    (["--critic_layers=64,0"], "--critic_layers: layer size 0 is not positive (got 64,0)"),
    (["--actor_layers="], "--actor_layers: needs at least one layer size"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, message):
    root = tmp_path / "run"
    result = run_module("dsp_tf.train", "--flagfile=cartpole.cfg", f"--root_dir={root}", *args)
    assert result.returncode == 2
    assert message in last_line(result.stderr)
    assert "Traceback" not in result.stderr
    assert not root.exists()


def test_malformed_flagfile_is_refused(tmp_path):
    bad = tmp_path / "bad.cfg"
    bad.write_text("--env=CartPole-v1\nnum_env_steps 100\n")
    result = run_module("dsp_tf.train", f"--flagfile={bad}", f"--root_dir={tmp_path / 'run'}")
    assert result.returncode == 2
    assert "malformed flagfile" in last_line(result.stderr) and "line 2" in last_line(result.stderr)


def test_flagfile_lookup_nesting_and_override():
    assert find_flagfile("hopper.cfg").endswith(os.path.join("configs", "hopper.cfg"))
    assert find_flagfile("hopper").endswith(os.path.join("configs", "hopper.cfg"))
    args = expand_flagfiles(["prog", "--flagfile=hopper_ppo.cfg", "--seed=7"])
    assert "--env=Hopper-v4" in args
    # The including file's --method=ppo comes after hopper.cfg's --method=dsp, and
    # the command line comes last: absl keeps the last value of a flag.
    assert args.index("--method=ppo") > args.index("--method=dsp")
    assert args[-1] == "--seed=7"
    with pytest.raises(UsageError):
        expand_flagfiles(["prog", "--flagfile"])


def test_run_dir_with_other_flags_is_refused_then_overwritten(tmp_path):
    root = tmp_path / "run"
    first = run_module("dsp_tf.train", *TINY, "--method=ppo", "--num_env_steps=1024", f"--root_dir={root}")
    assert first.returncode == 0, first.stderr[-2000:]
    other = run_module("dsp_tf.train", *TINY, "--method=ppo", "--num_env_steps=1024", "--seed=1", f"--root_dir={root}")
    assert other.returncode == 2
    assert "holds a run made with other flags (seed)" in last_line(other.stderr)
    assert json.loads((root / "summary.json").read_text())["seed"] == 0  # untouched
    again = run_module("dsp_tf.train", *TINY, "--method=ppo", "--num_env_steps=1024", "--seed=1", "--overwrite",
                       f"--root_dir={root}")
    assert again.returncode == 0
    assert json.loads((root / "summary.json").read_text())["seed"] == 1


def test_corrupt_checkpoint_and_missing_model_are_refused(tmp_path):
    root = tmp_path / "run"
    assert run_module("dsp_tf.train", *TINY, "--method=ppo", "--num_env_steps=1024", f"--root_dir={root}").returncode == 0
    (root / "summary.json").unlink()  # unfinished: the same command resumes from its checkpoint (a finished run is done)
    for data in (root / "checkpoints").glob("ckpt-*.data-*"):
        data.write_bytes(b"garbage" * 10)
    result = run_module("dsp_tf.train", *TINY, "--method=ppo", "--num_env_steps=1024", f"--root_dir={root}")
    assert result.returncode == 2
    assert "no intact checkpoint" in last_line(result.stderr) and "ckpt-1024" in last_line(result.stderr)
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_module("dsp_tf.evaluate", f"--root_dir={empty}")
    assert result.returncode == 2 and "not a run directory" in last_line(result.stderr)
    (root / "actor_compact.h5").unlink()
    result = run_module("dsp_tf.evaluate", f"--root_dir={root}")
    assert result.returncode == 2 and "corrupt" in last_line(result.stderr)


def _wait_for_checkpoint(root, proc, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if list((root / "checkpoints").glob("ckpt-*.index")):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("extra", [[], ["--reward_normalization=return_std"]], ids=["default", "return_std"])
def test_kill_9_then_same_command_resumes_to_the_same_result(tmp_path, extra):
    """return_std carries each environment's discounted return across rollouts: it too must resume exactly."""
    args = [*TINY, "--num_env_steps=6144", "--checkpoint_interval=2048", *extra]
    straight = tmp_path / "straight"
    assert run_module("dsp_tf.train", *args, f"--root_dir={straight}").returncode == 0

    killed = tmp_path / "killed"
    proc = start_module("dsp_tf.train", *args, f"--root_dir={killed}")
    assert _wait_for_checkpoint(killed, proc), "no checkpoint was written"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "summary.json").exists()
    resumed = run_module("dsp_tf.train", *args, f"--root_dir={killed}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stderr

    a = json.loads((straight / "summary.json").read_text())
    b = json.loads((killed / "summary.json").read_text())
    for key in ("env_steps", "return_mean", "eval_returns", "compact", "compact_layers"):
        assert a[key] == b[key], key

    assert progress_without_timing(straight) == progress_without_timing(killed)


def test_a_run_killed_after_a_new_best_resumes_to_the_same_chosen_actor(tmp_path):
    """The best validated actor lives in the checkpoint: killed once validations have kept one
    (at 3072 and 4096), the run resumes from step 4096 and ends choosing what an uninterrupted run chooses."""
    args = [*TINY, "--num_env_steps=7168", "--checkpoint_interval=2048", "--validation_interval=1024"]
    straight = tmp_path / "straight"
    assert run_module("dsp_tf.train", *args, f"--root_dir={straight}").returncode == 0

    killed = tmp_path / "killed"
    proc = start_module("dsp_tf.train", *args, f"--root_dir={killed}")
    deadline = time.time() + 300
    while not (killed / "checkpoints" / "ckpt-4096.index").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "summary.json").exists(), "the run finished before it could be killed"
    resumed = run_module("dsp_tf.train", *args, f"--root_dir={killed}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stderr

    a = json.loads((straight / "summary.json").read_text())
    b = json.loads((killed / "summary.json").read_text())
    assert a["selection"]["rule"] == "best_validation" and a["selection"]["validation_checks"] == 5
    for key in ("selection", "return_mean", "eval_returns", "compact_layers"):
        assert a[key] == b[key], key
    assert progress_without_timing(straight) == progress_without_timing(killed)


def test_learning_curve_evaluations_leave_training_unchanged(tmp_path):
    """--curve_interval adds greedy returns on held-out seeds to progress.csv and nothing else."""
    from agents.config import RunConfig
    from agents.training import train

    def run(name, **extra):
        cfg = RunConfig(env="CartPole-v1", method="dsp", seed=3, num_env_steps=4096, num_envs=2, rollout_steps=256,
                        minibatch_size=128, num_epochs=2, prune_begin=1024, prune_end=3072, prune_frequency=512,
                        eval_episodes=2, checkpoint_interval=100_000, root_dir=str(tmp_path / name), **extra)
        summary = train(cfg)
        with open(tmp_path / name / "progress.csv", encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        return summary, rows

    plain, plain_rows = run("plain")
    curved, curved_rows = run("curved", curve_interval=2048, curve_episodes=2)
    assert curved["eval_returns"] == plain["eval_returns"]
    trained = ("step", "return", "episodes", "neurons", "sparsity", "penalty", "layer_neurons")
    assert [[r[k] for k in trained] for r in curved_rows] == [[r[k] for k in trained] for r in plain_rows]
    evaluated = [r for r in curved_rows if r["eval_return"]]
    assert [int(r["step"]) for r in evaluated] == [2048, 4096]
    assert all(1.0 <= float(r["eval_return"]) <= 500.0 for r in evaluated)
    assert not any(r["eval_return"] for r in plain_rows)
