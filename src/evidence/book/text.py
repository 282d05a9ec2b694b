"""Text primitives of the book: escaping, number formats, plurals and lists.

Every number a chapter states is formatted here, so that the same quantity reads the same
way on every page (``12.8%``, ``4.1% to 33.5%``, ``p = 0.034``), and every text that
comes from the registry passes :func:`escape_markdown` before it is glued into prose.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = [
    "MIN_PI_STUDIES",
    "Plain",
    "cap",
    "count_text",
    "escape_markdown",
    "fmt_ci",
    "fmt_ci_clipped",
    "fmt_num",
    "fmt_p",
    "fmt_pct",
    "is_missing",
    "join_names",
    "md",
    "p_cell",
    "per_n",
    "plural",
    "prediction_reading",
    "shows_prediction",
]

_MD_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")


class Plain(str):
    """A string glued as plain text: its ``text/plain`` form is the string itself, not its
    repr, so ``{glue:text}`` (also across documents, ``path::key``) shows ``2026-12-01``
    rather than ``'2026-12-01'``; the text is inserted as text, never as markup."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str.__str__(self)


def escape_markdown(text: str) -> str:
    """Markdown source that renders ``text`` literally.

    Every ASCII punctuation character is backslash-escaped (CommonMark allows it for
    all of them), so no emphasis, link, role, math or HTML can form; line breaks
    become spaces.

    Parameters
    ----------
    text : str
        Plain text.

    Returns
    -------
    str
    """
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\n", " ")


def md(value: Any) -> str:
    """Registry or result text as Markdown that renders literally (:func:`escape_markdown`
    of its string form, surrounding white space removed)."""
    return escape_markdown(str(value).strip())


def is_missing(x: Any) -> bool:
    """None or NaN."""
    return x is None or (isinstance(x, float) and math.isnan(x))


def fmt_pct(p: float | None, digits: int = 1) -> str:
    """``0.1282`` → ``"12.8%"``; missing → ``"n.r."``; a value that rounds to zero is
    ``"0.0%"``, never ``"-0.0%"``."""
    if is_missing(p):
        return "n.r."
    text = f"{100 * float(p):.{digits}f}%"
    return text[1:] if text.startswith("-") and float(text[1:-1]) == 0 else text


def fmt_num(x: float | None, digits: int = 2) -> str:
    """Fixed-point number; missing → ``"n.r."``."""
    if is_missing(x):
        return "n.r."
    return f"{float(x):.{digits}f}"


def fmt_ci(lower: float | None, upper: float | None, *, pct: bool = True,
           digits: int = 1) -> str:
    """``"4.1% to 33.5%"`` (or numbers when ``pct=False``)."""
    f = fmt_pct if pct else fmt_num
    return f"{f(lower, digits)} to {f(upper, digits)}"


def fmt_p(p: float | None) -> str:
    """p-value for prose: ``"p = 0.034"``, ``"p < 0.001"``."""
    if is_missing(p):
        return "p not available"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def p_cell(p: float) -> str:
    """A p-value for a table cell: ``"0.170"``, ``"< 0.001"``, ``"n.r."``."""
    text = fmt_p(p)
    if text.startswith("p = "):
        return text[4:]
    if text.startswith("p < "):
        return text[2:]
    return "n.r."


def count_text(events: int, total: int) -> str:
    """``"4 of 8 (50.0%)"``."""
    return f"{int(events)} of {int(total)} ({fmt_pct(events / total)})"


def cap(text: str) -> str:
    """First letter upper-case, the rest untouched (``"CTC persistence"`` stays)."""
    return text[:1].upper() + text[1:]


def plural(n: int, one: str, many: str) -> str:
    """``"1 study"``, ``"1,024 studies"``."""
    return f"{n:,} {one if n == 1 else many}"


def join_names(names: list[str]) -> str:
    """``"A"``, ``"A and B"``, ``"A, B and C"``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


#: Fewest studies for which a prediction interval is reported: from two studies τ² is a
#: guess and the interval says nothing about a new study.
MIN_PI_STUDIES = 3


def shows_prediction(k: int, method: str) -> bool:
    """Whether a prediction interval is reported: random-effects models with at least
    :data:`MIN_PI_STUDIES` studies."""
    return k >= MIN_PI_STUDIES and method not in ("FE", "EE", "CE")


def prediction_reading(k: int, method: str, tau2: float | None, lower: str,
                       upper: str, what: str) -> str:
    """The sentence that reports (or withholds) a prediction interval.

    Parameters
    ----------
    k, method, tau2
        The fit: number of studies, model and between-study variance.
    lower, upper : str
        The formatted limits.
    what : str
        What is predicted, e.g. ``"the proportion in a new study like these"``.
    """
    if method in ("FE", "EE", "CE"):
        return ""
    if k < MIN_PI_STUDIES:
        return (f" No prediction interval is given: with {k} studies the spread between "
                "studies cannot be estimated well enough to predict a new one.")
    text = (f" Allowing for the differences between studies, {what} would be expected "
            f"between {lower} and {upper} (95% prediction interval: where 95% of such "
            "studies' true values would lie).")
    if tau2 is not None and not is_missing(tau2) and tau2 < 1e-8:
        text += (" The estimated between-study variance is zero, so this interval equals the "
                 "confidence interval; with few studies that means the spread could not be "
                 "measured, not that the studies agree.")
    return text


def per_n(p: float, n: int = 1000) -> int:
    """A proportion as a whole number per ``n`` patients, rounded half up (``0.3055``
    per 1,000 is 306; ``0.305`` per 100 is 31)."""
    import math

    return math.floor(p * n + 0.5 + 1e-9)


def fmt_ci_clipped(lower: float | None, upper: float | None) -> tuple[str, bool]:
    """A proportion's interval for display, truncated to 0%-100% (a raw-proportion Wald
    interval can run past them), and whether it was truncated (say so beside it)."""
    import math

    if is_missing(lower) or is_missing(upper):
        return fmt_ci(lower, upper), False
    lo, hi = min(max(float(lower), 0.0), 1.0), min(max(float(upper), 0.0), 1.0)
    clipped = not (math.isclose(lo, float(lower)) and math.isclose(hi, float(upper)))
    return fmt_ci(lo, hi), clipped
