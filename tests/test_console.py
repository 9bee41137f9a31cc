"""Console output for people and how a command ends when it cannot finish (issue 28).

At a terminal a log line is the message alone (``step 2048/4096 (50%) | …``), a
warning marked ``warning:``; where stderr is a file or a pipe, and in absl's log
files (``--log_dir``), lines keep absl's prefix. Every command runs through
``dsp_cli.cli.run``, which ends an interrupted, terminated or out-of-room command
with one line: checked here on a stand-in command, and end to end on training,
the exporter and the others in test_robustness.py.
"""
import os
import pty
import re
import subprocess
import sys

import pytest

from clitools import REPO, TINY

#: absl's prefix: level, date, time, thread, file:line.
ABSL_PREFIX = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ \S+:\d+\] ")
PLAIN_PROGRESS = re.compile(r"^step (\d+)/4096 \(\d+%\) \| \d+ steps/s \| ETA \d+m\d\ds \| return [\d.]+ "
                            r"\| neurons \d+/64$")

#: A stand-in command: logs a progress line and a warning, then does what the test asks.
DEMO = """
import os, signal
from absl import logging
from dsp_cli import cli
from dsp_tf.stopping import stop_points

def main():
    if {progress}:
        logging.info("step 3/10 (30%) | 5 steps/s | ETA 0m01s")
    logging.warning("careful")
    {then}

signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a foreground shell, also when tests run in the background
cli.run(main, prog="demo")
"""


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1")


def _at_terminal(command):
    """Runs ``command`` with stderr on a pseudo-terminal, as a person's shell would; (exit code, stderr)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(command, cwd=REPO, env=_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    proc.wait(timeout=600)
    return proc.returncode, b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")


def _demo(then="pass", progress=True, tty=False, args=()):
    command = [sys.executable, "-c", DEMO.format(progress=progress, then=then), *args]
    if tty:
        return _at_terminal(command)
    result = subprocess.run(command, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    return result.returncode, result.stderr


def _lines(text):
    return [line for line in text.splitlines() if line.strip()]


def test_log_lines_at_a_terminal_are_plain_and_a_warning_is_marked(tmp_path):
    code, stderr = _demo(tty=True, args=[f"--log_dir={tmp_path / 'logs'}"])
    assert code == 0, stderr
    lines = _lines(stderr)
    assert lines[-2:] == ["step 3/10 (30%) | 5 steps/s | ETA 0m01s", "warning: careful"], stderr
    assert not [line for line in lines if ABSL_PREFIX.match(line)]
    # absl's log file keeps the prefix: when and where each line was written.
    (log,) = [p for p in (tmp_path / "logs").iterdir() if not p.is_symlink()]
    logged = _lines(log.read_text())
    assert len(logged) == 2 and all(ABSL_PREFIX.match(line) for line in logged), logged
    assert logged[0].startswith("I") and logged[0].endswith("] step 3/10 (30%) | 5 steps/s | ETA 0m01s")
    assert logged[1].startswith("W") and logged[1].endswith("] careful")


def test_log_lines_to_a_file_or_pipe_keep_absl_prefix():
    code, stderr = _demo()
    assert code == 0, stderr
    lines = _lines(stderr)[-2:]
    assert ABSL_PREFIX.match(lines[0]) and lines[0].endswith("] step 3/10 (30%) | 5 steps/s | ETA 0m01s")
    assert lines[1].startswith("W") and lines[1].endswith("] careful")


@pytest.mark.parametrize("then, progress, code, line", [
    ("raise KeyboardInterrupt", True, 130, "demo: stopped by SIGINT (Ctrl-C) after env step 3 of 10; "
                                           "run the same command to resume from the last checkpoint"),
    ("raise KeyboardInterrupt", False, 130, "demo: stopped by SIGINT (Ctrl-C); run the same command to resume"),
    ("os.kill(os.getpid(), signal.SIGTERM); signal.pause()", True, 143,
     "demo: stopped by SIGTERM after env step 3 of 10; run the same command to resume from the last checkpoint"),
    ("raise OSError(28, 'No space left on device', '/data/run/x.bin')", True, 1,
     "demo: error: disk full writing '/data/run/x.bin' (No space left on device); partial files were removed and "
     "what was there before is kept: free some space (or raise the file size limit) and run the same command again"),
    ("raise RuntimeError('{{function_node SaveV2}} /r/ckpt-8_temp/part-0; File too large [Op:SaveV2]')", True, 1,
     "demo: error: disk full writing '/r/ckpt-8_temp/part-0' (File too large); partial files were removed and "
     "what was there before is kept: free some space (or raise the file size limit) and run the same command again"),
    # Inside stop_points() (training's loop) a signal waits for the next stop point, then ends the same way.
    ("with stop_points(): os.kill(os.getpid(), signal.SIGINT); logging.warning('reached the stop point')",
     True, 130, "demo: stopped by SIGINT (Ctrl-C) after env step 3 of 10; "
                "run the same command to resume from the last checkpoint"),
    # A second signal does not wait.
    ("with stop_points(): os.kill(os.getpid(), signal.SIGINT); os.kill(os.getpid(), signal.SIGTERM); "
     "signal.pause()", True, 143,
     "demo: stopped by SIGTERM after env step 3 of 10; run the same command to resume from the last checkpoint"),
], ids=["sigint", "sigint_before_any_step", "sigterm", "enospc", "efbig_in_tensorflow_text", "deferred_sigint",
        "second_signal_at_once"])
def test_a_command_that_cannot_finish_ends_in_one_line(then, progress, code, line):
    returncode, stderr = _demo(then, progress)
    assert returncode == code, stderr
    assert _lines(stderr)[-1] == line
    assert "Traceback" not in stderr
    if "stop_points" in then:  # the deferred signal let the block finish; the second one did not wait
        assert ("reached the stop point" in stderr) == ("reached the stop point" in then), stderr


def test_any_other_failure_keeps_its_traceback():
    """Only the failures a user can act on are one line; a bug still shows where it is."""
    returncode, stderr = _demo("raise RuntimeError('a bug')")
    assert returncode == 1 and "Traceback" in stderr and "RuntimeError: a bug" in stderr


def test_a_short_training_run_at_a_terminal_prints_plain_progress(tmp_path):
    command = [sys.executable, "-m", "dsp_tf.train", *TINY, "--curve_interval=1024", f"--root_dir={tmp_path / 'run'}"]
    code, stderr = _at_terminal(command)
    assert code == 0, stderr[-2000:]
    lines = _lines(stderr)
    assert not [line for line in lines if ABSL_PREFIX.match(line)], stderr[-2000:]
    progress = [int(m.group(1)) for m in map(PLAIN_PROGRESS.match, lines) if m]
    assert progress == [1024, 2048, 3072, 4096], stderr[-2000:]
    assert lines[0].startswith("dsp CartPole-v1 seed 0: actor [32, 32], dense 64 neurons")
    assert lines[0].endswith(" FLOPs, λ 0.0001, global ranking"), lines[0]  # what the method trains with
    assert any(line.startswith("validation at step 3072: return ") for line in lines)
    assert any(line.startswith("kept the actor of step ") for line in lines)
    assert lines[-1].startswith("done: greedy return ") and "neurons 64 → " in lines[-1]


def test_a_held_signal_is_raised_at_the_block_end_and_dropped_when_the_block_fails():
    """Called as the handler would be (no real signal): inside stop_points() a signal waits; a block that
    ends normally raises it; a block that fails drops it, so a later block (shrink's next student) runs."""
    import signal

    from dsp_tf import stopping

    reached = False
    with pytest.raises(stopping.Stopped) as stopped:
        with stopping.stop_points():
            stopping._on_signal(signal.SIGTERM, None)
            reached = True
    assert reached and stopped.value.signum == signal.SIGTERM
    with pytest.raises(ValueError):
        with stopping.stop_points():
            stopping._on_signal(signal.SIGINT, None)
            raise ValueError("the block fails")
    with stopping.stop_points():
        stopping.stop_point()  # nothing held any more


#: Each command's --help and flags it must list (its own, with their help; --helpfull adds absl's and TF's).
HELP = {"dsp_tf.train": ("--root_dir", "--env", "--method", "--final_sparsity", "--stop_share"),
        "dsp_tf.shrink": ("--teacher", "--keep", "--method", "--ratios", "--search", "--root_dir"),
        "dsp_tf.evaluate": ("--root_dir", "--actor"), "tflite_export": ("--root_dir", "--output_dir", "--c_tanh"),
        "dsp_tf.sweep": ("--sweep_dir", "--executor"), "dsp_tf.report": ("--sweep_dir", "--output_dir"),
        "dsp_tf.archive": ("--source_dir", "--archive_dir")}


@pytest.mark.parametrize("module", sorted(HELP))
def test_help_lists_the_commands_own_flags(module):
    from clitools import run_module
    result = run_module(module, "--help", timeout=120)
    assert result.returncode == 1 and result.stderr == "", result.stderr[-2000:]  # absl's --help exits 1
    listed = set(re.findall(r"^  (--(?:\[no\])?\w+)", result.stdout, re.M))
    listed |= {name.replace("[no]", "") for name in listed}
    assert set(HELP[module]) <= listed, set(HELP[module]) - listed
    assert "--test_tmpdir" not in listed and "--log_dir" not in listed  # absl's own only under --helpfull
    usage = result.stdout.split("flags:")[0]
    assert "python -m" in usage and "floor" not in usage and "dsp_cli" not in usage  # for users, no internals
