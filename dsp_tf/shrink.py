"""Shrink a policy you already trained to the smallest size that keeps its return.

    python -m dsp_tf.shrink --teacher=runs/cartpole_ppo --keep=0.95 --root_dir=runs/cartpole_small

The teacher is a finished run directory, a .h5/.keras actor with actor_meta.json
beside it (give --env and --flagfile), or a Stable-Baselines3 MlpPolicy .zip.
By default each student is a small network (each layer 1 - ratio of the
teacher's neurons) trained from scratch on states it visits, labelled by the
teacher (--method=small --recipe=distill; --method=dsp prunes the teacher's own
weights instead); the search trains students of the --ratios values (the largest first, then
bisection) until it knows the largest that keeps --keep of the teacher's return,
each stopping once it keeps it. That student is copied to --root_dir (policy.h5
there is the policy to hand on). Running the same command again resumes the
search, or says it is done.
"""
from dsp_tf import extras


def main() -> None:
    extras.require_extras("dsp_tf.shrink", "rl")
    from dsp_cli.shrink import main as body

    body()


if __name__ == "__main__":
    main()
