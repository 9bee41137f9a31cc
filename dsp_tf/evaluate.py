"""`python -m dsp_tf.evaluate`: Evaluate a training run with its greedy compact actor.

The command keeps its name; its body lives in ``dsp_cli.evaluate``, on the floor
above the agent layer, so that no library module of dsp_tf imports agents.
"""
from dsp_tf import extras


def main() -> None:
    extras.require_extras("dsp_tf.evaluate", "rl")
    from dsp_cli.evaluate import main as body

    body()


if __name__ == "__main__":
    main()
