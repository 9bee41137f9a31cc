"""The study: the evidence behind the product's claims, on the floor above the product's commands.

Sweeps of training runs, their archive in ``docs/runs/``, the report (runs →
statistics → figures → Markdown) and the paper's own numbers. A user who trains,
shrinks and exports a policy never needs this package; ``python -m dsp_tf.sweep``,
``.report`` and ``.archive`` are launchers that hand over to it.
"""
