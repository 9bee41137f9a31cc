"""Export a run's policy for microcontrollers: TFLite float32 and int8, a TFLite Micro C array,
and the compact actor as integer-only plain C.

    python -m tflite_export --root_dir=runs/cartpole --output_dir=export/cartpole

export_report.json holds sizes, errors against Keras, returns and flash/RAM per Cortex-M target.
"""
from dsp_tf import extras


def main() -> None:
    extras.require_extras("tflite_export", "rl", "export")  # a run directory is read by the agent layer
    from dsp_cli.export import main as body

    body()


if __name__ == "__main__":
    main()
