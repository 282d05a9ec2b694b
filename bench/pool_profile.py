"""Where the time of one ``evidence pool`` process goes (run as a script by stats_bench.py).

Usage: ``python bench/pool_profile.py FILE.csv METHOD [N_TOP]``.  Prints one JSON
object: ``imports`` (``import evidence.pipeline.cli``), ``first_call`` (the first
``evidence pool`` in the process: reading the CSV, lazy imports of numpy/scipy,
the fit, the JSON), ``warm_call`` (the same call again, when everything is
imported) and ``profile``: the top functions of a third, profiled call by
cumulative time.  ``first_call - warm_call`` is the cost of the lazy imports.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import json
import pstats
import sys
import time


def main(argv: list[str]) -> int:
    """Measure and print the breakdown as JSON."""
    csv_path, method = argv[0], argv[1]
    n_top = int(argv[2]) if len(argv) > 2 else 12
    args = ["pool", "--csv", csv_path, "--method", method]
    t0 = time.perf_counter()
    from evidence.pipeline.cli import main as evidence_main

    t1 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        evidence_main(args)
    t2 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        evidence_main(args)
    t3 = time.perf_counter()
    profiler = cProfile.Profile()
    with contextlib.redirect_stdout(io.StringIO()):
        profiler.runcall(evidence_main, args)
    listing = io.StringIO()
    pstats.Stats(profiler, stream=listing).sort_stats("cumulative").print_stats(n_top)
    lines = [ln for ln in listing.getvalue().splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")), 0)
    print(json.dumps({"imports": t1 - t0, "first_call": t2 - t1, "warm_call": t3 - t2,
                      "profile": lines[start:]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
