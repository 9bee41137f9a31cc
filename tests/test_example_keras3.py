"""The Keras 3 digits example runs, prunes >= 90% of the hidden neurons of a softmax classifier and
keeps its accuracy; its compact model equals the masked one. Skipped where Keras 3 is not installed."""
import json
import os
import subprocess
import sys

import pytest

from dsp_tf.binding import keras3_installed

if not keras3_installed():
    pytest.skip("Keras 3 is not installed here (TensorFlow 2.15: tf_keras only)", allow_module_level=True)
pytest.importorskip("sklearn", reason="the example needs the 'examples' extra (scikit-learn)")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_keras3_digits_example_prunes_ninety_percent_and_keeps_accuracy():
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}  # a Keras 3 user's process
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "digits_keras3.py"), "--epochs=20",
                           "--seeds", "0"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["backend"] == "tensorflow" and result["keras"].startswith("3.")
    (run,) = result["runs"]
    assert run["compact"]["hidden_sparsity"] >= 0.9
    assert run["compact"]["max_gap_to_masked"] <= 1e-5
    assert run["compact"]["weights"] < 0.1 * run["dense"]["weights"]
    assert run["dense"]["test_accuracy"] > 0.9 and run["compact"]["test_accuracy"] > 0.85
    assert run["small_from_scratch"]["hidden_units"] == run["compact"]["hidden_units"]
