#!/usr/bin/env bash
# Fresh-machine main job: sets up .venv, then trains DSP-PPO on CartPole with
# the default flagfile, printing return and neurons/weights/FLOPs before and
# after pruning and writing the compact actor to runs/cartpole_demo.
source "$(dirname "$0")/venv.sh"
exec python -m dsp_tf.train --flagfile=configs/cartpole.cfg --root_dir=runs/cartpole_demo "$@"
