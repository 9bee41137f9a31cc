"""A core-only install (no RL stack) refuses RL commands with one line naming the extra."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Runs a command with the RL stack unimportable, as on a core-only install (sys.modules[x] = None hides x).
HIDE_RL = "import runpy, sys; sys.modules['tf_agents'] = sys.modules['gymnasium'] = None; sys.argv = [{prog!r}] + sys.argv[1:]; " \
          "runpy.run_module({prog!r}, run_name='__main__')"


@pytest.mark.parametrize("prog", ["dsp_tf.train", "dsp_tf.evaluate", "dsp_tf.sweep", "tflite_export"])
def test_rl_command_without_rl_stack_names_the_extra(prog, tmp_path):
    proc = subprocess.run([sys.executable, "-c", HIDE_RL.format(prog=prog), "--flagfile=cartpole.cfg",
                           f"--root_dir={tmp_path / 'run'}"], capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2
    assert lines == [f"{prog}: error: this command needs the 'rl' extra (tf_agents, gymnasium not installed): "
                     "pip install 'dsp-tf[rl]'"]
    assert not (tmp_path / "run").exists()


def test_library_imports_without_rl_stack():
    code = "import sys; sys.modules['tf_agents'] = None; sys.modules['gymnasium'] = None; import dsp_tf, dsp_tf.methods"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-1000:]
