"""`python -m dsp_tf.shrink`: shrink a policy you already trained, distilled from it as teacher,
to the smallest size that keeps its return.

The command keeps its name; its body lives in ``dsp_cli.shrink``, on the floor
above the agent layer, so that no library module of dsp_tf imports agents.
"""
from dsp_tf import extras


def main() -> None:
    extras.require_extras("dsp_tf.shrink", "rl")
    from dsp_cli.shrink import main as body

    body()


if __name__ == "__main__":
    main()
