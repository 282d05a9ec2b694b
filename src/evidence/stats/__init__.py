"""The statistics wing: a port of R's metafor, numpy and scipy only.

- :mod:`~evidence.stats.vocabulary` (measure and method codes) and
  :mod:`~evidence.stats.checks` (argument checks, errors);
- :mod:`~evidence.stats.distributions`, :mod:`~evidence.stats.transforms`;
- :mod:`~evidence.stats.effects` (``escalc``), :mod:`~evidence.stats.pooling` (``rma``),
  :mod:`~evidence.stats.glmm` (``rma.glmm``), :mod:`~evidence.stats.twoarm`
  (Mantel-Haenszel), :mod:`~evidence.stats.regression`, :mod:`~evidence.stats.subgroups`,
  :mod:`~evidence.stats.sensitivity` (``leave1out``, ``cumul``), :mod:`~evidence.stats.proportions`;
- :mod:`~evidence.stats.bayes` (Bayesian random-effects meta-analysis by deterministic
  integration: bayesmeta's normal-normal model and the binomial-normal model);
- :mod:`~evidence.stats.design` (A'Hern, screening) and :mod:`~evidence.stats.transitions`
  (transition tables a report leaves incomplete).

Results are frozen dataclasses (:mod:`~evidence.stats.results`); nothing here reads files,
prints, plots or imports pandas.
"""
