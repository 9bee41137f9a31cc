"""Train a PPO agent whose actor is pruned by DSP (or a baseline) during training.

    python -m dsp_tf.train --flagfile=configs/cartpole.cfg --root_dir=runs/cartpole

Re-running the same command resumes from the last checkpoint. Flags on the
command line override the flagfile. See ``--helpfull`` for every setting.
"""
from __future__ import annotations

from agents.config import RunConfig, config_fields
from agents.training import train
from dsp_cli import cli
from dsp_cli.flagdefs import define_flags_from, values_from_flags


def _main() -> None:
    train(RunConfig(**values_from_flags(RunConfig)))


def main() -> None:
    define_flags_from(RunConfig)
    cli.key_flags([f.name for f in config_fields()])
    cli.run(_main, prog="dsp_tf.train")
