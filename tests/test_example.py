"""The Keras example (DSP outside RL, plain model.fit) runs and its compact model still classifies."""
import json
import math
import os
import subprocess
import sys

import pytest

pytest.importorskip("sklearn", reason="the example needs the 'examples' extra (scikit-learn)")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_digits_example_prunes_each_layer_and_keeps_accuracy():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "digits_mlp.py"), "--epochs=20",
                           "--final_sparsity=0.9", "--ranking=per_layer"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["compact"]["hidden_units"] == [128 - math.ceil(0.9 * 128)] * 2
    assert result["compact"]["weights"] < 0.1 * result["dense"]["weights"]
    assert result["dense"]["test_accuracy"] > 0.9
    assert result["compact"]["test_accuracy"] > 0.85
