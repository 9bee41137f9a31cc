"""`python -m tflite_export`: export a training run's actor for TFLite and TFLite Micro.

The command keeps its name; its body lives in ``dsp_cli.export``, on the floor
above the agent layer, so that the tflite_export library has no RL in it.
"""
from dsp_tf import extras


def main() -> None:
    extras.require_extras("tflite_export", "rl", "export")  # a run directory is read by the agent layer
    from dsp_cli.export import main as body

    body()


if __name__ == "__main__":
    main()
