"""Putting finished files where users keep theirs: whole or not at all, readable like any file they
write, and never over something we did not write.

Every writer in the package (bundles, the static site, COCO and polygon files) stages its result in a
temporary sibling and renames it into place. Two things go wrong with the obvious way to do that:

* ``tempfile.mkdtemp``/``mkstemp`` create 0700/0600 on purpose, and a rename keeps the mode: a bundle
  folder or a built site that nginx (running as www-data) refuses to serve. ``ordinary_mode`` is the mode
  ``open()``/``mkdir`` would have given (0o666/0o777 less the umask), applied to what we stage.
* Replacing a folder: deleting it first loses it when the new one then fails. ``swap_in`` moves the old
  one aside only once the new one is complete, puts it back if the rename fails, and lets the caller say
  how the old one is removed (a bundle's two files one by one, never ``rmtree`` of a user's folder).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process's umask. Linux tells it in /proc; elsewhere it is set and restored under a lock
    (``os.umask`` is the only other way to read it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def ordinary_mode(directory: bool) -> int:
    """What ``mkdir`` (0o777) or ``open(..., "w")`` (0o666) gives under the current umask."""
    return (0o777 if directory else 0o666) & ~current_umask()


def staging_dir(target: Path) -> Path:
    """A new hidden sibling of ``target`` to build it in, with the mode ``mkdir`` would give it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    staging.chmod(ordinary_mode(directory=True))
    return staging


def staging_file(target: Path) -> tuple[int, Path]:
    """An open descriptor and the path of a new hidden sibling of ``target``, with an ordinary file's mode."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.fchmod(fd, ordinary_mode(directory=False))
    return fd, Path(name)


def ordinary_modes(tree: Path) -> None:
    """Give every directory and file under ``tree`` (itself included) the ordinary mode: what
    ``shutil.copytree`` copied keeps its source's mode, which may be private."""
    tree.chmod(ordinary_mode(directory=True))
    for root, dirs, files in os.walk(tree):
        for name in dirs:
            (Path(root) / name).chmod(ordinary_mode(directory=True))
        for name in files:
            (Path(root) / name).chmod(ordinary_mode(directory=False))


def foreign_entries(directory: Path, ours: frozenset[str]) -> list[str]:
    """Names in ``directory`` that are not among ``ours`` (sorted): what replacing it would destroy."""
    return sorted(entry.name for entry in directory.iterdir() if entry.name not in ours)


def swap_in(staging: Path, target: Path, remove_old: Callable[[Path], None]) -> None:
    """Rename the complete ``staging`` directory to ``target``.

    An existing ``target`` (which the caller has checked is its to replace) is renamed aside first and
    put back if the rename fails, so a failure leaves it as it was; only after the new one is in place
    is the old one handed to ``remove_old``. A failure there is logged, never raised: the new result is
    already complete, and the old one stays, hidden, beside it."""
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
    if not target.exists():
        staging.rename(target)
        return
    aside = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    target.rename(aside)
    try:
        staging.rename(target)
    except BaseException:
        aside.rename(target)
        raise
    try:
        remove_old(aside)
    except OSError as exc:
        log.warning("the replaced %s stays in %s (%s)", target, aside, exc)


def remove_files(directory: Path, names: frozenset[str]) -> None:
    """Delete ``names`` from ``directory``, then the directory: it fails (and keeps everything) if
    anything else has appeared there."""
    for name in names:
        (directory / name).unlink(missing_ok=True)
    directory.rmdir()
