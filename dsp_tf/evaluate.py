"""Play a finished (or stopped) run's greedy actor on its unseen test episodes.

    python -m dsp_tf.evaluate --root_dir=runs/cartpole

Writes evaluation.json into the run directory and prints the mean return.
"""
from dsp_tf import extras


def main() -> None:
    extras.require_extras("dsp_tf.evaluate", "rl")
    from dsp_cli.evaluate import main as body

    body()


if __name__ == "__main__":
    main()
