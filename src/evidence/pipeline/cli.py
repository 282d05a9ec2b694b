"""The ``evidence`` command: validate, audit-sources, pool, run, build, reproduce, toc,
diff, release.

Exit status is 0 only on full success: 1 for bad input or a failed analysis or
build, or an R script that does not reproduce its result, 2 for usage errors
(argparse) and for ``evidence reproduce`` without R or metafor.  Heavy modules are
imported inside the sub-commands so that ``evidence pool`` starts fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main"]


def _err(message: str) -> None:
    print(f"evidence: error: {message}", file=sys.stderr)


def _load_config(args: argparse.Namespace):
    from evidence.pipeline.config import load_config

    data = getattr(args, "data", None)
    return load_config(args.root, data_dir=None if data is None else Path(args.root) / data)


def cmd_validate(args: argparse.Namespace) -> int:
    """Check the registry; print every problem as FILE:LINE: column: reason."""
    from evidence.registry import validate

    problems = validate(args.data)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problem(s) in {args.data}", file=sys.stderr)
        return 1
    print(f"registry {args.data}: OK")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """Check quotes against the source texts and internal consistency."""
    from evidence.registry.audit import audit_sources

    report = audit_sources(args.data, args.texts)
    for f in report.notes:
        print(f"note: {f}")
    for f in report.failures:
        print(f"FAIL: {f}")
    print(f"audit: {len(report.failures)} failure(s), {len(report.notes)} note(s)",
          file=sys.stderr)
    return 0 if report.ok else 1


def _read_pool_csv(path: str) -> tuple[list[str], list[int], list[int]]:
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"study", "events", "total"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}:1: header: missing column(s) {sorted(missing)}")
        ids, xi, ni = [], [], []
        for line, row in enumerate(reader, start=2):
            for col in ("events", "total"):
                value = (row[col] or "").strip()
                if not value.isdigit():
                    raise ValueError(f"{path}:{line}: {col}: {value!r} is not a "
                                     "non-negative integer")
            e, n = int(row["events"]), int(row["total"])
            if n == 0:
                raise ValueError(f"{path}:{line}: total: must be > 0")
            if e > n:
                raise ValueError(f"{path}:{line}: events: {e} > total {n}")
            ids.append(row["study"])
            xi.append(e)
            ni.append(n)
    return ids, xi, ni


def cmd_pool(args: argparse.Namespace) -> int:
    """Pool single proportions from a CSV (study,events,total); print JSON."""
    from evidence.stats.proportions import pool_proportions

    try:
        ids, xi, ni = _read_pool_csv(args.csv)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        _err(str(exc))
        return 1
    try:
        result, pooled = pool_proportions(xi, ni, ids, measure=args.measure,
                                          method=args.method, knha=args.knha, test=args.test)
    except (ValueError, RuntimeError) as exc:
        _err(str(exc))
        return 1
    out = {"measure": args.measure if args.method != "GLMM" else "PLO",
           "method": args.method, "test": result.test if len(ids) > 1 else "z",
           "knha": args.knha or args.test == "knha", "k": len(ids),
           "model": result.model_dict() if len(ids) > 1 else None,
           "pooled": pooled}
    print(json.dumps(out, indent=1))
    return 0


def _print_run_report(report) -> None:
    for o in report.outcomes:
        if o.status == "failed":
            print(f"FAILED  {o.analysis_id}: {o.error}", file=sys.stderr)
    ex, sk, fa = (report.by_status(s) for s in ("executed", "skipped", "failed"))
    print(f"analyses: {len(ex)} executed, {len(sk)} up to date, {len(fa)} failed"
          + (f" (executed: {', '.join(ex)})" if ex else ""))


def _run(args: argparse.Namespace) -> tuple[int, object]:
    from evidence.pipeline.config import ConfigError
    from evidence.pipeline.runner import run_analyses
    from evidence.registry import RegistryError

    try:
        config = _load_config(args)
        report = run_analyses(config, data_dir=Path(args.data).resolve(), only=args.only,
                              jobs=args.jobs, force=args.force, progress=not args.quiet)
    except RegistryError as exc:
        for problem in exc.problems:
            _err(str(problem))
        _err(f"{len(exc.problems)} problem(s) in the registry; no analysis was run "
             "(`evidence validate` lists them)")
        return 1, None
    except (ConfigError, KeyError, ValueError) as exc:
        # str(KeyError) is the repr of its argument; show the message itself
        _err(str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc))
        _err("no analysis was run")
        return 1, None
    _print_run_report(report)
    return (0 if report.ok else 1), config


def _locked(command):
    """Run ``command`` holding the tree's build lock (one run or build at a time)."""
    import functools

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        from evidence.pipeline.lock import TreeLocked, tree_lock

        try:
            with tree_lock(Path(args.root), wait=args.wait,
                           say=lambda m: print(m, file=sys.stderr)):
                return command(args)
        except TreeLocked as exc:
            _err(str(exc))
            return 1

    return run


@_locked
def cmd_run(args: argparse.Namespace) -> int:
    """Execute the analyses whose inputs changed."""
    return _run(args)[0]


@_locked
def cmd_build(args: argparse.Namespace) -> int:
    """Run the analyses, then build the HTML book atomically."""
    from evidence.pipeline.build import build_book

    status, config = _run(args)
    if status != 0:
        what = "bad input" if config is None else "analyses failed"
        _err(f"{what}; the previous book in _build/html is unchanged")
        return status
    outcome = build_book(config, force=args.force)
    if outcome.status == "failed":
        tail = "\n".join(outcome.log.strip().splitlines()[-40:])
        print(tail, file=sys.stderr)
        _err("the book build failed (full log: _build/last-failed-build.log); "
             "the previous book in _build/html is unchanged")
        return 1
    print(f"book {outcome.status}: {outcome.index}")
    return 0


def _describe_entry(entry: dict) -> str:
    largest = entry.get("largest") or {}
    parts = [f"{kind} {found['difference']:.1e} ({found['fit']} {found['quantity']})"
             for kind in ("rma", "glmm") if (found := largest.get(kind))]
    return (f"{entry['compared']} values, largest relative difference "
            + ("; ".join(parts) if parts else "none"))


@_locked
def cmd_reproduce(args: argparse.Namespace) -> int:
    """Run every results/<id>.R with Rscript and compare with results/<id>.json."""
    from evidence.pipeline.rscripts import RMissing, reproduce_results

    try:
        report = reproduce_results(args.root, rscript=args.rscript, jobs=args.jobs,
                                   timeout=args.timeout)
    except RMissing as exc:
        _err(f"{exc}; nothing was compared")
        return 2
    except (FileNotFoundError, ValueError) as exc:
        _err(str(exc))
        return 1
    for entry in report["analyses"]:
        aid, status = entry["analysis_id"], entry["status"]
        if status == "ok":
            print(f"ok      {aid}: {_describe_entry(entry)}")
            continue
        print(f"FAILED  {aid}: " + (entry["error"] or f"{len(entry['mismatches'])} of "
                                    f"{entry['compared']} values differ"), file=sys.stderr)
        for m in entry["mismatches"]:
            got = "not printed" if m["r"] is None else f"R {m['r']:.10g}"
            book = "NA" if m["book"] is None else f"{m['book']:.10g}"
            diff = "" if m["difference"] is None else (
                f", relative difference {m['difference']:.2e} > {m['tolerance']:.0e}")
            print(f"        {aid} {m['fit']} {m['quantity']}: book {book}, {got}{diff}"
                  + (f" ({m['note']})" if m["note"] else ""), file=sys.stderr)
    bad = [e["analysis_id"] for e in report["analyses"] if e["status"] != "ok"]
    n = len(report["analyses"])
    print(f"reproduce: {n - len(bad)} of {n} R scripts reproduce the book's results"
          + (f"; failed: {', '.join(bad)}" if bad else "")
          + " (results/reproduce.json; `evidence build` shows it in the Reproducibility "
            "chapter)")
    return 1 if bad else 0


def cmd_toc(args: argparse.Namespace) -> int:
    """Write _toc.yml from analyses.yml (or check it with --check)."""
    from evidence.pipeline.build import sync_toc
    from evidence.pipeline.config import ConfigError, render_toc

    try:
        config = _load_config(args)
    except ConfigError as exc:
        _err(str(exc))
        return 1
    if args.check:
        current = (config.root / "_toc.yml").read_text(encoding="utf-8")
        if current != render_toc(config):
            _err("_toc.yml is out of date with analyses.yml; run `evidence toc`")
            return 1
        print("_toc.yml matches analyses.yml")
        return 0
    print("_toc.yml written" if sync_toc(config) else "_toc.yml already up to date")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """Print what changed since a release (the What's new page, in the terminal)."""
    from evidence.book.changes import diff_text
    from evidence.pipeline.config import ConfigError
    from evidence.pipeline.release import ReleaseError, current_diff

    try:
        diff, stale = current_diff(_load_config(args), args.version,
                                   data_dir=Path(args.data).resolve())
    except (ConfigError, ReleaseError) as exc:
        _err(str(exc))
        return 1
    if stale:
        _err(f"{len(stale)} result(s) are not current ({', '.join(stale)}): this compares "
             "the results on disk; run `evidence build` for the current state")
    print(diff_text(diff), end="")
    return 0


@_locked
def cmd_release(args: argparse.Namespace) -> int:
    """Record the published state in versions/VERSION.json."""
    from evidence.pipeline.config import ConfigError
    from evidence.pipeline.release import ReleaseError, make_release

    try:
        path = make_release(_load_config(args), args.version, args.note,
                            data_dir=Path(args.data).resolve(), date=args.date)
    except (ConfigError, ReleaseError) as exc:
        _err(str(exc))
        return 1
    print(f"released {args.version}: {path} (commit it; `evidence build` shows it)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="evidence",
        description="A living meta-analysis of HER2 on circulating tumor cells: "
                    "validate the registry, pool proportions, run the analyses, build the book.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def data_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", default="data", metavar="DIR",
                       help="registry directory (default: data)")

    p = sub.add_parser("validate", help="check the study registry",
                       description="Check data/*.csv; print FILE:LINE: column: reason for "
                                   "every problem and exit 1 if there is any.")
    data_arg(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("audit-sources", help="check quotes against the source texts",
                       description="Check that every quote occurs in its source text and that "
                                   "percentages and transition margins agree with the counts.")
    data_arg(p)
    p.add_argument("--texts", required=True, metavar="DIR", help="directory of source texts")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("pool", help="pool single proportions from a CSV",
                       description="Pool single proportions from a CSV with columns "
                                   "study,events,total; print the model and pooled blocks "
                                   "as JSON.")
    p.add_argument("--csv", required=True, metavar="FILE")
    p.add_argument("--measure", default="PLO", choices=["PLO", "PFT", "PAS", "PR"])
    p.add_argument("--method", default="REML",
                   choices=["FE", "DL", "REML", "PM", "ML", "HE", "SJ", "GLMM"])
    p.add_argument("--knha", action="store_true",
                   help="Hartung-Knapp adjustment (the same as --test knha)")
    p.add_argument("--test", choices=["z", "t", "knha", "adhoc"], default=None,
                   help="metafor's test: z (default), t (Student's t with k - 1 df; the "
                        "GLMM takes z or t), knha (Hartung-Knapp), adhoc (Hartung-Knapp "
                        "never narrower than z)")
    p.set_defaults(func=cmd_pool)

    for name, func, helptext in (
            ("run", cmd_run, "execute the analyses of analyses.yml whose inputs changed"),
            ("build", cmd_build, "run, then build the HTML book into _build/html")):
        p = sub.add_parser(name, help=helptext, description=helptext[0].upper() + helptext[1:]
                           + ". Exit status 0 only on full success.")
        data_arg(p)
        p.add_argument("--root", default=".", help="book root (default: .)")
        p.add_argument("--only", nargs="+", metavar="ID", help="run only these analyses")
        p.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                       help="notebooks executed at a time (default 1; 2 suits 2 cores)")
        p.add_argument("--force", action="store_true", help="re-run everything")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        p.add_argument("--wait", action="store_true",
                       help="if another run or build is working in this tree, wait for it "
                            "(default: exit 1 naming its pid)")
        p.set_defaults(func=func)

    p = sub.add_parser(
        "reproduce", help="run the R scripts of results/ and compare with the results",
        description="Run every results/<id>.R (the metafor script of a pooled analysis) "
                    "with Rscript, compare what it prints with results/<id>.json (relative "
                    "1e-6 for rma fits, 1e-4 for the GLMM) and write results/reproduce.json "
                    "for the Reproducibility chapter (rebuild to show it). Exit status 1 "
                    "when a value differs or a script fails, 2 without R or metafor.")
    p.add_argument("--root", default=".", help="book root (default: .)")
    p.add_argument("--rscript", default=None, metavar="PATH",
                   help="the Rscript executable (default: Rscript on PATH)")
    p.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="scripts run at a time (default 1)")
    p.add_argument("--timeout", type=float, default=600, metavar="S",
                   help="seconds one script may take (default 600)")
    p.add_argument("--wait", action="store_true",
                   help="if a run or build is working in this tree, wait for it")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("diff", help="what changed since a release",
                       description="Compare the current build (results and registry) with a "
                                   "release: studies added, removed or corrected, and per "
                                   "analysis the change in k, estimate, CI and certainty, "
                                   "flagging changes that alter a reading.")
    data_arg(p)
    p.add_argument("--root", default=".", help="book root (default: .)")
    p.add_argument("version", nargs="?", default=None,
                   help="release to compare with (default: the latest)")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("release", help="record the published state as versions/VERSION.json",
                       description="Record the published state (date, registry digest, last "
                                   "search, studies and estimates per analysis) in "
                                   "versions/VERSION.json. Refuses when the registry does not "
                                   "validate, a result is stale, the version exists or is not "
                                   "above the latest, or nothing changed.")
    data_arg(p)
    p.add_argument("--root", default=".", help="book root (default: .)")
    p.add_argument("version", help="MAJOR.MINOR.PATCH, above the latest release")
    p.add_argument("--note", required=True, help="what this release is")
    p.add_argument("--date", default=None, metavar="YYYY-MM-DD",
                   help="release date (default: today)")
    p.add_argument("--wait", action="store_true",
                   help="if a run or build is working in this tree, wait for it")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("toc", help="generate _toc.yml from analyses.yml")
    p.add_argument("--root", default=".")
    p.add_argument("--check", action="store_true", help="only check; exit 1 if out of date")
    p.set_defaults(func=cmd_toc)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``evidence`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
