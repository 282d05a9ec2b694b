"""Reading the registry's CSV files with the physical line of every record.

:func:`read_table` reads one UTF-8 CSV file (RFC 4180 quoting, header row) with the
:mod:`csv` module, so that every problem carries the exact physical line where its
record starts, and reports malformed CSV, wrong field counts, empty or repeated column
names and bytes that are not UTF-8 as :class:`RegistryProblem`, printed as
``FILE:LINE: column: message``.  Nothing here ever writes a file.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Record", "RegistryError", "RegistryProblem", "Table", "display_path",
           "read_table"]

_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class RegistryProblem:
    """One problem in a registry file.

    Attributes
    ----------
    file : str
        The file as displayed (``data/outcomes.csv``).
    line : int
        1-based physical line where the record starts (the header is line 1);
        0 for a missing file.
    column : str
        The column at fault, or ``""`` for a problem with a whole row or file.
    message : str
        What is wrong.
    """

    file: str
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        if self.column:
            return f"{self.file}:{self.line}: {self.column}: {self.message}"
        return f"{self.file}:{self.line}: {self.message}"


class RegistryError(Exception):
    """The registry has at least one problem; ``problems`` lists all of them.

    Parameters
    ----------
    problems : list of RegistryProblem
        Every problem found, in file and line order.
    """

    def __init__(self, problems: list[RegistryProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Record:
    """A parsed CSV record: the line where it starts and its stripped cells."""

    line: int
    cells: dict[str, str]


@dataclass(frozen=True)
class Table:
    """A CSV file read for validation (records with wrong field counts left out)."""

    file: str
    header: tuple[str, ...]
    records: tuple[Record, ...]


def display_path(data_dir: Path, name: str) -> str:
    """Path of ``name`` as shown in messages (see the module docstring)."""
    if data_dir.is_absolute():
        return (Path(data_dir.name) / name).as_posix()
    return (data_dir / name).as_posix()


def _physical_lines(text: str) -> Iterator[str]:
    """Split on ``\\n`` only (keeping it), so csv's ``line_num`` counts physical lines."""
    start = 0
    while True:
        end = text.find("\n", start)
        if end < 0:
            if start < len(text):
                yield text[start:]
            return
        yield text[start:end + 1]
        start = end + 1


def _decode(raw: bytes) -> tuple[str, dict[int, str]]:
    """Decode UTF-8 (a leading BOM is dropped); undecodable bytes become U+FFFD.

    Returns the text and, per 1-based line holding invalid bytes, a description of the
    first one.
    """
    offset = len(_UTF8_BOM) if raw.startswith(_UTF8_BOM) else 0
    try:
        return raw[offset:].decode("utf-8"), {}
    except UnicodeDecodeError:
        pass
    bad: dict[int, str] = {}
    parts: list[str] = []
    for lineno, line in enumerate(raw[offset:].split(b"\n"), start=1):
        try:
            parts.append(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            n_bad = _count_invalid(line)
            more = f" ({n_bad - 1} more on this line)" if n_bad > 1 else ""
            bad[lineno] = (f"not valid UTF-8: byte 0x{line[exc.start]:02X} at byte "
                           f"{exc.start + 1} of the line (file byte offset "
                           f"{offset + exc.start}){more}")
            parts.append(line.decode("utf-8", errors="replace"))
        offset += len(line) + 1
    return "\n".join(parts), bad


def _count_invalid(line: bytes) -> int:
    """Number of invalid UTF-8 sequences in ``line``."""
    count, pos = 0, 0
    while pos < len(line):
        try:
            line[pos:].decode("utf-8")
            break
        except UnicodeDecodeError as exc:
            count += 1
            pos += exc.end
    return count


def read_table(path: Path, display: str) -> tuple[Table | None, list[RegistryProblem]]:
    """Read one CSV file for validation; never writes.

    Returns ``(None, problems)`` if the file is missing, empty or has no usable header.
    """
    problems: list[RegistryProblem] = []
    if not path.is_file():
        return None, [RegistryProblem(display, 0, "", "file not found")]
    with path.open("rb") as fh:
        raw = fh.read()
    text, bad_lines = _decode(raw)
    if not text.strip():
        return None, [RegistryProblem(display, 1, "", "empty file (no header row)")]

    reader = csv.reader(_physical_lines(text), strict=True)
    header: tuple[str, ...] | None = None
    records: list[Record] = []
    spans: list[tuple[int, int, dict[str, str] | None]] = []  # for locating bad bytes
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(RegistryProblem(display, start, "", f"malformed CSV: {exc}"))
            spans.append((start, reader.line_num, None))
            continue
        if not row:  # blank line
            continue
        cells = [c.strip() for c in row]
        if header is None:
            header = tuple(c.lstrip("\ufeff") for c in cells)
            problems.extend(_check_header(header, display, start))
            spans.append((start, reader.line_num, None))
            continue
        if len(cells) != len(header):
            problems.append(RegistryProblem(
                display, start, "",
                f"malformed CSV: expected {len(header)} fields (as in the header), "
                f"found {len(cells)}"))
            spans.append((start, reader.line_num, None))
            continue
        record = Record(start, dict(zip(header, cells, strict=True)))
        records.append(record)
        spans.append((start, reader.line_num, record.cells))

    for lineno, message in sorted(bad_lines.items()):
        problems.append(_bad_bytes_problem(display, lineno, message, spans))
    problems.sort(key=lambda p: p.line)
    if header is None:
        return None, problems
    return Table(display, header, tuple(records)), problems


def _bad_bytes_problem(display: str, lineno: int, message: str,
                       spans: list[tuple[int, int, dict[str, str] | None]]) -> RegistryProblem:
    """Problem for invalid bytes on ``lineno``, naming the CSV column when it is known."""
    for first, last, cells in spans:
        if first <= lineno <= last and cells is not None:
            for name, value in cells.items():
                if "\ufffd" in value:
                    return RegistryProblem(display, lineno, name, message)
    return RegistryProblem(display, lineno, "", message)


def _check_header(header: tuple[str, ...], display: str, line: int) -> list[RegistryProblem]:
    """Empty or duplicated column names."""
    problems = []
    seen: set[str] = set()
    for position, name in enumerate(header, start=1):
        if not name:
            problems.append(RegistryProblem(display, line, "",
                                            f"header field {position} is empty"))
        elif name in seen:
            problems.append(RegistryProblem(display, line, name, "duplicate column name"))
        seen.add(name)
    return problems
