"""Parity of this library with R's metafor on the reference fixtures.

The reference JSON files in ``tests/fixtures/metafor/`` and ``tests/fixtures/glmm/``
are written by ``metafor_reference.R`` (metafor 3.8-1, R 4.2): for one CSV of single
proportions (``study,events,total``) each holds a list of ``records`` (one
``escalc`` + ``rma`` fit per measure x method x zero handling, metafor's field
names) and ``glmm`` (one ``rma.glmm(measure="PLO")`` fit).  This module refits every
one of them with :func:`evidence.stats.effects.escalc` + :func:`evidence.stats.pooling.rma` or
:func:`evidence.stats.glmm.rma_glmm` and compares field by field.

The rules are the test-suite's.  For ``escalc`` + ``rma`` (``tests/conftest.py``) a
value agrees when ``|evidence - metafor| <= max(1e-6 * |metafor|, 1e-10)``.  For the
GLMM (``tests/test_glmm.py``) the tolerance is 1e-4, and because lme4's optimiser
stops about 1e-5 short of the optimum, the estimate and the interval limits are
compared relative to the larger of their magnitude, 1 and (limits) the interval's
half-width; a tau2 of zero and I2 near zero to 1e-6 absolute (:func:`glmm_scale`).  The *relative
difference* reported is ``|evidence - metafor|`` divided by that scale, so that a fit
agrees exactly when its largest relative difference is at most its tolerance.  A
metafor ``NA`` (``null`` in the JSON) matches a NaN or infinite value and nothing
else.

:func:`load_reference_sets` reads the files (the only I/O here);
:func:`compare_reference`, :func:`parity_table`, :func:`dataset_summary`,
:func:`display_table` and :func:`verdict` are pure.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evidence.stats.vocabulary import PROPORTION_MEASURES, TAU2_ESTIMATORS, ZERO_HANDLING

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ABS_TOLERANCE",
    "COMPARED_FIELDS",
    "GLMM_TOLERANCE",
    "REFERENCE_GENERATOR",
    "RMA_TOLERANCE",
    "ReferenceSet",
    "compare_reference",
    "dataset_summary",
    "describe_rule",
    "display_table",
    "file_digests",
    "glmm_scale",
    "load_reference_sets",
    "parity_table",
    "reference_files",
    "relative_difference",
    "summary",
    "verdict",
    "zero_handling",
]

#: Relative tolerance for ``escalc`` + ``rma`` fits (DESIGN.md).
RMA_TOLERANCE = 1e-6
#: Relative tolerance for the binomial-normal GLMM (``rma.glmm``; DESIGN.md).
GLMM_TOLERANCE = 1e-4
#: Absolute tolerance near zero (as ``tests/conftest.py``).
ABS_TOLERANCE = 1e-10
#: The script whose JSON layout this module reads (``meta.generator``).
REFERENCE_GENERATOR = "metafor_reference.R"

#: Compared quantities: our name -> metafor's field in ``records`` (rma) and ``glmm``.
COMPARED_FIELDS: dict[str, tuple[str, str]] = {
    "estimate": ("estimate", "estimate"),
    "se": ("se", "se"),
    "ci_lower": ("ci_lb", "ci_lb"),
    "ci_upper": ("ci_ub", "ci_ub"),
    "pi_lower": ("pi_lb", "pi_lb"),
    "pi_upper": ("pi_ub", "pi_ub"),
    "tau2": ("tau2", "tau2"),
    "i2": ("I2", "I2"),
    "q": ("QE", "QE_Wld"),
}

#: The fits the reference script makes: rma methods (``FE`` for the common effect) and tests.
_METHODS = ("FE", *TAU2_ESTIMATORS)
_TESTS = ("z", "knha")
_ZERO_RE = re.compile(r"^add=(?P<add>[0-9]+(?:/[0-9]+|\.[0-9]+)?)(?:,to=(?P<to>[a-z0-9]+))?"
                      r"(?:\s+\(.*\))?$")


@dataclass(frozen=True)
class ReferenceSet:
    """One reference data set: metafor's results and the counts they came from.

    Attributes
    ----------
    name : str
        ``<folder>/<file stem>``, e.g. ``"metafor/orr_her2ctc"``.
    reference : dict
        The parsed JSON (``meta``, ``records``, ``glmm``, ...).
    data : pandas.DataFrame
        The input CSV named in ``meta.input`` (columns ``study, events, total``).
    sha256 : dict of str to str
        SHA-256 of the JSON and the CSV, keyed by their path relative to the
        fixtures directory.
    """

    name: str
    reference: dict[str, Any]
    data: pd.DataFrame
    sha256: dict[str, str]


def load_reference_sets(fixtures_dir: str | Path,
                        folders: Sequence[str] = ("metafor", "glmm")) -> list[ReferenceSet]:
    """Read every ``metafor_reference.R`` JSON (and its CSV) below ``fixtures_dir``.

    JSON files of another layout (``meta.generator`` not ``metafor_reference.R``,
    e.g. ``metafor_extra.json`` or the GLMM sequences) are not reference sets
    and are left out; the test-suite checks those.

    Parameters
    ----------
    fixtures_dir : str or path
        The ``tests/fixtures`` directory.
    folders : sequence of str
        Sub-folders to read, in this order; files within a folder by name.

    Returns
    -------
    list of ReferenceSet

    Raises
    ------
    FileNotFoundError
        ``fixtures_dir`` or a folder does not exist, or a reference's input CSV is
        missing.
    ValueError
        No reference set was found.
    """
    import pandas as pd

    root = Path(fixtures_dir)
    sets: list[ReferenceSet] = []
    for folder in folders:
        directory = root / folder
        if not directory.is_dir():
            raise FileNotFoundError(f"{directory} is not a directory")
        for path in sorted(directory.glob("*.json")):
            raw = path.read_bytes()
            reference = json.loads(raw.decode("utf-8"))
            meta = reference.get("meta", {}) if isinstance(reference, dict) else {}
            if meta.get("generator") != REFERENCE_GENERATOR:
                continue
            csv_path = directory / str(meta.get("input", ""))
            if not csv_path.is_file():
                raise FileNotFoundError(f"{path}: input CSV {csv_path} not found")
            csv_raw = csv_path.read_bytes()
            data = pd.read_csv(csv_path)
            sha = {f"{folder}/{path.name}": hashlib.sha256(raw).hexdigest(),
                   f"{folder}/{csv_path.name}": hashlib.sha256(csv_raw).hexdigest()}
            sets.append(ReferenceSet(f"{folder}/{path.stem}", reference, data, sha))
    if not sets:
        raise ValueError(f"no {REFERENCE_GENERATOR} reference JSON under {root} "
                         f"(folders {list(folders)})")
    return sets


def zero_handling(text: str, measure: str) -> tuple[float | None, str]:
    """``escalc``'s ``add`` and ``to`` from a record's ``zero_handling`` string.

    Parameters
    ----------
    text : str
        As written by ``metafor_reference.R``: ``"add=1/2,to=only0 (default)"``,
        ``"add=1/2,to=all"``, ``"add=0 (zero studies dropped)"``, ``"none (PFT)"`` ...
    measure : str
        The record's measure (``"none"`` means metafor's default for PAS/PFT: no
        correction).

    Returns
    -------
    (float or None, str)
        ``add`` (None = metafor's default for the measure) and ``to``.

    Raises
    ------
    ValueError
        A string of another form, or ``"none"`` for a measure that has a default
        correction (PLO, PR).
    """
    text = text.strip()
    if text.startswith("none"):
        if measure not in ("PAS", "PFT"):
            raise ValueError(f"zero_handling {text!r}: 'none' is metafor's default only for "
                             f"PAS and PFT, not {measure!r}")
        return None, "only0"
    match = _ZERO_RE.match(text)
    if match is None:
        raise ValueError(f"unknown zero_handling {text!r}; expected 'add=A[,to=TO] (...)' or "
                         "'none (...)'")
    num, _, den = match["add"].partition("/")
    add = float(num) / float(den) if den else float(num)
    to = match["to"] or "only0"
    if to not in ZERO_HANDLING:
        raise ValueError(f"zero_handling {text!r}: unknown to={to!r}; allowed: "
                         f"{', '.join(ZERO_HANDLING)}")
    return add, to


def _as_float(value: Any) -> float:
    if value is None:
        return math.nan
    return float(value)


def relative_difference(actual: float, expected: float | None, tol: float,
                        abs_tol: float = ABS_TOLERANCE, *, scale: float = 0.0) -> float:
    """``|actual - expected| / max(|expected|, abs_tol / tol, scale)``.

    ``expected`` None or NaN (metafor's NA) matches a NaN or infinite ``actual``
    (difference 0) and nothing else (infinite difference); so does an infinite
    ``expected``.  The value agrees within tolerance exactly when the result is
    ``<= tol``.  ``scale`` is a field-specific floor of the denominator (see
    :func:`glmm_scale`).

    Raises
    ------
    ValueError
        ``tol`` or ``abs_tol`` not positive, or ``scale`` negative.
    """
    if not (tol > 0 and abs_tol > 0 and scale >= 0):
        raise ValueError(f"tolerances must be > 0 and scale >= 0, got tol={tol!r}, "
                         f"abs_tol={abs_tol!r}, scale={scale!r}")
    a = _as_float(actual)
    e = _as_float(expected)
    if not math.isfinite(e) or not math.isfinite(a):
        same = (not math.isfinite(e) and not math.isfinite(a)
                and (math.isnan(e) or math.isnan(a) or a == e))
        return 0.0 if same else math.inf
    return abs(a - e) / max(abs(e), abs_tol / tol, scale)


def _half_width(ref: Mapping[str, Any], lower: str, upper: str) -> float:
    lo, hi = _as_float(ref.get(lower)), _as_float(ref.get(upper))
    return (hi - lo) / 2 if math.isfinite(lo) and math.isfinite(hi) else 0.0


def glmm_scale(field: str, ref: Mapping[str, Any]) -> float:
    """Floor of the denominator of the relative difference for a GLMM field.

    As ``tests/test_glmm.py``: lme4's optimiser stops about 1e-5 short of the
    optimum, so the estimate is compared relative to at least 1 (logit scale), the
    interval limits relative to at least 1 and the interval's half-width, a tau2 of
    (almost) zero to 1e-6 absolute, I2 to 1e-6 absolute near zero; the other fields
    purely relatively (0).

    Parameters
    ----------
    field : str
        One of :data:`COMPARED_FIELDS`.
    ref : mapping
        metafor's ``glmm`` record (for the half-widths and tau2).
    """
    if field not in COMPARED_FIELDS:
        raise ValueError(f"unknown field {field!r}; allowed: {', '.join(COMPARED_FIELDS)}")
    if field == "estimate":
        return 1.0
    if field in ("ci_lower", "ci_upper"):
        return max(1.0, _half_width(ref, "ci_lb", "ci_ub"))
    if field in ("pi_lower", "pi_upper"):
        return max(1.0, _half_width(ref, "pi_lb", "pi_ub"))
    if field == "tau2":
        return 1e-6 / GLMM_TOLERANCE if abs(_as_float(ref.get("tau2"))) < 1e-8 else 0.0
    if field == "i2":
        return 1e-6 / GLMM_TOLERANCE
    return 0.0


def _check_choice(name: str, value: Any, allowed: tuple[str, ...], where: str) -> str:
    if value not in allowed:
        raise ValueError(f"{where}: unknown {name} {value!r}; allowed: {', '.join(allowed)}")
    return str(value)


def _row(name: str, kind: str, model: str, measure: str, method: str, test: str,
         zero: str, k_metafor: Any, tol: float) -> dict[str, Any]:
    return {"data_set": name, "kind": kind, "model": model, "measure": measure,
            "method": method, "test": test, "zero_handling": zero,
            "k_evidence": None, "k_metafor": k_metafor, "tolerance": tol}


def _finish(row: dict[str, Any], fit: Any, ref: Mapping[str, Any], which: int,
            tol: float) -> dict[str, Any]:
    worst, worst_field = 0.0, ""
    for ours, names in COMPARED_FIELDS.items():
        theirs = names[which]
        value = _as_float(getattr(fit, ours))
        expected = ref.get(theirs)
        row[f"{ours}_evidence"] = value
        row[f"{ours}_metafor"] = _as_float(expected)
        if theirs not in ref:
            continue
        scale = glmm_scale(ours, ref) if which == 1 else 0.0
        diff = relative_difference(value, expected, tol, scale=scale)
        if diff > worst or not worst_field:
            worst, worst_field = diff, ours
    row["k_evidence"] = int(fit.k)
    if ref.get("k") is not None and int(ref["k"]) != int(fit.k):
        worst, worst_field = math.inf, "k"
    row["max_rel_diff"] = worst
    row["worst_field"] = worst_field
    row["agrees"] = bool(worst <= tol)
    row["error"] = ""
    return row


def _failed(row: dict[str, Any], ref: Mapping[str, Any], which: int, message: str
            ) -> dict[str, Any]:
    for ours, names in COMPARED_FIELDS.items():
        row[f"{ours}_evidence"] = math.nan
        row[f"{ours}_metafor"] = _as_float(ref.get(names[which]))
    metafor_error = ref.get("error")
    both = metafor_error is not None
    row.update({"max_rel_diff": 0.0 if both else math.inf, "worst_field": "",
                "agrees": both,
                "error": (f"both refuse; evidence: {message}; metafor: {metafor_error}"
                          if both else f"evidence refused: {message}")})
    return row


def compare_reference(reference: Mapping[str, Any], data: pd.DataFrame,
                      name: str = "") -> pd.DataFrame:
    """Refit every model of one reference JSON and compare it with metafor.

    Parameters
    ----------
    reference : mapping
        A parsed ``metafor_reference.R`` JSON (keys ``records`` and ``glmm``).
    data : pandas.DataFrame
        Its input counts, with columns ``events`` and ``total`` (and ``study``).
    name : str
        Label of the data set in the output.

    Returns
    -------
    pandas.DataFrame
        One row per fit (the ``records`` in order, then the GLMM): ``data_set``,
        ``kind`` (``"rma"``/``"glmm"``), ``model`` (readable), ``measure``,
        ``method``, ``test``, ``zero_handling``, ``k_evidence``, ``k_metafor``,
        ``<field>_evidence`` and ``<field>_metafor`` for every field of
        :data:`COMPARED_FIELDS`, ``max_rel_diff``, ``worst_field``, ``tolerance``,
        ``agrees`` and ``error`` (why evidence refused, if it did).  A fit that
        evidence refuses agrees only if metafor refused too (its record has an
        ``error``).

    Raises
    ------
    ValueError
        A record with an unknown measure, method, test or zero handling, or data
        without ``events``/``total``.
    """
    import numpy as np
    import pandas as pd

    from evidence.stats.effects import escalc
    from evidence.stats.glmm import rma_glmm
    from evidence.stats.pooling import rma

    missing = {"events", "total"} - set(data.columns)
    if missing:
        raise ValueError(f"{name or 'data'}: missing columns {sorted(missing)}")
    xi = np.asarray(data["events"], dtype=float)
    ni = np.asarray(data["total"], dtype=float)
    rows: list[dict[str, Any]] = []
    for i, rec in enumerate(reference.get("records", [])):
        where = f"{name or 'reference'} records[{i}]"
        measure = _check_choice("measure", rec.get("measure"), PROPORTION_MEASURES, where)
        method = _check_choice("method", rec.get("method"), _METHODS, where)
        test = _check_choice("test", rec.get("test", "z"), _TESTS, where)
        zero = str(rec.get("zero_handling", "add=1/2,to=only0 (default)"))
        add, to = zero_handling(zero, measure)
        model = f"{measure} {method}" + (" + Knapp-Hartung" if test == "knha" else "")
        model += f", {zero}"
        row = _row(name, "rma", model, measure, method, test, zero, rec.get("k"),
                   RMA_TOLERANCE)
        try:
            es = escalc(measure, xi=xi, ni=ni, add=add, to=to)
            fit = rma(es, method=method, knha=test == "knha")
        except (ValueError, ArithmeticError, RuntimeError) as exc:
            rows.append(_failed(row, rec, 0, str(exc)))
            continue
        rows.append(_finish(row, fit, rec, 0, RMA_TOLERANCE))
    for rec in reference.get("glmm", []):
        row = _row(name, "glmm", "PLO GLMM (binomial-normal, ML, nAGQ = 7)", "PLO", "GLMM",
                   "z", "none (exact binomial likelihood)", rec.get("k"), GLMM_TOLERANCE)
        try:
            fit = rma_glmm(xi, ni)
        except (ValueError, ArithmeticError, RuntimeError) as exc:
            rows.append(_failed(row, rec, 1, str(exc)))
            continue
        rows.append(_finish(row, fit, rec, 1, GLMM_TOLERANCE))
    return pd.DataFrame(rows)


def parity_table(sets: Iterable[ReferenceSet]) -> pd.DataFrame:
    """:func:`compare_reference` for every set, stacked.

    Parameters
    ----------
    sets : iterable of ReferenceSet
        From :func:`load_reference_sets`.

    Returns
    -------
    pandas.DataFrame
        The rows of every set, in order (index reset).

    Raises
    ------
    ValueError
        No sets.
    """
    import pandas as pd

    frames = [compare_reference(s.reference, s.data, s.name) for s in sets]
    if not frames:
        raise ValueError("no reference sets to compare")
    return pd.concat(frames, ignore_index=True)


def dataset_summary(table: pd.DataFrame, sets: Iterable[ReferenceSet] = ()) -> pd.DataFrame:
    """One display row per data set of a parity table.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`parity_table`.
    sets : iterable of ReferenceSet, optional
        The sets compared; when given, a column with the metafor, lme4 and R
        versions of each reference is added.

    Returns
    -------
    pandas.DataFrame
        Text columns: data set, studies (k), fits compared, fits agreeing, largest
        relative difference of the rma fits and of the GLMM.
    """
    import pandas as pd

    meta = {s.name: s.reference.get("meta", {}) for s in sets}
    rows = []
    for name, group in table.groupby("data_set", sort=False):
        rma_rows = group[group["kind"] == "rma"]
        glmm_rows = group[group["kind"] == "glmm"]
        m = meta.get(str(name), {})
        row = {
            "Data set": str(name),
            "Studies (k)": _fmt_k(group["k_metafor"].max()),
            "Fits compared": len(group),
            "Agree": f"{int(group['agrees'].sum())} of {len(group)}",
            "Largest rel. difference, rma": _fmt_diff(rma_rows["max_rel_diff"].max()
                                                      if len(rma_rows) else None),
            "Rel. difference, GLMM": _fmt_diff(glmm_rows["max_rel_diff"].max()
                                               if len(glmm_rows) else None),
        }
        if m:
            row["metafor / lme4 / R"] = (f"{m.get('metafor', '?')} / {m.get('lme4', '?')} / "
                                         f"{_r_version(str(m.get('R', '?')))}")
        rows.append(row)
    return pd.DataFrame(rows)


def _r_version(text: str) -> str:
    match = re.search(r"R version ([0-9.]+)", text)
    return match.group(1) if match else text


def _fmt_k(k: Any) -> str:
    return "—" if k is None or (isinstance(k, float) and math.isnan(k)) else str(int(k))


def _fmt_diff(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if math.isinf(x):
        return "∞"
    return "0" if x == 0 else f"{x:.2e}"


def _fmt_value(x: float) -> str:
    if math.isnan(x):
        return "NA"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.6g}".replace("-", "−")


def _fmt_estimate(row: Mapping[str, Any], side: str) -> str:
    est = _fmt_value(row[f"estimate_{side}"])
    lo = _fmt_value(row[f"ci_lower_{side}"])
    hi = _fmt_value(row[f"ci_upper_{side}"])
    return f"{est} ({lo} to {hi})"


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """Readable version of a parity table, one row per fit.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`parity_table`.

    Returns
    -------
    pandas.DataFrame
        Text columns: data set, model, k, estimate (95% CI), tau2 and I2 for
        evidence and metafor side by side (6 significant digits, measure scale), the
        largest relative difference over all compared fields, the field where it
        occurs, the tolerance, and whether the fit agrees (with evidence's error, if
        it refused).
    """
    import pandas as pd

    rows = []
    for r in table.to_dict("records"):
        rows.append({
            "Data set": r["data_set"],
            "Model": r["model"],
            "k": _fmt_k(r["k_evidence"] if r["k_evidence"] is not None else r["k_metafor"]),
            "Estimate (95% CI), evidence": _fmt_estimate(r, "evidence"),
            "Estimate (95% CI), metafor": _fmt_estimate(r, "metafor"),
            "τ², evidence": _fmt_value(r["tau2_evidence"]),
            "τ², metafor": _fmt_value(r["tau2_metafor"]),
            "I² (%), evidence": _fmt_value(r["i2_evidence"]),
            "I² (%), metafor": _fmt_value(r["i2_metafor"]),
            "Largest rel. difference": _fmt_diff(r["max_rel_diff"]),
            "In": r["worst_field"] or "—",
            "Tolerance": f"{r['tolerance']:.0e}",
            "Agrees": ("yes" if r["agrees"] else "NO") + (f" ({r['error']})" if r["error"]
                                                          else ""),
        })
    return pd.DataFrame(rows)


def verdict(table: pd.DataFrame) -> str:
    """The overall verdict in one sentence, for prose.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`parity_table` (or a subset of its rows).

    Returns
    -------
    str
        "All N comparisons on M data sets agree ..." with the largest differences,
        or "n of N comparisons ... do not agree ...: <data set>, <model> (<field>
        <ours> here, <metafor's> in metafor: relative difference ..., tolerance ...);
        ...".
    """
    n = len(table)
    if n == 0:
        return "No comparisons were made."
    bad = table[~table["agrees"].astype(bool)]
    n_sets = table["data_set"].nunique()
    if bad.empty:
        return (f"All {n} comparisons on {n_sets} data sets agree with metafor within "
                f"tolerance (largest relative difference {_fmt_diff(_max_of(table, 'rma'))}"
                f" for rma fits, {_fmt_diff(_max_of(table, 'glmm'))} for the GLMM).")
    items = []
    for r in bad.to_dict("records"):
        field = r["worst_field"]
        if r["error"]:
            why = r["error"]
        elif field == "k":
            why = f"k = {r['k_evidence']} here, {r['k_metafor']} in metafor"
        else:
            why = (f"{field} {_fmt_value(r[field + '_evidence'])} here, "
                   f"{_fmt_value(r[field + '_metafor'])} in metafor: relative difference "
                   f"{_fmt_diff(r['max_rel_diff'])}, tolerance {r['tolerance']:.0e}")
        items.append(f"{r['data_set']}, {r['model']} ({why})")
    return (f"{len(bad)} of {n} comparisons on {n_sets} data sets do not agree with metafor "
            f"within tolerance: " + "; ".join(items) + ".")


def _max_of(table: pd.DataFrame, kind: str) -> float | None:
    rows = table[table["kind"] == kind]
    return float(rows["max_rel_diff"].max()) if len(rows) else None


def describe_rule() -> str:
    """The agreement rule in words, for prose.

    Returns
    -------
    str
        Several sentences stating the tolerances of this module and the fields
        compared.
    """
    return (f"The rules are those of the test suite. For escalc + rma fits a value "
            f"agrees when it differs from metafor's by at most {RMA_TOLERANCE:.0e} of "
            f"metafor's value, or by at most {ABS_TOLERANCE:.0e} near zero. For the "
            f"binomial-normal GLMM the tolerance is {GLMM_TOLERANCE:.0e}, because lme4, "
            "which metafor calls, stops its optimiser slightly short of the optimum: the "
            "estimate and the interval limits are compared relative to the larger of their "
            "size, 1 and (for limits) half the interval's width, and a τ² of zero to "
            f"{1e-6:.0e} in absolute terms. A fit agrees when all its compared values do: "
            "estimate, standard error, confidence and prediction limits, τ², I² and Q (the "
            "Wald-type Q for the GLMM), all on the measure's scale (logit for PLO), and the "
            "number of studies used. The relative difference shown is the difference "
            "divided by the scale it is judged on.")


def summary(table: pd.DataFrame) -> dict[str, Any]:
    """JSON-ready digest of a parity table, for the result file.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`parity_table`.

    Returns
    -------
    dict
        ``comparisons``, ``agree``, ``data_sets``, ``max_rel_diff_rma``,
        ``max_rel_diff_glmm``, ``tolerance`` and ``disagreements`` (data set, model,
        field, difference and error of every fit that does not agree).
    """
    bad = table[~table["agrees"].astype(bool)]
    return {
        "comparisons": len(table),
        "agree": int(table["agrees"].sum()),
        "data_sets": int(table["data_set"].nunique()),
        "max_rel_diff_rma": _max_of(table, "rma"),
        "max_rel_diff_glmm": _max_of(table, "glmm"),
        "tolerance": {"rma": RMA_TOLERANCE, "glmm": GLMM_TOLERANCE, "abs": ABS_TOLERANCE},
        "disagreements": [
            {"data_set": r["data_set"], "model": r["model"], "field": r["worst_field"],
             "max_rel_diff": r["max_rel_diff"], "error": r["error"]}
            for r in bad.to_dict("records")],
    }


def file_digests(sets: Iterable[ReferenceSet]) -> dict[str, str]:
    """SHA-256 of every file the sets were read from.

    Parameters
    ----------
    sets : iterable of ReferenceSet
        From :func:`load_reference_sets`.

    Returns
    -------
    dict of str to str
        Path relative to the fixtures directory -> hex digest, sorted by path.
    """
    out: dict[str, str] = {}
    for s in sets:
        out.update(s.sha256)
    return dict(sorted(out.items()))


def reference_files(sets: Iterable[ReferenceSet]) -> pd.DataFrame:
    """Display table of the files the sets were read from.

    Parameters
    ----------
    sets : iterable of ReferenceSet
        From :func:`load_reference_sets`.

    Returns
    -------
    pandas.DataFrame
        File, SHA-256, and for each JSON the script, R, metafor and lme4 versions
        its ``meta`` records (for a CSV: which JSON it is the input of).
    """
    import pandas as pd

    rows = []
    for s in sets:
        meta = s.reference.get("meta", {})
        for path, digest in s.sha256.items():
            is_json = path.endswith(".json")
            rows.append({
                "File": path,
                "SHA-256": digest,
                "Made by": str(meta.get("generator", "")) if is_json else "input of "
                           + s.name.split("/", 1)[-1] + ".json",
                "R": _r_version(str(meta.get("R", ""))) if is_json else "",
                "metafor": str(meta.get("metafor", "")) if is_json else "",
                "lme4": str(meta.get("lme4", "")) if is_json else "",
            })
    return pd.DataFrame(rows, columns=["File", "SHA-256", "Made by", "R", "metafor", "lme4"])
