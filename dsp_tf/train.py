"""Train a PPO policy whose actor prunes itself as it learns (DSP), or a baseline.

    python -m dsp_tf.train --flagfile=cartpole.cfg --root_dir=runs/cartpole

The flagfile (configs/<env>.cfg) holds an environment's settings; flags on the
command line override it. The same command again resumes a stopped run, or says
it is done. runs/cartpole/policy.h5 is the policy to hand on.
"""
from dsp_tf import extras


def main() -> None:
    extras.require_extras("dsp_tf.train", "rl")
    from dsp_cli.train import main as body

    body()


if __name__ == "__main__":
    main()
