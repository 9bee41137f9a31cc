"""Agent layer: gymnasium environments, the masked PPO actor and the training loop.

Built on dsp_tf (the library) and tf-agents; the command lines in dsp_tf.train
and dsp_tf.evaluate are thin shells around ``agents.training``.
"""
import dsp_tf._keras  # noqa: F401  (Keras 2 everywhere, before tf-agents imports TF)
