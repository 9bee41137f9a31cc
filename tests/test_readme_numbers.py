"""README's result figures are the generated ones (issue 41): every "mean ± std" README quotes is in
docs/RESULTS.md, which dsp_tf.report writes from the archived runs, so the two cannot drift apart."""
import os
import re

from clitools import REPO

FIGURE = re.compile(r"-?\d[\d,]*\.\d ± \d[\d,]*\.\d")


def test_every_mean_and_std_in_the_readme_is_a_generated_figure():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    with open(os.path.join(REPO, "docs", "RESULTS.md"), encoding="utf-8") as f:
        results = f.read()
    quoted = FIGURE.findall(readme)
    assert len(quoted) >= 5  # the "how good" lines quote the generated tables
    assert [q for q in quoted if q not in results] == []
