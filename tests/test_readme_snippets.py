"""README's Keras snippet runs as written (issue 41), on Keras 3 in a fresh process."""
import os
import re
import subprocess
import sys

import pytest

from clitools import REPO


def _keras3_installed() -> bool:
    probe = "import importlib.metadata as m, sys; sys.exit(0 if int(m.version('keras').split('.')[0]) >= 3 else 1)"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


def python_blocks(path):
    with open(path, encoding="utf-8") as f:
        return re.findall(r"```python\n(.*?)```", f.read(), re.S)


@pytest.mark.skipif(not _keras3_installed(), reason="Keras 3 is not installed here (the core leg runs it)")
def test_the_readmes_keras_snippet_runs_as_written(tmp_path):
    blocks = [b for b in python_blocks(os.path.join(REPO, "README.md")) if "keras.Sequential" in b]
    assert len(blocks) == 1
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    result = subprocess.run([sys.executable, "-c", blocks[0]], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env={**env, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    before, after = (int(v) for v in result.stdout.strip().splitlines()[-1].split(" -> "))
    assert before == 128 and after <= 0.1 * before + 1
