"""An episode of the exported policy, rendered off-screen to an animated GIF.

People would rather watch a policy drive than read its collision rate. The
episode is one of the run's unseen evaluation episodes, acted by the same
runtime the board uses (the int8 model in TFLite Micro, through the board's
input map), one frame per decision. Pillow writes the GIF in memory, so it joins
the export's file set and is written with it, all or nothing.
"""
from __future__ import annotations

import io
from typing import Callable, List, Tuple

import numpy as np

from dsp_tf.errors import UsageError


def render_episode(policy: Callable[[np.ndarray], np.ndarray], env_name: str, seed: int, discrete: bool,
                   max_frames: int = 200) -> Tuple[List[np.ndarray], float, float]:
    """(frames, return, frames per second) of one greedy episode: the first frame after reset, then
    one per step; the rate is the environment's own ``render_fps`` (gymnasium's convention;
    highway-env's is twice real time)."""
    from agents.envs import make_gym
    from agents.inference import greedy_action

    try:
        env = make_gym(env_name, render_mode="rgb_array")
        obs, _ = env.reset(seed=int(seed))
        frames = [env.render()]
    except Exception as e:  # noqa: BLE001 - pygame.error, OpenGL errors: whatever the renderer raises
        raise UsageError(f"cannot render '{env_name}' off-screen ({type(e).__name__}: {str(e).splitlines()[0]}); "
                         "highway-env needs pygame-ce's files: pip install --no-deps --force-reinstall "
                         "pygame-ce") from None
    total, done = 0.0, False
    while not done and len(frames) < max_frames:
        obs, reward, terminated, truncated, _ = env.step(greedy_action(policy(np.asarray(obs, np.float32)), discrete))
        total += float(reward)
        frames.append(env.render())
        done = terminated or truncated
    fps = float(env.metadata.get("render_fps") or 4)
    env.close()
    if any(np.ptp(f) == 0 for f in frames):
        raise UsageError(f"'{env_name}' rendered blank frames off-screen")
    return frames, total, fps


def gif_bytes(frames: List[np.ndarray], fps: float) -> bytes:
    from PIL import Image

    images = [Image.fromarray(np.asarray(f, np.uint8)) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=int(round(1000 / fps)), loop=0, optimize=True)
    return buf.getvalue()
