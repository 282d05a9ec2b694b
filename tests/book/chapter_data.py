"""Reference values and registry-like rows shared by the tests of the chapter modules.

Reference values come from outside the library:

* R 4.2.2 with metafor 3.8-1 (the script is reproduced in ``R_SCRIPT`` below and
  its printed values are pinned in ``R``): ``escalc`` RR/OR/RD with their Wald
  limits (``summary(escalc(...))``), ``fisher.test``, ``binom.test`` (exact
  Clopper-Pearson limits), ``chisq.test`` and ``rma(yi, vi, method=...)`` on log
  hazard ratios.
* Closed forms worked out by hand (the Shi 2023 transition table: README of
  ``data/``), brute-force enumeration and scipy's ``fisher_exact``.

The numbers are those of the registry (Shi 2023, Treat CTC, Verschoor 2024, Zhang
2016, Jacot 2025), typed here so that the tests do not depend on ``data/``.
"""


from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd

R_SCRIPT = r"""
library(metafor)  # R 4.2.2 Patched (2022-11-10 r83330), metafor 3.8.1
tabs <- list(treat=c(5,31,4,32), orr=c(4,8,5,25), pfr6=c(4,8,14,25), dcr=c(6,8,15,25))
for (nm in names(tabs)) { t <- tabs[[nm]]
  for (m in c("RR","OR","RD")) {
    e <- escalc(m, ai=t[1], n1i=t[2], ci=t[3], n2i=t[4]); s <- summary(e)
    cat(nm, m, e$yi, e$vi, s$ci.lb, s$ci.ub, "\n") }
  cat(nm, fisher.test(matrix(c(t[1], t[2]-t[1], t[3], t[4]-t[3]), 2, byrow=TRUE))$p.value, "\n") }
yi <- log(c(0.321, 0.48))
sei <- c((log(0.62)-log(0.156))/(2*qnorm(0.975)), abs(log(0.48))/qnorm(1-0.2/2))
for (m in c("REML","FE")) { r <- rma(yi, sei^2, method=m); cat(m, r$b, r$se, r$tau2, r$QE, "\n") }
fisher.test(matrix(c(54,81,40,72),2,byrow=TRUE))$p.value
summary(escalc("RD", ai=54, n1i=135, ci=40, n2i=112))
chisq.test(matrix(c(24,65,28,64,42,24),ncol=2,byrow=TRUE))
binom.test(25, 51); binom.test(94, 247); binom.test(19, 125); binom.test(35, 125)
chisq.test(matrix(c(23,92,20,30,35,47),nrow=2,byrow=TRUE))
chisq.test(matrix(c(19,48,22,22,42,28,12,37,17),nrow=3,byrow=TRUE))
"""

# yi, vi, ci.lb, ci.ub (measure scale), Fisher p
R = {
    ("treat", "RR"): (0.254892249629, 0.386491935484, -0.963587481303, 1.47337198056),
    ("treat", "OR"): (0.297251523468, 0.524175824176, -1.12176216335, 1.71626521029),
    ("treat", "RD"): (0.0362903225806, 0.00778170276363, -0.136605862228, 0.209186507389),
    ("orr", "RR"): (0.916290731874, 0.285, -0.130043709831, 1.96262517358),
    ("orr", "OR"): (1.38629436112, 0.75, -0.311084239994, 3.08367296223),
    ("orr", "RD"): (0.3, 0.03765, -0.0803037267752, 0.680303726775),
    ("pfr6", "RR"): (-0.113328685307, 0.156428571429, -0.888515060009, 0.661857689395),
    ("pfr6", "OR"): (-0.241162056817, 0.662337662338, -1.83626169485, 1.35393758122),
    ("pfr6", "RD"): (-0.06, 0.041106, -0.457375145528, 0.337375145528),
    ("dcr", "RR"): (0.223143551314, 0.0683333333333, -0.28920368063, 0.735490783258),
    ("dcr", "OR"): (0.69314718056, 0.833333333333, -1.09604696316, 2.48234132428),
    ("dcr", "RD"): (0.15, 0.0330375, -0.206247380045, 0.506247380045),
}
R_FISHER = {"treat": 0.732280763795, "orr": 0.169504577736, "pfr6": 1.0,
            "dcr": 0.677561963435}
TABLES = {"treat": (5, 31, 4, 32), "orr": (4, 8, 5, 25), "pfr6": (4, 8, 14, 25),
          "dcr": (6, 8, 15, 25)}
R_HR_VI = (0.123912769009, 0.328007271057)
R_HR_FIT = {"REML": (-1.02599446156, 0.299894821388, 0.0, 0.358208243053),
            "FE": (-1.02599446156, 0.299894821388, 0.0, 0.358208243053)}
R_BINOM = {(25, 51): (0.347527962995, 0.634042860329),
           (94, 247): (0.319754354641, 0.444282803469),
           (19, 125): (0.0940648307252, 0.227147395996),
           (35, 125): (0.203404298213, 0.367322038558),
           (42, 125): (0.254020693021, 0.425952171976),
           (44, 122): (0.275716134306, 0.452532487137)}
R_HR_SUBGROUP = {"fisher_p": 0.512747191612, "rd": 0.0428571428571,
                 "rd_lb": -0.0784027875337, "rd_ub": 0.164117073248}
R_RECURRENCE_CHISQ = (25.2301299174, 2, 3.32159669409e-06)

TOL = dict(rel=1e-9, abs=1e-12)


# ------------------------------------------------------------------------ registry-like rows


def shi_rows(zero_to_low: int = 25, total: int = 247) -> pd.DataFrame:
    """Shi 2023 as reported: three cells, all margins, the total (data/transitions.csv)."""
    rows = [("zero", "low", zero_to_low), ("positive", "low", 19), ("low", "low", 83),
            ("zero", "any", 51), ("low", "any", 125), ("positive", "any", 71),
            ("any", "zero", 53), ("any", "low", 127), ("any", "positive", 67),
            ("any", "any", total)]
    return pd.DataFrame({"study_id": "shi2023", "subgroup": "",
                         "from_category": [r[0] for r in rows],
                         "to_category": [r[1] for r in rows],
                         "count": [r[2] for r in rows], "note": ""})


def shi_closed_form(z: int) -> np.ndarray:
    """The table for zero -> zero = z, solved by hand from the reported numbers."""
    return np.array([[z, 25, 26 - z], [71 - 2 * z, 83, 2 * z - 29], [z - 18, 19, 70 - z]])


def table_rows(table: np.ndarray, reported: np.ndarray, cats: tuple[str, ...],
               total: bool = True) -> pd.DataFrame:
    recs = []
    for i, a in enumerate(cats):
        for j, b in enumerate(cats):
            if reported[i, j]:
                recs.append((a, b, int(table[i, j])))
        recs.append((a, "any", int(table[i].sum())))
    for j, b in enumerate(cats):
        recs.append(("any", b, int(table[:, j].sum())))
    if total:
        recs.append(("any", "any", int(table.sum())))
    return pd.DataFrame({"study_id": "s", "subgroup": "", "from_category": [r[0] for r in recs],
                         "to_category": [r[1] for r in recs], "count": [r[2] for r in recs]})


def brute_force(table: np.ndarray, reported: np.ndarray, discordant: int | None) -> set:
    """Every table of the same size and total with the same margins, reported cells and
    trace, by enumerating all compositions of the total into n*n cells."""
    n = table.shape[0]
    total = int(table.sum())
    out = set()
    for bars in itertools.combinations(range(total + n * n - 1), n * n - 1):
        cells = np.diff([-1, *bars, total + n * n - 1]) - 1
        cand = cells.reshape(n, n)
        if not (cand.sum(axis=1) == table.sum(axis=1)).all():
            continue
        if not (cand.sum(axis=0) == table.sum(axis=0)).all():
            continue
        if not (cand[reported] == table[reported]).all():
            continue
        if discordant is not None and total - np.trace(cand) != discordant:
            continue
        out.add(tuple(cand.ravel().tolist()))
    return out


# ------------------------------------------------------------------------ parse_subgroup


def conversion_rows() -> pd.DataFrame:
    recs = [("", 94, 247, ""), ("hormone_receptor=positive", 54, 135, "40.0% x 135"),
            ("hormone_receptor=negative", 40, 112, "35.7% x 112"),
            ("recurrence=locoregional", 24, 89, "27.0% x 89"),
            ("recurrence=distant", 28, 92, "30.4% x 92"), ("recurrence=contralateral", 42, 66, ""),
            ("primary_her2=low", 42, 125, "125 - 83"), ("a=1;b=2", 1, 2, "")]
    return pd.DataFrame({"study_id": "shi2023", "outcome": "tissue_conversion",
                         "subgroup": [r[0] for r in recs], "events": [r[1] for r in recs],
                         "total": [r[2] for r in recs], "derived": [r[3] for r in recs]})


def outcome_rows() -> pd.DataFrame:
    recs = [("verschoor2024", "trastuzumab_taxane", "objective_response", 4, 8, "experimental"),
            ("verschoor2024", "taxane_only", "objective_response", 5, 25, "control"),
            ("verschoor2024", "trastuzumab_taxane", "pfr6", 4, 8, "experimental"),
            ("verschoor2024", "taxane_only", "pfr6", 14, 25, "control"),
            ("verschoor2024", "all", "her2_ctc_screening_yield", 8, 64, ""),
            ("pestrin2012", "all", "objective_response", 0, 7, "experimental"),
            ("ignatiadis2018", "trastuzumab", "ctc_persistence", 5, 31, "experimental"),
            ("ignatiadis2018", "observation", "ctc_persistence", 4, 32, "control"),
            ("ignatiadis2018", "all", "ctc_detection", 95, 1317, "")]
    return pd.DataFrame(recs, columns=["study_id", "arm", "outcome", "events", "total",
                                       "arm_role"]).assign(subgroup="", quote="q")


def study_rows() -> pd.DataFrame:
    return pd.DataFrame({
        "study_id": ["verschoor2024", "ignatiadis2018", "fehm2021", "pestrin2012"],
        "label": ["Verschoor 2024", "Ignatiadis 2018 (Treat CTC)", "Fehm 2021 (DETECT III)",
                  "Pestrin 2012"],
        "randomized": ["no", "yes", "yes", "no"],
        "design": ["single-arm phase II", "randomized phase II", "randomized phase III",
                   "single-arm phase II"],
        "intervention": ["trastuzumab + taxane", "trastuzumab vs observation",
                         "lapatinib + SOC vs SOC", "lapatinib"],
        "notes": ["", "", "no counts in the abstract", ""],
        "tissue_her2": ["negative", "negative", "negative", "negative"],
        "setting": ["metastatic", "early", "metastatic", "metastatic"],
        "her2_cutoff": ["x", "y", "z", "w"]})


def effect_rows() -> pd.DataFrame:
    return pd.DataFrame({
        "study_id": ["zhang2016", "zhang2016", "jacot2025", "other"],
        "outcome": "pfs",
        "comparison": ["ctc_her2_positive_vs_negative"] * 3 + ["age_continuous"],
        "subgroup": "",
        "estimate": [0.321, 0.383, 0.48, 0.98],
        "ci_lower": [0.156, 0.166, np.nan, 0.95],
        "ci_upper": [0.62, 0.831, np.nan, 1.01],
        "p_value": [0.0011, 0.019, 0.2, 0.27],
        "adjusted": ["no", "yes", "no", "no"],
        "note": ["univariate", "multivariate", "no CI given", ""]})


def plain(markdown: str) -> str:
    """Markdown from :func:`evidence.book.text.escape_markdown` read back as the text it
    renders (backslash escapes of punctuation removed), for comparing prose in tests."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def proportion_table(events: list[int], totals: list[int]) -> pd.DataFrame:
    """A pooled chapter's study table: ``Study i`` with ``events[i]`` of ``totals[i]``."""
    k = len(events)
    return pd.DataFrame({"study_id": [f"s{i}" for i in range(k)],
                         "label": [f"Study {i}" for i in range(k)],
                         "year": [2000 + i for i in range(k)], "events": events,
                         "total": totals})
