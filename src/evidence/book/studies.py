"""Study rows for the chapters: looked up by id, and chosen when there are too many."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["StudyIndex", "most_telling"]


class StudyIndex:
    """Study rows by ``study_id``, indexed once per table (a scan of the table per lookup
    made the two-arm chapter O(k^2)); an unknown id gives a placeholder row.

    Parameters
    ----------
    studies : pandas.DataFrame
        ``studies.csv`` rows.
    """

    def __init__(self, studies: pd.DataFrame) -> None:
        self._rows: dict[str, dict[str, Any]] = {}
        for row in studies.to_dict("records"):
            self._rows.setdefault(row["study_id"], row)

    def __call__(self, study_id: str) -> dict[str, Any]:
        """The study's row (a copy), or a placeholder labelled with the id."""
        hit = self._rows.get(study_id)
        if hit is None:
            return {"study_id": study_id, "label": study_id, "randomized": "", "design": "",
                    "intervention": "", "notes": ""}
        return dict(hit)


def most_telling(randomised: Sequence[bool], size: Sequence[int], n: int) -> list[int]:
    """Positions of the ``n`` items to keep when there are too many to show: randomised
    first, then the largest, earlier first on ties; returned in their original order."""
    order = sorted(range(len(size)), key=lambda i: (not randomised[i], -size[i], i))
    return sorted(order[:n])
