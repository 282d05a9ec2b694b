"""HER2 category transitions from primary tumour to recurrence: the chapter's words,
tables and the registry adapter of :mod:`evidence.stats.transitions`.

:func:`transition_bounds` reads a study's ``transitions.csv`` rows (cells, margins,
total) and reconstructs every table of counts compatible with them; :func:`direction_rates`
gives the rates by direction of change, exact where the report fixes them and as ranges
where they depend on unreported cells; the rest turn them into sentences and tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from evidence.book.names import CATEGORY_NAMES, SUBGROUP_NAMES, level_name, name
from evidence.book.text import fmt_ci, fmt_num, fmt_p, fmt_pct, md, plural
from evidence.registry import HER2_CATEGORIES, parse_subgroup
from evidence.stats.checks import check_level
from evidence.stats.effects import proportion_ci
from evidence.stats.transitions import TransitionBounds, bounds_from_counts, check_categories

if TYPE_CHECKING:
    import pandas as pd

#: HER2 categories of ``transitions.csv``, in table order (the registry's vocabulary).
CATEGORIES: tuple[str, ...] = HER2_CATEGORIES

__all__ = [
    "CATEGORIES",
    "DIRECTIONS",
    "Direction",
    "bounds_table",
    "describe_transitions",
    "direction_rates",
    "distribution_table",
    "extreme_labels",
    "rates_table",
    "transition_bounds",
]


@dataclass(frozen=True)
class Direction:
    """A direction of HER2 change: which cells count, over which primary categories.

    Attributes
    ----------
    key : str
        Slug, e.g. ``"zero_to_low"``.
    label : str
        Display name, e.g. ``"HER2-zero → HER2-low"``.
    cells : tuple of (str, str)
        ``(from_category, to_category)`` cells whose counts are the events.
    rows : tuple of str
        Primary-tumour categories whose patients form the denominator.
    what : str
        Completes "x% of ... ": what the proportion means, in words.
    """

    key: str
    label: str
    cells: tuple[tuple[str, str], ...]
    rows: tuple[str, ...]
    what: str


DIRECTIONS: tuple[Direction, ...] = (
    Direction("zero_to_low", "HER2-zero → HER2-low", (("zero", "low"),), ("zero",),
              "HER2-zero primary tumours recurred as HER2-low"),
    Direction("low_to_zero", "HER2-low → HER2-zero", (("low", "zero"),), ("low",),
              "HER2-low primary tumours recurred as HER2-zero"),
    Direction("to_positive", "HER2-zero or -low → HER2-positive (gain)",
              (("zero", "positive"), ("low", "positive")), ("zero", "low"),
              "HER2-negative (zero or low) primary tumours recurred as HER2-positive"),
    Direction("from_positive", "HER2-positive → HER2-zero or -low (loss)",
              (("positive", "zero"), ("positive", "low")), ("positive",),
              "HER2-positive primary tumours recurred as HER2-negative (zero or low)"),
    Direction("to_low", "HER2-zero or -positive → HER2-low",
              (("zero", "low"), ("positive", "low")), ("zero", "positive"),
              "HER2-zero or HER2-positive primary tumours recurred as HER2-low"),
    Direction("from_low", "HER2-low → HER2-zero or -positive",
              (("low", "zero"), ("low", "positive")), ("low",),
              "HER2-low primary tumours recurred in another category"),
    Direction("any_change", "Any change of category",
              tuple((a, b) for a in CATEGORIES for b in CATEGORIES if a != b), CATEGORIES,
              "patients had a different HER2 category at recurrence"),
)


def _transition_parts(rows: pd.DataFrame, categories: Sequence[str]
                      ) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, int | None]:
    """Known cells (NaN = unreported), row and column margins (NaN = missing), total."""
    needed = {"study_id", "from_category", "to_category", "count"}
    missing = needed - set(rows.columns)
    if missing:
        raise ValueError(f"transition rows need columns {sorted(needed)}; "
                         f"missing {sorted(missing)}")
    if rows.empty:
        raise ValueError("no transition rows")
    studies = sorted(set(rows["study_id"]))
    if len(studies) != 1:
        raise ValueError(f"transition rows of one study expected, got {studies}")
    if "subgroup" in rows.columns and rows["subgroup"].nunique() > 1:
        raise ValueError(f"transition rows of one subgroup expected, got "
                         f"{sorted(set(rows['subgroup']))}")
    cats = list(categories)
    n = len(cats)
    known = np.full((n, n), np.nan)
    row_m = np.full(n, np.nan)
    col_m = np.full(n, np.nan)
    total: int | None = None
    seen: set[tuple[str, str]] = set()
    for rec in rows.to_dict("records"):
        a, b, count = str(rec["from_category"]), str(rec["to_category"]), rec["count"]
        if (a, b) in seen:
            raise ValueError(f"transition {a} → {b} given twice for {studies[0]} "
                             "(select use='primary' or 'alternative', not both)")
        seen.add((a, b))
        for c in (a, b):
            if c != "any" and c not in cats:
                raise ValueError(f"unknown category {c!r}; allowed: {', '.join(cats)}, any")
        count = float(count)
        if not (math.isfinite(count) and count >= 0 and count == round(count)):
            raise ValueError(f"count of {a} → {b} must be a whole number >= 0, got {count}")
        if a == "any" and b == "any":
            total = int(count)
        elif b == "any":
            row_m[cats.index(a)] = count
        elif a == "any":
            col_m[cats.index(b)] = count
        else:
            known[cats.index(a), cats.index(b)] = count
    return studies[0], known, row_m, col_m, total


def transition_bounds(rows: pd.DataFrame, *, discordant: int | None = None,
                      categories: Sequence[str] = CATEGORIES,
                      max_tables: int = 2_000_000) -> TransitionBounds:
    """Reconstruct a transition table, or every table compatible with the report.

    Parameters
    ----------
    rows : pandas.DataFrame
        ``transitions.csv`` rows of one study and one subgroup (columns
        ``study_id``, ``from_category``, ``to_category``, ``count``): cells, row
        margins (``to_category="any"``), column margins (``from_category="any"``)
        and optionally the total (``any``/``any``).
    discordant : int, optional
        Reported number of patients whose category changed (e.g. the events of
        ``tissue_conversion``); constrains the diagonal.
    categories : sequence of str
        Category order.
    max_tables : int
        Refuse to enumerate more candidate tables than this.

    Returns
    -------
    TransitionBounds

    Raises
    ------
    evidence.stats.transitions.IncompatibleReport
        No table at all is compatible with the reported numbers (the report
        contradicts itself: cells above a margin, margins that miss the total).
    ValueError
        Rows of several studies or subgroups, a cell given twice, unknown
        categories, or a missing margin.

    Examples
    --------
    A 2 x 2 table with margins 3/2 (rows) and 4/1 (columns) and one reported cell:

    >>> import pandas as pd
    >>> rows = pd.DataFrame({"study_id": "s", "from_category": ["a", "a", "b", "any", "any"],
    ...                      "to_category": ["a", "any", "any", "a", "b"],
    ...                      "count": [2, 3, 2, 4, 1]})
    >>> transition_bounds(rows, categories=("a", "b")).tables[0].tolist()
    [[2, 1], [2, 0]]
    """
    cats = check_categories(categories)
    study, known, row_m, col_m, total = _transition_parts(rows, cats)
    return bounds_from_counts(study, cats, known, row_m, col_m, total, discordant=discordant,
                              max_tables=max_tables)


def extreme_labels(bounds: TransitionBounds) -> tuple[str, str]:
    """Words for the two tables of :meth:`~evidence.stats.transitions.TransitionBounds.extremes`,
    e.g. ``"HER2-zero → HER2-zero = 18, the smallest value possible"``."""
    cell = bounds.first_unreported()
    if cell is None or bounds.identified:
        return "the reported table", "the reported table"
    i, j = bounds.index(cell[0]), bounds.index(cell[1])
    low, high = bounds.extremes()
    words = f"{name(cell[0], CATEGORY_NAMES)} → {name(cell[1], CATEGORY_NAMES)}"
    return (f"{words} = {low[i, j]}, the smallest value possible",
            f"{words} = {high[i, j]}, the largest value possible")


def direction_rates(bounds: TransitionBounds, directions: Sequence[Direction] = DIRECTIONS,
                    level: float = 0.95) -> pd.DataFrame:
    """Proportions by direction of change, exact where the report fixes them.

    Parameters
    ----------
    bounds : TransitionBounds
        From :func:`transition_bounds`.
    directions : sequence of Direction
        Which directions (default :data:`DIRECTIONS`).
    level : float
        Confidence level of the Clopper-Pearson intervals.

    Returns
    -------
    pandas.DataFrame
        One row per direction: ``direction``, ``label``, ``what``, ``events_min``,
        ``events_max``, ``total``, ``identified`` (``events_min == events_max``),
        ``proportion`` (NaN when not identified), ``proportion_min``,
        ``proportion_max``, ``ci_lower``, ``ci_upper``.  When the events are only
        bounded the interval runs from the exact lower limit at ``events_min`` to
        the exact upper limit at ``events_max``: the union of the exact intervals
        over all compatible tables.
    """
    import pandas as pd

    level = check_level(level)
    recs = []
    for d in directions:
        lo, hi = bounds.cell_sum_range(d.cells)
        total = int(sum(bounds.row_totals[bounds.index(r)] for r in d.rows))
        recs.append({"direction": d.key, "label": d.label, "what": d.what,
                     "events_min": lo, "events_max": hi, "total": total})
    out = pd.DataFrame(recs, columns=["direction", "label", "what", "events_min",
                                      "events_max", "total"])
    if out.empty:
        ci_lo = ci_hi = np.array([], dtype=float)
    else:
        ci_lo, _ = proportion_ci(out["events_min"], out["total"], level=level)
        _, ci_hi = proportion_ci(out["events_max"], out["total"], level=level)
    out["identified"] = out["events_min"] == out["events_max"]
    out["proportion_min"] = out["events_min"] / out["total"]
    out["proportion_max"] = out["events_max"] / out["total"]
    out["proportion"] = np.where(out["identified"], out["proportion_min"], np.nan)
    out["ci_lower"] = ci_lo
    out["ci_upper"] = ci_hi
    return out[["direction", "label", "what", "events_min", "events_max", "total",
                "identified", "proportion", "proportion_min", "proportion_max",
                "ci_lower", "ci_upper"]]


def rates_table(rates: pd.DataFrame) -> pd.DataFrame:
    """Display version of :func:`direction_rates`."""
    import pandas as pd

    rows = []
    for r in rates.to_dict("records"):
        if r["identified"]:
            patients = f"{r['events_min']} / {r['total']}"
            value = f"{fmt_pct(r['proportion'])} ({fmt_ci(r['ci_lower'], r['ci_upper'])})"
            status = "fixed by the reported numbers"
        else:
            patients = f"{r['events_min']} to {r['events_max']} / {r['total']}"
            value = (f"{fmt_pct(r['proportion_min'])} to {fmt_pct(r['proportion_max'])} "
                     f"(widest CI {fmt_ci(r['ci_lower'], r['ci_upper'])})")
            status = "bounded only: depends on unreported cells"
        rows.append({"Direction": r["label"], "Patients": patients,
                     "Proportion (95% exact CI)": value, "Status": status})
    return pd.DataFrame(rows)


def bounds_table(bounds: TransitionBounds) -> pd.DataFrame:
    """The transition table as text: reported counts, or the range of an unreported cell.

    Rows are primary-tumour categories, columns recurrence categories, with the
    reported margins.  ``"18 to 26 (not reported)"`` marks a cell the source does not
    give; ``"(derived)"`` a cell it does not give but the other numbers fix.
    """
    import pandas as pd

    lo, hi = bounds.lower, bounds.upper
    cats = bounds.categories
    rows = []
    for i, a in enumerate(cats):
        rec = {"Primary tumour": f"{name(a, CATEGORY_NAMES)}"}
        for j, b in enumerate(cats):
            if bounds.reported[i, j]:
                text = f"{lo[i, j]}"
            elif lo[i, j] == hi[i, j]:
                text = f"{lo[i, j]} (derived)"
            else:
                text = f"{lo[i, j]} to {hi[i, j]} (not reported)"
            rec[f"→ {name(b, CATEGORY_NAMES)}"] = text
        rec["Total"] = f"{bounds.row_totals[i]}"
        rows.append(rec)
    last = {"Primary tumour": "Total"}
    for j, b in enumerate(cats):
        last[f"→ {name(b, CATEGORY_NAMES)}"] = f"{bounds.col_totals[j]}"
    last["Total"] = f"{bounds.total}"
    rows.append(last)
    return pd.DataFrame(rows)


def describe_transitions(bounds: TransitionBounds, rates: pd.DataFrame, label: str,
                         k: int = 1) -> str:
    """Plain-language summary of the transition analysis of one study.

    Parameters
    ----------
    bounds : TransitionBounds
        The reconstructed table(s).
    rates : pandas.DataFrame
        From :func:`direction_rates` (needs the ``any_change`` row for the first
        sentence; other rows are listed).
    label : str
        The study's display label.
    k : int
        Number of studies with transition data (1: say that nothing is pooled).
    """
    paras = []
    first = ""
    if k == 1:
        first = (f"Only one study ({md(label)}) reports HER2 categories of paired primary tumours "
                 "and recurrences, so nothing is pooled: every estimate below comes from that "
                 "study alone, with exact (Clopper-Pearson) 95% confidence intervals. ")
    by_key = {r["direction"]: r for r in rates.to_dict("records")}
    anyc = by_key.get("any_change")
    if anyc is not None and anyc["identified"]:
        first += (f"Of {bounds.total} patients with paired samples, {anyc['events_min']} "
                  f"({fmt_pct(anyc['proportion'])}; 95% CI "
                  f"{fmt_ci(anyc['ci_lower'], anyc['ci_upper'])}) had a different HER2 "
                  "category at recurrence.")
    if first:
        paras.append(first.strip())
    n_cells = bounds.reported.size
    n_rep = int(bounds.reported.sum())
    if bounds.identified:
        paras.append(f"The reported numbers fix all {n_cells} cells of the transition table.")
    else:
        free = bounds.first_unreported()
        assert free is not None
        lo, hi = bounds.lower, bounds.upper
        i, j = bounds.index(free[0]), bounds.index(free[1])
        paras.append(
            f"The source reports {n_rep} of the {n_cells} cells of the transition table and "
            f"all its margins; the other {n_cells - n_rep} cells are not given. Exactly "
            f"{plural(bounds.n_tables, 'table', 'tables')} of counts agree with everything "
            "reported (cells, margins and the number of patients who changed category); they "
            f"differ in the unreported cells — {name(free[0], CATEGORY_NAMES)} → "
            f"{name(free[1], CATEGORY_NAMES)}, for example, could be anything from "
            f"{lo[i, j]} to {hi[i, j]}. Rates that depend on the missing cells are therefore "
            "given as ranges, with the widest exact interval over the compatible tables, not "
            "as single numbers.")
    fixed = [r for r in rates.to_dict("records")
             if r["identified"] and r["direction"] != "any_change"]
    bounded = [r for r in rates.to_dict("records") if not r["identified"]]
    if fixed:
        paras.append("**Fixed by the reported numbers:**\n\n" + "\n".join(
            f"- {fmt_pct(r['proportion'])} of {r['what']} ({r['events_min']} of "
            f"{r['total']}; 95% CI {fmt_ci(r['ci_lower'], r['ci_upper'])})." for r in fixed))
    if bounded:
        paras.append("**Only bounded, because they depend on unreported cells:**\n\n"
                     + "\n".join(
                         f"- between {fmt_pct(r['proportion_min'])} and "
                         f"{fmt_pct(r['proportion_max'])} of {r['what']} ({r['events_min']} to "
                         f"{r['events_max']} of {r['total']}; widest 95% CI "
                         f"{fmt_ci(r['ci_lower'], r['ci_upper'])})." for r in bounded))
    return "\n\n".join(paras)


def distribution_table(rows: pd.DataFrame, categories: Sequence[str] = CATEGORIES
                       ) -> pd.DataFrame:
    """HER2 category at recurrence, overall and per subgroup, with a chi-square test.

    Parameters
    ----------
    rows : pandas.DataFrame
        ``transitions.csv`` rows of one study with ``from_category="any"`` (column
        margins), any subgroups.  Subgroups with several ``key=value`` parts are
        left out.
    categories : sequence of str
        Category order.

    Returns
    -------
    pandas.DataFrame
        Display table: ``Subgroup``, ``Level``, one ``n (%)`` column per category,
        ``Total`` and ``Test`` (Pearson chi-square test of independence of
        subgroup and category, on the first row of each subgroup key; ``""`` for
        the whole cohort).

    Raises
    ------
    ValueError
        A level whose counts do not add up to its reported total.
    """
    import pandas as pd

    from evidence.stats.distributions import chisq_test

    cats = list(categories)
    margins = rows[rows["from_category"] == "any"]
    groups: dict[str, dict[str, dict[str, int]]] = {}
    for rec in margins.to_dict("records"):
        sub = parse_subgroup(rec.get("subgroup", "") or "")
        if len(sub) > 1:
            continue
        key, level = next(iter(sub.items())) if sub else ("", "")
        groups.setdefault(key, {}).setdefault(level, {})[str(rec["to_category"])] = int(
            rec["count"])
    out = []
    for key in sorted(groups, key=lambda s: s != ""):
        levels = groups[key]
        counts = []
        for level, cells in levels.items():
            row = [cells.get(c, 0) for c in cats]
            total = cells.get("any", sum(row))
            if sum(row) != total:
                raise ValueError(f"subgroup {key}={level}: categories add up to {sum(row)}, "
                                 f"not the reported total {total}")
            counts.append(row)
        test = ""
        if key and len(levels) >= 2:
            stat, p, dof = chisq_test(counts)
            test = f"χ² = {fmt_num(stat, 2)}, df = {dof}, {fmt_p(p)}"
        for n_level, (level, row) in enumerate(zip(levels, counts, strict=True)):
            total = sum(row)
            rec = {"Subgroup": (name(key, SUBGROUP_NAMES) if key else "All patients")
                   if n_level == 0 else "",
                   "Level": level_name(key, level) if key else "all"}
            for c, v in zip(cats, row, strict=True):
                rec[f"{name(c, CATEGORY_NAMES)} n (%)"] = f"{v} ({fmt_pct(v / total)})"
            rec["Total"] = total
            rec["Test"] = test if n_level == 0 else ""
            out.append(rec)
    return pd.DataFrame(out)
