"""Result JSONs of the two reproducible templates and the EVIDENCE lines R would print
for them (shared by tests/book/test_reproduce.py and test_provenance.py)."""

from __future__ import annotations

import json
import math

import pandas as pd

from evidence.book import hazard_ratios, reproduce
from evidence.book.pooled import pool_table
from evidence.book.reproduce import (
    MARKER,
    compare_values,
    expected_values,
    parse_output,
    r_script,
    tolerances,
)

#: Registry text that would break out of an R string literal if written unescaped.
HOSTILE = 'Evil "2020" \\ back")); system("touch /tmp/pwned"); x <- ("\nnext line é'


def studies(labels: list[str] | None = None, counts=((1, 14), (0, 22), (1, 11), (4, 8),
                                                    (2, 30))) -> pd.DataFrame:
    n = len(counts)
    labels = labels or [f"Study {i}" for i in range(n)]
    return pd.DataFrame({"study_id": [f"s{i}" for i in range(n)], "label": labels,
                         "year": [2010 + i for i in range(n)],
                         "events": [e for e, _ in counts], "total": [t for _, t in counts]})


def proportion_result(table: pd.DataFrame | None = None, **model) -> dict:
    """A result JSON as the pool_proportions template writes it (through JSON)."""
    from evidence.stats.results import jsonable

    pa = pool_table(studies() if table is None else table,
                    **({"method": "GLMM", "test": "t"} | model))
    out = {"analysis_id": "orr", "outcome": "objective_response", **pa.to_json(),
           "bayes": [{"tau_prior": "halfnormal(0.5)"}]}
    return json.loads(json.dumps(jsonable(out)))


def hazard_result() -> dict:
    """A result JSON as the hazard_ratios template writes it."""
    from evidence.stats.results import jsonable

    table = pd.DataFrame({"study_id": ["a", "b", "a"], "adjusted": ["no", "no", "yes"],
                          "hr": [0.321, 0.48, 0.383], "hr_lower": [0.156, None, 0.166],
                          "hr_upper": [0.62, None, 0.831], "p_value": [0.0011, 0.2, 0.019]})
    pooled, _ = hazard_ratios.split_by_adjustment(table, "no")
    es = hazard_ratios.hazard_ratio_effects(pooled)
    fit_re, fit_fe = hazard_ratios.pool_hazard_ratios(es, "adhoc")
    out = {"analysis_id": "pfs", "measure": "HR", "method": "REML", "test": "adhoc",
           "pooled_adjusted": "no", "k": es.k,
           "studies": [{"study_id": s, "yi": y, "vi": v}
                       for s, y, v in zip(es.study_ids, es.yi, es.vi, strict=True)],
           "model": fit_re.model_dict(), "pooled": fit_re.pooled().to_dict(),
           "common_effect": {"model": fit_fe.model_dict(), "pooled": fit_fe.pooled().to_dict()}}
    return json.loads(json.dumps(jsonable(out)))


def lines_of(values: dict, scale=lambda key, v: v) -> list[str]:
    """The EVIDENCE lines R would print for ``values`` (NaN as NA), optionally changed."""
    out = [f"{MARKER} version R 4.2.2", f"{MARKER} version metafor 3.8.1", "other output"]
    for (fit, quantity), v in values.items():
        v = scale((fit, quantity), v)
        out.append(f"{MARKER} {fit} {quantity} " + ("NA" if math.isnan(v) else repr(float(v))))
    return out


def entry_for(result: dict, aid: str = "orr", scale=lambda key, v: v) -> dict:
    exp = expected_values(result)
    lines = lines_of(exp, scale)
    diffs = compare_values(exp, lines, tolerances(result, exp))
    return reproduce.summarise(aid, result, diffs, parse_output(lines),
                               r_script(result, f"{aid}.csv", aid))
