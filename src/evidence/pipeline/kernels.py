"""Kernels for the runner: one fresh kernel per analysis, started ahead, shut down behind.

Starting a kernel (a Python process importing ipykernel) and shutting it down took a
large share of each notebook's time when papermill did both in line with the schedule.
Here each process that executes notebooks (the runner's worker processes, or the runner
itself with one job) keeps one *spare* kernel: when an analysis starts, it takes the
spare and at once starts the next one, which boots while the notebook runs; when the
notebook is done its kernel is stopped by a background thread, so the next analysis does
not wait for it.  Every analysis still runs in a kernel of its own that has run nothing
before: a kernel is never reused.

Kernels talk to their clients over Unix sockets in a private directory rather than TCP
ports, so that kernels started at the same moment by different processes never pick the
same port (jupyter/jupyter_client#154: a start failure, or a client reaching another
kernel).  A finished kernel is stopped at once (killed): its notebook has completed and every
output has been received, its IPython history is kept in memory only (nbclient's own
default), and the results it wrote are closed files, so there is nothing left for it to
do.  A spare that is not needed is stopped when the process exits (and a kernel whose
parent dies exits by itself: ipykernel watches its parent).

:func:`execute` runs a papermill notebook in such a kernel through a papermill engine
(``"evidence"``) that hands papermill's notebook client the pre-started kernel and
closes the client's channels afterwards.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["KERNEL_ARGUMENTS", "close_all", "execute"]

#: Arguments of every kernel: quiet start-up and shut-down, history in memory.
KERNEL_ARGUMENTS: tuple[str, ...] = ("--IPKernelApp.log_level=CRITICAL",
                                     "--HistoryManager.hist_file=:memory:")
_ENGINE = "evidence"


@dataclass
class _Spare:
    manager: Any
    key: tuple[str, tuple[tuple[str, str], ...]]


_spare: _Spare | None = None
_runtime: str | None = None
_stopping: list[threading.Thread] = []
_lock = threading.Lock()
_registered = 0  # the process that registered the clean-up


def _runtime_dir() -> str:
    """This process's directory for kernel connection files and sockets (removed when
    the process ends)."""
    global _runtime
    if _runtime is None or not os.path.isdir(_runtime):
        import tempfile

        _runtime = tempfile.mkdtemp(prefix="evidence-kernels-")
    return _runtime


def _start(cwd: str, env: Mapping[str, str]) -> Any:
    import uuid

    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    # Unix sockets in a directory of this process's own, not TCP ports: kernels started
    # at once by several processes cannot pick the same port (jupyter/jupyter_client#154)
    connection = os.path.join(_runtime_dir(), f"kernel-{uuid.uuid4().hex[:12]}.json")
    km = AsyncKernelManager(kernel_name="python3", transport="ipc", connection_file=connection)
    run_sync(km.start_kernel)(cwd=cwd, env={**os.environ, **env},
                              extra_arguments=list(KERNEL_ARGUMENTS))
    return km


def _stop(km: Any) -> None:
    """Kill a kernel in a background thread (its own event loop: a kill needs no socket)."""
    from jupyter_core.utils import run_sync

    def stop() -> None:
        try:
            run_sync(km.shutdown_kernel)(now=True)
        except Exception:  # a kernel that is already gone needs nothing more
            pass

    thread = threading.Thread(target=stop, name=f"evidence-kernel-stop-{id(km)}", daemon=True)
    thread.start()
    with _lock:
        _stopping[:] = [t for t in _stopping if t.is_alive()] + [thread]


def _take(cwd: str, env: Mapping[str, str], ahead: bool) -> Any:
    """A kernel that has run nothing: the spare if it was started for the same directory
    and environment, else a new one; with ``ahead``, the next spare is started too."""
    global _spare
    key = (cwd, tuple(sorted(env.items())))
    spare, _spare = _spare, None
    if spare is not None and spare.key != key:
        _stop(spare.manager)
        spare = None
    km = spare.manager if spare is not None else _start(cwd, env)
    if ahead:
        _spare = _Spare(_start(cwd, env), key)
    _ensure_cleanup()
    return km


def close_all() -> None:
    """Stop the spare kernel and wait for the kernels being stopped (at the end of a run,
    and when a worker process exits)."""
    global _spare, _runtime
    spare, _spare = _spare, None
    if spare is not None:
        _stop(spare.manager)
    with _lock:
        threads = list(_stopping)
        _stopping.clear()
    for thread in threads:
        thread.join(timeout=10)
    if _runtime is not None:
        import shutil

        shutil.rmtree(_runtime, ignore_errors=True)
        _runtime = None


def _ensure_cleanup() -> None:
    global _registered
    if _registered == os.getpid():  # a forked worker registers its own
        return
    import atexit
    from multiprocessing import util

    # a worker process of a ProcessPoolExecutor runs multiprocessing's finalizers, not
    # atexit, when it ends; the main process runs atexit
    util.Finalize(None, close_all, exitpriority=10)
    atexit.register(close_all)
    _registered = os.getpid()


def _register_engine() -> None:
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger
    from papermill.utils import merge_kwargs, remove_args

    class Engine(NBClientEngine):
        """papermill's nbclient engine with the kernel given (``km``), whose client's
        channels are closed when the notebook is done (papermill's own engine leaves that
        to the kernel's shutdown, which is ours here)."""

        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, log_output: bool = False,
                                     stdout_file: Any = None, stderr_file: Any = None,
                                     start_timeout: int = 60, execution_timeout: Any = None,
                                     **kwargs: Any) -> Any:
            kwargs = remove_args(["input_path"], **kwargs)
            safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
            final = merge_kwargs(safe_kwargs, timeout=execution_timeout or kwargs.get("timeout"),
                                 startup_timeout=start_timeout, kernel_name=kernel_name,
                                 log=logger, log_output=log_output, stdout_file=stdout_file,
                                 stderr_file=stderr_file)
            client = PapermillNotebookClient(nb_man, **final)
            try:
                return client.execute()
            finally:
                if client.kc is not None:
                    client.kc.stop_channels()

    papermill_engines.register(_ENGINE, Engine)


def execute(template: str, output: str, parameters: dict[str, Any], *, cwd: str,
            env: Mapping[str, str], ahead: bool) -> Any:
    """Execute a template with papermill in a fresh kernel started in ``cwd`` with the
    variables ``env`` added to this process's environment; return the executed notebook.

    Parameters
    ----------
    template, output : str
        The template and where papermill writes the executed notebook.
    parameters : dict
        Injected into the template's ``parameters`` cell.
    cwd : str
        The kernel's working directory (the book root).
    env : mapping
        Environment variables the kernel gets besides this process's.
    ahead : bool
        Start the kernel of the next analysis now (more analyses are to come).

    Raises
    ------
    Exception
        Whatever papermill raises (``PapermillExecutionError`` for a failing cell).
    """
    import papermill

    _register_engine()
    km = _take(cwd, env, ahead)
    try:
        return papermill.execute_notebook(
            template, output, parameters=parameters, kernel_name="python3", cwd=cwd,
            progress_bar=False, log_output=False, report_mode=False, engine_name=_ENGINE,
            km=km)
    finally:
        _stop(km)
