"""The trained-model example: a trained MLP keeps its accuracy through wrapping, and DSP
fine-tuning prunes it to the target while one-shot removal by Ω does not hold accuracy."""
import json
import math
import os
import subprocess
import sys

import pytest

pytest.importorskip("sklearn", reason="the example needs the 'examples' extra (scikit-learn)")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_pruning_a_trained_digits_mlp():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "digits_prune_trained.py"),
                           "--pretrain_epochs=10", "--finetune_epochs=20", "--final_sparsity=0.9"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    kept = 256 - math.ceil(0.9 * 256)
    for key in ("trained_one_shot", "trained_then_dsp", "dsp_from_scratch"):
        assert sum(result[key]["hidden_units"]) == kept, key
    assert result["trained_dense"]["hidden_units"] == [128, 128]
    assert result["trained_dense"]["test_accuracy"] > 0.9
    assert result["trained_then_dsp"]["test_accuracy"] > 0.85
    # Fine-tuning while pruning is what keeps the accuracy: removing the same share at once does not.
    assert result["trained_then_dsp"]["test_accuracy"] > result["trained_one_shot"]["test_accuracy"] + 0.2
