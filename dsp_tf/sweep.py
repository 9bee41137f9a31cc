"""Train a grid of runs (environments × methods × seeds), locally or on a Ray cluster.

    python -m dsp_tf.sweep --flagfile=sweep_cartpole.cfg

Points already finished (in --sweep_dir or an archive) are skipped; status.csv says
how each ended.
"""
from dsp_tf import extras


def main() -> None:
    extras.require_extras("dsp_tf.sweep", "rl")
    from study.sweep import main as body

    body()


if __name__ == "__main__":
    main()
