"""Reproduce a pooled analysis in R: the script, the numbers it must print, the comparison.

:func:`r_script` writes, from an analysis's result JSON, a self-contained R script that
reads the page's study table (``<id>.csv``, next to the script), fits the primary model
and the sensitivity fits metafor can compute (:func:`fits_of`), and prints metafor's own
output for readers and one line per number for machines::

    EVIDENCE <fit> <quantity> <value>          (%.15g; NA where R has no such number)

:func:`expected_values` gives the number each line must show: the primary fit, the
counts, a single study's exact interval and the hazard ratios' common-effect fit from the
result JSON itself; the sensitivity fits, which the result file does not hold, recomputed
with the library (:func:`evidence.stats.proportions.pool_proportions`).  :func:`compare`
checks the printed lines against them with the parity rules of
:mod:`evidence.book.parity` (:func:`tolerances`: relative 1e-6 for ``rma`` fits, 1e-4
with its scale floors for the GLMM).  :func:`summarise` makes one analysis's entry of
``results/reproduce.json``, which :mod:`evidence.book.provenance` shows in the
Reproducibility chapter.

Registry text never enters a script: study ids and labels reach R only through the CSV,
and every string literal of a script is written by :func:`r_string`.  No I/O here: the
pipeline writes the scripts (``AnalysisContext.save``) and runs them (``evidence
reproduce``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evidence.book._rscript import (
    CHECKED_WITH,
    Fit,
    hazard_lines,
    header_lines,
    helper_lines,
    proportion_lines,
    r_string,
    read_lines,
    version_lines,
)
from evidence.book.names import TEST_SHORT
from evidence.book.parity import (
    ABS_TOLERANCE,
    GLMM_TOLERANCE,
    RMA_TOLERANCE,
    glmm_scale,
    relative_difference,
)
from evidence.book.pooled import KEY_PANEL_ROWS
from evidence.stats.vocabulary import GLMM_TESTS, METHODS, PROPORTION_MEASURES, TESTS

__all__ = [
    "CHECKED_WITH",
    "MARKER",
    "MODEL_QUANTITIES",
    "POOLED_QUANTITIES",
    "Difference",
    "Fit",
    "Mismatch",
    "Printed",
    "Tolerance",
    "compare",
    "compare_values",
    "expected_values",
    "fits_of",
    "parse_output",
    "r_packages",
    "r_script",
    "r_string",
    "reproducible",
    "result_digest",
    "summarise",
    "tolerances",
]

#: First word of every machine-readable line the scripts print.
MARKER = "EVIDENCE"
#: Quantities of a fit on the model's scale (logit, log HR, ...), as in the result JSON's
#: ``model`` block; ``pval`` is compared for ``rma`` fits only, the prediction interval
#: not for a common-effect fit (metafor's ``predict`` gives none).
MODEL_QUANTITIES: tuple[str, ...] = ("estimate", "se", "ci_lower", "ci_upper", "pi_lower",
                                     "pi_upper", "tau2", "i2", "q", "pval")
#: Back-transformed quantities (the result JSON's ``pooled`` block), printed as
#: ``pooled_<name>``.
POOLED_QUANTITIES: tuple[str, ...] = ("estimate", "ci_lower", "ci_upper", "pi_lower",
                                      "pi_upper")


# ======================================================================================
# Which fits a result has, and its script
# ======================================================================================


def _kind(result: Mapping[str, Any]) -> str:
    measure = result.get("measure")
    studies = result.get("studies")
    if not isinstance(studies, list) or not studies:
        return ""
    if measure == "HR" and isinstance(result.get("common_effect"), Mapping):
        return "hazard_ratios"
    if measure in PROPORTION_MEASURES and all(
            isinstance(s, Mapping) and "events" in s and "total" in s for s in studies):
        return "proportions"
    return ""


def reproducible(result: Mapping[str, Any]) -> bool:
    """True for a result :func:`r_script` can reproduce: a pooled proportion (template
    ``pool_proportions``) or pooled hazard ratios (template ``hazard_ratios``)."""
    return bool(_kind(result))


def _check(result: Mapping[str, Any]) -> str:
    kind = _kind(result)
    if not kind:
        raise ValueError(f"result {result.get('analysis_id')!r} is neither a pooled "
                         "proportion nor pooled hazard ratios: nothing to reproduce in R")
    method, test, k = result.get("method"), result.get("test"), result.get("k")
    if method not in METHODS or (kind == "hazard_ratios" and method == "GLMM"):
        raise ValueError(f"unknown method {method!r}; allowed: {', '.join(METHODS)}")
    if test not in (GLMM_TESTS if method == "GLMM" else TESTS):
        raise ValueError(f"test {test!r} is not one of metafor's for method {method!r}")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if len(result["studies"]) != k:
        raise ValueError(f"k = {k} but the result lists {len(result['studies'])} studies")
    if kind == "hazard_ratios" and result.get("pooled_adjusted") not in ("no", "yes"):
        raise ValueError("pooled_adjusted must be 'no' or 'yes', got "
                         f"{result.get('pooled_adjusted')!r}")
    return kind


def fits_of(result: Mapping[str, Any]) -> tuple[Fit, ...]:
    """The fits a result's script makes, in order.

    A pooled proportion: ``primary`` (the page's model), then the key rows of the page's
    estimator panel on the logit scale (:data:`evidence.book.pooled.KEY_PANEL_ROWS`:
    ``glmm_t``, ``glmm_z``, ``reml_adhoc``, ``reml_knha``, ``reml_z``, ``dl_z``,
    ``fe_z``) except the one that is the primary; a single study has none (its exact
    interval is ``single_study``).  Hazard ratios: ``primary`` and ``common_effect``.
    """
    kind = _check(result)
    primary = Fit("primary", str(result["measure"]), str(result["method"]),
                  str(result["test"]))
    if kind == "hazard_ratios":
        return primary, Fit("common_effect", "HR", "FE", "z")
    if result["k"] < 2:
        return ()
    code = {short: test for test, short in TEST_SHORT.items()}
    rows = [Fit(f"{m.lower()}_{code[t]}", "PLO", m, code[t]) for m, t in KEY_PANEL_ROWS]
    same = (primary.measure, primary.method, primary.test)
    return (primary, *(f for f in rows if (f.measure, f.method, f.test) != same))


def r_packages(result: Mapping[str, Any]) -> tuple[str, ...]:
    """The R packages a result's script needs (lme4 only for a GLMM fit)."""
    return ("metafor", "lme4") if any(f.is_glmm for f in fits_of(result)) else ("metafor",)


def _level(result: Mapping[str, Any]) -> float:
    model = result.get("model")
    level = model.get("level") if isinstance(model, Mapping) else None
    level = 0.95 if level is None else float(level)
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    return level


def r_script(result: Mapping[str, Any], csv_name: str, analysis_id: str) -> str:
    """A self-contained R script that reproduces an analysis's primary result and the
    sensitivity fits metafor can compute (:func:`fits_of`).

    Parameters
    ----------
    result : mapping
        The analysis's result JSON (``results/<id>.json``).
    csv_name : str
        File name of the study table the script reads (next to it, by default).
    analysis_id : str
        The analysis, named in comments and messages (escaped unless plain).

    Returns
    -------
    str
        The script: ASCII, ending in a newline, identical for identical arguments.

    Raises
    ------
    ValueError
        A result of another kind (:func:`reproducible`), or one whose method, test or
        k is not metafor's.
    """
    from evidence import __version__

    kind = _check(result)
    packages = r_packages(result)
    fits = fits_of(result)
    k = int(result["k"])
    tol = (f"relative {RMA_TOLERANCE:.0e} for rma fits"
           + (f", {GLMM_TOLERANCE:.0e} for the GLMM" if "lme4" in packages else ""))
    lines = [*header_lines(analysis_id, csv_name, packages, __version__, tol),
             *version_lines(packages), *helper_lines()]
    if kind == "hazard_ratios":
        lines += read_lines(csv_name, analysis_id, ("hr", "hr_lower", "hr_upper", "p_value"))
        lines += hazard_lines(fits, k, _level(result), str(result["pooled_adjusted"]))
    else:
        lines += read_lines(csv_name, analysis_id, ("events", "total"))
        lines += proportion_lines(fits, k, _level(result))
    text = "\n".join(lines) + "\n"
    if not text.isascii():  # r_string writes every literal in ASCII
        raise AssertionError("an R script must be ASCII")
    return text


def result_digest(result: Mapping[str, Any]) -> str:
    """SHA-256 of a result's canonical JSON: ``results/reproduce.json`` records it, so
    that the chapter can tell a comparison of older results from one of these."""
    text = json.dumps(result, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ======================================================================================
# The numbers the script must print
# ======================================================================================


def _value(x: Any) -> float:
    return math.nan if x is None else float(x)


def _fit_values(name: str, fit: Fit | None, model: Mapping[str, Any],
                pooled: Mapping[str, Any]) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    common = fit is not None and fit.is_common_effect
    glmm = fit is not None and fit.is_glmm
    for q in MODEL_QUANTITIES:
        if (common and q.startswith("pi_")) or (glmm and q == "pval"):
            continue
        out[(name, q)] = _value(model.get(q))
    for q in POOLED_QUANTITIES:
        if common and q.startswith("pi_"):
            continue
        out[(name, f"pooled_{q}")] = _value(pooled.get(q))
    return out


def expected_values(result: Mapping[str, Any]) -> dict[tuple[str, str], float]:
    """What each ``EVIDENCE <fit> <quantity>`` line must show, keyed ``(fit, quantity)``.

    From the result JSON: the study counts (``data``), the primary fit (``model`` and
    ``pooled``), a single study's exact interval (``single_study``), the hazard ratios'
    common-effect fit and per-study ``yi``/``vi`` (``effects``, numbered from 1).  The
    sensitivity fits, which the result file does not hold, are computed with
    :func:`evidence.stats.proportions.pool_proportions` on the result's counts; a fit the
    library cannot make is left out.  NaN: R must print NA.
    """
    from evidence.stats.checks import ConvergenceError
    from evidence.stats.proportions import pool_proportions

    kind = _check(result)
    fits = fits_of(result)
    studies = result["studies"]
    out: dict[tuple[str, str], float] = {("data", "k"): float(result["k"])}
    if kind == "hazard_ratios":
        for i, s in enumerate(studies, start=1):
            out[("effects", f"yi_{i}")] = _value(s.get("yi"))
            out[("effects", f"vi_{i}")] = _value(s.get("vi"))
        ce = result["common_effect"]
        out.update(_fit_values("primary", fits[0], result["model"], result["pooled"]))
        out.update(_fit_values("common_effect", fits[1], ce["model"], ce["pooled"]))
        return out
    events = [int(s["events"]) for s in studies]
    totals = [int(s["total"]) for s in studies]
    out[("data", "events")] = float(sum(events))
    out[("data", "total")] = float(sum(totals))
    if not fits:
        pooled = result["pooled"]
        for q in ("estimate", "ci_lower", "ci_upper"):
            out[("single_study", q)] = _value(pooled.get(q))
        return out
    primary, *others = fits
    out.update(_fit_values("primary", primary, result["model"], result["pooled"]))
    ids = [str(s.get("study_id", i)) for i, s in enumerate(studies)]
    level = _level(result)
    for fit in others:
        try:
            res, pooled = pool_proportions(events, totals, ids, measure=fit.measure,
                                           method=fit.method, test=fit.test, level=level)
        except (ValueError, ConvergenceError, ArithmeticError):
            continue
        out.update(_fit_values(fit.name, fit, res.model_dict(), pooled))
    return out


# ======================================================================================
# Tolerances and the comparison
# ======================================================================================


@dataclass(frozen=True)
class Tolerance:
    """How one value is judged: ``|printed - expected| / max(|expected|, abs/rel, scale)
    <= rel`` (:func:`evidence.book.parity.relative_difference`)."""

    rel: float
    abs: float = ABS_TOLERANCE
    scale: float = 0.0


def _glmm_tolerance(quantity: str, values: Mapping[str, float]) -> Tolerance:
    """The GLMM rule of :func:`evidence.book.parity.glmm_scale`, with the book's values
    as the reference; a back-transformed value carries the floor of its logit-scale
    counterpart through the slope of the inverse logit, p (1 - p)."""
    ref = {"ci_lb": values.get("ci_lower"), "ci_ub": values.get("ci_upper"),
           "pi_lb": values.get("pi_lower"), "pi_ub": values.get("pi_upper"),
           "tau2": values.get("tau2")}
    ref = {k: (None if v is None or not math.isfinite(v) else v) for k, v in ref.items()}
    if quantity.startswith("pooled_"):
        base = quantity.removeprefix("pooled_")
        p, logit = values.get(quantity, math.nan), values.get(base, math.nan)
        if not (math.isfinite(p) and math.isfinite(logit)):
            return Tolerance(GLMM_TOLERANCE)
        # the logit-scale denominator, carried to the proportion scale
        floor = max(abs(logit), ABS_TOLERANCE / GLMM_TOLERANCE, glmm_scale(base, ref))
        return Tolerance(GLMM_TOLERANCE, scale=p * (1.0 - p) * floor)
    if quantity == "pval":  # not compared for the GLMM (lme4's optimum is approximate)
        return Tolerance(GLMM_TOLERANCE)
    return Tolerance(GLMM_TOLERANCE, scale=glmm_scale(quantity, ref))


def tolerances(result: Mapping[str, Any], expected: Mapping[tuple[str, str], float]
               ) -> dict[tuple[str, str], Tolerance]:
    """The tolerance of each expected value: relative 1e-6 (1e-10 absolute near zero),
    as for every ``rma`` fit of the parity checks; for GLMM fits 1e-4 with the scale
    floors of :func:`evidence.book.parity.glmm_scale`."""
    glmm = {f.name for f in fits_of(result) if f.is_glmm}
    by_fit: dict[str, dict[str, float]] = {}
    for (fit, quantity), value in expected.items():
        by_fit.setdefault(fit, {})[quantity] = value
    return {(fit, quantity): (_glmm_tolerance(quantity, by_fit[fit]) if fit in glmm
                              else Tolerance(RMA_TOLERANCE))
            for fit, quantity in expected}


@dataclass(frozen=True)
class Printed:
    """The machine-readable lines of one run: values, errors of fits, versions."""

    values: dict[tuple[str, str], float]
    errors: dict[str, str]
    versions: dict[str, str]


def parse_output(lines: Iterable[str] | str) -> Printed:
    """Read the ``EVIDENCE`` lines of a script's output (other lines are for readers).

    ``NA`` and ``NaN`` read as NaN, ``Inf``/``-Inf`` as infinities.

    Raises
    ------
    ValueError
        A malformed ``EVIDENCE`` line, or a number printed twice (with its line).
    """
    if isinstance(lines, str):
        lines = lines.splitlines()
    values: dict[tuple[str, str], float] = {}
    errors: dict[str, str] = {}
    versions: dict[str, str] = {}
    for n, line in enumerate(lines, start=1):
        parts = line.rstrip("\r\n").split(" ", 3)
        if parts[0] != MARKER:
            continue
        if len(parts) < 4 or not parts[1] or not parts[2]:
            raise ValueError(f"output line {n}: malformed: {line!r}")
        fit, quantity, text = parts[1], parts[2], parts[3].strip()
        if fit == "version":
            versions[quantity] = text
            continue
        if quantity == "error":
            errors[fit] = text
            continue
        try:
            value = math.nan if text in ("NA", "NaN") else float(text)
        except ValueError:
            raise ValueError(f"output line {n}: {fit} {quantity}: {text!r} is not a "
                             "number") from None
        if (fit, quantity) in values:
            raise ValueError(f"output line {n}: {fit} {quantity} printed twice")
        values[(fit, quantity)] = value
    return Printed(values, errors, versions)


@dataclass(frozen=True)
class Difference:
    """One compared value: the book's, R's (None: not printed), the relative difference
    on the scale it is judged on, and the tolerance it must not exceed."""

    fit: str
    quantity: str
    expected: float
    printed: float | None
    difference: float
    tolerance: float
    note: str = ""

    @property
    def ok(self) -> bool:
        """Within tolerance."""
        return self.difference <= self.tolerance

    def describe(self) -> str:
        """One line for people."""
        if self.printed is None:
            return f"{self.fit} {self.quantity}: not printed by R ({self.note})"
        return (f"{self.fit} {self.quantity}: book {self.expected:.10g}, R "
                f"{self.printed:.10g} (relative difference {self.difference:.2e} > "
                f"{self.tolerance:.0e})")


#: A value that differs beyond its tolerance (:func:`compare`).
Mismatch = Difference


def compare_values(expected: Mapping[tuple[str, str], float], printed_lines: Iterable[str] | str,
                   tolerances: Mapping[tuple[str, str], Tolerance]) -> list[Difference]:
    """Every expected value against the printed one, in the order of ``expected``.

    Lines R printed but nothing expects (e.g. a fit the library could not make) are not
    compared.  A value R did not print is a difference (infinite), with the fit's R
    error when there is one.

    Raises
    ------
    KeyError
        ``tolerances`` lacks a key of ``expected``.
    ValueError
        Malformed output (:func:`parse_output`).
    """
    printed = parse_output(printed_lines)
    out = []
    for key, want in expected.items():
        tol = tolerances[key]
        fit, quantity = key
        got = printed.values.get(key)
        if got is None:
            note = (f"R error: {printed.errors[fit]}" if fit in printed.errors
                    else "no such line")
            out.append(Difference(fit, quantity, want, None, math.inf, tol.rel, note))
            continue
        diff = relative_difference(got, want, tol.rel, tol.abs, scale=tol.scale)
        out.append(Difference(fit, quantity, want, got, diff, tol.rel))
    return out


def compare(expected: Mapping[tuple[str, str], float], printed_lines: Iterable[str] | str,
            tolerances: Mapping[tuple[str, str], Tolerance]) -> list[Mismatch]:
    """The values that differ beyond their tolerance (empty: the script reproduces
    the result); see :func:`compare_values`."""
    return [d for d in compare_values(expected, printed_lines, tolerances) if not d.ok]


# ======================================================================================
# results/reproduce.json and the Reproducibility chapter
# ======================================================================================


def _largest(diffs: Sequence[Difference], fits: set[str]) -> dict[str, Any] | None:
    finite = [d for d in diffs if d.fit in fits and math.isfinite(d.difference)]
    if not finite:
        return None
    top = max(finite, key=lambda d: d.difference)
    return {"difference": top.difference, "fit": top.fit, "quantity": top.quantity}


def summarise(analysis_id: str, result: Mapping[str, Any],
              differences: Sequence[Difference], printed: Printed | None, script: str,
              error: str = "") -> dict[str, Any]:
    """One analysis's entry of ``results/reproduce.json``.

    Parameters
    ----------
    analysis_id : str
    result : mapping
        The result JSON the script was compared with.
    differences : sequence of Difference
        :func:`compare_values` (empty when the script failed).
    printed : Printed or None
        The script's parsed output (None when it failed).
    script : str
        The script as run.
    error : str
        Why the script failed (non-zero exit, time-out, malformed output); empty if
        it ran.

    Returns
    -------
    dict
        ``analysis_id``, ``status`` (``ok``, ``failed``: some value differs, ``error``:
        the script failed), ``error``, ``fits`` (the fits compared; the counts and
        the log hazard ratios are compared too) and ``compared`` (values), ``largest``
        relative difference among the values judged with the rma tolerance (``rma``:
        rma fits, counts, exact intervals, log hazard ratios) and with the GLMM's
        (``glmm``), each with its fit and quantity, ``mismatches``, ``versions`` (R,
        metafor, lme4 as the script printed them), ``result_sha256``
        (:func:`result_digest`) and ``script_sha256``; JSON-ready.
    """
    from evidence.stats.results import jsonable

    glmm = {f.name for f in fits_of(result) if f.is_glmm}
    names = list(dict.fromkeys(d.fit for d in differences))
    fits = [n for n in names if n not in ("data", "effects")]
    bad = [d for d in differences if not d.ok]
    status = "error" if error else ("failed" if bad or not differences else "ok")
    return jsonable({
        "analysis_id": analysis_id, "status": status,
        "error": error or ("nothing was compared" if not differences else ""),
        "fits": fits, "compared": len(differences),
        "largest": {"rma": _largest(differences, set(names) - glmm),
                    "glmm": _largest(differences, glmm)},
        "mismatches": [{"fit": d.fit, "quantity": d.quantity, "book": d.expected,
                        "r": d.printed, "difference": d.difference,
                        "tolerance": d.tolerance, "note": d.note} for d in bad],
        "versions": dict(printed.versions) if printed is not None else {},
        "result_sha256": result_digest(result),
        "script_sha256": hashlib.sha256(script.encode("utf-8")).hexdigest(),
    })
