"""Every Python block of README.md and docs/*.md runs as written (issue 41), each in a fresh process.

A block written for Keras 3 (``import keras``) runs where Keras 3 is installed (CI's core leg); the
others run in the main install, where README's policy block is handed a trained run's policy.h5 at
the path it names. Between the two legs every block runs.
"""
import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

from clitools import REPO

#: What README's first block loads, relative to the directory the block runs in.
POLICY_PATH = os.path.join("runs", "cartpole_demo", "policy.h5")


def _installed(probe: str) -> bool:
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


KERAS3 = _installed("import importlib.metadata as m, sys; "
                    "sys.exit(0 if int(m.version('keras').split('.')[0]) >= 3 else 1)")
RL = _installed("import tf_agents")


def python_blocks(path):
    with open(path, encoding="utf-8") as f:
        return re.findall(r"```python\n(.*?)```", f.read(), re.S)


def documents():
    return [os.path.join(REPO, "README.md")] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))


BLOCKS = [(os.path.relpath(path, REPO), i, block) for path in documents()
          for i, block in enumerate(python_blocks(path))]


def _needs_keras3(block: str) -> bool:
    return bool(re.search(r"^import (numpy as np, )?keras\b", block, re.M))


def test_the_docs_have_the_blocks_this_test_expects():
    """A block this test would not find (another fence, another file) is a block nobody runs."""
    assert len(BLOCKS) >= 4
    assert sum(POLICY_PATH.replace(os.sep, "/") in b for _, _, b in BLOCKS) == 1
    for path in documents():
        with open(path, encoding="utf-8") as f:
            fences = re.findall(r"^```(\w*)", f.read(), re.M)
        assert "py" not in fences and "python3" not in fences, path


@pytest.mark.parametrize("path,index,block", BLOCKS, ids=[f"{p}#{i}" for p, i, _ in BLOCKS])
def test_every_python_block_runs_as_written(path, index, block, tmp_path, request):
    if _needs_keras3(block) and not KERAS3:
        pytest.skip("a Keras 3 block; Keras 3 is not installed here (the core leg runs it)")
    if not _needs_keras3(block) and KERAS3 and not RL:
        pytest.skip("a tf_keras block; the main install runs it")
    if POLICY_PATH.replace(os.sep, "/") in block:
        if not RL:
            pytest.skip("needs a trained run (the main install makes one)")
        root, _ = request.getfixturevalue("learned_cartpole")
        os.makedirs(tmp_path / os.path.dirname(POLICY_PATH))
        shutil.copyfile(root / "policy.h5", tmp_path / POLICY_PATH)
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    result = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600, env={**env, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, f"{path} block {index}:\n{result.stderr[-3000:]}"
    if "model_stats(small)" in block:  # the pruning snippets print their network's neurons before -> after
        before, after = (int(v) for v in result.stdout.strip().splitlines()[-1].split(" -> "))
        assert before == 128 and after <= 0.1 * before + 1
