"""Writing files so that a reader never sees half of one."""
from __future__ import annotations

import os
from typing import Union


def atomic_write(path: str, data: Union[str, bytes]) -> None:
    """Writes to a temporary name beside ``path``, then renames it into place."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb" if isinstance(data, bytes) else "w", encoding=None if isinstance(data, bytes) else "utf-8") as f:
        f.write(data)
    os.replace(tmp, path)
