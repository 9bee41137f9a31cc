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
    except OSError as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if e.filename is None:  # a failed write() names no file; the one-line error must
            raise OSError(e.errno, e.strerror, path) from None
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def check_output_directory(path: str) -> None:
    """Refuses an output directory that cannot be one, before a long job writes into it."""
    if os.path.lexists(path) and not os.path.isdir(path):
        raise UsageError(f"output directory '{os.path.abspath(path)}' exists and is not a directory")


@contextlib.contextmanager
def staged_directory(path: str, manifest: str | None = None) -> Iterator[str]:
    """Yields an empty directory beside ``path`` to write a file set into; when the block succeeds
    the staged directory replaces ``path`` as a whole, in one step (``_swap_in``), so that a process
    killed at any point (SIGKILL included) leaves ``path`` holding either the complete old set or the
    complete new one, never a mix; renaming files into ``path`` one by one, as this did before, left
    old and new files side by side when the process died between two renames. When the block fails
    nothing is left: no temporary directory, no half of the set, and no parent directory this call
    created.

    What ``path`` held besides the old set is kept: plain files (and symlinks) the new set does not
    replace are carried into the new directory as hard links (no data is copied or moved), so a
    user's own files survive an export into their directory. ``manifest`` names a file this writes
    into the directory listing the set's files; the next call reads it to tell the previous set
    (replaced as a whole: a file the new set no longer has goes) from the user's files (kept).
    Without one every file the new set does not overwrite is kept. ``path`` that is a file, a mount
    point, the current directory, or a directory holding a subdirectory that is not part of the
    previous set is refused at once (``prepare_output_directory``), before any work is done.
    """
    path = prepare_output_directory(path, manifest)
    parent, base = os.path.split(path)
    first_created = parent
    while not os.path.exists(os.path.dirname(first_created)) and first_created != os.path.dirname(first_created):
        first_created = os.path.dirname(first_created)
    made_parent = not os.path.exists(parent)
    prefix = f".{base}.tmp"
    try:
        os.makedirs(parent, exist_ok=True)
        _remove_stale_staging(parent, prefix)
        tmp = tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent)
        os.chmod(tmp, _directory_mode(path))  # mkdtemp's 0700 would make a new output directory private
    except OSError as e:
        raise UsageError(f"cannot write into '{path}': {e.strerror}") from None
    try:
        yield tmp
        written = sorted(os.listdir(tmp))
        if os.path.isdir(path):
            replaced = _previous_set(path, manifest) | set(written) | ({manifest} if manifest else set())
            _carry_over(path, tmp, replaced)
        if manifest is not None:
            _write_manifest(os.path.join(tmp, manifest), written)
        _swap_in(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if made_parent and not os.path.exists(path):
            shutil.rmtree(first_created, ignore_errors=True)
        raise


#: renameat2(2)'s flag that swaps two paths in one step, and the "relative to the working directory" fd.
_RENAME_EXCHANGE, _AT_FDCWD = 2, -100
#: The fallback's name for the old directory while the new one is renamed in: ``.<name>.old<pid>``.
_ASIDE = ".{}.old"


def prepare_output_directory(path: str, manifest: str | None = None) -> str:
    """Makes ``path`` ready to be replaced by ``staged_directory`` and returns the directory that
    will be (a symlink's target: the link itself stays). Called before any work (and again by
    ``staged_directory``): first it finishes what a killed earlier call left, so that ``path`` is
    the complete old or new set again and no temporary directory lingers beside it
    (``_recover_interrupted_swap``); then it refuses, with a UsageError, what cannot be replaced
    as a whole without harm: a file, a mount point, the current directory (the shell would be
    left in a deleted directory), and a directory holding a subdirectory the previous set does
    not list (carrying a user's tree over would copy or move it; refusing leaves it alone)."""
    check_output_directory(path)
    target = os.path.realpath(path)
    _recover_interrupted_swap(target)
    if not os.path.isdir(target):
        return target
    if os.path.ismount(target):
        raise UsageError(f"output directory '{target}' is a mount point; an export replaces its directory as a "
                         "whole: name a directory inside it")
    if target == os.path.realpath(os.getcwd()):
        raise UsageError(f"output directory '{target}' is the current directory; an export replaces its "
                         "directory as a whole, which would leave this shell in a deleted one: run from elsewhere")
    previous = _previous_set(target, manifest)
    for name in sorted(os.listdir(target)):
        entry = os.path.join(target, name)
        if name not in previous and os.path.isdir(entry) and not os.path.islink(entry):
            raise UsageError(f"output directory '{target}' holds the directory '{name}', which no export wrote; an "
                             "export replaces its directory as a whole and keeps only the files it finds there: "
                             "move that directory or choose another output directory")
    return target


def _recover_interrupted_swap(path: str) -> None:
    """Finishes a replacement a killed process left half done (its pid is in the names). Between
    the fallback's two renames ``path`` is missing and the old set is aside: it is renamed back,
    so ``path`` is the complete old set; after them the aside copy is removed, and so are
    staging directories (the new set not yet swapped in, or the old one swapped out)."""
    parent, base = os.path.split(path)
    if not os.path.isdir(parent):
        return
    aside = _ASIDE.format(base)
    for name in sorted(os.listdir(parent)):
        if not (name.startswith(aside) and _left_by_dead_process(name[len(aside):])):
            continue
        old = os.path.join(parent, name)
        if not os.path.lexists(path):
            os.rename(old, path)
        else:
            shutil.rmtree(old, ignore_errors=True)
    _remove_stale_staging(parent, f".{base}.tmp")


def _left_by_dead_process(pid: str) -> bool:
    """Whether the process whose pid ends a temporary name is gone (its names are then leftovers)."""
    if not pid.isdigit():
        return False
    if int(pid) == os.getpid():  # this process has made none yet: an earlier process had the same pid
        return True
    if os.path.isdir("/proc/self"):
        return not os.path.exists(f"/proc/{pid}")
    if os.name == "posix":
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
    return False


def _previous_set(path: str, manifest: str | None) -> set[str]:
    """Names the previous set listed in ``path``'s manifest; none without one (or with one this
    cannot read: then nothing is taken for the previous set's, and nothing of it is removed)."""
    import json

    if manifest is None:
        return set()
    try:
        with open(os.path.join(path, manifest), encoding="utf-8") as f:
            names = json.load(f)["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    return {n for n in names if isinstance(n, str) and n and os.path.basename(n) == n and n not in (".", "..")}


def _write_manifest(path: str, names: list[str]) -> None:
    import json

    text = json.dumps({"note": "files the last export wrote into this directory; the next export replaces them "
                               "and keeps every other file here", "files": names}, indent=1) + "\n"
    try:
        _write(path, text)
    except OSError as e:
        raise OSError(e.errno, e.strerror, path) from None  # a failed write() names no file


def _carry_over(old: str, new: str, replaced: set[str]) -> None:
    """Hard-links into ``new`` every entry of ``old`` that is not ``replaced``: the same files, no
    data copied (a filesystem without hard links gets copies). A subdirectory was refused before
    the work began; one that appeared since is refused now, before anything changed."""
    import errno

    for name in sorted(os.listdir(old)):
        if name in replaced:
            continue
        src, dst = os.path.join(old, name), os.path.join(new, name)
        if os.path.isdir(src) and not os.path.islink(src):
            raise UsageError(f"output directory '{old}' holds the directory '{name}', which no export wrote: move "
                             "it or choose another output directory")
        try:
            os.link(src, dst, follow_symlinks=False)
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP, errno.ENOTSUP):
                raise
            shutil.copy2(src, dst, follow_symlinks=False)


def _directory_mode(path: str) -> int:
    """The new directory's permissions: the old one's, or what a plain mkdir would give."""
    import stat

    if os.path.isdir(path):
        return stat.S_IMODE(os.stat(path).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


def _swap_in(staged: str, path: str) -> None:
    """Puts the directory ``staged`` where ``path`` is. Where ``path`` exists this is one atomic
    step on Linux (``_exchange``), after which ``staged`` holds the old set and is removed; a
    process killed before the step leaves the old set, after it the new one (a staging directory
    left behind goes on the next call). Elsewhere, two renames: the old directory aside
    (``.<name>.old<pid>``), the new one in, then the old one removed; killed between them,
    ``path`` is missing until the next call renames the old one back. An exception (a signal
    turned into one) between them puts the old one back at once."""
    if not os.path.isdir(path):
        os.rename(staged, path)
        return
    if _exchange(staged, path):
        shutil.rmtree(staged, ignore_errors=True)
        return
    parent, base = os.path.split(path)
    aside = os.path.join(parent, f"{_ASIDE.format(base)}{os.getpid()}")
    try:
        os.rename(path, aside)
        os.rename(staged, path)
    except BaseException:
        if os.path.isdir(aside) and not os.path.lexists(path):
            os.rename(aside, path)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _exchange(a: str, b: str) -> bool:
    """Swaps the directories ``a`` and ``b`` in one atomic step: renameat2(2) with RENAME_EXCHANGE
    (Linux 3.15+ with glibc 2.28+; ext4, xfs, btrfs, tmpfs and most local filesystems). False
    where the C library, the kernel or the filesystem has no such call: the caller falls back."""
    import ctypes
    import errno

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError, TypeError):
        return False
    renameat2.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), b, None, a)


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
