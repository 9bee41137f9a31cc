"""Copy the light files of finished runs (config, summary, progress, actors) into an archive.

    python -m dsp_tf.archive --source_dir=runs --archive_dir=docs/runs

The report reads an archive like any tree of runs; checkpoints are not copied.
"""


def main() -> None:
    from study.archive import main as body

    body()


if __name__ == "__main__":
    main()
