"""Frames of an exported policy's episode as an animated GIF, in memory.

People would rather watch a policy drive than read its collision rate. The GIF
is built in memory so it joins the export's file set and is written with it,
all or nothing; the frames themselves come from whoever plays the episode
(``dsp_cli.export`` renders one with the board's runtime acting).
"""
from __future__ import annotations

import io
from typing import List

import numpy as np


def gif_bytes(frames: List[np.ndarray], fps: float) -> bytes:
    """An endlessly looping GIF at ``fps``; Pillow's palette optimisation keeps a 30-frame drive ~20 kB."""
    from PIL import Image

    images = [Image.fromarray(np.asarray(f, np.uint8)) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=int(round(1000 / fps)), loop=0, optimize=True)
    return buf.getvalue()
