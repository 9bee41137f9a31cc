"""Tables, statistics and figures of finished runs: results.csv, Markdown, PNGs.

    python -m dsp_tf.report --sweep_dir=runs/sweep_cartpole --output_dir=docs

A run the report cannot read is named and left out.
"""
from dsp_tf import extras


def main() -> None:
    extras.require_extras("dsp_tf.report", "report", "rl")
    from study.report import main as body

    body()


if __name__ == "__main__":
    main()
