"""The book's tables: one way to render a table as HTML, and a result as a DataFrame.

Registry text is untrusted: a label or quote may contain ``<script>`` or ``<b>``. Every
table a reader sees therefore goes through :func:`show` (a pandas Styler with every cell
and header HTML-escaped) or :func:`html_table` (escaped text cells, optional escaped links
and row groups), and every text glued into prose through :func:`as_markdown` or
:func:`evidence.book.text.escape_markdown`. :func:`summary_frame` turns a statistics result
(:class:`evidence.stats.results.Summary`) into a DataFrame.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from evidence.book.text import escape_markdown

if TYPE_CHECKING:
    import pandas as pd

    from evidence.stats.results import Summary

__all__ = ["as_markdown", "html_table", "show", "summary_frame"]


#: Tables shown so far in this process: part of each table's HTML id (see ``show``).
_SHOWN = itertools.count()


class _Table:
    """What ``show`` returns: the HTML table, and a short plain-text stand-in.

    (A pandas Styler's plain-text form names its memory address, which would make
    every executed notebook differ from the last.)
    """

    def __init__(self, styler: Any, rows: int, columns: list[str]) -> None:
        self.styler = styler
        self.text = f"<table of {rows} row(s): {', '.join(columns)}>"

    def to_html(self) -> str:
        """The escaped HTML table."""
        return self.styler.to_html()

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        return self.text


def show(frame: pd.DataFrame, *, na_rep: str = "") -> Any:
    """A display table for a notebook cell: no index, and every cell and header
    HTML-escaped, so that text from the registry (labels, quotes) renders as text,
    never as markup.

    The table's HTML id is made from its content and its position among the tables
    this process showed (pandas would draw a random one), so that the same inputs give
    byte-identical notebooks and pages, and two tables never share an id.
    """
    content = hashlib.sha256(frame.to_csv(index=False).encode("utf-8")).hexdigest()[:8]
    styler = (frame.style.set_uuid(f"{content}_{next(_SHOWN)}").hide(axis="index")
              .format(escape="html", na_rep=na_rep).format_index(escape="html", axis=1))
    return _Table(styler, len(frame), [str(c) for c in frame.columns])


def as_markdown(text: str, *, code: bool = False) -> Any:
    """``IPython.display.Markdown`` showing ``text`` literally, for ``glue`` and
    ``{glue:md}`` (a glued ``str`` has no Markdown form).

    Parameters
    ----------
    text : str
        Plain text; every Markdown and HTML special character is escaped.
    code : bool
        Show it as inline code (the text must not contain a backtick).

    Raises
    ------
    ValueError
        ``code=True`` and the text contains a backtick or a line break.
    """
    from IPython.display import Markdown

    if code:
        if "`" in text or "\n" in text:
            raise ValueError(f"cannot show {text!r} as inline code: it contains a backtick "
                             "or a line break")
        return Markdown(f"`{text}`")
    return Markdown(escape_markdown(text))




def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value), quote=True)


def _min_widths(frame: pd.DataFrame, columns: Sequence[str], threshold: int) -> dict[str, int]:
    """Minimum width (em) per column: long-text columns get room for about eight
    characters per em, between 16 and 40 em; others 4 em."""
    out = {}
    for c in columns:
        longest = max((len(str(v)) for v in frame[c]), default=0)
        out[c] = min(40, max(16, math.ceil(longest / 8))) if longest > threshold else 4
    return out


def html_table(frame: pd.DataFrame, *, links: Mapping[str, Callable[[Any], str | None]]
               | None = None, group_by: str | None = None,
               group_labels: Mapping[str, str] | None = None, caption: str = "",
               table_class: str = "dataframe evidence-table", wide_after: int = 60,
               collapse_after: int | None = None) -> str:
    """An HTML table in which every header and cell is HTML-escaped text.

    Parameters
    ----------
    frame : pandas.DataFrame
        The display table (the index is not shown).
    links : mapping of column to function, optional
        For these columns, ``function(value)`` gives a URL (or None for plain
        text); the cell becomes a link whose text and ``href`` are both escaped.
        Only ``http(s)`` URLs are linked.
    group_by : str, optional
        A column whose values split the rows into groups (in order of first
        appearance); each group gets a ``<tbody>`` headed by a full-width row, and
        the column itself is not shown.
    group_labels : mapping, optional
        Heading text per group value (default: the value).
    caption : str
        Table caption (escaped).
    table_class : str
        CSS classes of the ``<table>`` (escaped).
    wide_after : int
        Columns holding a value longer than this many characters get a minimum
        width (16 to 40 em, by their longest value), so that long quotes stay
        readable; the table then scrolls sideways instead of squeezing them.
    collapse_after : int, optional
        A table of more rows than this is shown closed, behind a ``<details>`` whose
        summary gives its number of rows (and the caption); a reader opens it.

    Returns
    -------
    str
        ``<div class="evidence-table-wrap"><table>...</table></div>``, inside
        ``<details class="evidence-collapse">`` when collapsed.

    Raises
    ------
    KeyError
        ``group_by`` or a ``links`` column is not in ``frame``.
    """
    links = dict(links or {})
    for col in [*links, *([group_by] if group_by else [])]:
        if col not in frame.columns:
            raise KeyError(f"column {col!r} not in the table; columns: {list(frame.columns)}")
    columns = [c for c in frame.columns if c != group_by]
    widths = _min_widths(frame, columns, wide_after)
    out = ['<div class="evidence-table-wrap" style="overflow-x:auto">',
           f'<table class="{_cell(table_class)}" style="font-size:0.85em">']
    if caption:
        out.append(f"<caption>{_cell(caption)}</caption>")
    out.append("<thead><tr>" + "".join(
        f'<th scope="col" style="vertical-align:bottom;min-width:{widths[c]}em">{_cell(c)}</th>'
        for c in columns) + "</tr></thead>")
    records = frame.to_dict("records")
    if group_by:
        order: list[Any] = []
        for r in records:
            if r[group_by] not in order:
                order.append(r[group_by])
        groups = [(g, [r for r in records if r[group_by] == g]) for g in order]
    else:
        groups = [(None, records)]
    labels = dict(group_labels or {})
    for key, rows in groups:
        out.append("<tbody>")
        if group_by:
            label = labels.get(key, key)
            out.append(f'<tr class="evidence-group"><th scope="rowgroup" '
                       f'colspan="{len(columns)}" style="text-align:left">{_cell(label)}</th>'
                       "</tr>")
        for r in rows:
            cells = []
            for c in columns:
                url = links[c](r[c]) if c in links else None
                if url and url.startswith(("https://", "http://")):
                    cells.append(f'<td style="vertical-align:top"><a href="{_cell(url)}">'
                                 f"{_cell(r[c])}</a></td>")
                else:
                    cells.append(f'<td style="vertical-align:top">{_cell(r[c])}</td>')
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</tbody>")
    out.append("</table></div>")
    if collapse_after is not None and len(frame) > collapse_after:
        what = f"{caption}: " if caption else ""
        out = ['<details class="evidence-collapse">',
               f"<summary>{_cell(what)}show the table ({len(frame)} rows)</summary>",
               *out, "</details>"]
    return "\n".join(out)


def summary_frame(summary: Summary, *, index: bool = True) -> pd.DataFrame:
    """A statistics result's :class:`~evidence.stats.results.Summary` as a DataFrame.

    Parameters
    ----------
    summary : Summary
        One row per item, from a result's ``summary()`` (or e.g. ``estimator_panel``).
    index : bool
        Index the rows by ``summary.index`` (named ``summary.index_name``); False gives a
        plain range index and drops the labels.
    """
    import pandas as pd

    frame = pd.DataFrame({c: list(v) if isinstance(v, tuple) else v
                          for c, v in summary.columns.items()})
    if index:
        frame.index = pd.Index(list(summary.index), name=summary.index_name)
    return frame
