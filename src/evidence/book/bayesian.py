"""The Bayesian sensitivity analysis of a pooled proportion: the binomial-normal model with
its exact likelihood (:func:`evidence.stats.bayes.bayes_binomial`) under weakly
informative half-normal priors on the between-study standard deviation τ, shown beside
the primary analysis and never instead of it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from evidence.book.names import MEASURE_LABELS
from evidence.book.text import escape_markdown, fmt_ci, fmt_num, fmt_pct, join_names

if TYPE_CHECKING:
    import pandas as pd

    from evidence.book.pooled import ProportionAnalysis
    from evidence.stats.bayes import BayesResult

__all__ = [
    "MU_PRIOR",
    "BayesSensitivity",
    "bayes_panel_rows",
    "bayes_sensitivity",
    "describe_bayes",
    "posterior_figure",
]

#: The prior of the mean logit: normal with mean 0 and standard deviation 10 (wide: it
#: puts 95% of its mass on proportions between 2e-9 and 1 - 2e-9).
MU_PRIOR: tuple[str, float, float] = ("normal", 0.0, 10.0)


class BayesSensitivity:
    """The fits of one pooled proportion, one per half-normal scale of τ."""

    def __init__(self, scales: Sequence[float], fits: Sequence[BayesResult]) -> None:
        self.scales = tuple(float(s) for s in scales)
        self.fits = tuple(fits)

    def label(self, i: int) -> str:
        """``"Bayes, τ ~ half-normal(0.5)"``."""
        return f"Bayes, τ ~ half-normal({fmt_num(self.scales[i], 1)})"

    def to_json(self) -> list[dict[str, Any]]:
        """Per prior: its scale, the posterior of the pooled proportion and of τ, the
        posterior predictive proportion of a new study."""
        return [{"tau_prior": f.tau_prior, "mu_prior": f.mu_prior, "tau_scale": s,
                 "proportion": f.proportion.to_dict() if f.proportion else None,
                 "proportion_new": f.proportion_new.to_dict() if f.proportion_new else None,
                 "tau": f.tau.to_dict(), "notes": list(f.notes)}
                for s, f in zip(self.scales, self.fits, strict=True)]


def bayes_sensitivity(pa: ProportionAnalysis, tau_scales: Sequence[float]
                      ) -> BayesSensitivity | None:
    """Fit the binomial-normal model to the analysis's studies under each half-normal
    scale of τ (logit scale); None for a single study (nothing is pooled)."""
    from evidence.stats.bayes import bayes_binomial

    if pa.k < 2 or not tau_scales:
        return None
    s = pa.studies
    fits = [bayes_binomial(s["events"].to_numpy(), s["total"].to_numpy(),
                           tau_prior="halfnormal", tau_scale=float(scale), mu_prior=MU_PRIOR,
                           study_ids=list(s["study_id"]))
            for scale in tau_scales]
    return BayesSensitivity(tau_scales, fits)


#: Parameter names of the Bayesian fits (stats.bayes) in readers' words.
_PARAMETER_WORDS = {"proportion_new": "a new study's proportion",
                    "theta_new": "a new study's logit", "proportion": "the pooled proportion",
                    "mu": "the pooled logit", "tau": "τ"}


def reader_notes(notes: Sequence[str]) -> str:
    """A fit's notes for the panel, in readers' words; notes on the shortest intervals are
    left out, since the panel shows the central ones."""
    import re

    kept = [n for n in notes if "shortest interval" not in n]
    words = re.compile(r"\b(" + "|".join(sorted(_PARAMETER_WORDS, key=len, reverse=True))
                       + r")\b")
    return " ".join(words.sub(lambda m: _PARAMETER_WORDS[m.group(1)], n) for n in kept)


def bayes_panel_rows(bayes: BayesSensitivity | None) -> pd.DataFrame:
    """Rows for the estimator panel (:func:`evidence.book.pooled.panel_table` columns):
    posterior median and central 95% credible interval of the pooled proportion, the
    posterior predictive interval of a new study, the posterior median of τ²."""
    import pandas as pd

    rows = []
    for i, fit in enumerate(bayes.fits if bayes is not None else ()):
        p, new = fit.proportion, fit.proportion_new
        rows.append({
            "Measure": MEASURE_LABELS["PLO"], "Method": bayes.label(i), "Interval": "95% credible",
            "Pooled (95% CI)": f"{fmt_pct(p.median)} ({fmt_ci(p.central_lower, p.central_upper)})",
            "95% PI": fmt_ci(new.central_lower, new.central_upper) if fit.k >= 3 else "—",
            "τ²": fmt_num(fit.tau.median ** 2, 3), "I²": "—", "Note": reader_notes(fit.notes),
        })
    return pd.DataFrame(rows)


def describe_bayes(bayes: BayesSensitivity | None, primary: dict[str, Any], what: str) -> str:
    """The Bayesian sensitivity analysis in words, beside the primary estimate."""
    if bayes is None:
        return "With a single study there is nothing to pool, so no Bayesian analysis."
    parts = []
    for i, fit in enumerate(bayes.fits):
        p = fit.proportion
        prior = escape_markdown(bayes.label(i).split(", ", 1)[1])
        lead = f"an estimated {fmt_pct(p.median)} {what}" if i == 0 else fmt_pct(p.median)
        parts.append(f"{lead} (95% credible interval "
                     f"{fmt_ci(p.central_lower, p.central_upper)}) with {prior}")
    lows = [f.proportion.central_lower for f in bayes.fits]
    highs = [f.proportion.central_upper for f in bayes.fits]
    wider = min(lows) < primary["ci_lower"] and max(highs) > primary["ci_upper"]
    text = (f"A Bayesian binomial-normal model, with the exact likelihood, a wide normal "
            f"prior on the mean logit and weakly informative half-normal priors on the "
            f"between-study standard deviation τ, gives {join_names(parts)}, against "
            f"{fmt_pct(primary['estimate'])} "
            f"({fmt_ci(primary['ci_lower'], primary['ci_upper'])}) in the primary analysis.")
    text += (" The credible intervals are wider than the primary confidence interval: the "
             "prior lets τ be larger than the few studies can rule out." if wider else
             " The credible intervals are narrower than the primary confidence interval at "
             "one end or both: the half-normal prior keeps τ smaller than the few studies "
             "alone would allow, while the primary interval makes no such assumption.")
    text += (" The posterior below shows how the pooled proportion's uncertainty is "
             "shaped; it is a sensitivity analysis, not the primary result.")
    return text


def posterior_figure(bayes: BayesSensitivity | None, primary: dict[str, Any]) -> Any:
    """The posterior densities of the pooled proportion under each prior, with the
    primary estimate and its confidence interval marked (for a single study, a panel
    that says there is nothing to pool)."""
    from evidence.book.figures.posterior import nothing_pooled, posterior_densities

    if bayes is None:
        return nothing_pooled("A single study: no Bayesian pooling")
    curves = [(bayes.label(i), f.proportion_grid, f.proportion_density)
              for i, f in enumerate(bayes.fits)]
    return posterior_densities(curves, primary["estimate"], primary["ci_lower"],
                               primary["ci_upper"])
