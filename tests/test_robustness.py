"""Nothing lost, nothing wrong, one line per mistake (issue 15).

Property tests over random Dense chains, a table of bad command-line values,
and faults: a second process on a run directory, corrupt checkpoint files, a
lost progress log, leftovers of a killed process, a failed export write; and
a fresh drill's (issue 28): a full disk (``ulimit -f``) in training and export,
Ctrl-C and SIGTERM during training, files where directories belong, empty lists.
"""
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import dsp_tf
from clitools import REPO, TINY, last_line, progress_without_timing, run_module
from dsp_tf import keras
from dsp_tf.chain import ELEMENTWISE_ACTIVATIONS
from dsp_tf.compact import compact_unstructured
from dsp_tf.numpy_forward import NumpyChain
from dsp_tf.errors import UsageError

KERAS_ACTIVATIONS = sorted(ELEMENTWISE_ACTIVATIONS - {"silu"}) + ["softmax"]
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _chain(sizes, activations, seed):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((sizes[0],))]
    for i, n in enumerate(sizes[1:]):
        last = i == len(sizes) - 2
        layers.append(keras.layers.Dense(n, activation=None if last else activations[i],
                                         bias_initializer=keras.initializers.RandomNormal(stddev=0.3),
                                         name=f"d{i}"))
    return keras.Sequential(layers)


@SETTINGS
@given(sizes=st.lists(st.integers(1, 9), min_size=3, max_size=5),
       activations=st.lists(st.sampled_from(KERAS_ACTIVATIONS), min_size=4, max_size=4),
       sparsity=st.floats(0.0, 0.95), floor=st.integers(1, 3), seed=st.integers(0, 2 ** 16))
def test_compact_equals_masked_or_the_layer_is_refused_by_name(sizes, activations, sparsity, floor, seed):
    model = _chain(sizes, activations, seed)
    hidden = activations[:len(sizes) - 2]
    floor = min(floor, min(sizes[1:-1]))
    schedule = dsp_tf.DynamicPruningSchedule(0.0, sparsity, 0, 10, 5) if sparsity > 0 else \
        dsp_tf.DynamicPruningSchedule(0.0, 0.0, 0, 10, 5)
    if "softmax" in hidden:
        bad = f"d{hidden.index('softmax')}"
        with pytest.raises(ValueError, match=f"layer '{bad}': its activation 'softmax' is not element-wise"):
            dsp_tf.StructuredPruner(model, schedule)
        return
    pruner = dsp_tf.StructuredPruner(model, schedule, min_neurons_per_layer=floor)
    pruner.update_masks(10, force=True)
    assert all(m.sum() >= floor for m in pruner.masks)  # no layer below its floor
    x = np.random.default_rng(seed).normal(size=(16, sizes[0])).astype(np.float32)
    compact = pruner.compact()
    assert [l.units for l in compact.layers[:-1]] == [int(m.sum()) for m in pruner.masks]
    masked = pruner.model(x, training=False).numpy()
    # Chained 'exponential' layers reach ~1e19, where float32 rounding of another summation order
    # alone differs by more than 1e-5 relative (found by Hypothesis): compare where float32 is sane.
    assume(np.all(np.abs(masked) < 1e6))
    np.testing.assert_allclose(compact(x).numpy(), masked, atol=1e-5, rtol=1e-5)
    if "gelu" not in hidden:  # the NumPy acting path mirrors every other activation
        np.testing.assert_allclose(NumpyChain(pruner.model)(x), masked, atol=1e-5, rtol=1e-5)


@SETTINGS
@given(sizes=st.lists(st.integers(2, 12), min_size=3, max_size=4), density=st.floats(0.05, 0.5),
       seed=st.integers(0, 2 ** 16))
def test_weight_pruned_compaction_keeps_no_neuron_the_stats_count_as_removed(sizes, density, seed):
    model = _chain(sizes, ["tanh"] * 3, seed)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        k = layer.kernel.numpy()
        layer.kernel.assign(k * (rng.random(k.shape) < density))
    compact = compact_unstructured(model)
    stats = dsp_tf.model_stats(compact)
    # Every neuron kept is alive (a layer with nothing alive keeps one inert unit: Dense needs one).
    assert [l.units for l in compact.layers[:-1]] == [max(1, e["neurons"]) for e in stats["layers"][:-1]]
    x = rng.normal(size=(16, sizes[0])).astype(np.float32)
    np.testing.assert_allclose(compact(x).numpy(), model(x).numpy(), atol=1e-5)


@pytest.mark.parametrize("strength", [float("inf"), float("nan"), -1.0])
def test_regularizer_strength_must_be_finite_and_non_negative(strength):
    with pytest.raises(ValueError, match="strength"):
        dsp_tf.NeuronImportanceRegularizer(strength)


# ---- the command lines: one line, exit 2, nothing left behind ---------------------------
@pytest.mark.parametrize("args, message", [
    (["--reg_strength=inf"], "--reg_strength must be a finite number"),
    (["--learning_rate=inf"], "--learning_rate must be a finite number"),
    (["--entropy_coef=nan"], "--entropy_coef must be a finite number"),
    (["--max_grad_norm=-1"], "--max_grad_norm must be > 0"),
    (["--seed=-1"], "--seed must be in [0, 2^31)"),
    (["--seed=4294967296"], "--seed must be in [0, 2^31)"),
    (["--value_coef=-0.5"], "--value_coef must be >= 0"),
])
def test_bad_training_values(tmp_path, args, message):
    root = tmp_path / "run"
    result = run_module("dsp_tf.train", *TINY, f"--root_dir={root}", *args)
    assert result.returncode == 2, result.stderr[-1000:]
    assert message in last_line(result.stderr) and "Traceback" not in result.stderr
    assert not root.exists()


def test_root_dir_that_cannot_be_created(tmp_path):
    (tmp_path / "file").write_text("x")
    for root, message in ((tmp_path / "file" / "run", "cannot create --root_dir"),
                          ("/proc/no_such_dir/run", "cannot create --root_dir")):
        result = run_module("dsp_tf.train", *TINY, f"--root_dir={root}")
        assert result.returncode == 2 and message in last_line(result.stderr), result.stderr[-1000:]
        assert "Traceback" not in result.stderr


def test_evaluate_refuses_zero_episodes():
    result = run_module("dsp_tf.evaluate", "--root_dir=tests/data/cartpole_dsp_s0", "--eval_episodes=0")
    assert result.returncode == 2 and "--eval_episodes must be > 0" in last_line(result.stderr)


def test_export_to_an_existing_file_is_refused_before_any_work(tmp_path):
    target = tmp_path / "out"
    target.write_text("not a directory")
    result = run_module("tflite_export", "--root_dir=tests/data/cartpole_dsp_s0", f"--output_dir={target}")
    assert result.returncode == 2 and "exists and is not a directory" in last_line(result.stderr)
    assert target.read_text() == "not a directory" and sorted(os.listdir(tmp_path)) == ["out"]


@pytest.mark.parametrize("observations, message", [
    (np.zeros((0, 4)), "non-empty"), (np.zeros(4), "non-empty"), (np.zeros((5, 3)), "3 features"),
    (np.full((5, 4), np.nan), "finite"),
])
def test_export_actor_refuses_bad_observations(tmp_path, observations, message):
    from tflite_export import export_actor

    actor = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(2)])
    with pytest.raises(UsageError, match=message):
        export_actor(actor, str(tmp_path / "out"), observations)
    assert not (tmp_path / "out").exists()


def test_a_failed_write_leaves_no_half_export(tmp_path, monkeypatch):
    from tflite_export import export_actor

    calls = []

    def failing(directory, files):
        for i, (name, data) in enumerate(files.items()):
            if i == 2:
                raise OSError(28, "No space left on device")
            with open(os.path.join(directory, name), "wb" if isinstance(data, bytes) else "w") as f:
                f.write(data)
            calls.append(name)

    monkeypatch.setattr("tflite_export.exporter.write_file_set", failing)
    actor = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(2)])
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    with pytest.raises(OSError):
        export_actor(actor, str(tmp_path / "deep" / "out"), obs)
    assert len(calls) == 2 and os.listdir(tmp_path) == []  # no files, no temp dir, no parent made for it


# ---- faults in a run directory -------------------------------------------------------------
def test_a_second_process_cannot_take_a_run_directory(tmp_path):
    from agents.config import RunConfig
    from agents.rundir import RunDirectory

    cfg = RunConfig(root_dir=str(tmp_path / "run"))
    first = RunDirectory(cfg.root_dir)
    first.prepare(cfg)
    (tmp_path / "run" / "progress.csv").write_text("step\n")
    for overwrite in (False, True):
        cfg.overwrite = overwrite
        with pytest.raises(UsageError, match=r"in use by another training process \(pid \d+\)"):
            RunDirectory(cfg.root_dir).prepare(cfg)
    assert (tmp_path / "run" / "progress.csv").exists()  # --overwrite did not wipe the live run


@pytest.fixture(scope="module")
def finished_tiny(tmp_path_factory):
    """A tiny run with two checkpoints (iterations at 1024-step boundaries)."""
    root = tmp_path_factory.mktemp("tiny") / "run"
    result = run_module("dsp_tf.train", *TINY, "--checkpoint_interval=1024", f"--root_dir={root}")
    assert result.returncode == 0, result.stderr[-2000:]
    return root


def _rerun_copy(src, dst, damage):
    shutil.copytree(src, dst)
    os.remove(dst / "summary.json")
    damage(dst)
    return run_module("dsp_tf.train", *TINY, "--checkpoint_interval=1024", f"--root_dir={dst}")


def _same_result(a, b):
    sa, sb = (json.loads((r / "summary.json").read_text()) for r in (a, b))
    for key in ("env_steps", "eval_returns", "compact", "compact_layers"):
        assert sa[key] == sb[key], key
    assert progress_without_timing(a) == progress_without_timing(b)


def _checkpoints(root):
    return sorted((root / "checkpoints").glob("ckpt-*.index"), key=lambda p: int(p.stem.split("-")[1]))


@pytest.mark.parametrize("state", ["garbage {{{ not a proto", ""])
def test_a_bad_checkpoint_state_file_does_not_restart_the_run(tmp_path, finished_tiny, state):
    result = _rerun_copy(finished_tiny, tmp_path / "run",
                         lambda d: (d / "checkpoints" / "checkpoint").write_text(state))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resumed from" in result.stderr and "at env step 4096" in result.stderr
    _same_result(finished_tiny, tmp_path / "run")


@pytest.mark.parametrize("part", ["index", "data-00000-of-00001"])
def test_a_corrupt_latest_checkpoint_falls_back_to_the_older_one(tmp_path, finished_tiny, part):
    def corrupt(d):
        latest = _checkpoints(d)[-1]
        path = latest.with_name(latest.name.replace(".index", f".{part}"))
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])

    result = _rerun_copy(finished_tiny, tmp_path / "run", corrupt)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "is unreadable" in result.stderr and "resumed from ckpt-3072" in result.stderr
    _same_result(finished_tiny, tmp_path / "run")


def test_no_intact_checkpoint_is_one_line(tmp_path, finished_tiny):
    def corrupt_all(d):
        for index in _checkpoints(d):
            index.write_bytes(b"\0" * 10)

    result = _rerun_copy(finished_tiny, tmp_path / "run", corrupt_all)
    assert result.returncode == 2 and "no intact checkpoint" in last_line(result.stderr)


def test_lost_progress_log_and_leftovers_of_a_killed_process(tmp_path, finished_tiny):
    def damage(d):
        os.remove(d / "progress.csv")
        (d / "actor_compact.h5.tmp4242.h5").write_bytes(b"half")
        (d / "checkpoints" / "ckpt-5000_temp").mkdir()
        (d / "checkpoints" / "ckpt-5000_temp" / "part-00000-of-00001.index").write_bytes(b"half")

    result = _rerun_copy(finished_tiny, tmp_path / "run", damage)
    assert result.returncode == 0, result.stderr[-2000:]
    _same_result(finished_tiny, tmp_path / "run")  # the whole history, not only the rows after the checkpoint
    assert not list((tmp_path / "run").glob("*.tmp*")) and not list((tmp_path / "run" / "checkpoints").glob("*_temp"))


# ---- report and sweep ------------------------------------------------------------------------
def test_report_names_runs_it_cannot_read(tmp_path):
    for name in ("good", "truncated", "empty"):
        shutil.copytree("tests/data/cartpole_dsp_s0", tmp_path / "runs" / name)
    text = (tmp_path / "runs" / "truncated" / "summary.json").read_text()
    (tmp_path / "runs" / "truncated" / "summary.json").write_text(text[: len(text) // 2])
    (tmp_path / "runs" / "empty" / "summary.json").write_text("{}")
    result = run_module("dsp_tf.report", f"--sweep_dir={tmp_path / 'runs'}", f"--output_dir={tmp_path / 'out'}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "skipped unreadable run" in result.stderr and "truncated" in result.stderr
    assert "summary.json is not valid JSON" in result.stderr and "summary.json lacks return_mean" in result.stderr
    assert "1 runs in 1 groups, skipped 2 unreadable" in result.stdout

    for name in ("good",):
        shutil.rmtree(tmp_path / "runs" / name)
    result = run_module("dsp_tf.report", f"--sweep_dir={tmp_path / 'runs'}", f"--output_dir={tmp_path / 'out2'}")
    assert result.returncode == 2 and "no readable finished runs" in last_line(result.stderr)


def test_report_refuses_a_missing_preamble_before_writing_anything(tmp_path):
    shutil.copytree("tests/data/cartpole_dsp_s0", tmp_path / "runs" / "good")
    result = run_module("dsp_tf.report", f"--sweep_dir={tmp_path / 'runs'}", f"--output_dir={tmp_path / 'out'}",
                        f"--results_markdown={tmp_path / 'out' / 'R.md'}", f"--preamble={tmp_path / 'nope.md'}")
    assert result.returncode == 2 and "cannot read --preamble" in last_line(result.stderr)
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_sweep_from_another_directory_keeps_its_paths_together_and_fails_loudly(tmp_path):
    tiny = [f"--train_flag={a}" for a in TINY[1:] if not a.startswith("--eval")] + ["--train_flag=--eval_episodes=1"]
    result = run_module("dsp_tf.sweep", "--sweep_dir=sw", "--envs=cartpole", "--methods=ppo,dsp", "--seeds=0",
                        "--reg_strengths=1e-4,-1", "--workers=2", *tiny, cwd=str(tmp_path))
    assert result.returncode == 2  # a negative lambda is refused before anything runs
    assert not (tmp_path / "sw").exists()
    result = run_module("dsp_tf.sweep", "--sweep_dir=sw", "--envs=cartpole", "--methods=ppo,dsp", "--seeds=0",
                        "--workers=2", *tiny, "--train_flag=--reg_strength=inf", cwd=str(tmp_path))
    assert result.returncode == 1  # every point fails on the bad extra flag
    assert "run(s) failed" in last_line(result.stderr) and "--reg_strength must be a finite number" in result.stderr
    status = (tmp_path / "sw" / "status.csv").read_text()
    assert "failed (exit 2)" in status
    result = run_module("dsp_tf.sweep", "--sweep_dir=sw", "--envs=cartpole", "--methods=ppo", "--seeds=0",
                        *tiny, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "sw" / "cartpole" / "ppo_s0" / "summary.json").exists()


# ---- a fresh drill's bad input (issue 28): one line each, nothing left behind -------------------
def test_evaluate_a_file_as_run_directory_says_so(tmp_path):
    target = tmp_path / "run"
    target.write_text("not a run")
    result = run_module("dsp_tf.evaluate", f"--root_dir={target}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"run directory '{target}' is not a directory" in last_line(result.stderr)
    assert target.read_text() == "not a run" and os.listdir(tmp_path) == ["run"]


def test_report_into_a_file_is_refused_before_writing_anything(tmp_path):
    shutil.copytree("tests/data/cartpole_dsp_s0", tmp_path / "runs" / "good")
    target = tmp_path / "out"
    target.write_text("not a directory")
    result = run_module("dsp_tf.report", f"--sweep_dir={tmp_path / 'runs'}", f"--output_dir={target}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"--output_dir '{target}' is not a directory" in last_line(result.stderr)
    assert target.read_text() == "not a directory" and sorted(os.listdir(tmp_path)) == ["out", "runs"]
    assert sorted(os.listdir(tmp_path / "runs" / "good")) == sorted(os.listdir("tests/data/cartpole_dsp_s0"))


@pytest.mark.parametrize("flag", ["--methods=", "--seeds=", "--envs=", "--final_sparsities="])
def test_sweep_with_an_empty_list_is_refused(tmp_path, flag):
    result = run_module("dsp_tf.sweep", "--sweep_dir=sw", "--envs=cartpole", "--methods=ppo", "--seeds=0", flag,
                        cwd=str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{flag[:-1]} is empty" in last_line(result.stderr)
    assert os.listdir(tmp_path) == []  # no sweep directory, no status.csv


def _run_with_file_size_limit(module, *args, limit, env=None, cwd=REPO):
    """The command with ``ulimit -f``: every write past ``limit`` bytes fails with EFBIG, as on a full disk."""
    def set_limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1", **(env or {}))
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600, preexec_fn=set_limit)


def _partial_files(root):
    return [str(p) for p in root.rglob("*") if "_temp" in p.name or ".tmp" in p.name]


def test_a_full_disk_during_training_is_one_line_and_the_run_resumes_from_what_was_kept(tmp_path, finished_tiny):
    run = tmp_path / "run"
    shutil.copytree(finished_tiny, run)
    os.remove(run / "summary.json")
    for path in (run / "checkpoints").glob("ckpt-4096.*"):  # the last rollout is redone and saved again
        path.unlink()
    kept = {p.name: p.read_bytes() for p in (run / "checkpoints").glob("ckpt-3072.*")}
    limit = (run / "checkpoints" / "ckpt-3072.data-00000-of-00001").stat().st_size // 2

    result = _run_with_file_size_limit("dsp_tf.train", *TINY, "--checkpoint_interval=1024", f"--root_dir={run}",
                                       limit=limit)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    line = last_line(result.stderr)
    assert line.startswith("dsp_tf.train: error: disk full writing '") and "ckpt-4096" in line
    assert "File too large" in line and "run the same command again" in line
    assert {p.name: p.read_bytes() for p in (run / "checkpoints").glob("ckpt-3072.*")} == kept
    assert not list((run / "checkpoints").glob("ckpt-4096*")) and _partial_files(run) == []
    assert not (run / "summary.json").exists()

    again = run_module("dsp_tf.train", *TINY, "--checkpoint_interval=1024", f"--root_dir={run}")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "ckpt-3072 at env step 3072" in again.stderr
    _same_result(finished_tiny, run)


def test_a_full_disk_while_saving_the_actor_is_one_line_without_a_crash(tmp_path, finished_tiny):
    """HDF5 writing straight to a full disk crashed the process at exit (exit 139) after the error line."""
    run = tmp_path / "run"
    shutil.copytree(finished_tiny, run)
    for name in ("summary.json", "actor_compact.h5", "actor_dense.h5", "actor_meta.json"):
        os.remove(run / name)
    result = _run_with_file_size_limit("dsp_tf.train", *TINY, "--checkpoint_interval=1024", f"--root_dir={run}",
                                       limit=4096)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    line = last_line(result.stderr)
    assert line.startswith("dsp_tf.train: error: disk full writing '") and "actor_compact.h5" in line
    assert _partial_files(run) == [] and not (run / "actor_compact.h5").exists()
    again = run_module("dsp_tf.train", *TINY, "--checkpoint_interval=1024", f"--root_dir={run}")
    assert again.returncode == 0, again.stderr[-2000:]
    _same_result(finished_tiny, run)


def test_a_finished_run_run_again_is_answered_and_nothing_is_rewritten(tmp_path, finished_tiny):
    run = tmp_path / "run"
    shutil.copytree(finished_tiny, run)
    os.remove(run / ".lock")  # as an archived run: nothing is created in it either
    shutil.rmtree(run / "checkpoints")

    def state():
        return {p: (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns) for p in run.rglob("*")}

    before = state()
    again = run_module("dsp_tf.train", *TINY, "--checkpoint_interval=1024", f"--root_dir={run}")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "already done:" in last_line(again.stderr) and "holds this run, finished" in last_line(again.stderr)
    assert state() == before


def test_archive_never_writes_over_another_run(tmp_path, finished_tiny):
    from study.archive import archive_runs

    source, archive = tmp_path / "runs", tmp_path / "archive"
    shutil.copytree(finished_tiny, source / "a")
    other = archive / "a"
    other.mkdir(parents=True)
    config = json.loads((finished_tiny / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "seed": 7}))
    (other / "summary.json").write_text("{}")
    before = {p.name: p.read_bytes() for p in other.iterdir()}
    with pytest.raises(UsageError, match="already holds another run"):
        archive_runs(str(source), str(archive))
    assert {p.name: p.read_bytes() for p in other.iterdir()} == before
    (other / "config.json").write_text(json.dumps(config))  # the same run: its copy is updated
    assert archive_runs(str(source), str(archive))[0] == ["a"]
    assert (other / "summary.json").read_bytes() == (finished_tiny / "summary.json").read_bytes()


def test_a_full_disk_during_export_is_one_line_and_the_output_directory_is_as_it_was(tmp_path):
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    out.mkdir()
    scratch.mkdir()
    (out / "mine.txt").write_text("kept")
    # 16 kB: the compact actor's files fit, the dense TFLite model (about 22 kB) does not.
    result = _run_with_file_size_limit("tflite_export", "--root_dir=tests/data/cartpole_dsp_s0",
                                       f"--output_dir={out}", "--eval_episodes=1", "--latency_invokes=10",
                                       limit=16 * 1024, env={"TMPDIR": str(scratch)})
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    line = last_line(result.stderr)
    assert line.startswith("tflite_export: error: disk full writing '") and "File too large" in line
    assert str(scratch) in line  # the full disk is the temporary directory's: the line says which file
    assert sorted(os.listdir(tmp_path)) == ["out", "scratch"]  # no staging directory beside --output_dir
    assert os.listdir(out) == ["mine.txt"] and (out / "mine.txt").read_text() == "kept"
    assert not [n for n in os.listdir(scratch) if n.startswith(("tflm_arena_", "c_policy_size_"))]


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_training_with_one_line_and_the_same_command_resumes(tmp_path, sig, code):
    root = tmp_path / "run"
    args = [*TINY, "--curve_interval=1024", f"--root_dir={root}"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1")
    # Ctrl-C reaches the process even where the test runner's own SIGINT is ignored (a background job).
    proc = subprocess.Popen([sys.executable, "-m", "dsp_tf.train", *args], cwd=REPO, env=env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = []
    for line in proc.stderr:  # the signal is sent when the run says it reached step 2048, not after a delay
        lines.append(line)
        if "step 2048/4096" in line:
            proc.send_signal(sig)
    proc.wait()
    stderr = "".join(lines)
    assert proc.returncode == code, stderr[-2000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    match = re.fullmatch(rf"dsp_tf\.train: stopped by {sig.name}(?: \(Ctrl-C\))? after env step (\d+) of 4096; "
                         r"run the same command to resume from the last checkpoint", last_line(stderr))
    assert match and int(match.group(1)) >= 2048, last_line(stderr)
    assert _partial_files(root) == [] and not (root / "summary.json").exists()
    assert _checkpoints(root)  # the checkpoint at step 1024 at least

    resumed = run_module("dsp_tf.train", *args)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stderr and (root / "summary.json").exists()
