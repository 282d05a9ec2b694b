"""One build at a time per book tree.

``evidence run`` and ``evidence build`` hold an exclusive lock on
``.evidence-cache/build.lock`` while they write results, notebooks and the book. A second
command in the same tree does not interleave with the first (two builds at once used to
delete each other's result files mid-run): it stops with a message naming the process that
holds the lock, or waits for it with ``--wait``.  The lock is an advisory ``flock`` on the
file, which the operating system releases when its process ends, however it ends; the
file also records the holder's pid, so that a lock left by a killed build is recognised and
reported as stale when the next build takes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from evidence.pipeline.layout import LOCK_FILE

__all__ = ["TreeLocked", "tree_lock"]


class TreeLocked(RuntimeError):
    """Another process is building this tree."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(text: str) -> tuple[int | None, str]:
    pid_text, _, started = text.strip().partition(" ")
    return (int(pid_text) if pid_text.isdigit() else None), started


@contextlib.contextmanager
def tree_lock(root: Path, *, wait: bool = False, poll: float = 1.0,
              say: Callable[[str], None] = print) -> Iterator[None]:
    """Hold the build lock of the book tree ``root`` for the duration of the block.

    Parameters
    ----------
    root : path
        The book root.
    wait : bool
        Wait for the holder to finish instead of raising :class:`TreeLocked`.
    poll : float
        Seconds between attempts while waiting.
    say : callable
        Where messages go (a waiting note, a stale lock removed).

    Raises
    ------
    TreeLocked
        The lock is held by another process and ``wait`` is False; the message names its
        pid and when it started.
    """
    path = Path(root) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pid, started = _holder(os.pread(fd, 200, 0).decode("ascii", "replace"))
                who = f"pid {pid}" if pid is not None else "another process"
                message = (f"another evidence run or build ({who}, started {started or '?'}) "
                           f"is working in {Path(root).resolve()}")
                if not wait:
                    raise TreeLocked(f"{message}; wait for it to finish or stop it "
                                     "(or pass --wait)") from None
                if not waited:
                    say(f"evidence: {message}; waiting for it to finish")
                    waited = True
                time.sleep(poll)
        pid, _ = _holder(os.pread(fd, 200, 0).decode("ascii", "replace"))
        if pid is not None and pid != os.getpid() and not _alive(pid):
            say(f"evidence: removed a stale lock left by a build that is no longer running "
                f"(pid {pid})")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
