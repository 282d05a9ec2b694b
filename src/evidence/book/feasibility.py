"""Feasibility of a HER2-CTC trial: patients to screen per eligible patient, and for an
A'Hern phase II design, from the pooled screening yield."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from evidence.book.text import fmt_num, fmt_pct

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "describe_feasibility",
    "feasibility",
    "nns_claim",
    "nns_display",
    "nns_per_trial",
]

def nns_per_trial(table: pd.DataFrame) -> pd.DataFrame:
    """Patients screened per patient with HER2-positive CTCs, trial by trial.

    ``table`` holds screening-yield rows (``label, events, total``); returns
    ``label, screened, her2_positive, nns`` with ``nns = total / events`` (infinite
    with no HER2-positive patient).
    """
    import pandas as pd

    events = table["events"].astype(float).to_numpy()
    total = table["total"].astype(float).to_numpy()
    with np.errstate(divide="ignore"):
        nns = np.where(events > 0, total / np.where(events > 0, events, 1.0), np.inf)
    return pd.DataFrame({"label": table["label"].to_numpy(), "screened": table["total"].to_numpy(),
                         "her2_positive": table["events"].to_numpy(), "nns": nns})


def nns_display(trials: pd.DataFrame) -> pd.DataFrame:
    """:func:`nns_per_trial` for readers: named columns, one decimal."""
    import pandas as pd

    return pd.DataFrame({
        "Trial": trials["label"].to_numpy(),
        "Screened": trials["screened"].to_numpy(),
        "With HER2+ CTCs": trials["her2_positive"].to_numpy(),
        "Screened per eligible patient": [fmt_num(v, 1) for v in trials["nns"]],
    })


def nns_claim(nns: Any, claimed_median: float, claimed_low: float, claimed_high: float,
              *, tolerance: float = 1.0) -> dict[str, Any]:
    """Check a published "median number needed to screen ≈ m (a to b)" claim.

    The claim holds when the median of the trials' numbers needed to screen is
    within ``tolerance`` patients of ``claimed_median`` and the range, rounded to
    whole patients, is ``claimed_low`` to ``claimed_high``.

    Returns
    -------
    dict
        ``median, low, high, median_holds, range_holds, holds`` and ``text`` (a
        sentence saying whether the claim holds and why).
    """
    values = np.asarray(nns, dtype=float)
    if values.size == 0:
        raise ValueError("no trials to check the claim against")
    median = float(np.median(values))
    low, high = float(values.min()), float(values.max())
    median_holds = abs(median - claimed_median) <= tolerance
    range_holds = round(low) == round(claimed_low) and round(high) == round(claimed_high)
    holds = median_holds and range_holds
    text = (f"Across the {values.size} trials the median number needed to screen is "
            f"{fmt_num(median, 1)} (range {fmt_num(low, 1)} to {fmt_num(high, 1)}); the claim "
            f"of about {fmt_num(claimed_median, 0)} ({fmt_num(claimed_low, 0)} to "
            f"{fmt_num(claimed_high, 0)}) ")
    if holds:
        text += "holds."
    elif range_holds:
        text += (f"holds for the range but not for the median, which is "
                 f"{fmt_num(abs(median - claimed_median), 1)} patients away from it.")
    elif median_holds:
        text += "holds for the median but not for the range."
    else:
        text += "does not hold: neither the median nor the range matches."
    return {"median": median, "low": low, "high": high, "median_holds": median_holds,
            "range_holds": range_holds, "holds": holds, "text": text}


def feasibility(pooled_yield: dict[str, Any], p0: float, p1: float, alpha: float,
                beta: float) -> dict[str, Any]:
    """A'Hern single-stage design and the patients to screen for it.

    Parameters
    ----------
    pooled_yield : dict
        The ``pooled`` block of the screening-yield result (proportion scale).
    p0, p1, alpha, beta : float
        Uninteresting and target response rates, type I and II error rates.

    Returns
    -------
    dict
        ``design`` (n, r, actual alpha and power), ``nns`` (number needed to
        screen for one eligible patient) and ``to_screen`` (for the design's n),
        each with the interval implied by the yield's 95% CI.
    """
    from evidence.stats.design import ahern, number_needed_to_screen, patients_to_screen

    design = ahern(p0, p1, alpha=alpha, beta=beta)
    y, lo, hi = pooled_yield["estimate"], pooled_yield["ci_lower"], pooled_yield["ci_upper"]
    return {"design": design.to_dict(),
            "nns": number_needed_to_screen(y, lo, hi).to_dict(),
            "to_screen": patients_to_screen(design.n, y, lo, hi).to_dict(),
            "p0": p0, "p1": p1, "alpha": alpha, "beta": beta}


def describe_feasibility(f: dict[str, Any]) -> str:
    """The feasibility calculation in words."""
    d, nns, scr = f["design"], f["nns"], f["to_screen"]

    def whole(x: Any) -> str:
        return "an unbounded number of" if x is None or x == math.inf else f"{int(x)}"

    return (f"An exact single-stage phase II design (A'Hern) that rejects a response rate "
            f"of {fmt_pct(f['p0'], 0)} in favour of {fmt_pct(f['p1'], 0)} with a one-sided "
            f"α of {fmt_num(f['alpha'], 2)} and power {fmt_pct(1 - f['beta'], 0)} needs "
            f"n = {d['n']} treated patients, of whom at least r = {d['r']} must respond "
            f"(actual α {fmt_num(d['alpha'], 3)}, power {fmt_pct(d['power'], 1)}). At the "
            f"pooled screening yield, one eligible patient is found per "
            f"{fmt_num(nns['estimate'], 1)} screened (95% CI {fmt_num(nns['ci_lower'], 1)} to "
            f"{fmt_num(nns['ci_upper'], 1)}), so enrolling {d['n']} patients means screening "
            f"about {whole(scr['estimate_ceil'])} patients (95% CI "
            f"{whole(scr['ci_lower_ceil'])} to {whole(scr['ci_upper_ceil'])}), before any "
            f"loss between eligibility and treatment.")
