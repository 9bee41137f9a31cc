"""`python -m dsp_tf.sweep`: Run a grid of training runs.

The command keeps its name; its body lives in ``study.sweep``, on the floor
above the agent layer, so that no library module of dsp_tf imports agents.
"""
from dsp_tf import extras


def main() -> None:
    extras.require_extras("dsp_tf.sweep", "rl")
    from study.sweep import main as body

    body()


if __name__ == "__main__":
    main()
