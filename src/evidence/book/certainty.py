"""GRADE certainty of the evidence: the library proposes, the reviewers decide.

For each outcome of the summary of findings the library proposes a judgement for each of
GRADE's five domains from explicit rules (below); ``data/certainty.csv`` records the
reviewers' final judgement of each domain and, wherever it departs from the proposal, why.
A domain judged ``as_proposed`` accepts the rule on whatever the data are, so when a new
study changes the proposal the judgement follows it (and *What's new* reports a changed
certainty); an explicit judgement stays, and once the data make it a departure the build
stops until the reviewers give a reason or a new judgement. The certainty is the starting
level less one step per serious and two per very serious domain, never below very low.
The book shows both, so every departure is visible.

Starting level (by design of the evidence, GRADE):

- randomised comparisons: high;
- how often something occurs (HER2 discordance between tissue and CTCs, HER2 change
  between primary tumour and recurrence, screening yield) and prognostic hazard ratios,
  from cohort studies: high (GRADE's guidance for overall prognosis and prognostic
  factors, Iorio et al. 2015, Foroutan et al. 2020: observational cohorts are the
  appropriate design for these questions);
- response to treatment in single-arm trials and non-randomised comparisons: low.

Proposal rules:

- *risk of bias*: the share of patients (of studies, where the registry records no
  patient numbers) in studies at high overall risk (the tool's own rule,
  :mod:`evidence.registry.appraisal`): at least 75% very serious; at least 25%, or half or
  more in studies not at low risk, serious; otherwise not serious;
- *inconsistency*: a single study is not assessable (not serious); I² below 50% not
  serious; from 50% serious; from 75% with a prediction interval wider than 50 percentage
  points (a proportion) or spanning both 0.5 and 2 (a ratio) very serious;
- *indirectness*: the pooled studies differ in disease setting (early and metastatic) or
  in the definition of a HER2-positive CTC: serious (the pooled value then answers a mix of
  questions); otherwise not serious;
- *imprecision*: a proportion's 95% CI wider than 30 percentage points very serious,
  wider than 10 points or from fewer than 100 patients serious; a ratio's CI that spans
  both 0.75 and 1.25 very serious, that includes 1 or rests on fewer than 300 patients
  (or on patient numbers the registry does not record) serious;
- *publication bias*: with fewer than 10 studies not assessable (not serious, noted as
  undetected); with 10 or more, Egger's regression test (metafor's ``regtest``) at
  p < 0.10 serious.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evidence.book.text import fmt_num, fmt_pct, plural
from evidence.registry.appraisal import AS_PROPOSED, CERTAINTY_DOMAINS, CERTAINTY_JUDGEMENTS

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DOMAINS",
    "DOMAIN_NAMES",
    "JUDGEMENTS",
    "LEVELS",
    "SYMBOLS",
    "Certainty",
    "CertaintyError",
    "Evidence",
    "Proposal",
    "check_outcomes",
    "decide",
    "propose",
    "start_level",
]

DOMAINS: tuple[str, ...] = CERTAINTY_DOMAINS
DOMAIN_NAMES: dict[str, str] = {
    "risk_of_bias": "Risk of bias", "inconsistency": "Inconsistency",
    "indirectness": "Indirectness", "imprecision": "Imprecision",
    "publication_bias": "Publication bias"}
JUDGEMENTS: tuple[str, ...] = CERTAINTY_JUDGEMENTS
_STEPS = {"not_serious": 0, "serious": 1, "very_serious": 2}
#: Certainty levels, best first.
LEVELS: tuple[str, ...] = ("high", "moderate", "low", "very low")
#: GRADE's symbols for each level.
SYMBOLS: dict[str, str] = {"high": "⊕⊕⊕⊕", "moderate": "⊕⊕⊕◯", "low": "⊕⊕◯◯",
                           "very low": "⊕◯◯◯"}
#: Kinds of evidence (outcome_types.csv ``appraisal``, comparisons split by design).
KINDS: tuple[str, ...] = ("single_arm", "agreement", "prognosis", "randomised",
                          "non_randomised")


class CertaintyError(ValueError):
    """``certainty.csv`` lacks a judgement, has an unknown outcome, or departs from a
    proposal without a reason."""


@dataclass(frozen=True)
class Evidence:
    """What the rules look at for one outcome.

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    scale : {"proportion", "ratio"}
    k : int
        Studies pooled (1: a single study).
    patients : dict
        Patients per study id.
    risk_of_bias : dict
        Overall risk-of-bias judgement per study id (None: not assessed).
    estimate, ci_lower, ci_upper, pi_lower, pi_upper : float
        On the reported scale (a proportion, or a ratio).
    i2 : float
        I² (%); NaN when not estimable.
    settings, cutoffs : tuple of str
        Distinct disease settings and CTC HER2 cut-off definitions of the studies.
    egger_p : float or None
        p-value of Egger's test (None below 10 studies).
    """

    kind: str
    scale: str
    k: int
    patients: dict[str, int]
    risk_of_bias: dict[str, str | None]
    estimate: float
    ci_lower: float
    ci_upper: float
    pi_lower: float = math.nan
    pi_upper: float = math.nan
    i2: float = math.nan
    settings: tuple[str, ...] = ()
    cutoffs: tuple[str, ...] = ()
    egger_p: float | None = None


@dataclass(frozen=True)
class Proposal:
    """The library's judgement of one domain and the rule's reason."""

    domain: str
    judgement: str
    reason: str


@dataclass(frozen=True)
class Certainty:
    """The final GRADE assessment of one outcome."""

    outcome_id: str
    start: str
    proposals: dict[str, Proposal]
    final: dict[str, str]
    reasons: dict[str, str]
    level: str
    departures: tuple[str, ...] = field(default=())

    @property
    def symbol(self) -> str:
        """⊕⊕◯◯ etc."""
        return SYMBOLS[self.level]

    def downgrades(self) -> list[tuple[str, str, str]]:
        """(domain, judgement, reason) of every domain judged serious or very serious."""
        return [(d, self.final[d], self.reasons[d]) for d in DOMAINS
                if self.final[d] != "not_serious"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"outcome_id": self.outcome_id, "start": self.start, "level": self.level,
                "final": dict(self.final), "reasons": dict(self.reasons),
                "proposed": {d: {"judgement": p.judgement, "reason": p.reason}
                             for d, p in self.proposals.items()},
                "departures": list(self.departures)}


def start_level(kind: str) -> str:
    """The starting level of a kind of evidence (see the module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    return "low" if kind in ("single_arm", "non_randomised") else "high"


_HIGH = ("high", "serious", "critical")


def _shares(ev: Evidence) -> tuple[float, float, int, str]:
    """Shares of patients (of studies, when the registry records no patients) at high
    risk and not at low risk, the number at high risk, and what was counted."""
    total = sum(ev.patients.values())
    high = [s for s, j in ev.risk_of_bias.items() if j in _HIGH]
    not_low = [s for s, j in ev.risk_of_bias.items() if j not in ("low", None)]
    if total:
        return (sum(ev.patients.get(s, 0) for s in high) / total,
                sum(ev.patients.get(s, 0) for s in not_low) / total, len(high), "patients")
    k = max(len(ev.risk_of_bias), 1)
    return len(high) / k, len(not_low) / k, len(high), "studies"


def propose(ev: Evidence) -> dict[str, Proposal]:
    """The proposed judgement of each domain for one outcome (module docstring rules)."""
    out: dict[str, Proposal] = {}
    share, not_low, n_high, unit = _shares(ev)
    missing = [s for s, j in ev.risk_of_bias.items() if j is None]
    if missing:
        out["risk_of_bias"] = Proposal("risk_of_bias", "serious",
                                       f"{plural(len(missing), 'study is', 'studies are')} "
                                       "not appraised")
    else:
        j = ("very_serious" if share >= 0.75 else
             "serious" if share >= 0.25 or not_low >= 0.5 else "not_serious")
        reason = (f"{fmt_pct(share, 0)} of {unit} in {plural(n_high, 'study', 'studies')} at "
                  "high risk of bias")
        if share < 0.25 and not_low >= 0.5:
            reason += f"; {fmt_pct(not_low, 0)} in studies with some concerns or unclear risk"
        out["risk_of_bias"] = Proposal("risk_of_bias", j, reason)
    if ev.k < 2:
        out["inconsistency"] = Proposal("inconsistency", "not_serious",
                                        "single study: not assessable")
    else:
        i2 = ev.i2
        wide = _wide_prediction(ev)
        if not math.isnan(i2) and i2 >= 75 and wide:
            j = "very_serious"
        elif not math.isnan(i2) and i2 >= 50:
            j = "serious"
        else:
            j = "not_serious"
        out["inconsistency"] = Proposal(
            "inconsistency", j, f"I² = {fmt_num(i2, 0)}%" + (
                "; the prediction interval is wide" if wide else ""))
    mixed = []
    if len(ev.settings) > 1:
        mixed.append("disease settings (" + ", ".join(ev.settings) + ")")
    if len(ev.cutoffs) > 1:
        mixed.append(f"{len(ev.cutoffs)} definitions of a HER2-positive CTC")
    out["indirectness"] = Proposal(
        "indirectness", "serious" if mixed else "not_serious",
        "the studies mix " + " and ".join(mixed) if mixed
        else "the studies answer the question as asked")
    out["imprecision"] = _imprecision(ev)
    if ev.k < 10 or ev.egger_p is None:
        out["publication_bias"] = Proposal(
            "publication_bias", "not_serious",
            f"not assessable with {plural(ev.k, 'study', 'studies')} (fewer than 10): "
            "undetected, not excluded")
    else:
        j = "serious" if ev.egger_p < 0.10 else "not_serious"
        out["publication_bias"] = Proposal(
            "publication_bias", j, f"Egger's test p = {fmt_num(ev.egger_p, 3)}")
    return out


def _wide_prediction(ev: Evidence) -> bool:
    if math.isnan(ev.pi_lower) or math.isnan(ev.pi_upper) or ev.k < 3:
        return False
    if ev.scale == "proportion":
        return ev.pi_upper - ev.pi_lower > 0.5
    return ev.pi_lower < 0.5 and ev.pi_upper > 2.0


def _imprecision(ev: Evidence) -> Proposal:
    n = sum(ev.patients.values())
    if not n:
        spans = ev.ci_lower < 0.75 and ev.ci_upper > 1.25
        return Proposal("imprecision", "very_serious" if spans else "serious",
                        f"95% CI {fmt_num(ev.ci_lower, 2)} to {fmt_num(ev.ci_upper, 2)}; the "
                        "registry records no patient numbers for the optimal information "
                        "size")
    if ev.scale == "proportion":
        width = ev.ci_upper - ev.ci_lower
        what = f"95% CI {fmt_num(100 * width, 0)} percentage points wide; {n} patients"
        j = ("very_serious" if width > 0.30 else
             "serious" if width > 0.10 or n < 100 else "not_serious")
        return Proposal("imprecision", j, what)
    spans = ev.ci_lower < 0.75 and ev.ci_upper > 1.25
    includes = ev.ci_lower <= 1.0 <= ev.ci_upper
    j = ("very_serious" if spans else
         "serious" if includes or n < 300 else "not_serious")
    return Proposal("imprecision", j, f"95% CI {fmt_num(ev.ci_lower, 2)} to "
                    f"{fmt_num(ev.ci_upper, 2)}; {n} patients")


def decide(outcome_id: str, kind: str, proposals: Mapping[str, Proposal],
           file_rows: pd.DataFrame) -> Certainty:
    """The final assessment of one outcome from ``certainty.csv``'s rows for it.

    Raises
    ------
    CertaintyError
        A domain without a row, a judgement outside :data:`JUDGEMENTS` (or
        ``as_proposed``, which takes the proposal), a downgrade without a reason, or a
        departure from the proposal without a reason.
    """
    rows = file_rows[file_rows["outcome_id"] == outcome_id]
    final: dict[str, str] = {}
    reasons: dict[str, str] = {}
    departures = []
    for domain in DOMAINS:
        row = rows[rows["domain"] == domain]
        if len(row) != 1:
            raise CertaintyError(f"data/certainty.csv: {outcome_id!r} needs exactly one row "
                                 f"for {domain!r}, found {len(row)}")
        judgement, reason = str(row["judgement"].iloc[0]), str(row["reason"].iloc[0]).strip()
        proposal = proposals[domain]
        if judgement == AS_PROPOSED:  # the reviewers accept the rule, on whatever data
            judgement = proposal.judgement
        if judgement not in JUDGEMENTS:
            raise CertaintyError(f"data/certainty.csv: {outcome_id!r} {domain}: "
                                 f"{judgement!r} is not one of "
                                 f"{', '.join((*JUDGEMENTS, AS_PROPOSED))}")
        if judgement != proposal.judgement:
            departures.append(domain)
            if not reason:
                raise CertaintyError(
                    f"data/certainty.csv: {outcome_id!r} {domain}: the final judgement "
                    f"{judgement!r} departs from the proposal {proposal.judgement!r} "
                    f"({proposal.reason}) and gives no reason")
        if judgement != "not_serious" and not reason and not proposal.reason:
            raise CertaintyError(f"data/certainty.csv: {outcome_id!r} {domain}: a downgrade "
                                 "needs a reason")
        final[domain] = judgement
        reasons[domain] = reason or proposal.reason
    start = start_level(kind)
    steps = sum(_STEPS[final[d]] for d in DOMAINS)
    level = LEVELS[min(LEVELS.index(start) + steps, len(LEVELS) - 1)]
    return Certainty(outcome_id, start, dict(proposals), final, reasons, level,
                     tuple(departures))


def check_outcomes(file_rows: pd.DataFrame, outcome_ids: Sequence[str]) -> None:
    """Every row of ``certainty.csv`` names an outcome of the summary of findings.

    Raises
    ------
    CertaintyError
        A row for an outcome the summary does not show (a stale or mistyped id).
    """
    unknown = sorted(set(file_rows["outcome_id"]) - set(outcome_ids))
    if unknown:
        raise CertaintyError(f"data/certainty.csv: outcome_id {unknown} not in the summary of "
                             f"findings (its outcomes: {', '.join(outcome_ids)})")
