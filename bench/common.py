"""Shared helpers of the benchmarks: timed subprocesses, peak memory, tables, README.

Nothing here is part of the ``evidence`` library; the benchmarks are run on demand
(``make bench``) and are not tests.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BENCH",
    "EVIDENCE",
    "PYTHON",
    "REPO",
    "Timed",
    "fmt_mb",
    "fmt_s",
    "markdown_table",
    "median",
    "run_timed",
    "update_readme",
]

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
#: The interpreter running the benchmarks (``.venv/bin/python``) and its ``evidence``.
PYTHON = Path(sys.executable)
EVIDENCE = PYTHON.parent / "evidence"
_GNU_TIME = Path("/usr/bin/time")
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass
class Timed:
    """One timed command.

    ``max_rss_kb`` is the peak resident set of the largest single process of the
    command's tree (``ru_maxrss`` as reported by ``/usr/bin/time -v`` or
    ``RUSAGE_CHILDREN``); ``tree_peak_kb`` is the peak of the *sum* over the whole
    process tree, sampled from ``/proc`` every 0.2 s (0 when not sampled).
    """

    seconds: float
    returncode: int
    stdout: str
    stderr: str
    max_rss_kb: int = 0
    tree_peak_kb: int = 0
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """True when the command exited with status 0 in time."""
        return self.returncode == 0 and not self.timed_out


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="utf-8", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def _tree_rss_kb(root: int) -> int:
    children = _children_map()
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/statm", encoding="utf-8") as fh:
                total += int(fh.read().split()[1]) * _PAGE_KB
        except (OSError, IndexError, ValueError):
            continue
    return total


class _TreeSampler(threading.Thread):
    """Samples the summed RSS of a process tree until stopped."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, _tree_rss_kb(self.pid))
            self._stop_event.wait(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


_RUSAGE_WRAPPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[2:]).returncode\n"
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(rc)\n"
)


def run_timed(cmd: Sequence[str | os.PathLike[str]], *, cwd: Path | None = None,
              env: dict[str, str] | None = None, timeout: float | None = None,
              memory: bool = False) -> Timed:
    """Run ``cmd`` and measure its wall time (and, with ``memory``, its peak RSS).

    Parameters
    ----------
    cmd : sequence of str
        The command.
    cwd : Path, optional
        Working directory.
    env : dict, optional
        Environment (default: inherited).
    timeout : float, optional
        Seconds after which the whole process group is killed (``timed_out``).
    memory : bool
        Wrap the command in ``/usr/bin/time -v`` (or a ``RUSAGE_CHILDREN``
        wrapper when GNU time is missing) and sample the tree's summed RSS.

    Returns
    -------
    Timed
        Wall time includes the wrapper (a few milliseconds).
    """
    argv = [str(c) for c in cmd]
    rss_file = None
    if memory:
        fd, rss_file = tempfile.mkstemp(prefix="bench-rss-")
        os.close(fd)
        if _GNU_TIME.is_file():
            argv = [str(_GNU_TIME), "-v", "-o", rss_file, *argv]
        else:
            argv = [str(PYTHON), "-c", _RUSAGE_WRAPPER, rss_file, *argv]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    sampler = _TreeSampler(proc.pid) if memory else None
    if sampler is not None:
        sampler.start()
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, 9)
        out, err = proc.communicate()
    seconds = time.perf_counter() - start
    tree_peak = sampler.stop() if sampler is not None else 0
    max_rss = 0
    if rss_file is not None:
        text = Path(rss_file).read_text(encoding="utf-8", errors="replace")
        Path(rss_file).unlink(missing_ok=True)
        found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
        if found:
            max_rss = int(found.group(1))
        elif text.strip().isdigit():
            max_rss = int(text.strip())
    return Timed(seconds, proc.returncode, out, err, max_rss, tree_peak, timed_out)


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence."""
    return float(statistics.median(values))


def fmt_s(seconds: float | None) -> str:
    """Seconds for a table: 3 significant figures, ms below 1 s."""
    if seconds is None:
        return "–"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 100:
        return f"{seconds:.2f} s"
    return f"{seconds:.0f} s"


def fmt_mb(kb: int) -> str:
    """Kilobytes as MB for a table."""
    return f"{kb / 1024:.0f} MB" if kb else "–"


def importtime_totals(stderr: str) -> dict[str, float]:
    """Seconds per top-level package from ``python -X importtime`` output (cumulative
    time of the imports at the top of the import tree)."""
    totals: dict[str, float] = {}
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if m and not m.group(3):  # top level of the import tree
            pkg = m.group(4).split(".")[0]
            totals[pkg] = totals.get(pkg, 0.0) + int(m.group(2)) / 1e6
    return totals


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table with aligned columns."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
             for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def update_readme(section: str, body: str, readme: Path = BENCH / "README.md") -> None:
    """Replace the generated block of ``section`` in bench/README.md.

    The block lies between ``<!-- BEGIN {section} results -->`` and ``<!-- END
    {section} results -->``; everything outside it (the hand-written explanation)
    is kept.  Missing markers are appended at the end.
    """
    begin, end = f"<!-- BEGIN {section} results -->", f"<!-- END {section} results -->"
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    block = f"{begin}\n{body.strip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    readme.write_text(text, encoding="utf-8")

