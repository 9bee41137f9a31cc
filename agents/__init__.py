"""Agent layer: gymnasium environments, the masked PPO actor and the training loop.

Built on dsp_tf (the library) and tf-agents; the command lines (dsp_cli.train,
dsp_cli.evaluate, dsp_cli.shrink, dsp_cli.export) are thin shells around it.
"""
import dsp_tf._keras  # noqa: F401  (Keras 2 everywhere, before tf-agents imports TF)
