"""An episode of the exported driving policy, rendered off-screen to an animated GIF.

People would rather watch a policy drive than read its collision rate. The
episode is one of the run's unseen evaluation episodes, acted by the same
runtime the board uses (the int8 model in TFLite Micro, through the board's
input map), one frame per decision. Pillow writes the GIF in memory, so it joins
the export's file set and is written with it, all or nothing. Driving tasks only:
highway-env renders with pygame alone, where MuJoCo would need an OpenGL context.
"""
from __future__ import annotations

import io
from typing import Callable, List, Tuple

import numpy as np

from dsp_tf.errors import UsageError

#: Where a failed off-screen render usually comes from (README, "Dependencies").
PYGAME_HINT = ("highway-env renders with pygame-ce's files, which tf-agents' pygame pin can overwrite: "
               "pip install --no-deps --force-reinstall pygame-ce==<the version setup.py's driving extra pins>")


def _render_env(env_name: str):
    from agents.envs import is_driving, make_gym

    if not is_driving(env_name):
        raise UsageError(f"--gif renders driving tasks only; '{env_name}' is not one")
    return make_gym(env_name, render_mode="rgb_array")


def _frame(env) -> np.ndarray:
    try:
        frame = env.render()
    except Exception as e:  # noqa: BLE001 - pygame.error and whatever else the renderer raises
        env.close()
        raise UsageError(f"cannot render off-screen ({type(e).__name__}: {str(e).splitlines()[0]}); "
                         f"{PYGAME_HINT}") from None
    if np.ptp(frame) == 0:
        env.close()
        raise UsageError(f"off-screen rendering gave a blank frame; {PYGAME_HINT}")
    return frame


def check_rendering(env_name: str) -> None:
    """Renders one frame, so an export asked for a GIF fails before its conversions, not after."""
    env = _render_env(env_name)
    env.reset(seed=0)
    _frame(env)
    env.close()


def render_episode(policy: Callable[[np.ndarray], np.ndarray], env_name: str, seed: int,
                   discrete: bool) -> Tuple[List[np.ndarray], float, float]:
    """(frames, return, frames per second) of one greedy episode, whole (driving episodes are
    bounded by the task's duration): the first frame after reset, then one per decision. The
    rate is the environment's own ``render_fps`` (highway-env's: twice real time)."""
    from agents.inference import greedy_action

    env = _render_env(env_name)
    obs, _ = env.reset(seed=int(seed))
    frames, total, done = [_frame(env)], 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(greedy_action(policy(np.asarray(obs, np.float32)), discrete))
        total += float(reward)
        frames.append(_frame(env))
        done = terminated or truncated
    fps = float(env.metadata["render_fps"])
    env.close()
    return frames, total, fps


def gif_bytes(frames: List[np.ndarray], fps: float) -> bytes:
    """An endlessly looping GIF at ``fps``; Pillow's palette optimisation keeps a 30-frame drive ~20 kB."""
    from PIL import Image

    images = [Image.fromarray(np.asarray(f, np.uint8)) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=int(round(1000 / fps)), loop=0, optimize=True)
    return buf.getvalue()
