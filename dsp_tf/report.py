"""`python -m dsp_tf.report`: Tables and figures from finished runs.

The command keeps its name; its body lives in ``study.report``, on the floor
above the agent layer, so that no library module of dsp_tf imports agents.
"""
from dsp_tf import extras


def main() -> None:
    extras.require_extras("dsp_tf.report", "report", "rl")
    from study.report import main as body

    body()


if __name__ == "__main__":
    main()
