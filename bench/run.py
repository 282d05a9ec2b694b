"""Run the benchmarks and rewrite the results section of bench/README.md.

Usage::

    python bench/run.py [--quick] [ratios|stats|bayes|build|all]

``ratios`` measures the edit-to-book loop in one run: the build overhead, a one-study
edit as a share of a clean build, and ``evidence pool`` against metafor at the two
target sizes (``loop_bench.py``); ``stats`` times ``evidence pool`` against metafor
(REML and GLMM) at every size; ``bayes`` times the Bayesian fits of
``evidence.stats.bayes`` (and the GLMM at k = 1,000 for scale); ``build`` times clean,
no-op and incremental builds of the real book and its scaling with the registry size.
Each part prints its table and replaces its own block of bench/README.md (the
hand-written text above the blocks is kept); raw numbers go to ``bench/out/`` (not
committed).  These are benchmarks, not tests: they never
fail on a missed target, they report it; only a book that does not build at all
makes the command exit 1 (and leaves the README's build block as it was).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bayes_bench import run_bayes
from build_bench import run_build
from common import BENCH, REPO, update_readme
from loop_bench import loop_markdown, machine, run_loop, run_pool_targets
from stats_bench import run_stats

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the selected parts; exit 0 unless the book could not be built at all."""
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n")[0])
    parser.add_argument("part", nargs="?", default="all",
                        choices=["ratios", "stats", "bayes", "build", "all"])
    parser.add_argument("--quick", action="store_true",
                        help="fewer sizes and repeats (a smoke run of a few minutes)")
    parser.add_argument("--metafor-limit", type=float, default=300.0, metavar="S",
                        help="skip (or kill) a metafor fit expected to take longer (300 s)")
    parser.add_argument("--book", type=Path, default=REPO, metavar="DIR",
                        help="book to benchmark the build of (default: the repository)")
    parser.add_argument("--no-readme", action="store_true",
                        help="print only; do not rewrite bench/README.md")
    args = parser.parse_args(argv)
    out_dir = BENCH / "out"
    stamp = f"_Run on {date.today().isoformat()} with `python bench/run.py" + (
        " --quick" if args.quick else "") + f" {args.part}`._"
    if args.part in ("ratios", "all"):
        print("ratios: the edit-to-book loop", flush=True)
        start = time.perf_counter()
        loop, sections = run_loop(out_dir=out_dir / "loop", src=args.book.resolve())
        pool, pool_sections = run_pool_targets(out_dir=out_dir / "stats",
                                               metafor_limit=args.metafor_limit)
        md = loop_markdown(loop, pool, sections + pool_sections, machine())
        md += f"\n\n{stamp} (benchmark took {time.perf_counter() - start:.0f} s)"
        print("\n" + md + "\n", flush=True)
        if "failed" in loop:
            print("bench: the clean build failed; bench/README.md keeps its previous "
                  "ratios", file=sys.stderr)
            return 1
        if not args.no_readme and args.book.resolve() == REPO:
            update_readme("ratios", md)
    if args.part in ("stats", "all"):
        print("stats: evidence pool vs metafor", flush=True)
        start = time.perf_counter()
        md, _ = run_stats(quick=args.quick, out_dir=out_dir / "stats",
                          metafor_limit=args.metafor_limit)
        md += f"\n\n{stamp} (benchmark took {time.perf_counter() - start:.0f} s)"
        print("\n" + md + "\n", flush=True)
        if not args.no_readme:
            update_readme("stats", md)
    if args.part in ("bayes", "all"):
        print("bayes: the Bayesian fits", flush=True)
        start = time.perf_counter()
        md, _ = run_bayes(quick=args.quick, out_dir=out_dir / "bayes")
        md += f"\n\n{stamp} (benchmark took {time.perf_counter() - start:.0f} s)"
        print("\n" + md + "\n", flush=True)
        if not args.no_readme:
            update_readme("bayes", md)
    if args.part in ("build", "all"):
        print("build: the real book", flush=True)
        start = time.perf_counter()
        md, raw = run_build(quick=args.quick, out_dir=out_dir / "build",
                            src=args.book.resolve())
        md += f"\n\n{stamp} (benchmark took {time.perf_counter() - start:.0f} s)"
        print("\n" + md + "\n", flush=True)
        if "failed" in raw.get("clean", {}):
            print("bench: the clean build failed, so nothing was measured; bench/README.md "
                  "keeps its previous build results", file=sys.stderr)
            return 1
        if not args.no_readme and args.book.resolve() == REPO:
            update_readme("build", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
