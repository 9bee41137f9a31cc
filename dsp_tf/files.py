"""Writing files, and sets of files, so that a reader never sees half of them."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import Dict, Iterator, Union

from dsp_tf.errors import UsageError


def atomic_write(path: str, data: Union[str, bytes]) -> None:
    """Writes to a temporary name beside ``path``, then renames it into place."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        _write(tmp, data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def check_output_directory(path: str) -> None:
    """Refuses an output directory that cannot be one, before a long job writes into it."""
    if os.path.lexists(path) and not os.path.isdir(path):
        raise UsageError(f"output directory '{os.path.abspath(path)}' exists and is not a directory")


@contextlib.contextmanager
def staged_directory(path: str) -> Iterator[str]:
    """Yields an empty directory beside ``path`` to write a file set into; when the
    block succeeds its files are renamed into ``path`` (created if needed), and when
    it fails nothing is left: no temporary directory, no half of the set, and no
    parent directory this call created. ``path`` that is a file is refused at once,
    before any work is done.
    """
    path = os.path.abspath(path)
    check_output_directory(path)
    parent = os.path.dirname(path)
    first_created = parent
    while not os.path.exists(os.path.dirname(first_created)) and first_created != os.path.dirname(first_created):
        first_created = os.path.dirname(first_created)
    made_parent = not os.path.exists(parent)
    prefix = f".{os.path.basename(path)}.tmp"
    try:
        os.makedirs(parent, exist_ok=True)
        _remove_stale_staging(parent, prefix)
        tmp = tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would make a new output directory private
    except OSError as e:
        raise UsageError(f"cannot write into '{path}': {e.strerror}") from None
    try:
        yield tmp
        if not os.path.exists(path):
            os.rename(tmp, path)
        else:
            for name in os.listdir(tmp):
                os.replace(os.path.join(tmp, name), os.path.join(path, name))
            os.rmdir(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if made_parent:
            shutil.rmtree(first_created, ignore_errors=True)
        raise


def _remove_stale_staging(parent: str, prefix: str) -> None:
    """Staging directories left by killed processes (their pid is in the name)."""
    for name in os.listdir(parent):
        if not name.startswith(prefix):
            continue
        pid = name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


def _write(path: str, data: Union[str, bytes]) -> None:
    with open(path, "wb" if isinstance(data, bytes) else "w",
              encoding=None if isinstance(data, bytes) else "utf-8") as f:
        f.write(data)


def write_file_set(directory: str, files: Dict[str, Union[str, bytes]]) -> None:
    """Writes every file of ``files`` into ``directory`` (a staged directory)."""
    for name, data in files.items():
        _write(os.path.join(directory, name), data)
