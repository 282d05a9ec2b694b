"""The checker every registry file's rules use (private to the registry wing).

:class:`Checker` accumulates the problems of one table as ``FILE:LINE: column: message``;
its helpers check a cell's form (slug, choice, integer, number, use) and skip columns the
file does not have, so that a missing column is reported once, by the header check.
"""

from __future__ import annotations

import math
import re

from evidence.registry.csvfile import Record, RegistryProblem, Table

__all__ = ["INTEGER", "SLUG", "USES", "Checker"]

#: Readings of a number the source gives two ways (empty ``use`` means primary).
USES = ("primary", "alternative")

SLUG = re.compile(r"[a-z0-9_]+")
INTEGER = re.compile(r"[0-9]+")


class Checker:
    """Accumulates problems for one table; the ``check_*`` helpers skip absent columns."""

    def __init__(self, table: Table, required: tuple[str, ...]) -> None:
        self.table = table
        self.columns = set(table.header)
        self.problems: list[RegistryProblem] = [
            RegistryProblem(table.file, 1, name, "missing required column")
            for name in required if name not in self.columns
        ]

    def add(self, record: Record, column: str, message: str) -> None:
        self.problems.append(RegistryProblem(self.table.file, record.line, column, message))

    def has(self, *columns: str) -> bool:
        return all(c in self.columns for c in columns)

    def nonempty(self, record: Record, *columns: str) -> None:
        for column in columns:
            if column in self.columns and not record.cells[column]:
                self.add(record, column, "missing value")

    def unique_slug(self, record: Record, column: str, first_line: dict[str, int]) -> None:
        """A slug key that no earlier record has; ``first_line`` maps keys to lines."""
        self.slug(record, column)
        value = record.cells.get(column, "")
        if not value:
            return
        if value in first_line:
            self.add(record, column, f"duplicate {column} {value!r} "
                                     f"(first on line {first_line[value]})")
        else:
            first_line[value] = record.line

    def slug(self, record: Record, column: str) -> None:
        value = record.cells.get(column)
        if value is None:
            return
        if not value:
            self.add(record, column, "missing value")
        elif not SLUG.fullmatch(value):
            self.add(record, column,
                     f"{value!r} is not a slug (lowercase letters, digits and '_' only)")

    def choice(self, record: Record, column: str, allowed: tuple[str, ...],
               *, allow_empty: bool = False) -> None:
        value = record.cells.get(column)
        if value is None or (allow_empty and not value):
            return
        if not value:
            self.add(record, column, f"missing value (one of {', '.join(allowed)})")
        elif value not in allowed:
            self.add(record, column, f"{value!r} is not one of {', '.join(allowed)}")

    def integer(self, record: Record, column: str) -> int | None:
        """A non-negative integer, or None after recording the problem."""
        value = record.cells.get(column)
        if value is None:
            return None
        if not value:
            self.add(record, column, "missing value (a non-negative integer)")
            return None
        if INTEGER.fullmatch(value):
            return int(value)
        if re.fullmatch(r"-[0-9]+", value):
            self.add(record, column, f"must not be negative, got {value}")
        else:
            self.add(record, column, f"must be a non-negative integer, got {value!r}")
        return None

    def number(self, record: Record, column: str) -> float | None:
        """A finite number, ``nan`` for an empty cell, or None after recording the problem."""
        value = record.cells.get(column)
        if value is None:
            return None
        if not value:
            return math.nan
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        else:
            if math.isfinite(number):
                return number
        self.add(record, column, f"must be a number, got {value!r}")
        return None

    def use(self, record: Record) -> str | None:
        """The row's ``use`` (empty means ``primary``), or None if invalid."""
        value = record.cells.get("use", "") or "primary"
        if value not in USES:
            self.add(record, "use", f"{value!r} is not one of {', '.join(USES)} "
                                    "(empty means primary)")
            return None
        if value == "alternative" and not record.cells.get("note", ""):
            self.add(record, "note", "an alternative row needs a note saying what it "
                                     "contradicts and why the primary reading was chosen")
        return value

    def known(self, record: Record, column: str, known: set[str] | None,
              where: str) -> None:
        value = record.cells.get(column)
        if value and known is not None and value not in known:
            self.add(record, column, f"unknown {column} {value!r} (not in {where})")
