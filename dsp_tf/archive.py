"""`python -m dsp_tf.archive`: Copy the light part of finished runs into an archive.

The command keeps its name; its body lives in ``study.archive``, on the floor
above the agent layer, so that no library module of dsp_tf imports agents.
"""


def main() -> None:
    from study.archive import main as body

    body()


if __name__ == "__main__":
    main()
