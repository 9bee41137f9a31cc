"""Re-exported so agent code raises the same UsageError the command lines catch."""
from dsp_tf.errors import UsageError

__all__ = ["UsageError"]
