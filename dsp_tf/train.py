"""`python -m dsp_tf.train`: Train a PPO agent whose actor is pruned by DSP (or a baseline).

The command keeps its name; its body lives in ``dsp_cli.train``, on the floor
above the agent layer, so that no library module of dsp_tf imports agents.
"""
from dsp_tf import extras


def main() -> None:
    extras.require_extras("dsp_tf.train", "rl")
    from dsp_cli.train import main as body

    body()


if __name__ == "__main__":
    main()
