"""Faults during an export (issue 42): killed while it swaps its output in, a full disk, bad flags.

Each bad flag must end in one line and exit code 2 with the output directory as it was; a kill
(SIGKILL, nothing runs after it) at any moment must leave the complete old export or the complete
new one, never a mix; a full disk must say which file found no room.
"""
import errno
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clitools import REPO, last_line, run_module
from dsp_tf import keras
from dsp_tf.errors import UsageError
from dsp_tf.files import prepare_output_directory
from tflite_export import export_actor
from tflite_export.c_array import parse_c_array
from tflite_export.exporter import MANIFEST, convert_actor
from tflite_export.input_range import check_inside_window, parse_calibration_pairs
from tflite_export.writing import check_tool_run

RUN = os.path.join(REPO, "tests", "data", "cartpole_dsp_s0")
FAST = ["--eval_episodes=1", "--latency_invokes=10"]
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1")


def _tree(directory):
    """name -> (bytes, mtime) of every entry: equal before and after means nothing was changed."""
    if not os.path.isdir(directory):
        return None
    out = {}
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        out[name] = (_tree(path) if os.path.isdir(path) else Path(path).read_bytes(), os.stat(path).st_mtime_ns)
    return out


def _previous_export(out):
    """An output directory as an earlier export left it (its files listed in the manifest), plus a
    file of the user's own."""
    out.mkdir(parents=True)
    for name in ("actor_float32.tflite", "actor_policy.c", "policy_int8.gif"):
        (out / name).write_text("old")
    (out / MANIFEST).write_text(json.dumps({"files": ["actor_float32.tflite", "actor_policy.c", "policy_int8.gif"]}))
    (out / "mine.txt").write_text("the user's")


# ---- killed during the swap ---------------------------------------------------------------------
#: Runs dsp_tf.files.staged_directory on its own (dsp_tf's __init__, which imports TensorFlow, is
#: skipped: a few hundred kills must not cost seconds each) and SIGKILLs itself after the Nth step
#: of the swap: a rename, an exchange, a hard link, an unlink or rmdir, counted once the new files
#: are written. Run with today's code (no manifest, no exchange) it kills between two renames.
_SWAP = r"""
import inspect, os, signal, sys, types
package = types.ModuleType("dsp_tf")
package.__path__ = [sys.argv[1]]
sys.modules["dsp_tf"] = package
from dsp_tf import files

out, mode, kill_at, manifest = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
if mode == "fallback":
    files._exchange = lambda a, b: False  # a platform or filesystem without renameat2(RENAME_EXCHANGE)
steps, armed = [0], [False]

def step(fn):
    def wrapped(*args, **kwargs):
        result = fn(*args, **kwargs)
        if armed[0]:
            steps[0] += 1
            if steps[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return result
    return wrapped

for name in ("rename", "replace", "link", "unlink", "rmdir"):
    setattr(os, name, step(getattr(os, name)))
if hasattr(files, "_exchange"):
    files._exchange = step(files._exchange)
kwargs = {"manifest": manifest} if "manifest" in inspect.signature(files.staged_directory).parameters else {}
with files.staged_directory(out, **kwargs) as staging:
    for name in ("actor_float32.tflite", "actor_policy.c", "actor_policy.h"):
        with open(os.path.join(staging, name), "w") as f:
            f.write("new")
    armed[0] = True
"""

OLD = {"actor_float32.tflite": "old", "actor_policy.c": "old", "policy_int8.gif": "old", "mine.txt": "the user's",
       MANIFEST: ["actor_float32.tflite", "actor_policy.c", "policy_int8.gif"]}
NEW = {"actor_float32.tflite": "new", "actor_policy.c": "new", "actor_policy.h": "new", "mine.txt": "the user's",
       MANIFEST: ["actor_float32.tflite", "actor_policy.c", "actor_policy.h"]}


def _exchange_supported(directory):
    """Whether renameat2(RENAME_EXCHANGE) works where ``directory`` is (the swap falls back elsewhere)."""
    from dsp_tf import files

    a, b = directory / "exchange_a", directory / "exchange_b"
    a.mkdir()
    b.mkdir()
    try:
        return files._exchange(str(a), str(b))
    finally:
        a.rmdir()
        b.rmdir()


def _state(directory):
    """What the directory holds: each file's text, the manifest's list of files; None when missing."""
    if not os.path.isdir(directory):
        return None
    out = {}
    for name in os.listdir(directory):
        text = (directory / name).read_text()
        out[name] = json.loads(text)["files"] if name == MANIFEST else text
    return out


@pytest.mark.parametrize("mode", ["exchange", "fallback"])
def test_a_kill_at_any_step_of_the_swap_leaves_the_old_or_the_new_export(tmp_path, mode):
    """SIGKILL after every single step of the swap in turn, with renameat2's exchange and with the
    two-rename fallback: right after the kill the directory is wholly old or wholly new (or, between
    the fallback's renames, missing with the old one complete beside it), and after what the next
    export does first (prepare_output_directory) it is wholly old or new with nothing left beside
    it; the user's file is in both. Renaming file by file, as before, left old and new mixed."""
    if mode == "exchange" and not _exchange_supported(tmp_path):
        pytest.skip("this filesystem has no renameat2(RENAME_EXCHANGE)")
    outcomes = set()
    for kill_at in range(1, 40):
        parent = tmp_path / str(kill_at)
        out = parent / "out"
        _previous_export(out)
        r = subprocess.run([sys.executable, "-c", _SWAP, os.path.join(REPO, "dsp_tf"), str(out), mode, str(kill_at),
                            MANIFEST], capture_output=True, text=True, timeout=60)
        if r.returncode == 0:  # every step done: the new export, nothing beside it
            assert _state(out) == NEW and os.listdir(parent) == ["out"]
            break
        assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
        now = _state(out)
        if now is None:
            assert mode == "fallback", f"killed after step {kill_at}: no output directory"
            aside = [n for n in os.listdir(parent) if n.startswith(".out.old")]
            assert len(aside) == 1 and _state(parent / aside[0]) == OLD
        else:
            assert now in (OLD, NEW), f"killed after step {kill_at}: a mix of old and new files: {now}"
        prepare_output_directory(str(out), MANIFEST)
        after = _state(out)
        assert after == (now if now is not None else OLD), f"killed after step {kill_at}"
        assert os.listdir(parent) == ["out"], f"killed after step {kill_at}: {os.listdir(parent)} left"
        outcomes.add("old" if after == OLD else "new")
    else:
        pytest.fail("the swap never finished")
    assert outcomes == {"old", "new"} and kill_at >= 6  # kills on both sides of the switch were tried


#: The exporter as the command line runs it, SIGKILLed right after the first rename or exchange that
#: touches the output's parent directory: today's code, renaming file by file, dies between two
#: renames; the whole-directory swap dies after its one step, before the old tree is removed.
_KILLED_EXPORT = r"""
import os, signal, sys
from dsp_tf import files

parent = os.path.dirname(os.path.abspath(sys.argv[1]))

def dies_after(fn):
    def wrapped(*args, **kwargs):
        result = fn(*args, **kwargs)
        if any(isinstance(a, str) and a.startswith(parent) for a in args):
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return wrapped

os.rename, os.replace = dies_after(os.rename), dies_after(os.replace)
if hasattr(files, "_exchange"):
    files._exchange = dies_after(files._exchange)
from tflite_export.__main__ import main
sys.argv = ["tflite_export", "--root_dir=" + sys.argv[2], "--output_dir=" + sys.argv[1], *sys.argv[3:]]
main()
"""


def test_the_exporter_killed_during_its_swap_leaves_the_complete_new_export(tmp_path):
    """The real command, SIGKILLed in the middle of replacing a previous export: the directory is
    the complete new export (every file the report lists, at the size it lists, the C array the
    same bytes as the model), the previous export's files gone (policy_int8.gif was only in the
    old one), the user's file kept; the old tree left beside it goes on the next run."""
    if not _exchange_supported(tmp_path):
        pytest.skip("this filesystem has no renameat2(RENAME_EXCHANGE)")
    out = tmp_path / "out"
    _previous_export(out)
    r = subprocess.run([sys.executable, "-c", _KILLED_EXPORT, str(out), RUN, *FAST], cwd=REPO, env=ENV,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    report = json.loads((out / "export_report.json").read_text())
    exported = sorted([*report["files"], "export_report.json"])
    assert sorted(os.listdir(out)) == sorted([*exported, "mine.txt", MANIFEST])
    assert json.loads((out / MANIFEST).read_text())["files"] == exported
    for name, size in report["files"].items():
        assert (out / name).stat().st_size == size, name
    assert parse_c_array((out / "actor_int8.cc").read_text()) == (out / "actor_int8.tflite").read_bytes()
    assert (out / "mine.txt").read_text() == "the user's"
    assert [n for n in os.listdir(tmp_path) if n != "out"]  # the old tree, not yet removed
    prepare_output_directory(str(out), MANIFEST)  # what the next export does first
    assert os.listdir(tmp_path) == ["out"]


def test_a_second_export_replaces_the_first_and_keeps_the_users_files(tmp_path):
    """An export replaces the previous export's files as a whole (those its manifest lists: a file
    the new one does not write goes) and keeps files it did not write; a subdirectory of the
    user's is refused up front, the current directory too, and nothing is changed."""
    actor = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)])
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    first = export_actor(actor, str(out), obs, name="first")
    assert sorted(os.listdir(out)) == sorted([*first, "notes.txt", MANIFEST])
    second = export_actor(actor, str(out), obs, name="second")
    assert sorted(os.listdir(out)) == sorted([*second, "notes.txt", MANIFEST])  # no first_* file is left
    assert (out / "notes.txt").read_text() == "mine"

    (out / "firmware").mkdir()
    before = _tree(out)
    with pytest.raises(UsageError, match="holds the directory 'firmware', which no export wrote"):
        export_actor(actor, str(out), obs, name="third")
    assert _tree(out) == before
    os.rmdir(out / "firmware")
    before = _tree(out)
    os.chdir(out)
    try:
        with pytest.raises(UsageError, match="is the current directory"):
            export_actor(actor, ".", obs, name="third")
    finally:
        os.chdir(REPO)
    assert _tree(out) == before and os.listdir(tmp_path) == ["out"]


# ---- a full disk ---------------------------------------------------------------------------------
def _with_file_size_limit(args, limit, cwd=REPO):
    """``args`` under ``ulimit -f``: every write past ``limit`` bytes fails with EFBIG, as on a full disk."""
    def set_limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600,
                          preexec_fn=set_limit)


def test_a_full_disk_writing_the_export_names_the_file(tmp_path):
    """100 kB: every scratch file fits, the dense model's C array (about 120 kB) does not. The line
    used to be 'disk full (File too large)': a failed write() carries no file name."""
    out = tmp_path / "out"
    _previous_export(out)
    before = _tree(out)
    r = _with_file_size_limit(["-m", "tflite_export", f"--root_dir={RUN}", f"--output_dir={out}", *FAST], 100_000)
    assert r.returncode == 1, r.stderr[-2000:]
    line = last_line(r.stderr)
    assert line.startswith(f"tflite_export: error: disk full writing '{out / 'actor_dense_int8.cc'}' (File too large)")
    assert _tree(out) == before and os.listdir(tmp_path) == ["out"]


_COMPILE = r"""
import json, os, sys
from tflite_export.c_build import compile_shared

found = {}
for case, files in {"source": {"big.c": "/*" + "x" * 20000 + "*/\nint f(void) { return 0; }\n"},
                    "library": {"small.c": "int f(void) { return 1; }\n"}}.items():
    directory = os.path.join(sys.argv[1], case)
    os.mkdir(directory)
    try:
        compile_shared(files, directory)
        found[case] = "compiled"
    except OSError as e:
        found[case] = [e.errno, e.filename]
print(json.dumps(found))
"""


def test_a_full_disk_while_compiling_the_c_policy_names_the_file(tmp_path):
    """The host build of the C policy under an 8 kB file size limit: a source too large to write,
    and a linker the kernel kills (SIGXFSZ) writing the library, are OSErrors naming the file. They
    were an OSError without a name and a RuntimeError ("did not compile") with a traceback."""
    if not any(os.access(os.path.join(d, "cc"), os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep)):
        pytest.skip("needs a host C compiler")
    r = _with_file_size_limit(["-c", _COMPILE, str(tmp_path)], 8000)
    assert r.returncode == 0, r.stderr[-2000:]
    found = json.loads(r.stdout.strip().splitlines()[-1])
    assert found["source"] == [errno.EFBIG, str(tmp_path / "source" / "big.c")]
    assert found["library"] == [errno.EFBIG, str(tmp_path / "library" / "libpolicy.so")]


def test_a_tool_that_ran_out_of_room_is_a_named_os_error():
    ok = subprocess.CompletedProcess([], 0, "", "")
    check_tool_run(ok, "/x/a.o")  # nothing to say
    broken = subprocess.CompletedProcess([], 1, "", "a.c:1: error: expected ';'")
    check_tool_run(broken, "/x/a.o")  # a compile error is the caller's to report
    for result, number in ((subprocess.CompletedProcess([], -signal.SIGXFSZ, "", ""), errno.EFBIG),
                           (subprocess.CompletedProcess([], 1, "", "collect2: fatal error: ld terminated with signal "
                                                                  "25 [File size limit exceeded]"), errno.EFBIG),
                           (subprocess.CompletedProcess([], 1, "", "/x/a.o: No space left on device"), errno.ENOSPC)):
        with pytest.raises(OSError) as e:
            check_tool_run(result, "/x/a.o")
        assert (e.value.errno, e.value.filename) == (number, "/x/a.o")


# ---- bad flags -----------------------------------------------------------------------------------
@pytest.mark.parametrize("flag, message", [
    ("--c_prefix=", "--c_prefix is empty"),
    ("--c_prefix=_policy", "--c_prefix '_policy' starts with _"),
    ("--c_prefix=pré", "--c_prefix 'pré' is not a C identifier"),
    ("--c_prefix=actor_int8", "--c_prefix 'actor_int8' names the model array's C files"),
    ("--calibration_range=-1e38:1e38", "--calibration_range: '-1e38:1e38' goes beyond +-1e+30"),
    ("--calibration_range=", "--calibration_range is empty"),
    ("--calibration_range=0:1e-13", "is too narrow for float32"),
    ("--calibration_range=-100:100", "goes beyond the actor's observation normaliser clip window"),
    ("--int16_lsb=", "--int16_lsb is empty"),
], ids=["empty_prefix", "underscore_prefix", "non_ascii_prefix", "clashing_prefix", "range_overflow",
        "empty_range", "range_too_narrow", "range_beyond_clip_window", "empty_lsb"])
def test_a_bad_flag_is_one_line_and_changes_nothing(tmp_path, flag, message):
    """Each used to be taken silently: an empty --c_prefix stood for actor_policy, an empty
    --calibration_range or --int16_lsb for the default, and -1e38:1e38 printed 8 overflow
    warnings and became the normaliser's clip window while the header said "given by
    --calibration_range"."""
    out = tmp_path / "out"
    _previous_export(out)
    before = _tree(out)
    r = run_module("tflite_export", f"--root_dir={RUN}", f"--output_dir={out}", flag, *FAST)
    assert r.returncode == 2, r.stderr[-2000:]
    line = last_line(r.stderr)
    assert line.startswith("tflite_export: error: ") and message in line
    assert "Traceback" not in r.stderr and "RuntimeWarning" not in r.stderr
    assert _tree(out) == before and os.listdir(tmp_path) == ["out"]


def test_a_calibration_range_is_used_exactly_as_given(tmp_path):
    """A range beyond the normaliser's clip window is refused with the windows as a range that is
    accepted; that range is then what the C header lists and the report records, to the digit."""
    r = run_module("tflite_export", f"--root_dir={RUN}", f"--output_dir={tmp_path / 'out'}",
                   "--calibration_range=-100:100", *FAST)
    line = last_line(r.stderr)
    assert r.returncode == 2 and "e.g. --calibration_range=" in line, r.stderr[-2000:]
    suggested = line.rsplit("e.g. --calibration_range=", 1)[1]
    pairs = parse_calibration_pairs(suggested)
    assert len(pairs) == 4

    r = run_module("tflite_export", f"--root_dir={RUN}", f"--output_dir={tmp_path / 'out'}",
                   f"--calibration_range={suggested}", *FAST)
    assert r.returncode == 0, r.stderr[-2000:]
    header = (tmp_path / "out" / "actor_policy.h").read_text()
    assert " * (given by --calibration_range):\n" in header
    for i, (lo, hi) in enumerate(pairs):
        assert f" *   [{i}] " in header and f"{lo:.6g} .. {hi:.6g}\n" in header
    rng = json.loads((tmp_path / "out" / "export_report.json").read_text())["input_range"]
    assert rng["source"] == "calibration_range" and rng["note"] == "given by --calibration_range"
    for f, (lo, hi) in zip(rng["features"], pairs):
        assert (f["requested_low"], f["requested_high"]) == (lo, hi)
        assert f["low"] == pytest.approx(lo, rel=1e-6) and f["high"] == pytest.approx(hi, rel=1e-6)


def test_the_library_refuses_what_the_command_line_refuses():
    actor = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(2)])
    obs = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    with pytest.raises(UsageError, match="--c_prefix is empty"):
        convert_actor(actor, obs, c_prefix="")
    with pytest.raises(UsageError, match="names the model array's C files"):
        convert_actor(actor, obs, c_prefix="actor_int8")
    for text, message in (("-1e31:0", r"beyond \+-1e\+30"), ("1e6:1.000001e6", "too narrow"), ("0:1,", "empty lo:hi"),
                          ("", "is empty")):
        with pytest.raises(UsageError, match=message):
            parse_calibration_pairs(text)
    # the window, as the message prints it (rounded inward), is accepted
    low, high = np.array([-0.1234567891]), np.array([0.9876543219])
    with pytest.raises(UsageError, match=r"e\.g\. --calibration_range=-0\.123456:0\.987654$"):
        check_inside_window(np.array([-1.0]), np.array([1.0]), low, high)
    check_inside_window(np.array([-0.123456]), np.array([0.987654]), low, high)
