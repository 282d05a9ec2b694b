"""Transition tables a report leaves incomplete: every table of counts it is compatible with.

A study of HER2 categories in paired samples (primary tumour -> recurrence) often reports
some cells of its n x n transition table, all its margins and the number of patients whose
category changed, but not every cell. :func:`bounds_from_counts` enumerates *every* table
of non-negative counts that agrees with what is reported, so that a rate depending on a
missing cell can be given as the range it really has, never as a guess.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import product

import numpy as np

__all__ = ["IncompatibleReport", "TransitionBounds", "bounds_from_counts", "check_categories",
           "compatible_tables"]


class IncompatibleReport(ValueError):
    """The reported numbers admit no table of counts: they contradict one another (cells
    that exceed a margin, margins that miss the total, no table with the reported cells,
    margins and number of discordant patients)."""


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

    def first_unreported(self) -> tuple[str, str] | None:
        """``(from, to)`` of the cell :meth:`extremes` varies (None if all reported)."""
        free = np.argwhere(~self.reported)
        if free.size == 0:
            return None
        i, j = free[0]
        return self.categories[int(i)], self.categories[int(j)]


def check_categories(categories: Sequence[str]) -> tuple[str, ...]:
    """The category order as a tuple of at least two distinct names."""
    cats = tuple(str(c) for c in categories)
    if len(cats) < 2 or len(set(cats)) != len(cats):
        raise ValueError(f"categories must be at least two distinct names, got {cats}")
    return cats


def compatible_tables(known: np.ndarray, row_totals: np.ndarray, col_totals: np.ndarray,
                      discordant: int | None, max_tables: int) -> np.ndarray:
    """All non-negative integer tables with the known cells, margins and trace.

    Parameters
    ----------
    known : numpy.ndarray, shape (n, n)
        Reported cells; NaN where a cell is not reported.
    row_totals, col_totals : numpy.ndarray, shape (n,)
        The margins.
    discordant : int or None
        The off-diagonal total, if reported.
    max_tables : int
        Refuse (``ValueError``) to enumerate more candidates than this.

    Returns
    -------
    numpy.ndarray of int, shape (m, n, n)
        ``m = 0`` when nothing is compatible.
    """
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


def bounds_from_counts(study_id: str, categories: Sequence[str], known: np.ndarray,
                       row_totals: np.ndarray, col_totals: np.ndarray,
                       total: int | None = None, *, discordant: int | None = None,
                       max_tables: int = 2_000_000) -> TransitionBounds:
    """Reconstruct a transition table, or every table compatible with the report.

    Parameters
    ----------
    study_id : str
        The study (for messages).
    categories : sequence of str
        Category order (at least two, distinct).
    known : numpy.ndarray, shape (n, n)
        Reported cells, NaN where not reported.
    row_totals, col_totals : numpy.ndarray, shape (n,)
        Reported margins (NaN where missing: an error).
    total : int, optional
        The reported total, checked against the margins.
    discordant : int, optional
        Reported number of patients whose category changed; constrains the diagonal.
    max_tables : int
        Refuse to enumerate more candidate tables than this.

    Returns
    -------
    TransitionBounds

    Raises
    ------
    IncompatibleReport
        The reported numbers contradict one another (no table is compatible).
    ValueError
        Bad categories, a missing margin, or ``discordant`` outside ``[0, total]``.
    """
    cats = check_categories(categories)
    row_m = np.asarray(row_totals, dtype=float)
    col_m = np.asarray(col_totals, dtype=float)
    for name, margin in (("row", row_m), ("column", col_m)):
        if not np.all(np.isfinite(margin)):
            absent = [c for c, v in zip(cats, margin, strict=True) if not np.isfinite(v)]
            raise ValueError(f"{study_id}: {name} margin(s) missing for {absent} "
                             f"({'to' if name == 'row' else 'from'}_category='any' rows)")
    if total is not None and (row_m.sum() != total or col_m.sum() != total):
        raise IncompatibleReport(f"{study_id}: margins do not add up to the total {total} "
                                 f"(rows {int(row_m.sum())}, columns {int(col_m.sum())})")
    for i, c in enumerate(cats):
        if np.nansum(known[i]) > row_m[i] or np.nansum(known[:, i]) > col_m[i]:
            raise IncompatibleReport(f"{study_id}: reported cells exceed the margin of {c!r}")
    if discordant is not None and not 0 <= int(discordant) <= row_m.sum():
        raise ValueError(f"discordant must be between 0 and {int(row_m.sum())}, "
                         f"got {discordant}")
    tables = compatible_tables(known, row_m, col_m, discordant, max_tables)
    if tables.shape[0] == 0:
        raise IncompatibleReport(
            f"{study_id}: no table of counts is compatible with the reported cells, margins"
            + (" and discordant count" if discordant is not None else ""))
    return TransitionBounds(study_id=study_id, categories=cats,
                            row_totals=row_m.astype(np.int64),
                            col_totals=col_m.astype(np.int64),
                            total=int(row_m.sum()), discordant=discordant,
                            reported=np.isfinite(known), tables=tables)
