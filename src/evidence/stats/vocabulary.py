"""The one vocabulary of the statistics: metafor's measure and method codes.

Every module that accepts a ``measure``, a ``method``, a zero-cell rule ``to`` or a test
takes its allowed values from here and checks them with the functions below, so that a
code means the same everywhere and is rejected with the same message everywhere.

=================  ========================================================
name               codes
=================  ========================================================
single proportion  ``PLO`` (logit), ``PFT`` (Freeman-Tukey), ``PAS`` (arcsine),
                   ``PR`` (raw proportion)
two groups         ``RR`` (log risk ratio), ``OR`` (log odds ratio),
                   ``RD`` (risk difference)
generic            ``HR`` (log hazard ratio, from a reported ratio)
common effect      ``FE`` and metafor's aliases ``EE``, ``CE``
tau2 estimators    ``DL``, ``REML``, ``PM``, ``ML``, ``HE``, ``SJ``
models             the rma methods and ``GLMM`` (binomial-normal, ``rma.glmm``)
zero cells         ``to``: ``all``, ``only0``, ``if0all``, ``none`` (with ``add``)
=================  ========================================================
"""

from __future__ import annotations

__all__ = [
    "COMMON_EFFECT",
    "DIFFERENCE_MEASURES",
    "ESCALC_MEASURES",
    "GLMM_TESTS",
    "MEASURES",
    "METHODS",
    "NO_ADD_BY_DEFAULT",
    "PROPORTION_MEASURES",
    "RATIO_MEASURES",
    "RMA_METHODS",
    "TAU2_ESTIMATORS",
    "TESTS",
    "TWO_GROUP_MEASURES",
    "ZERO_HANDLING",
    "check_choice",
    "check_measure",
    "check_method",
    "check_to",
    "is_common_effect",
    "resolve_test",
]

#: Single-proportion measures (``escalc(measure, xi=, ni=)``).
PROPORTION_MEASURES: tuple[str, ...] = ("PLO", "PFT", "PAS", "PR")
#: Two-group measures of a 2 x 2 table (``escalc(measure, ai=, bi=, ci=, di=)``).
TWO_GROUP_MEASURES: tuple[str, ...] = ("RR", "OR", "RD")
#: Measures that ``escalc`` computes from counts.
ESCALC_MEASURES: tuple[str, ...] = PROPORTION_MEASURES + TWO_GROUP_MEASURES
#: Ratio measures: modelled on the log scale, shown on a log axis with the null at 1.
RATIO_MEASURES: tuple[str, ...] = ("RR", "OR", "HR")
#: Difference measures: the null is 0.
DIFFERENCE_MEASURES: tuple[str, ...] = ("RD",)
#: Every measure a model, a figure or a result may carry.
MEASURES: tuple[str, ...] = PROPORTION_MEASURES + RATIO_MEASURES + DIFFERENCE_MEASURES

#: The common-effect model and metafor's aliases for it.
COMMON_EFFECT: tuple[str, ...] = ("FE", "EE", "CE")
#: Random-effects estimators of tau2 (``rma(method=...)``).
TAU2_ESTIMATORS: tuple[str, ...] = ("DL", "REML", "PM", "ML", "HE", "SJ")
#: Methods ``rma`` accepts.
RMA_METHODS: tuple[str, ...] = COMMON_EFFECT + TAU2_ESTIMATORS
#: Models a pooled proportion can use: the rma methods (``FE`` for the common effect)
#: and the binomial-normal GLMM.
METHODS: tuple[str, ...] = ("FE", *TAU2_ESTIMATORS, "GLMM")

#: Tests and intervals of ``rma`` (metafor's ``test``): the normal distribution, Student's
#: t with k - p df, Hartung-Knapp (t with the variance scaled by ``s2w``), and the ad hoc
#: Hartung-Knapp whose scaling is never below 1 (so its interval is never narrower than
#: the z interval; Röver, Knapp & Friede 2015).
TESTS: tuple[str, ...] = ("z", "t", "knha", "adhoc")
#: Tests of the GLMM (metafor's ``rma.glmm(test=)``).
GLMM_TESTS: tuple[str, ...] = ("z", "t")

#: Zero-cell rules (metafor's ``to``).
ZERO_HANDLING: tuple[str, ...] = ("all", "only0", "if0all", "none")
#: Measures for which metafor's default ``add`` is 0 (no continuity correction).
NO_ADD_BY_DEFAULT: tuple[str, ...] = ("PAS", "PFT")


def check_choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``; otherwise ``ValueError`` listing them.

    Parameters
    ----------
    name : str
        The argument's name, for the message (``"measure"``).
    value : object
        What was passed.
    allowed : tuple of str
        The codes accepted here.
    """
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(allowed)}")
    return value


def check_measure(measure: object, allowed: tuple[str, ...] = MEASURES) -> str:
    """A measure code among ``allowed`` (default: every measure)."""
    return check_choice("measure", measure, allowed)


def check_method(method: object, allowed: tuple[str, ...] = RMA_METHODS) -> str:
    """A method code among ``allowed`` (default: the methods of ``rma``)."""
    return check_choice("method", method, allowed)


def check_to(to: object) -> str:
    """A zero-cell rule (metafor's ``to``)."""
    return check_choice("to", to, ZERO_HANDLING)


def resolve_test(test: str | None, knha: bool = False) -> str:
    """The test of a fit: ``test`` when given (one of :data:`TESTS`), else ``"knha"`` for
    ``knha=True`` and ``"z"`` otherwise; ``knha=True`` with another test is an error."""
    if test is None:
        return "knha" if knha else "z"
    check_choice("test", test, TESTS)
    if knha and test != "knha":
        raise ValueError(f"knha=True contradicts test={test!r}; give one of them")
    return test


def is_common_effect(method: str) -> bool:
    """True for ``FE`` and its aliases ``EE`` and ``CE``."""
    return method in COMMON_EFFECT
