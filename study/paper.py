"""What the report holds our runs against: the paper's reported returns and the part each method plays.

Typed once here so that a table, a sentence and a figure cannot quote the paper
differently, and so that renaming a method (dsp_tf.methods) is a change in one
place; tests/test_sweep_report.py checks every name below is a declared method.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

#: The paper's reported returns (../shared/SPEC.md), shown beside ours, by gym id:
#: (PPO-DSP at 93%, dense PPO or None where the paper gives none, a note).
PAPER: Dict[str, Tuple[str, Optional[str], str]] = {
    "CartPole-v1": ("268.26 ± 124.96", "449.22", ""),
    "LunarLander-v3": ("−28.09 ± 157.55", "−61.03", "paper: LunarLander-v2"),
    "Hopper-v4": ("1476.62 ± 997.43", None, "paper: Hopper-v3"),
    "Walker2d-v4": ("2310.67", None, "the text also says 1310.67; paper: Walker2d-v3"),
}

#: The paper's method, judged against all the others.
PROPOSED = "dsp"
#: The dense network it prunes, trained without pruning.
DENSE = "ppo"
#: The question the paper leaves open: a network as small as the pruned one, trained from scratch.
SMALL = "small"
#: Whom a run of PROPOSED should beat, each as a probability of improvement.
RIVALS = (SMALL, "dropout", DENSE)
#: The paper's Fig. 10: |W| of the first two actor layers of these methods.
HEATMAP_METHODS = (DENSE, PROPOSED, "ssl", "l1")

#: Every method named above, for the check that each is declared.
ROLES = (PROPOSED, DENSE, SMALL, *RIVALS, *HEATMAP_METHODS)
