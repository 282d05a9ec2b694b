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


def _half_up(x: float) -> int:
    """Round to a whole patient, halves up (4.5 -> 5; Python's round gives 4)."""
    return math.floor(x + 0.5)


def nns_claim(nns: Any, claimed_median: float, claimed_low: float, claimed_high: float,
              *, tolerance: float = 1.0) -> dict[str, Any]:
    """Check a published "median number needed to screen ≈ m (a to b)" claim.

    The claim holds when the median of the trials' numbers needed to screen is
    within ``tolerance`` patients of ``claimed_median`` ("about 9" is met by 9.5)
    and the range, rounded half up to whole patients, is ``claimed_low`` to
    ``claimed_high``. The sentence states this rule.

    Parameters
    ----------
    nns : array-like of float
        The trials' numbers needed to screen.
    claimed_median, claimed_low, claimed_high : float
        The claim: "about ``claimed_median`` (``claimed_low`` to ``claimed_high``)".
    tolerance : float, default 1.0
        Largest distance, in patients, of the median from ``claimed_median``.

    Returns
    -------
    dict
        ``median, low, high, median_holds, range_holds, holds, tolerance`` and
        ``text`` (a sentence saying whether the claim holds, by which rule and why).
    """
    values = np.asarray(nns, dtype=float)
    if values.size == 0:
        raise ValueError("no trials to check the claim against")
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance!r}")
    median = float(np.median(values))
    low, high = float(values.min()), float(values.max())
    median_holds = abs(median - claimed_median) <= tolerance + 1e-9
    range_holds = (math.isfinite(high) and _half_up(low) == _half_up(claimed_low)
                   and _half_up(high) == _half_up(claimed_high))
    holds = median_holds and range_holds
    within = f"within {fmt_num(tolerance, 0 if tolerance == int(tolerance) else 1)} " \
             f"{'patient' if tolerance == 1 else 'patients'} of {fmt_num(claimed_median, 0)}"
    rng = (f"{_half_up(low)} to {_half_up(high)}" if math.isfinite(high)
           else f"{_half_up(low)} to unbounded")
    median_part = (f"the median is {within}" if median_holds
                   else f"the median is {fmt_num(abs(median - claimed_median), 1)} patients "
                        f"from {fmt_num(claimed_median, 0)}, more than the {tolerance:g} "
                        "allowed")
    range_part = (f"the range, rounded to whole patients, is {rng}"
                  + ("" if range_holds else
                     f", not {fmt_num(claimed_low, 0)} to {fmt_num(claimed_high, 0)}"))
    text = (f"Across the {values.size} trials the median number needed to screen is "
            f"{fmt_num(median, 1)} (range {fmt_num(low, 1)} to {fmt_num(high, 1)}). The claim "
            f"of about {fmt_num(claimed_median, 0)} ({fmt_num(claimed_low, 0)} to "
            f"{fmt_num(claimed_high, 0)}) is taken to hold when the median is {within} and "
            "the range, rounded to whole patients, matches; ")
    if holds:
        text += f"it holds: {median_part}, and {range_part}."
    elif range_holds:
        text += f"it holds for the range but not for the median: {median_part}."
    elif median_holds:
        text += f"it holds for the median but not for the range: {range_part}."
    else:
        text += f"it does not hold: {median_part}, and {range_part}."
    return {"median": median, "low": low, "high": high, "median_holds": median_holds,
            "range_holds": range_holds, "holds": holds, "tolerance": tolerance,
            "text": text}


def _interval(pooled: dict[str, Any], k: int | None) -> tuple[float, float, str]:
    """The yield's interval to plan with: the 95% prediction interval when ``k >= 3``
    and the result has one, else the 95% confidence interval."""
    pi_lo, pi_hi = pooled.get("pi_lower"), pooled.get("pi_upper")
    if (k is not None and k >= 3 and pi_lo is not None and pi_hi is not None
            and math.isfinite(float(pi_lo)) and math.isfinite(float(pi_hi))):
        return float(pi_lo), float(pi_hi), "prediction"
    return float(pooled["ci_lower"]), float(pooled["ci_upper"]), "confidence"


def feasibility(pooled_yield: dict[str, Any], p0: float, p1: float, alpha: float,
                beta: float, *, k: int | None = None,
                treated: dict[str, Any] | None = None, k_treated: int | None = None,
                endpoint: str = "objective_response") -> dict[str, Any]:
    """A'Hern single-stage design and the patients to screen for it.

    Parameters
    ----------
    pooled_yield : dict
        The ``pooled`` block of the screening-yield result (proportion scale).
    p0, p1, alpha, beta : float
        Uninteresting and target rates of the end point, type I and II error rates.
    k : int, optional
        Trials behind the yield. With ``k >= 3`` the yield's 95% prediction interval
        (where a new trial's yield is expected) is planned with; otherwise, or without
        one, its 95% confidence interval.
    treated : dict, optional
        The pooled share of eligible patients who were treated (``estimate, ci_lower,
        ci_upper``, and ``pi_lower, pi_upper``), from the registry's
        ``treated_among_eligible`` rows; None when the registry has none.
    k_treated : int, optional
        Trials behind ``treated``.  Its 95% confidence interval is used (the average
        share treated), never its prediction interval, which from a handful of trials
        spans nearly 0% to 100%.
    endpoint : str, default "objective_response"
        Registry outcome the design's rates refer to (``pfr6``: progression-free at
        6 months).

    Returns
    -------
    dict
        ``design`` (n, r, actual alpha and power), ``nns`` (number needed to screen
        for one eligible patient) and ``to_screen`` (for the design's n eligible
        patients), each with the interval implied by the yield's interval
        (``interval``: ``"prediction"`` or ``"confidence"``); with ``treated``, also
        ``to_screen_treated`` (screened to treat n patients, the yield times the share
        treated, the interval combining both intervals' limits) and ``eligible_needed``.
    """
    from evidence.stats.design import ahern, number_needed_to_screen, patients_to_screen

    design = ahern(p0, p1, alpha=alpha, beta=beta)
    y = float(pooled_yield["estimate"])
    lo, hi, kind = _interval(pooled_yield, k)
    out: dict[str, Any] = {
        "design": design.to_dict(),
        "nns": number_needed_to_screen(y, lo, hi).to_dict(),
        "to_screen": patients_to_screen(design.n, y, lo, hi).to_dict(),
        "interval": kind, "k": k, "endpoint": endpoint,
        "p0": p0, "p1": p1, "alpha": alpha, "beta": beta,
        "treated": None, "to_screen_treated": None, "eligible_needed": None,
    }
    if treated is not None:
        t = float(treated["estimate"])
        # the average share treated (its CI): with a handful of trials, some treating
        # every eligible patient, its prediction interval spans almost 0% to 100%
        t_lo, t_hi, t_kind = _interval(treated, None)
        out["treated"] = {"estimate": t, "lower": t_lo, "upper": t_hi, "interval": t_kind,
                          "k": k_treated}
        out["eligible_needed"] = patients_to_screen(design.n, t, t_lo, t_hi).to_dict()
        out["to_screen_treated"] = patients_to_screen(design.n, y * t, lo * t_lo,
                                                      hi * t_hi).to_dict()
    return out


def describe_feasibility(f: dict[str, Any]) -> str:
    """The feasibility calculation in words: the design and its end point, the patients
    to screen at the yield's prediction (or confidence) interval, and after the loss
    between eligibility and treatment that the registry records."""
    from evidence.book.names import outcome_verb

    d, nns, scr = f["design"], f["nns"], f["to_screen"]

    def whole(x: Any) -> str:
        return "an unbounded number of" if x is None or x == math.inf else f"{int(x):,}"

    def rng(block: dict[str, Any]) -> str:
        return f"{whole(block['ci_lower_ceil'])} to {whole(block['ci_upper_ceil'])}"

    interval = ("95% prediction interval, where a new trial's yield is expected"
                if f.get("interval") == "prediction" else "95% CI")
    endpoint = f.get("endpoint") or "objective_response"
    text = (f"An exact single-stage phase II design (A'Hern) whose end point is the share of "
            f"treated patients who {outcome_verb(endpoint)}, rejecting "
            f"{fmt_pct(f['p0'], 0)} in favour of {fmt_pct(f['p1'], 0)} with a one-sided "
            f"α of {fmt_num(f['alpha'], 2)} and power {fmt_pct(1 - f['beta'], 0)}, needs "
            f"n = {d['n']} treated patients, of whom at least r = {d['r']} must reach the end "
            f"point (actual α {fmt_num(d['alpha'], 3)}, power {fmt_pct(d['power'], 1)}). At "
            f"the pooled screening yield, one eligible patient is found per "
            f"{fmt_num(nns['estimate'], 1)} screened ({interval}: "
            f"{fmt_num(nns['ci_lower'], 1)} to {fmt_num(nns['ci_upper'], 1)}), so finding "
            f"{d['n']} eligible patients means screening about "
            f"{whole(scr['estimate_ceil'])} patients ({rng(scr)}).")
    t, both = f.get("treated"), f.get("to_screen_treated")
    if t is None or both is None:
        text += (" The registry records no count of eligible patients who were treated, so "
                 "the loss between eligibility and treatment is not accounted for.")
        return text
    t_int = "95% prediction interval" if t["interval"] == "prediction" else "95% CI"
    trials = (f"the {t['k']} trials of the registry that report it" if t.get("k")
              else "the registry")
    text += (f" Not every eligible patient is treated: in {trials}, "
             f"{fmt_pct(t['estimate'], 0)} of eligible patients were treated ({t_int} "
             f"{fmt_pct(t['lower'], 0)} to {fmt_pct(t['upper'], 0)}). Treating {d['n']} "
             f"patients therefore needs about {whole(f['eligible_needed']['estimate_ceil'])} "
             f"eligible patients and about {whole(both['estimate_ceil'])} screened "
             f"({rng(both)}, combining the limits of both intervals).")
    return text
