"""Where the time of the last run and build went, for the benchmarks.

``evidence run`` records each analysis's wall time and the time of its cells
(papermill's per-cell durations), ``evidence build`` the time of the HTML build, in
``.evidence-cache/timings.json`` (:data:`evidence.pipeline.layout.TIMINGS_FILE`), one
section each, the last of each kind.  It lives in the cache: it is not an output of the
book and no build reads it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from evidence.pipeline.layout import TIMINGS_FILE

__all__ = ["read", "record"]


def read(root: str | Path) -> dict[str, Any]:
    """The recorded sections (empty when nothing was recorded or the file is damaged)."""
    try:
        data = json.loads((Path(root) / TIMINGS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record(root: str | Path, section: str, data: dict[str, Any]) -> None:
    """Replace one section of the timings file (atomically; a file that cannot be
    written only loses the timings)."""
    path = Path(root) / TIMINGS_FILE
    current = read(root)
    current[section] = data
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".timings-", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(current, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        pass
