"""Tables, sentences and small computations for three chapters of the book.

The chapters are *Conversion between primary tumour and recurrence*
(``notebooks/transitions.ipynb``), *Randomised evidence*
(``notebooks/two_arm.ipynb``) and *Prognostic value* (``notebooks/hazard_ratios.ipynb``).
Their templates stay thin: they query the registry through
:class:`evidence.pipeline.context.AnalysisContext` and call the functions here, which
are pure (no I/O, no printing) and return numbers, pandas DataFrames ready to
display, or plain-language strings with every number computed, never typed.

Three groups of functions:

Transitions (HER2 zero / low / positive, primary tumour to recurrence)
    :func:`transition_bounds` reconstructs the transition table from what a
    source reports (some cells, the margins, the number of discordant patients).
    When cells are missing it enumerates *every* table of non-negative counts
    compatible with the reported numbers, so a rate that depends on a missing
    cell is reported as a range (with the widest exact confidence interval over
    the compatible tables) instead of a guess.  :func:`direction_rates` gives the
    rates by direction of change, :func:`subgroup_comparisons` compares the
    conversion rate between subgroups (Fisher's exact test for two groups, the
    Pearson chi-square test of independence for more), and
    :func:`contradictions` sets the two readings of a self-contradiction side
    by side, with how it was resolved.

Two-arm comparisons
    :func:`two_arm_pairs` pairs the ``arm_role=experimental`` and
    ``arm_role=control`` rows of ``outcomes.csv``; :func:`two_arm_effects`
    computes risk ratio, odds ratio and risk difference (metafor's ``escalc``
    with ``add=1/2, to="only0"``, Wald intervals) and Fisher's exact test with
    :func:`evidence.stats.twoarm.two_arm_effect`.

Hazard ratios
    :func:`harmonise_hazard_ratios` puts every hazard ratio in one direction
    (inverting those reported the other way round), :func:`hazard_ratio_effects`
    turns them into log hazard ratios for :func:`evidence.stats.pooling.rma`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import TYPE_CHECKING, Any

import numpy as np

from evidence.book.report import fmt_ci, fmt_num, fmt_p, fmt_pct
from evidence.stats.results import check_level

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from evidence.stats.results import EffectSizes, MetaResult

__all__ = [
    "ADJUSTED",
    "ADJUSTMENT_NAMES",
    "ARM_NAMES",
    "CATEGORIES",
    "CATEGORY_NAMES",
    "DIRECTIONS",
    "MEASURE_NAMES",
    "OUTCOME_PHRASES",
    "SUBGROUP_NAMES",
    "TWO_ARM_MEASURES",
    "Direction",
    "TransitionBounds",
    "bounds_table",
    "context_table",
    "contradictions",
    "contradictions_table",
    "describe_contradictions",
    "describe_hazard_ratios",
    "describe_subgroups",
    "describe_transitions",
    "describe_two_arm",
    "describe_unreported",
    "direction_rates",
    "distribution_table",
    "harmonise_hazard_ratios",
    "hazard_ratio_effects",
    "hazard_ratio_notes",
    "hazard_ratio_study_ci",
    "hazard_ratio_table",
    "parse_subgroup",
    "rates_table",
    "split_by_adjustment",
    "subgroup_comparisons",
    "subgroup_table",
    "transition_bounds",
    "two_arm_effects",
    "two_arm_figure",
    "two_arm_overview",
    "two_arm_pairs",
    "two_arm_table",
    "unreported_randomised",
]

#: HER2 categories of ``transitions.csv``, in table order.
CATEGORIES: tuple[str, ...] = ("zero", "low", "positive")
#: Display names of the categories.
CATEGORY_NAMES: dict[str, str] = {"zero": "HER2-zero", "low": "HER2-low",
                                  "positive": "HER2-positive"}
#: Display names of subgroup keys (``key=value`` in ``subgroup``).
SUBGROUP_NAMES: dict[str, str] = {
    "hormone_receptor": "Hormone receptor status",
    "recurrence": "Type of first recurrence",
    "bcfi_months": "Breast cancer-free interval (months)",
    "primary_her2": "HER2 category of the primary tumour",
    "biopsy_interval": "Time since biopsy",
    "metastasis_count": "Number of metastases",
    "metastatic_site": "Metastatic site",
    "dfs_months": "Disease-free survival (months)",
    "therapy_line": "Therapy line",
    "anti_her2_regimen": "Anti-HER2 regimen",
}
_LEVEL_NAMES: dict[str, str] = {
    "lt_12": "< 12", "12_to_24": "12 to 24", "gt_24": "> 24", "le_12": "≤ 12", "gt_12": "> 12",
    "gt_1y": "> 1 year", "lt_1y": "< 1 year", "two_or_more": "two or more",
    "non_visceral": "non-visceral", "second_or_later": "second or later",
    "trastuzumab_chemo": "trastuzumab + chemotherapy",
    "lapatinib_chemo": "lapatinib + chemotherapy",
}
_KEY_LEVEL_NAMES: dict[tuple[str, str], str] = {
    ("hormone_receptor", "positive"): "hormone receptor-positive",
    ("hormone_receptor", "negative"): "hormone receptor-negative",
    ("primary_her2", "zero"): "HER2-zero primary",
    ("primary_her2", "low"): "HER2-low primary",
    ("primary_her2", "positive"): "HER2-positive primary",
}


def _level_name(key: str, level: str) -> str:
    return _KEY_LEVEL_NAMES.get((key, level)) or _name(level, _LEVEL_NAMES)


def _cap(text: str) -> str:
    """First letter upper-case, the rest untouched (``"CTC persistence"`` stays)."""
    return text[:1].upper() + text[1:]


def _plural(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


#: Words for arms (``outcomes.csv`` ``arm``); other arms show with spaces for ``_``.
ARM_NAMES: dict[str, str] = {
    "trastuzumab_taxane": "trastuzumab + taxane",
    "taxane_only": "taxane only",
    "trastuzumab": "trastuzumab",
    "observation": "observation",
    "all": "all patients",
}
#: How each outcome reads in a sentence "``n`` of ``N`` patients ...".
OUTCOME_PHRASES: dict[str, tuple[str, str]] = {
    # outcome: (short name, verb phrase)
    "ctc_persistence": ("CTC persistence at follow-up", "were still CTC-positive at follow-up"),
    "objective_response": ("objective response", "had an objective response"),
    "disease_control": ("disease control", "had disease control (CR, PR or SD)"),
    "pfr6": ("progression-free at 6 months", "were progression-free at 6 months"),
    "her2_ctc_screening_yield": ("HER2-positive CTCs among screened",
                                 "had HER2-positive CTCs"),
    "treated_among_eligible": ("treated among eligible", "were treated"),
    "randomized_among_eligible": ("randomised among eligible", "were randomised"),
    "ctc_detection": ("CTC detection", "had detectable CTCs"),
}
#: Two-arm measures (metafor codes) shown by the two-arm chapter.
TWO_ARM_MEASURES: tuple[str, ...] = ("RR", "OR", "RD")
#: Words for the two-arm measures.
MEASURE_NAMES: dict[str, str] = {"RR": "risk ratio", "OR": "odds ratio",
                                 "RD": "risk difference"}



def _name(value: str, names: Mapping[str, str]) -> str:
    return names.get(value, value.replace("_", " "))


def _exact_ci(events: Sequence[float], totals: Sequence[float],
              level: float) -> tuple[np.ndarray, np.ndarray]:
    from evidence.stats.effects import proportion_ci

    return proportion_ci(np.asarray(events), np.asarray(totals), method="clopper-pearson",
                         level=level)


def _p_cell(p: float) -> str:
    """A p-value for a table cell: ``"0.170"``, ``"< 0.001"``, ``"n.r."``."""
    text = fmt_p(p)
    if text.startswith("p = "):
        return text[4:]
    if text.startswith("p < "):
        return text[2:]
    return "n.r."


def _count_text(events: int, total: int) -> str:
    return f"{int(events)} of {int(total)} ({fmt_pct(events / total)})"


def parse_subgroup(subgroup: str) -> dict[str, str]:
    """``"hormone_receptor=positive;recurrence=distant"`` → a dict (``""`` → ``{}``).

    Raises
    ------
    ValueError
        A part without ``=`` or a key given twice.
    """
    out: dict[str, str] = {}
    if not subgroup:
        return out
    for part in str(subgroup).split(";"):
        key, sep, value = part.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"subgroup part {part!r} of {subgroup!r} is not key=value")
        if key in out:
            raise ValueError(f"subgroup key {key!r} given twice in {subgroup!r}")
        out[key] = value
    return out


# ======================================================================================
# Transitions
# ======================================================================================


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


@dataclass(frozen=True)
class TransitionBounds:
    """Every transition table compatible with what a source reports.

    Attributes
    ----------
    study_id : str
        The study.
    categories : tuple of str
        Category order of rows (primary tumour) and columns (recurrence).
    row_totals, col_totals : numpy.ndarray of int
        Reported margins: patients per primary category, per recurrence category.
    total : int
        Patients with paired samples.
    discordant : int or None
        Reported number of patients whose category changed (None: not used).
    reported : numpy.ndarray of bool, shape (n, n)
        Which cells the source reports.
    tables : numpy.ndarray of int, shape (m, n, n)
        All ``m >= 1`` tables of non-negative counts with the reported cells,
        margins and number of discordant patients, in lexicographic order.
    """

    study_id: str
    categories: tuple[str, ...]
    row_totals: np.ndarray
    col_totals: np.ndarray
    total: int
    discordant: int | None
    reported: np.ndarray
    tables: np.ndarray

    @property
    def n_tables(self) -> int:
        """Number of compatible tables."""
        return int(self.tables.shape[0])

    @property
    def lower(self) -> np.ndarray:
        """Smallest value of each cell over the compatible tables."""
        return self.tables.min(axis=0)

    @property
    def upper(self) -> np.ndarray:
        """Largest value of each cell over the compatible tables."""
        return self.tables.max(axis=0)

    @property
    def identified(self) -> bool:
        """True when the reported numbers fix every cell (one compatible table)."""
        return self.n_tables == 1

    def index(self, category: str) -> int:
        """Position of a category (ValueError naming the allowed ones otherwise)."""
        if category not in self.categories:
            raise ValueError(f"unknown category {category!r}; allowed: "
                             f"{', '.join(self.categories)}")
        return self.categories.index(category)

    def cell_sum_range(self, cells: Iterable[tuple[str, str]]) -> tuple[int, int]:
        """Smallest and largest total of ``cells`` over the compatible tables.

        Computed table by table, so cells that move together (one up, another down)
        are not treated as independent.
        """
        idx = [(self.index(a), self.index(b)) for a, b in cells]
        sums = sum(self.tables[:, i, j] for i, j in idx)
        return int(np.min(sums)), int(np.max(sums))

    def extremes(self) -> tuple[np.ndarray, np.ndarray]:
        """The compatible tables with the smallest and the largest value of the first
        unreported cell (row by row); the same table twice when all are reported."""
        free = np.argwhere(~self.reported)
        if free.size == 0 or self.identified:
            return self.tables[0], self.tables[0]
        i, j = free[0]
        values = self.tables[:, i, j]
        return self.tables[int(np.argmin(values))], self.tables[int(np.argmax(values))]

    def extreme_labels(self) -> tuple[str, str]:
        """Words for the two tables of :meth:`extremes`, e.g.
        ``"HER2-zero → HER2-zero = 18, the smallest value possible"``."""
        cell = self.first_unreported()
        if cell is None or self.identified:
            return "the reported table", "the reported table"
        i, j = self.index(cell[0]), self.index(cell[1])
        low, high = self.extremes()
        name = f"{_name(cell[0], CATEGORY_NAMES)} → {_name(cell[1], CATEGORY_NAMES)}"
        return (f"{name} = {low[i, j]}, the smallest value possible",
                f"{name} = {high[i, j]}, the largest value possible")

    def first_unreported(self) -> tuple[str, str] | None:
        """``(from, to)`` of the cell :meth:`extremes` varies (None if all reported)."""
        free = np.argwhere(~self.reported)
        if free.size == 0:
            return None
        i, j = free[0]
        return self.categories[int(i)], self.categories[int(j)]


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


def _compatible_tables(known: np.ndarray, row_totals: np.ndarray, col_totals: np.ndarray,
                       discordant: int | None, max_tables: int) -> np.ndarray:
    """All non-negative integer tables with the known cells, margins and trace."""
    n = known.shape[0]
    rows = row_totals.astype(np.int64)
    cols = col_totals.astype(np.int64)
    if rows.sum() != cols.sum():
        return np.zeros((0, n, n), dtype=np.int64)
    # the (n-1) x (n-1) upper-left block is free; margins fix the last row and column
    ranges = []
    for i, j in product(range(n - 1), range(n - 1)):
        if np.isfinite(known[i, j]):
            ranges.append(np.array([int(known[i, j])], dtype=np.int64))
        else:
            ranges.append(np.arange(0, min(rows[i], cols[j]) + 1, dtype=np.int64))
    size = math.prod(len(r) for r in ranges)
    if size > max_tables:
        raise ValueError(f"{size} candidate tables to enumerate (more than max_tables="
                         f"{max_tables}): too few cells are reported")
    if ranges:
        grid = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, len(ranges))
    else:
        grid = np.zeros((1, 0), dtype=np.int64)
    m = grid.shape[0]
    tables = np.zeros((m, n, n), dtype=np.int64)
    tables[:, : n - 1, : n - 1] = grid.reshape(m, n - 1, n - 1)
    tables[:, : n - 1, n - 1] = rows[: n - 1] - tables[:, : n - 1, : n - 1].sum(axis=2)
    tables[:, n - 1, : n - 1] = cols[: n - 1] - tables[:, : n - 1, : n - 1].sum(axis=1)
    tables[:, n - 1, n - 1] = rows[n - 1] - tables[:, n - 1, : n - 1].sum(axis=1)
    ok = (tables >= 0).all(axis=(1, 2))
    ok &= tables[:, :, n - 1].sum(axis=1) == cols[n - 1]
    mask = np.isfinite(known)
    if mask.any():
        ok &= (tables[:, mask] == known[mask].astype(np.int64)).all(axis=1)
    if discordant is not None:
        ok &= np.trace(tables, axis1=1, axis2=2) == rows.sum() - int(discordant)
    return tables[ok]


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
    ValueError
        Rows of several studies or subgroups, a cell given twice, unknown
        categories, a missing margin, a total that differs from the margins, or no
        table at all compatible with the reported numbers (the report contradicts
        itself).

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
    cats = tuple(str(c) for c in categories)
    if len(cats) < 2 or len(set(cats)) != len(cats):
        raise ValueError(f"categories must be at least two distinct names, got {cats}")
    study, known, row_m, col_m, total = _transition_parts(rows, cats)
    for name, margin in (("row", row_m), ("column", col_m)):
        if not np.all(np.isfinite(margin)):
            absent = [c for c, v in zip(cats, margin, strict=True) if not np.isfinite(v)]
            raise ValueError(f"{study}: {name} margin(s) missing for {absent} "
                             f"({'to' if name == 'row' else 'from'}_category='any' rows)")
    if total is not None and (row_m.sum() != total or col_m.sum() != total):
        raise ValueError(f"{study}: margins do not add up to the total {total} "
                         f"(rows {int(row_m.sum())}, columns {int(col_m.sum())})")
    for i, c in enumerate(cats):
        if np.nansum(known[i]) > row_m[i] or np.nansum(known[:, i]) > col_m[i]:
            raise ValueError(f"{study}: reported cells exceed the margin of {c!r}")
    if discordant is not None and not 0 <= int(discordant) <= row_m.sum():
        raise ValueError(f"discordant must be between 0 and {int(row_m.sum())}, "
                         f"got {discordant}")
    tables = _compatible_tables(known, row_m, col_m, discordant, max_tables)
    if tables.shape[0] == 0:
        raise ValueError(f"{study}: no table of counts is compatible with the reported "
                         "cells, margins" + (" and discordant count" if discordant is not None
                                             else ""))
    return TransitionBounds(study_id=study, categories=cats,
                            row_totals=row_m.astype(np.int64),
                            col_totals=col_m.astype(np.int64),
                            total=int(row_m.sum()), discordant=discordant,
                            reported=np.isfinite(known), tables=tables)


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
        ci_lo, _ = _exact_ci(out["events_min"], out["total"], level)
        _, ci_hi = _exact_ci(out["events_max"], out["total"], level)
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
        rec = {"Primary tumour": f"{_name(a, CATEGORY_NAMES)}"}
        for j, b in enumerate(cats):
            if bounds.reported[i, j]:
                text = f"{lo[i, j]}"
            elif lo[i, j] == hi[i, j]:
                text = f"{lo[i, j]} (derived)"
            else:
                text = f"{lo[i, j]} to {hi[i, j]} (not reported)"
            rec[f"→ {_name(b, CATEGORY_NAMES)}"] = text
        rec["Total"] = f"{bounds.row_totals[i]}"
        rows.append(rec)
    last = {"Primary tumour": "Total"}
    for j, b in enumerate(cats):
        last[f"→ {_name(b, CATEGORY_NAMES)}"] = f"{bounds.col_totals[j]}"
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
        first = (f"Only one study ({label}) reports HER2 categories of paired primary tumours "
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
            f"{_plural(bounds.n_tables, 'table', 'tables')} of counts agree with everything "
            "reported (cells, margins and the number of patients who changed category); they "
            f"differ in the unreported cells — {_name(free[0], CATEGORY_NAMES)} → "
            f"{_name(free[1], CATEGORY_NAMES)}, for example, could be anything from "
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
            rec = {"Subgroup": (_name(key, SUBGROUP_NAMES) if key else "All patients")
                   if n_level == 0 else "",
                   "Level": _level_name(key, level) if key else "all"}
            for c, v in zip(cats, row, strict=True):
                rec[f"{_name(c, CATEGORY_NAMES)} n (%)"] = f"{v} ({fmt_pct(v / total)})"
            rec["Total"] = total
            rec["Test"] = test if n_level == 0 else ""
            out.append(rec)
    return pd.DataFrame(out)


def subgroup_comparisons(rows: pd.DataFrame, level: float = 0.95
                         ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compare a proportion between the levels of each subgroup key.

    Parameters
    ----------
    rows : pandas.DataFrame
        ``outcomes.csv`` rows of one study and one outcome (``events``, ``total``,
        ``subgroup``, ``derived``).  The whole-population row (empty subgroup) and
        subgroups with several ``key=value`` parts are left out.
    level : float
        Confidence level.

    Returns
    -------
    (levels, tests) : (pandas.DataFrame, pandas.DataFrame)
        ``levels``: ``key``, ``level``, ``events``, ``total``, ``proportion``,
        ``ci_lower``, ``ci_upper`` (exact), ``derived`` (True when the counts were
        back-calculated).  ``tests``: one row per key with two or more levels:
        ``key``, ``n_levels``, ``test`` (``"fisher"`` for two levels: two-sided
        Fisher's exact test; ``"chisq"`` for more: Pearson chi-square test of
        independence, no continuity correction), ``statistic`` (the sample odds
        ratio for Fisher), ``df``, ``p_value`` and, for two levels, the risk
        difference first level minus second with its Wald CI (``rd``,
        ``rd_lower``, ``rd_upper``).
    """
    import pandas as pd

    from evidence.stats.distributions import chisq_test

    level = check_level(level)
    if rows["study_id"].nunique() > 1 or rows["outcome"].nunique() > 1:
        raise ValueError("subgroup_comparisons takes the rows of one study and one outcome")
    recs = []
    for rec in rows.to_dict("records"):
        sub = parse_subgroup(rec.get("subgroup", "") or "")
        if len(sub) != 1:
            continue
        key, value = next(iter(sub.items()))
        recs.append({"key": key, "level": value, "events": int(rec["events"]),
                     "total": int(rec["total"]),
                     "derived": bool(str(rec.get("derived", "") or "").strip())})
    levels = pd.DataFrame(recs, columns=["key", "level", "events", "total", "derived"])
    if levels.duplicated(["key", "level"]).any():
        raise ValueError("a subgroup level appears twice: select use='primary' rows only")
    lo, hi = (_exact_ci(levels["events"], levels["total"], level) if len(levels)
              else (np.array([]), np.array([])))
    levels["proportion"] = levels["events"] / levels["total"]
    levels["ci_lower"] = lo
    levels["ci_upper"] = hi
    levels = levels[["key", "level", "events", "total", "proportion", "ci_lower",
                     "ci_upper", "derived"]]
    tests = []
    for key, grp in levels.groupby("key", sort=False):
        if len(grp) < 2:
            continue
        ev = grp["events"].to_numpy()
        n = grp["total"].to_numpy()
        rec: dict[str, Any] = {"key": key, "n_levels": len(grp), "rd": np.nan,
                               "rd_lower": np.nan, "rd_upper": np.nan}
        if len(grp) == 2:
            from evidence.stats.twoarm import two_arm_effect

            e = two_arm_effect(int(ev[0]), int(n[0]), int(ev[1]), int(n[1]), "RD", level=level)
            odds = ((ev[0] * (n[1] - ev[1])) / ((n[0] - ev[0]) * ev[1])
                    if (n[0] - ev[0]) * ev[1] > 0 else np.nan)
            rec.update(test="fisher", statistic=float(odds), df=np.nan,
                       p_value=e.fisher_pvalue, rd=e.pred, rd_lower=e.pred_ci_lower,
                       rd_upper=e.pred_ci_upper)
        else:
            table = np.column_stack([ev, n - ev])
            stat, p, dof = chisq_test(table)
            rec.update(test="chisq", statistic=float(stat), df=float(dof), p_value=float(p))
        tests.append(rec)
    tests_df = pd.DataFrame(tests, columns=["key", "n_levels", "test", "statistic", "df",
                                            "p_value", "rd", "rd_lower", "rd_upper"])
    return levels.reset_index(drop=True), tests_df


_TEST_NAMES = {"fisher": "Fisher's exact test (two-sided)",
               "chisq": "Pearson chi-square test of independence"}


def subgroup_table(levels: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
    """Display table of :func:`subgroup_comparisons`: one row per level, the test on the
    first row of each key."""
    import pandas as pd

    by_key = {r["key"]: r for r in tests.to_dict("records")}
    out = []
    for key, grp in levels.groupby("key", sort=False):
        t = by_key.get(key)
        for n_level, r in enumerate(grp.to_dict("records")):
            comparison = ""
            if t is not None and n_level == 0:
                comparison = f"{_TEST_NAMES[t['test']]}: {fmt_p(t['p_value'])}"
                if t["test"] == "chisq":
                    comparison += f" (χ² = {fmt_num(t['statistic'], 2)}, df = {int(t['df'])})"
                else:
                    comparison += (f"; difference {fmt_num(100 * t['rd'], 1)} points "
                                   f"(95% CI {fmt_num(100 * t['rd_lower'], 1)} to "
                                   f"{fmt_num(100 * t['rd_upper'], 1)})")
            out.append({
                "Subgroup": _name(key, SUBGROUP_NAMES) if n_level == 0 else "",
                "Level": _level_name(key, r["level"]),
                "Changed / total": f"{r['events']} / {r['total']}"
                                   + (" (back-calculated)" if r["derived"] else ""),
                "Proportion (95% exact CI)":
                    f"{fmt_pct(r['proportion'])} ({fmt_ci(r['ci_lower'], r['ci_upper'])})",
                "Comparison": comparison,
            })
    return pd.DataFrame(out)


def describe_subgroups(levels: pd.DataFrame, tests: pd.DataFrame, what: str) -> str:
    """One sentence per compared subgroup key, with the test named and its p-value.

    Parameters
    ----------
    levels, tests : pandas.DataFrame
        From :func:`subgroup_comparisons`.
    what : str
        What the proportion is, e.g. ``"changed HER2 category"``.
    """
    by_key = {r["key"]: r for r in tests.to_dict("records")}
    sentences = []
    for key, grp in levels.groupby("key", sort=False):
        t = by_key.get(key)
        if t is None:
            continue
        items = [f"{fmt_pct(r['proportion'])} ({r['events']}/{r['total']}) for "
                 f"{_level_name(key, r['level'])}" for r in grp.to_dict("records")]
        text = (f"By {_name(key, SUBGROUP_NAMES).lower()}, the proportion that {what} was "
                + (" vs ".join(items) if len(items) == 2 else ", ".join(items)) + ". ")
        if t["test"] == "fisher":
            text += (f"The difference is {fmt_num(100 * t['rd'], 1)} percentage points "
                     f"(95% CI {fmt_num(100 * t['rd_lower'], 1)} to "
                     f"{fmt_num(100 * t['rd_upper'], 1)}); Fisher's exact test "
                     f"{fmt_p(t['p_value'])}")
        else:
            text += (f"Pearson chi-square test of independence: χ² = "
                     f"{fmt_num(t['statistic'], 2)} on {int(t['df'])} df, {fmt_p(t['p_value'])}")
        text += (" — the groups differ more than chance alone would readily explain."
                 if t["p_value"] < 0.05 else
                 " — no clear evidence of a difference, which with these numbers does not "
                 "show that there is none.")
        if grp["derived"].any():
            text += (" The counts are back-calculated from the percentages the source prints "
                     "(see the registry's derived column).")
        sentences.append(text)
    return "\n\n".join(sentences)


def _row_key(rec: Mapping[str, Any], table: str) -> tuple[Any, ...]:
    if table == "transitions":
        return (rec["study_id"], rec.get("subgroup", ""), rec["from_category"],
                rec["to_category"])
    return (rec["study_id"], rec["arm"], rec["outcome"], rec.get("subgroup", ""))


def _describe_key(rec: Mapping[str, Any], table: str) -> str:
    sub = rec.get("subgroup", "") or ""
    sub_text = f" [{sub}]" if sub else ""
    if table == "transitions":
        a, b = rec["from_category"], rec["to_category"]
        if a == "any" and b == "any":
            what = "all patients (total)"
        else:
            what = (f"{'any' if a == 'any' else _name(a, CATEGORY_NAMES)} → "
                    f"{'any' if b == 'any' else _name(b, CATEGORY_NAMES)}")
        return f"transitions.csv: {what}{sub_text}"
    return f"outcomes.csv: {rec['outcome']}, arm {rec['arm']}{sub_text}"


def _value(rec: Mapping[str, Any], table: str) -> str:
    if table == "transitions":
        return f"{int(rec['count'])}"
    return f"{int(rec['events'])} / {int(rec['total'])}"


def contradictions(alternatives: Mapping[str, pd.DataFrame],
                   primaries: Mapping[str, pd.DataFrame],
                   discordant: int | None = None) -> pd.DataFrame:
    """Each ``use=alternative`` row next to the ``primary`` row it competes with.

    Parameters
    ----------
    alternatives, primaries : mapping of table name to pandas.DataFrame
        ``{"transitions": ..., "outcomes": ...}``: the alternative rows and the
        primary rows (of the same study) to match them with, on the registry key
        (``study_id, subgroup, from_category, to_category`` for transitions;
        ``study_id, arm, outcome, subgroup`` for outcomes).
    discordant : int, optional
        Passed to :func:`transition_bounds` when checking a transition reading.

    Returns
    -------
    pandas.DataFrame
        ``table``, ``study_id``, ``row`` (what the number is), ``used`` (primary
        value), ``alternative``, ``tables_used`` and ``tables_alternative`` (for
        transition cells and margins of a subgroup with complete margins: how many
        transition tables are compatible with each reading; NaN otherwise) and
        ``note`` (the registry's explanation of the resolution).

    Raises
    ------
    ValueError
        An unknown table name, or an alternative row without a primary row.
    """
    import pandas as pd

    out = []
    for table, alt in alternatives.items():
        if table not in ("transitions", "outcomes"):
            raise ValueError(f"unknown table {table!r}; allowed: transitions, outcomes")
        prim = primaries.get(table)
        prim_recs = {} if prim is None else {_row_key(r, table): r
                                             for r in prim.to_dict("records")}
        for rec in alt.to_dict("records"):
            key = _row_key(rec, table)
            if key not in prim_recs:
                raise ValueError(f"alternative row {key} of {table}.csv has no primary row "
                                 "among those given")
            p = prim_recs[key]
            n_used = n_alt = np.nan
            if table == "transitions" and prim is not None:
                same = prim[(prim["study_id"] == rec["study_id"])
                            & (prim["subgroup"] == rec.get("subgroup", ""))]
                n_used = _n_tables(same, discordant)
                swapped = pd.concat([same[[_row_key(r, table) != key
                                           for r in same.to_dict("records")]],
                                     pd.DataFrame([rec])], ignore_index=True)
                n_alt = _n_tables(swapped, discordant)
            out.append({"table": table, "study_id": rec["study_id"],
                        "row": _describe_key(rec, table), "used": _value(p, table),
                        "alternative": _value(rec, table), "tables_used": n_used,
                        "tables_alternative": n_alt,
                        "note": str(rec.get("note", "") or p.get("note", "") or "")})
    return pd.DataFrame(out, columns=["table", "study_id", "row", "used", "alternative",
                                      "tables_used", "tables_alternative", "note"])


def _n_tables(rows: pd.DataFrame, discordant: int | None) -> float:
    """Compatible transition tables of a subgroup's rows (0 if contradictory, NaN if the
    rows do not define a table)."""
    try:
        return float(transition_bounds(rows, discordant=discordant).n_tables)
    except ValueError as exc:
        text = str(exc)
        if "no table" in text or "do not add up" in text or "exceed the margin" in text:
            return 0.0
        return float("nan")


def describe_contradictions(contra: pd.DataFrame) -> str:
    """Plain-language account of the self-contradictions and their resolution."""
    if contra.empty:
        return "The source does not contradict itself in the numbers used here."
    n_notes = contra["note"].nunique()
    parts = [f"The registry keeps {_plural(len(contra), 'number', 'numbers')} of this source "
             f"in two readings ({_plural(n_notes, 'self-contradiction', 'self-contradictions')} "
             "of the source): the reading the analyses use and the *alternative*. The table "
             "below gives the registry's note on each: what contradicts what, and why the "
             "reading used was chosen.\n"]
    for r in contra.to_dict("records"):
        text = f"- {r['row']}: **{r['used']}** is used; {r['alternative']} is the alternative."
        if not (isinstance(r["tables_alternative"], float)
                and math.isnan(r["tables_alternative"])):
            if r["tables_alternative"] == 0 and r["tables_used"] > 0:
                text += (" With the alternative, no transition table of counts can match the "
                         "other numbers the source reports; the reading used is consistent "
                         f"with {_plural(int(r['tables_used']), 'table', 'tables')}.")
            else:
                text += (f" Tables consistent with the reading used: {int(r['tables_used'])}; "
                         f"with the alternative: {int(r['tables_alternative'])}.")
        parts.append(text)
    return "\n".join(parts)


def contradictions_table(contra: pd.DataFrame) -> pd.DataFrame:
    """Display version of :func:`contradictions`."""
    import pandas as pd

    return pd.DataFrame({
        "Number": contra["row"],
        "Used": contra["used"],
        "Alternative": contra["alternative"],
        "How it was resolved (registry note)": contra["note"],
    })



# ======================================================================================
# Two-arm comparisons
# ======================================================================================


def two_arm_pairs(outcomes: pd.DataFrame, outcome_list: Sequence[str] | None = None
                  ) -> pd.DataFrame:
    """Pair the experimental and the control arm of each study and outcome.

    Parameters
    ----------
    outcomes : pandas.DataFrame
        ``outcomes.csv`` rows (``study_id``, ``arm``, ``outcome``, ``subgroup``,
        ``events``, ``total``, ``arm_role``, ``quote``).
    outcome_list : sequence of str, optional
        Keep only these outcomes (None or empty: every outcome with both roles).

    Returns
    -------
    pandas.DataFrame
        One row per (study, outcome, subgroup) with both an ``experimental`` and a
        ``control`` row: ``study_id``, ``outcome``, ``subgroup``, ``arm_1``, ``ai``,
        ``n1i`` (experimental), ``arm_2``, ``ci``, ``n2i`` (control), ``quote_1``,
        ``quote_2``.  Sorted by study then outcome as they first appear.

    Raises
    ------
    ValueError
        Two rows of the same role for one (study, outcome, subgroup), or a
        requested outcome without any pair.
    """
    import pandas as pd

    cols = ["study_id", "outcome", "subgroup", "arm_1", "ai", "n1i", "arm_2", "ci", "n2i",
            "quote_1", "quote_2"]
    rows = outcomes[outcomes["arm_role"].isin(["experimental", "control"])]
    if outcome_list:
        rows = rows[rows["outcome"].isin(list(outcome_list))]
    # one pass over the rows (a boolean mask per key made this O(k^2) on large registries)
    groups: dict[tuple[str, str, str], dict[str, list[dict[str, Any]]]] = {}
    for r in rows.to_dict("records"):
        key = (r["study_id"], r["outcome"], r["subgroup"])
        groups.setdefault(key, {"experimental": [], "control": []})[r["arm_role"]].append(r)
    out = []
    for (study, outcome, subgroup), roles in groups.items():
        exp, ctl = roles["experimental"], roles["control"]
        if len(exp) > 1 or len(ctl) > 1:
            raise ValueError(f"{study}, {outcome}, subgroup {subgroup!r}: more than one "
                             "experimental or control arm; cannot form one pair")
        if not exp or not ctl:
            continue
        e, c = exp[0], ctl[0]
        out.append({"study_id": study, "outcome": outcome, "subgroup": subgroup,
                    "arm_1": e["arm"], "ai": int(e["events"]), "n1i": int(e["total"]),
                    "arm_2": c["arm"], "ci": int(c["events"]), "n2i": int(c["total"]),
                    "quote_1": e.get("quote", ""), "quote_2": c.get("quote", "")})
    pairs = pd.DataFrame(out, columns=cols)
    if outcome_list:
        absent = sorted(set(outcome_list) - set(pairs["outcome"]))
        if absent:
            raise ValueError(f"no experimental/control pair for outcome(s) {absent}")
    return pairs


def two_arm_effects(pairs: pd.DataFrame, measures: Sequence[str] = TWO_ARM_MEASURES,
                    *, add: float = 0.5, to: str = "only0",
                    level: float = 0.95) -> pd.DataFrame:
    """Risk ratio, odds ratio and risk difference of each pair, with Fisher's exact test.

    Parameters
    ----------
    pairs : pandas.DataFrame
        From :func:`two_arm_pairs`.
    measures : sequence of {"RR", "OR", "RD"}
        Effect measures.
    add, to : float, str
        Zero-cell handling (metafor's ``escalc`` defaults).
    level : float
        Confidence level of the Wald intervals.

    Returns
    -------
    pandas.DataFrame
        One row per pair and measure: ``study_id``, ``outcome``, ``subgroup``,
        ``measure``, ``ai``, ``n1i``, ``ci``, ``n2i``, ``yi``, ``vi``,
        ``estimate``, ``ci_lower``, ``ci_upper`` (ratios back-transformed with
        ``exp``; RD as is), ``corrected`` and ``fisher_pvalue`` (two-sided, R's
        ``fisher.test``).
    """
    import pandas as pd

    from evidence.stats.distributions import fisher_exact
    from evidence.stats.twoarm import MEASURES, _check_to, _effect_columns

    for m in measures:
        if m not in MEASURES:
            raise ValueError(f"unknown measure {m!r}; allowed: {', '.join(MEASURES)}")
    level = check_level(level)
    to = _check_to(to)
    recs = pairs.to_dict("records")
    cells = {k: np.array([int(p[k]) for p in recs], dtype=int) for k in ("ai", "n1i", "ci", "n2i")}
    bad = ((cells["n1i"] <= 0) | (cells["n2i"] <= 0) | (cells["ai"] < 0) | (cells["ci"] < 0)
           | (cells["ai"] > cells["n1i"]) | (cells["ci"] > cells["n2i"]))
    if bad.any():
        p = recs[int(np.flatnonzero(bad)[0])]
        raise ValueError(f"{p['study_id']}, {p['outcome']}: need 0 <= ai <= n1i, "
                         f"0 <= ci <= n2i and n1i, n2i > 0 (got {p['ai']}/{p['n1i']} vs "
                         f"{p['ci']}/{p['n2i']})")
    # the effects of all pairs at once, one call per measure (what two_arm_effect does for
    # one pair)
    by_measure = {m: _effect_columns(cells["ai"], cells["n1i"], cells["ci"], cells["n2i"], m,
                                     add=add, to=to, level=level)
                  for m in (measures if recs else ())}
    fisher = [fisher_exact(a, n1 - a, c, n2 - c) for a, n1, c, n2 in
              zip(cells["ai"], cells["n1i"], cells["ci"], cells["n2i"], strict=True)]
    out = []
    for i, p in enumerate(recs):
        for m in measures:
            e = by_measure[m]
            out.append({"study_id": p["study_id"], "outcome": p["outcome"],
                        "subgroup": p["subgroup"], "measure": m, "ai": int(cells["ai"][i]),
                        "n1i": int(cells["n1i"][i]), "ci": int(cells["ci"][i]),
                        "n2i": int(cells["n2i"][i]), "yi": float(e["yi"][i]),
                        "vi": float(e["vi"][i]), "estimate": float(e["pred"][i]),
                        "ci_lower": float(e["pred_ci_lower"][i]),
                        "ci_upper": float(e["pred_ci_upper"][i]),
                        "corrected": bool(e["corrected"][i]),
                        "fisher_pvalue": fisher[i], "level": level})
    return pd.DataFrame(out, columns=["study_id", "outcome", "subgroup", "measure", "ai",
                                      "n1i", "ci", "n2i", "yi", "vi", "estimate", "ci_lower",
                                      "ci_upper", "corrected", "fisher_pvalue", "level"])


class _Studies:
    """Study rows by ``study_id``, indexed once per table (a scan of the table per
    lookup made the two-arm chapter O(k^2)); an unknown id gives a placeholder row."""

    def __init__(self, studies: pd.DataFrame) -> None:
        self._rows: dict[str, dict[str, Any]] = {}
        for row in studies.to_dict("records"):
            self._rows.setdefault(row["study_id"], row)

    def __call__(self, study_id: str) -> dict[str, Any]:
        hit = self._rows.get(study_id)
        if hit is None:
            return {"study_id": study_id, "label": study_id, "randomized": "", "design": "",
                    "intervention": "", "notes": ""}
        return dict(hit)


def _most_telling(randomised: Sequence[bool], size: Sequence[int], n: int) -> list[int]:
    """Positions of the ``n`` items to keep when there are too many to show: randomised
    first, then the largest, earlier first on ties; returned in their original order."""
    order = sorted(range(len(size)), key=lambda i: (not randomised[i], -size[i], i))
    return sorted(order[:n])


def _by_comparison(effects: pd.DataFrame
                   ) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """Rows of :func:`two_arm_effects` grouped by (study, outcome, subgroup), in order."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in effects.to_dict("records"):
        groups.setdefault((r["study_id"], r["outcome"], r["subgroup"]), []).append(r)
    return groups


def _fmt_effect(measure: str, est: float, lo: float, hi: float) -> str:
    if measure == "RD":
        return (f"{fmt_num(100 * est, 1)} points ({fmt_num(100 * lo, 1)} to "
                f"{fmt_num(100 * hi, 1)})")
    return f"{fmt_num(est, 2)} ({fmt_ci(lo, hi, pct=False, digits=2)})"


def _outcome_short(outcome: str) -> str:
    return OUTCOME_PHRASES.get(outcome, (outcome.replace("_", " "), ""))[0]


def _outcome_verb(outcome: str) -> str:
    phrase = OUTCOME_PHRASES.get(outcome)
    return phrase[1] if phrase else f"had the outcome {outcome.replace('_', ' ')}"


def two_arm_table(effects: pd.DataFrame, studies: pd.DataFrame) -> pd.DataFrame:
    """Display table: one row per comparison with both arms' counts, each measure with its
    95% CI (RD in percentage points) and Fisher's exact p."""
    import pandas as pd

    study = _Studies(studies)
    out = []
    for (study_id, outcome, subgroup), grp in _by_comparison(effects).items():
        first = grp[0]
        s = study(study_id)
        rec = {"Study": s["label"] + ("" if s.get("randomized") == "yes"
                                      else " (not randomised)"),
               "Outcome": _outcome_short(outcome) + (f" [{subgroup}]" if subgroup else ""),
               "Experimental": f"{first['ai']}/{first['n1i']} "
                               f"({fmt_pct(first['ai'] / first['n1i'])})",
               "Control": f"{first['ci']}/{first['n2i']} "
                          f"({fmt_pct(first['ci'] / first['n2i'])})"}
        for r in grp:
            if r["measure"] == "RD":
                rec["RD, points [95% CI]"] = (
                    f"{fmt_num(100 * r['estimate'], 1)} [{fmt_num(100 * r['ci_lower'], 1)}, "
                    f"{fmt_num(100 * r['ci_upper'], 1)}]")
            else:
                rec[f"{r['measure']} [95% CI]"] = (
                    f"{fmt_num(r['estimate'], 2)} [{fmt_num(r['ci_lower'], 2)}, "
                    f"{fmt_num(r['ci_upper'], 2)}]")
        rec["Fisher p"] = _p_cell(first["fisher_pvalue"])
        out.append(rec)
    return pd.DataFrame(out)


def describe_two_arm(pairs: pd.DataFrame, effects: pd.DataFrame,
                     studies: pd.DataFrame, *, max_studies: int | None = None) -> str:
    """One paragraph per study (Markdown, blank lines between studies).

    Each paragraph names the study, its design and intervention, says whether the
    arms were randomised, gives both arms' counts for each outcome with every
    measure and its 95% CI and Fisher's exact p, and reads the intervals in plain
    words.  A non-randomised comparison is said to describe the groups, not the
    effect of the treatment.

    Parameters
    ----------
    pairs, effects : pandas.DataFrame
        From :func:`two_arm_pairs` and :func:`two_arm_effects`.
    studies : pandas.DataFrame
        ``studies.csv`` rows.
    max_studies : int, optional
        Describe at most this many studies: the randomised ones first, then those
        with the most patients, kept in the table's order; a first sentence says how
        many are described and that the table lists every comparison.  None: all.
    """
    if max_studies is not None and max_studies < 1:
        raise ValueError(f"max_studies must be >= 1, got {max_studies}")
    study = _Studies(studies)
    paras = []
    effects_by = _by_comparison(effects)
    pairs_by: dict[str, list[dict[str, Any]]] = {}
    for p in pairs.to_dict("records"):
        pairs_by.setdefault(p["study_id"], []).append(p)
    if max_studies is not None and len(pairs_by) > max_studies:
        ids = list(pairs_by)
        keep = {ids[i] for i in _most_telling(
            [study(sid).get("randomized") == "yes" for sid in ids],
            [max(p["n1i"] + p["n2i"] for p in pairs_by[sid]) for sid in ids], max_studies)}
        paras.append(f"Of the {len(pairs_by):,} studies with a two-arm comparison, "
                     f"{max_studies:,} {'is' if max_studies == 1 else 'are'} described "
                     "here (randomised first, then those with the most patients); the table "
                     "below lists every comparison.")
        pairs_by = {sid: sp for sid, sp in pairs_by.items() if sid in keep}
    for study_id, sp in pairs_by.items():
        s = study(study_id)
        first = sp[0]
        arm1, arm2 = _name(first["arm_1"], ARM_NAMES), _name(first["arm_2"], ARM_NAMES)
        randomised = s.get("randomized") == "yes"
        text = (f"**{s['label']}** — design: {s.get('design', '')}; intervention: "
                f"{s.get('intervention', '')}. "
                + ("Patients were randomised between the arms." if randomised else
                   f"The {arm2} group was not formed by randomisation, so it may differ from "
                   f"the {arm1} group in prognosis as well as in treatment: the comparison "
                   "describes the two groups; it does not estimate the effect of the "
                   "treatment.")) + "\n\n"
        includes_null, excludes_null = [], []
        for p in sp:
            eff = effects_by.get((study_id, p["outcome"], p["subgroup"]), [])
            by_m = {r["measure"]: r for r in eff}
            a1, a2 = _name(p["arm_1"], ARM_NAMES), _name(p["arm_2"], ARM_NAMES)
            short = _outcome_short(p["outcome"])
            text += (f"- *{_cap(short)}*: in the {a1} arm "
                     f"{_count_text(p['ai'], p['n1i'])} {_outcome_verb(p['outcome'])}, in the "
                     f"{a2} arm {_count_text(p['ci'], p['n2i'])}")
            effs = [f"{MEASURE_NAMES[m]} "
                    f"{_fmt_effect(m, r['estimate'], r['ci_lower'], r['ci_upper'])}"
                    for m, r in by_m.items()]
            text += (": " + ", ".join(effs)) if effs else ""
            any_r = next(iter(by_m.values()), None)
            if any_r is not None:
                text += f"; Fisher's exact test {fmt_p(any_r['fisher_pvalue'])}"
            text += ".\n"
            ratio = by_m.get("RR") or by_m.get("OR")
            if ratio is not None:
                (includes_null if ratio["ci_lower"] <= 1.0 <= ratio["ci_upper"]
                 else excludes_null).append((short, MEASURE_NAMES[ratio["measure"]]))
        closing = []
        if includes_null:
            names = ", ".join(o for o, _ in includes_null)
            closing.append(f"The 95% confidence interval of the {includes_null[0][1]} "
                           f"includes 1 (no difference) for {names}; with so few patients the "
                           "intervals are wide, compatible with a lower as well as a higher "
                           f"proportion in the {arm1} arm.")
        if excludes_null:
            names = ", ".join(o for o, _ in excludes_null)
            closing.append(f"The 95% confidence interval of the {excludes_null[0][1]} excludes "
                           f"1 (no difference) for {names}.")
        if closing:
            text += "\n" + " ".join(closing)
        paras.append(text.strip())
    return "\n\n".join(paras)


#: Up to this many studies are named in a sentence; more are only counted.
_MAX_NAMED = 10


def two_arm_overview(pairs: pd.DataFrame, studies: pd.DataFrame,
                     unreported: pd.DataFrame) -> str:
    """One or two sentences: how many two-arm comparisons, from which studies, how many
    randomised, and how many randomised trials lack arm-level counts."""
    study = _Studies(studies)
    ids = list(dict.fromkeys(pairs["study_id"]))
    labels = [study(s)["label"] for s in ids]
    rand = [s for s in ids if study(s).get("randomized") == "yes"]
    named = f" ({', '.join(labels)})" if len(labels) <= _MAX_NAMED else ""
    randomised = (("it was randomised" if rand else "it was not randomised") if len(ids) == 1
                  else f"{len(rand):,} of them {'was' if len(rand) == 1 else 'were'} randomised")
    text = (f"The registry holds {_plural(len(pairs), 'comparison', 'comparisons')} of an "
            f"experimental (anti-HER2) arm with a control arm, from "
            f"{_plural(len(ids), 'study', 'studies')}{named}; {randomised}. Each comparison "
            "is shown on its own: the studies ask different questions (different settings, "
            "agents and outcomes), so nothing is pooled.")
    if not unreported.empty:
        n = len(unreported)
        names = (f" ({', '.join(unreported['label'])})" if n <= _MAX_NAMED else "")
        trials = _plural(n, "further randomised trial reports",
                         "further randomised trials report")
        text += f" {trials} no counts per arm{names}."
    return text


def unreported_randomised(studies: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Randomised studies of the registry without any experimental/control pair.

    Returns
    -------
    pandas.DataFrame
        ``study_id``, ``label``, ``design``, ``intervention``, ``notes`` of each study
        with ``randomized == "yes"`` whose arms have no counts in ``pairs``.
    """
    rand = studies[studies["randomized"] == "yes"]
    rand = rand[~rand["study_id"].isin(set(pairs["study_id"]))]
    return rand[["study_id", "label", "design", "intervention", "notes"]].reset_index(
        drop=True)


def describe_unreported(unreported: pd.DataFrame) -> str:
    """What the registry holds, and lacks, for randomised trials without arm counts."""
    if unreported.empty:
        return "Every randomised trial in the registry has arm-level counts."
    paras = []
    for r in unreported.to_dict("records"):
        paras.append(
            f"**{r['label']}** — design: {r['design']}; intervention: {r['intervention']}. "
            "It is randomised, but the registry holds no counts for its arms, so no risk "
            "ratio, odds ratio or risk "
            "difference can be computed and the trial does not enter any analysis. What the "
            f"registry records about it: {str(r['notes']).strip()}")
    return "\n\n".join(paras)


def context_table(outcomes: pd.DataFrame, study_ids: Iterable[str], studies: pd.DataFrame,
                  level: float = 0.95) -> pd.DataFrame:
    """Whole-study counts (``arm == "all"``) of the given studies: screening and attrition.

    Returns
    -------
    pandas.DataFrame
        Display table: ``Study``, ``Outcome``, ``n / N``, ``Proportion (95% exact CI)``.
    """
    import pandas as pd

    ids = list(dict.fromkeys(study_ids))
    rows = outcomes[(outcomes["arm"] == "all") & outcomes["study_id"].isin(ids)
                    & (outcomes["subgroup"] == "")]
    rows = rows.assign(_order=rows["study_id"].map({s: i for i, s in enumerate(ids)}))
    rows = rows.sort_values("_order", kind="stable")
    if rows.empty:
        return pd.DataFrame(columns=["Study", "Outcome", "n / N", "Proportion (95% exact CI)"])
    lo, hi = _exact_ci(rows["events"], rows["total"], level)
    study = _Studies(studies)
    out = []
    for (r, a, b) in zip(rows.to_dict("records"), lo, hi, strict=True):
        out.append({"Study": study(r["study_id"])["label"],
                    "Outcome": _cap(_outcome_short(r["outcome"])),
                    "n / N": f"{r['events']} / {r['total']}",
                    "Proportion (95% exact CI)":
                        f"{fmt_pct(r['events'] / r['total'])} ({fmt_ci(a, b)})"})
    return pd.DataFrame(out)


def two_arm_figure(effects: pd.DataFrame, studies: pd.DataFrame, measure: str = "RR",
                   *, ax: Any = None, title: str | None = None,
                   max_rows: int | None = None) -> Figure:
    """Forest-style plot of two-arm effects, one row per comparison, nothing pooled.

    Ratios are drawn on a log axis with a reference line at 1 (0 for ``RD``).
    Randomised comparisons have filled squares, non-randomised ones open squares
    (and "not randomised" in their label), so the two never look alike.

    Parameters
    ----------
    effects : pandas.DataFrame
        From :func:`two_arm_effects` (rows of other measures are ignored).
    studies : pandas.DataFrame
        ``studies.csv`` rows (``study_id``, ``label``, ``randomized``).
    measure : {"RR", "OR", "RD"}
        Which measure to draw.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new Figure when None.
    title : str, optional
        Figure title.
    max_rows : int, optional
        Draw at most this many comparisons: randomised ones first, then the largest
        by patients (in the table's order); the title then says how many are shown.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from evidence.book import plots

    if measure not in TWO_ARM_MEASURES:
        raise ValueError(f"unknown measure {measure!r}; allowed: {', '.join(TWO_ARM_MEASURES)}")
    study = _Studies(studies)
    rows = effects[effects["measure"] == measure].reset_index(drop=True)
    if rows.empty:
        raise ValueError(f"no {measure} rows to plot")
    if max_rows is not None and len(rows) > max_rows:
        total = len(rows)
        rows = rows.loc[_most_telling(
            [study(sid).get("randomized") == "yes" for sid in rows["study_id"]],
            (rows["n1i"] + rows["n2i"]).tolist(), max_rows)].reset_index(drop=True)
        title = (title + ": " if title else "") + (
            f"{max_rows} of {total} comparisons (randomised first, then the largest)")
    k = len(rows)
    labels, rand = [], []
    for r in rows.to_dict("records"):
        s = study(r["study_id"])
        is_rand = s.get("randomized") == "yes"
        rand.append(is_rand)
        labels.append(f"{s['label']}" + ("" if is_rand else " (not randomised)") + "\n"
                      + _cap(_outcome_short(r["outcome"])))
    texts = [f"{fmt_num(e, 2)} [{fmt_num(lo, 2)}, {fmt_num(hi, 2)}]"
             for e, lo, hi in zip(rows["estimate"], rows["ci_lower"], rows["ci_upper"],
                                  strict=True)]
    counts = [f"{a}/{n1} vs {c}/{n2}" for a, n1, c, n2 in
              zip(rows["ai"], rows["n1i"], rows["ci"], rows["n2i"], strict=True)]
    headers = ("Study and outcome", "Experimental vs control", f"{measure} [95% CI]")
    font, pad, row_h, plot_w = 9.0, 0.12, 0.46, 2.6
    w1 = max(plots._text_width(t, size=font) for t in [*labels, headers[0]]) + 2 * pad
    w2 = max(plots._text_width(t, size=font) for t in [*counts, headers[1]]) + 2 * pad
    w3 = max(plots._text_width(t, size=font) for t in [*texts, headers[2]]) + 2 * pad
    foot = ("Filled squares: randomised comparison; open squares: not randomised.\n"
            "Each row is one study's own estimate with its Wald 95% CI; nothing is pooled.")
    if ax is None:
        top, bottom = (0.45 if title else 0.15), 1.05
        width = 0.3 + w1 + w2 + plot_w + w3
        height = top + (k + 1) * row_h + bottom
        fig = plots._new_figure(width, height)
        ax = fig.add_axes(((0.15 + w1 + w2) / width, bottom / height, plot_w / width,
                           (k + 1) * row_h / height))
        if title:
            fig.text(0.15 / width, 1 - 0.1 / height, title, ha="left", va="top",
                     fontsize=font + 2, fontweight="bold")
    else:
        fig = ax.figure
        if title:
            ax.set_title(title, loc="left", fontsize=font + 1.5, fontweight="bold")
    from matplotlib.transforms import ScaledTranslation, blended_transform_factory

    base = blended_transform_factory(ax.transAxes, ax.transData)

    def _at(dx: float) -> Any:
        return base + ScaledTranslation(dx, 0.0, fig.dpi_scale_trans)

    y = -np.arange(1, k + 1, dtype=float)
    est = rows["estimate"].to_numpy(float)
    lo = rows["ci_lower"].to_numpy(float)
    hi = rows["ci_upper"].to_numpy(float)
    ax.hlines(y, lo, hi, color=plots.PALETTE["black"], linewidth=1.1, gid="study_ci")
    face = [plots.PALETTE["blue"] if r else "white" for r in rand]
    ax.scatter(est, y, s=60, marker="s", c=face, edgecolors=plots.PALETTE["black"],
               linewidths=0.9, zorder=3, gid="study_markers")
    null = 0.0 if measure == "RD" else 1.0
    ax.axvline(null, color="0.35", linestyle=":", linewidth=1.0, gid="refline")
    span = np.concatenate([lo, hi, [null]])
    if measure != "RD":
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        span = np.log(span)
        margin = 0.06 * (span.max() - span.min())
        ax.set_xlim(math.exp(span.min() - margin), math.exp(span.max() + margin))
    else:
        margin = 0.06 * (span.max() - span.min())
        ax.set_xlim(span.min() - margin, span.max() + margin)
    ax.set_ylim(-k - 0.6, 0.6)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="x", labelsize=font - 0.5)
    ax.set_xlabel(f"{MEASURE_NAMES[measure].capitalize()}, experimental vs control arm"
                  + (" (log scale)" if measure != "RD" else ""), fontsize=font)
    cols = ((0.0, -(w1 + w2) + pad, "left", labels, headers[0]),
            (0.0, -pad, "right", counts, headers[1]),
            (1.0, pad, "left", texts, headers[2]))
    for x, dx, align, cells, header in cols:
        ax.text(x, 0.0, header, transform=_at(dx), ha=align, va="center", fontsize=font,
                fontweight="bold", clip_on=False, gid="column_header")
        for yy, cell in zip(y, cells, strict=True):
            ax.text(x, yy, cell, transform=_at(dx), ha=align, va="center", fontsize=font,
                    clip_on=False, gid="cell")
    ax.text(0.0, 0.0, foot, transform=ax.transAxes + ScaledTranslation(
        -(w1 + w2) + pad, -0.55, fig.dpi_scale_trans), fontsize=font - 1, ha="left",
        va="top", color="0.25", clip_on=False, gid="footnote")
    return fig


# ======================================================================================
# Hazard ratios
# ======================================================================================


def _split_comparison(comparison: str) -> tuple[str, str]:
    head, sep, tail = str(comparison).partition("_vs_")
    if not sep or not head or not tail:
        raise ValueError(f"comparison {comparison!r} is not '<numerator>_vs_<reference>'")
    return head, tail


def harmonise_hazard_ratios(rows: pd.DataFrame, comparison: str) -> pd.DataFrame:
    """Hazard ratios of one comparison, all in the direction ``comparison`` names.

    ``comparison`` is ``"<numerator>_vs_<reference>"``; a row reported as
    ``"<reference>_vs_<numerator>"`` is inverted: ``HR → 1/HR`` and its CI limits
    become ``(1/upper, 1/lower)`` (the p-value does not change).  When the
    numerator and reference share a prefix (``ctc_her2_positive_vs_negative``), a
    row written ``ctc_her2_negative_vs_positive`` is recognised as the reverse too.

    Parameters
    ----------
    rows : pandas.DataFrame
        ``effects.csv`` rows (``comparison``, ``estimate``, ``ci_lower``,
        ``ci_upper``, ``p_value``, ...).
    comparison : str
        The direction to report.

    Returns
    -------
    pandas.DataFrame
        The matching rows with ``hr``, ``hr_lower``, ``hr_upper`` (harmonised;
        NaN where no CI is reported) and ``direction`` (``"as reported"`` or
        ``"inverted"``), ``reported_comparison``.
    """
    num, ref = _split_comparison(comparison)
    reverse = {f"{ref}_vs_{num}"}
    # shared prefix, e.g. ctc_her2_positive_vs_negative <-> ctc_her2_negative_vs_positive
    prefix, _, last = num.rpartition("_")
    if prefix and "_" not in ref:
        reverse.add(f"{prefix}_{ref}_vs_{last}")
    keep = rows[rows["comparison"].isin({comparison} | reverse)].copy()
    inverted = keep["comparison"] != comparison
    est = keep["estimate"].astype(float)
    lo = keep["ci_lower"].astype(float)
    hi = keep["ci_upper"].astype(float)
    keep["hr"] = np.where(inverted, 1.0 / est, est)
    keep["hr_lower"] = np.where(inverted, 1.0 / hi, lo)
    keep["hr_upper"] = np.where(inverted, 1.0 / lo, hi)
    keep["direction"] = np.where(inverted, "inverted", "as reported")
    keep["reported_comparison"] = keep["comparison"]
    keep["comparison"] = comparison
    return keep.reset_index(drop=True)


#: Values of ``effects.csv`` ``adjusted``, and their words.
ADJUSTED = ("no", "yes")
ADJUSTMENT_NAMES: dict[str, str] = {"no": "unadjusted (univariable)",
                                    "yes": "adjusted (multivariable)"}


def split_by_adjustment(table: pd.DataFrame, pool_adjusted: str
                        ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows to pool (``adjusted == pool_adjusted``) and rows only to show (the others).

    Parameters
    ----------
    table : pandas.DataFrame
        Harmonised rows (:func:`harmonise_hazard_ratios`).
    pool_adjusted : {"no", "yes"}
        Pool the unadjusted (univariable) or the adjusted (multivariable) estimates.

    Raises
    ------
    ValueError
        ``pool_adjusted`` not in ``("no", "yes")``.
    """
    if pool_adjusted not in ADJUSTED:
        raise ValueError(f"unknown pool_adjusted {pool_adjusted!r}; allowed: "
                         f"{', '.join(ADJUSTED)}")
    pooled = table["adjusted"] == pool_adjusted
    return table[pooled].reset_index(drop=True), table[~pooled].reset_index(drop=True)


def hazard_ratio_effects(table: pd.DataFrame, level: float = 0.95) -> EffectSizes:
    """Log hazard ratios and variances of harmonised rows, one per study.

    The variance comes from the reported CI where there is one, else from the
    two-sided p-value (:func:`evidence.stats.effects.hazard_ratios`).

    Raises
    ------
    ValueError
        Two rows for one study (pool one kind: adjusted or not), or a row with
        neither a CI nor a p-value.
    """
    from evidence.stats.effects import hazard_ratios

    dup = table["study_id"][table["study_id"].duplicated()]
    if len(dup):
        raise ValueError(f"more than one hazard ratio for {sorted(set(dup))}: select "
                         "adjusted or unadjusted estimates")
    return hazard_ratios(table["hr"].to_numpy(float), table["hr_lower"].to_numpy(float),
                         table["hr_upper"].to_numpy(float), table["p_value"].to_numpy(float),
                         study_ids=table["study_id"].tolist(), level=level)


def hazard_ratio_study_ci(table: pd.DataFrame, es: EffectSizes,
                          level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Per-study CI limits for the forest plot: as reported, else Wald from ``vi``."""
    from evidence.stats.distributions import norm_quantile_upper

    z = norm_quantile_upper((1.0 - check_level(level)) / 2.0)
    lo = table["hr_lower"].to_numpy(float)
    hi = table["hr_upper"].to_numpy(float)
    se = np.sqrt(np.asarray(es.vi, dtype=float))
    yi = np.asarray(es.yi, dtype=float)
    missing = ~(np.isfinite(lo) & np.isfinite(hi))
    lo = np.where(missing, np.exp(yi - z * se), lo)
    hi = np.where(missing, np.exp(yi + z * se), hi)
    return lo, hi


def hazard_ratio_table(table: pd.DataFrame, studies: pd.DataFrame,
                       pooled_adjusted: str) -> pd.DataFrame:
    """Display table of harmonised hazard ratios, saying which were pooled and why not."""
    import pandas as pd

    study = _Studies(studies)
    out = []
    for r in table.to_dict("records"):
        s = study(r["study_id"])
        has_ci = math.isfinite(r["hr_lower"]) and math.isfinite(r["hr_upper"])
        pooled = r["adjusted"] == pooled_adjusted
        out.append({
            "Study": s["label"],
            "Analysis": "multivariable (adjusted)" if r["adjusted"] == "yes"
            else "univariable (unadjusted)",
            "Hazard ratio (95% CI)": f"{fmt_num(r['hr'], 2)} ("
            + (fmt_ci(r["hr_lower"], r["hr_upper"], pct=False, digits=2) if has_ci
               else "CI not reported") + ")",
            "p": _p_cell(r["p_value"]),
            "SE from": "reported CI" if has_ci else "p-value",
            "Direction": r["direction"],
            "Pooled": "yes" if pooled else "no (shown only)",
        })
    return pd.DataFrame(out)


def hazard_ratio_notes(table: pd.DataFrame, studies: pd.DataFrame) -> str:
    """The registry's note on each hazard ratio, as a Markdown list."""
    study = _Studies(studies)
    items = []
    for r in table.to_dict("records"):
        note = str(r.get("note", "") or "").strip()
        if note:
            items.append(f"- *{study(r['study_id'])['label']}, "
                         f"{ADJUSTMENT_NAMES.get(r['adjusted'], r['adjusted'])}*: {note}")
    return "\n".join(items) if items else "The registry has no notes on these estimates."


def describe_hazard_ratios(re: MetaResult | None, fe: MetaResult | None,
                           pooled: pd.DataFrame, shown: pd.DataFrame, studies: pd.DataFrame,
                           comparison_words: str, outcome_words: str) -> str:
    """Plain-language account of the pooled hazard ratio and what limits it.

    Parameters
    ----------
    re, fe : MetaResult or None
        Random-effects (REML) and common-effect fits of ``pooled`` (None if there
        is nothing to pool).
    pooled, shown : pandas.DataFrame
        Harmonised rows that were pooled, and those only shown (the other kind
        of adjustment).
    studies : pandas.DataFrame
        ``studies.csv`` rows, for the populations.
    comparison_words : str
        E.g. ``"patients with HER2-positive CTCs vs those without"``.
    outcome_words : str
        E.g. ``"progression-free survival"``.
    """
    study = _Studies(studies)
    paras = []
    inverted = int((pooled["direction"] == "inverted").sum()
                   + (shown["direction"] == "inverted").sum())
    paras.append(
        f"Every hazard ratio compares {comparison_words} "
        + ("(as all sources report it, so none had to be inverted)" if inverted == 0 else
           f"({_plural(inverted, 'estimate', 'estimates')} reported the other way round "
           "inverted)")
        + f"; a hazard ratio below 1 means a lower hazard of an event — longer "
          f"{outcome_words} — in the first group.")
    kind = ADJUSTMENT_NAMES.get(str(pooled["adjusted"].iloc[0]), "") if not pooled.empty \
        else ""
    if re is None or fe is None or pooled.empty:
        paras.append("There are no estimates of this kind to pool.")
    elif re.k == 1:
        r = pooled.iloc[0]
        paras.append(f"Only one {kind} estimate "
                     f"({study(r['study_id'])['label']}): hazard ratio "
                     f"{fmt_num(r['hr'], 2)}; nothing is pooled.")
    else:
        p_re, p_fe = re.pooled(), fe.pooled()
        ci_re = fmt_ci(p_re.ci_lower, p_re.ci_upper, pct=False, digits=2)
        ci_fe = fmt_ci(p_fe.ci_lower, p_fe.ci_upper, pct=False, digits=2)
        text = (f"Pooling the {re.k} {kind} estimates on the log scale gives a hazard ratio "
                f"of {fmt_num(p_re.estimate, 2)} (95% CI {ci_re}; random-effects model, REML), "
                f"and {fmt_num(p_fe.estimate, 2)} ({ci_fe}) with the common-effect model. "
                + ("The pooled interval excludes 1." if p_re.ci_upper < 1 or p_re.ci_lower > 1
                   else "The pooled interval includes 1 (no association)."))
        if re.tau2 == 0:
            text += (" The between-study variance is estimated at zero, so the two models "
                     "agree; with so few studies this does not show that the studies agree.")
        if re.k < 5:
            text += (f" With k = {re.k}, τ² and the test of heterogeneity rest on almost no "
                     "information.")
        by_p = int(pooled["hr_lower"].isna().sum())
        if by_p:
            text += (f" {_plural(by_p, 'estimate comes', 'estimates come')} without a "
                     "confidence interval; the standard error is back-calculated from the "
                     "printed p-value (assuming a Wald test), so it is only as precise as that "
                     "rounded p-value.")
        paras.append(text)
    if not shown.empty:
        items = []
        for r in shown.to_dict("records"):
            lab = study(r["study_id"])["label"]
            ci = (f" (95% CI {fmt_ci(r['hr_lower'], r['hr_upper'], pct=False, digits=2)})"
                  if math.isfinite(r["hr_lower"]) else "")
            items.append(f"{lab} {fmt_num(r['hr'], 2)}{ci}")
        other = ADJUSTMENT_NAMES.get(str(shown["adjusted"].iloc[0]), "other")
        verb = "estimate is" if len(items) == 1 else "estimates are"
        paras.append(f"The {other} {verb} shown, not pooled: " + "; ".join(items)
                     + ". Mixing adjusted and unadjusted hazard ratios would pool different "
                       "quantities.")
    ids = list(dict.fromkeys([*pooled["study_id"], *shown["study_id"]]))
    pops = []
    for sid in ids:
        s = study(sid)
        pops.append(f"- *{s['label']}*: tissue HER2-{s.get('tissue_her2', '?')}, "
                    f"{s.get('setting', '')} disease; treatment: {s.get('intervention', '')}; "
                    f"CTC HER2 criterion: {s.get('her2_cutoff', '')}.")
    if len(ids) > 1:
        paras.append("The populations are not alike:\n\n" + "\n".join(pops) + "\n\n"
                     "How each study forms its comparison groups is in the registry notes "
                     "below the table. The pooled value therefore summarises related but "
                     "different questions: read it as a sign of direction, not as one effect "
                     "measured twice.")
    elif pops:
        paras.append("Population:\n\n" + pops[0])
    return "\n\n".join(paras)
