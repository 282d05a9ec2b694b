"""Tests for :mod:`evidence.book.chapters`.

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
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure
from scipy.stats import fisher_exact

from evidence.book import chapters
from evidence.stats.pooling import rma

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


def test_parse_subgroup() -> None:
    assert chapters.parse_subgroup("") == {}
    assert chapters.parse_subgroup("hormone_receptor=positive") == {
        "hormone_receptor": "positive"}
    assert chapters.parse_subgroup("a=1;b=2") == {"a": "1", "b": "2"}
    with pytest.raises(ValueError, match="not key=value"):
        chapters.parse_subgroup("hormone_receptor")
    with pytest.raises(ValueError, match="twice"):
        chapters.parse_subgroup("a=1;a=2")


# ------------------------------------------------------------------------ transition_bounds


def test_shi_tables_match_the_hand_solution() -> None:
    b = chapters.transition_bounds(shi_rows(), discordant=94)
    expected = [shi_closed_form(z) for z in range(18, 27)]
    assert b.n_tables == 9
    assert sorted(map(lambda t: t.ravel().tolist(), b.tables)) == sorted(
        t.ravel().tolist() for t in expected)
    assert b.total == 247 and b.discordant == 94
    assert b.reported.sum() == 3 and b.reported[0, 1] and b.reported[1, 1]
    assert b.lower.tolist() == [[18, 25, 0], [19, 83, 7], [0, 19, 44]]
    assert b.upper.tolist() == [[26, 25, 8], [35, 83, 23], [8, 19, 52]]
    assert not b.identified
    low, high = b.extremes()
    assert low.tolist() == shi_closed_form(18).tolist()
    assert high.tolist() == shi_closed_form(26).tolist()
    assert b.first_unreported() == ("zero", "zero")
    assert b.extreme_labels()[0] == "HER2-zero → HER2-zero = 18, the smallest value possible"


def test_without_discordant_count_more_tables_fit() -> None:
    with_d = chapters.transition_bounds(shi_rows(), discordant=94)
    without = chapters.transition_bounds(shi_rows())
    assert without.n_tables > with_d.n_tables
    assert {tuple(t.ravel()) for t in with_d.tables} <= {tuple(t.ravel())
                                                         for t in without.tables}


def test_cell_sum_range_is_joint_not_cellwise() -> None:
    b = chapters.transition_bounds(shi_rows(), discordant=94)
    # zero->positive + low->positive = (26 - z) + (2z - 29) = z - 3: 15 to 23, not 0 + 7 to 8 + 23
    assert b.cell_sum_range([("zero", "positive"), ("low", "positive")]) == (15, 23)
    # off-diagonal cells always sum to the discordant count
    off = [(a, c) for a in chapters.CATEGORIES for c in chapters.CATEGORIES if a != c]
    assert b.cell_sum_range(off) == (94, 94)
    with pytest.raises(ValueError, match="unknown category 'high'"):
        b.cell_sum_range([("high", "low")])


@settings(max_examples=40, deadline=None)
@given(cells=st.lists(st.integers(0, 1), min_size=9, max_size=9),
       extra=st.integers(0, 2), where=st.integers(0, 8),
       mask=st.lists(st.booleans(), min_size=9, max_size=9), use_d=st.booleans())
def test_enumeration_matches_brute_force(cells: list[int], extra: int, where: int,
                                         mask: list[bool], use_d: bool) -> None:
    table = np.array(cells).reshape(3, 3)
    table.ravel()[where] += extra
    if table.sum() == 0:
        table[0, 0] = 1
    reported = np.array(mask).reshape(3, 3)
    discordant = int(table.sum() - np.trace(table)) if use_d else None
    rows = table_rows(table, reported, ("zero", "low", "positive"))
    b = chapters.transition_bounds(rows, discordant=discordant)
    got = {tuple(t.ravel().tolist()) for t in b.tables}
    assert tuple(table.ravel().tolist()) in got
    assert got == brute_force(table, reported, discordant)


def test_fully_reported_table_is_identified() -> None:
    table = np.array([[3, 1], [2, 4]])
    rows = table_rows(table, np.ones((2, 2), bool), ("a", "b"))
    b = chapters.transition_bounds(rows, categories=("a", "b"))
    assert b.identified and b.tables.shape == (1, 2, 2)
    assert b.tables[0].tolist() == table.tolist()
    assert b.extremes()[0].tolist() == table.tolist()
    assert b.first_unreported() is None


def test_contradictory_readings_are_rejected() -> None:
    # the Results' 20 HER2-zero -> HER2-low cannot fill the HER2-low column (127)
    with pytest.raises(ValueError, match="no table of counts"):
        chapters.transition_bounds(shi_rows(zero_to_low=20), discordant=94)
    # 254 recurrence samples: the margins add up to 247
    with pytest.raises(ValueError, match="do not add up to the total 254"):
        chapters.transition_bounds(shi_rows(total=254))


@pytest.mark.parametrize("change, message", [
    (lambda r: r[r["to_category"] != "any"], "row margin"),
    (lambda r: pd.concat([r, r.iloc[[0]]]), "given twice"),
    (lambda r: r.assign(study_id=["a"] + ["b"] * (len(r) - 1)), "one study"),
    (lambda r: r.assign(subgroup=["x=1"] + [""] * (len(r) - 1)), "one subgroup"),
    (lambda r: r.assign(from_category=r["from_category"].replace("zero", "nil")),
     "unknown category 'nil'"),
    (lambda r: r.assign(count=r["count"].astype(float).where(r.index != 0, 2.5)),
     "whole number"),
    (lambda r: r.iloc[0:0], "no transition rows"),
])
def test_transition_rows_are_validated(change, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        chapters.transition_bounds(change(shi_rows()))


def test_transition_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="discordant must be between 0 and 247"):
        chapters.transition_bounds(shi_rows(), discordant=300)
    with pytest.raises(ValueError, match="max_tables"):
        chapters.transition_bounds(shi_rows(), max_tables=10)
    with pytest.raises(ValueError, match="distinct"):
        chapters.transition_bounds(shi_rows(), categories=("zero", "zero"))


# ------------------------------------------------------------------------ direction rates


def test_direction_rates_exact_and_bounded() -> None:
    b = chapters.transition_bounds(shi_rows(), discordant=94)
    rates = chapters.direction_rates(b).set_index("direction")
    z2l = rates.loc["zero_to_low"]
    assert bool(z2l["identified"]) and (z2l["events_min"], z2l["total"]) == (25, 51)
    assert z2l["proportion"] == pytest.approx(25 / 51)
    assert (z2l["ci_lower"], z2l["ci_upper"]) == pytest.approx(R_BINOM[(25, 51)], rel=1e-7)
    anyc = rates.loc["any_change"]
    assert (anyc["events_min"], anyc["events_max"], anyc["total"]) == (94, 94, 247)
    assert (anyc["ci_lower"], anyc["ci_upper"]) == pytest.approx(R_BINOM[(94, 247)], rel=1e-7)
    from_low = rates.loc["from_low"]
    assert (from_low["events_min"], from_low["total"]) == (42, 125)
    assert (from_low["ci_lower"], from_low["ci_upper"]) == pytest.approx(
        R_BINOM[(42, 125)], rel=1e-7)
    to_low = rates.loc["to_low"]
    assert (to_low["events_min"], to_low["total"]) == (44, 122)
    l2z = rates.loc["low_to_zero"]  # 71 - 2z for z in 18..26
    assert not l2z["identified"] and math.isnan(l2z["proportion"])
    assert (l2z["events_min"], l2z["events_max"], l2z["total"]) == (19, 35, 125)
    # widest interval: exact lower limit at 19/125, exact upper limit at 35/125
    assert l2z["ci_lower"] == pytest.approx(R_BINOM[(19, 125)][0], rel=1e-7)
    assert l2z["ci_upper"] == pytest.approx(R_BINOM[(35, 125)][1], rel=1e-7)
    gain = rates.loc["to_positive"]  # z - 3 of 51 + 125
    assert (gain["events_min"], gain["events_max"], gain["total"]) == (15, 23, 176)
    loss = rates.loc["from_positive"]  # z + 1 of 71
    assert (loss["events_min"], loss["events_max"], loss["total"]) == (19, 27, 71)
    with pytest.raises(ValueError, match="level"):
        chapters.direction_rates(b, level=95)


def test_rate_and_bounds_tables_say_what_is_reported() -> None:
    b = chapters.transition_bounds(shi_rows(), discordant=94)
    rates = chapters.rates_table(chapters.direction_rates(b))
    first = rates.iloc[0]
    assert first["Patients"] == "25 / 51"
    assert first["Proportion (95% exact CI)"] == "49.0% (34.8% to 63.4%)"
    assert first["Status"] == "fixed by the reported numbers"
    assert rates.iloc[1]["Patients"] == "19 to 35 / 125"
    assert rates.iloc[1]["Status"].startswith("bounded only")
    table = chapters.bounds_table(b)
    assert table.iloc[0]["→ HER2-zero"] == "18 to 26 (not reported)"
    assert table.iloc[0]["→ HER2-low"] == "25"
    assert table.iloc[3]["Total"] == "247"
    text = chapters.describe_transitions(b, chapters.direction_rates(b), "Shi 2023")
    assert "so nothing is pooled" in text
    assert "94 (38.1%; 95% CI 32.0% to 44.4%)" in text
    assert "Exactly 9 tables" in text and "anything from 18 to 26" in text
    assert "- between 15.2% and 28.0% of HER2-low primary tumours recurred as HER2-zero" in text


def test_bounds_table_marks_derived_cells() -> None:
    table = np.array([[3, 1], [2, 4]])
    reported = np.array([[True, False], [False, False]])
    b = chapters.transition_bounds(table_rows(table, reported, ("a", "b")),
                                   categories=("a", "b"))
    assert b.identified  # one cell and the margins fix a 2 x 2 table
    shown = chapters.bounds_table(b)
    assert shown.iloc[0]["→ b"] == "1 (derived)"
    assert "fix all 4 cells" in chapters.describe_transitions(
        b, chapters.direction_rates(b, directions=()), "S", k=2)


# ------------------------------------------------------------------------ subgroups


def conversion_rows() -> pd.DataFrame:
    recs = [("", 94, 247, ""), ("hormone_receptor=positive", 54, 135, "40.0% x 135"),
            ("hormone_receptor=negative", 40, 112, "35.7% x 112"),
            ("recurrence=locoregional", 24, 89, "27.0% x 89"),
            ("recurrence=distant", 28, 92, "30.4% x 92"), ("recurrence=contralateral", 42, 66, ""),
            ("primary_her2=low", 42, 125, "125 - 83"), ("a=1;b=2", 1, 2, "")]
    return pd.DataFrame({"study_id": "shi2023", "outcome": "tissue_conversion",
                         "subgroup": [r[0] for r in recs], "events": [r[1] for r in recs],
                         "total": [r[2] for r in recs], "derived": [r[3] for r in recs]})


def test_subgroup_comparisons_match_r() -> None:
    levels, tests = chapters.subgroup_comparisons(conversion_rows())
    assert list(levels["key"]) == ["hormone_receptor"] * 2 + ["recurrence"] * 3 + [
        "primary_her2"]
    assert levels["derived"].tolist() == [True, True, True, True, False, True]
    t = tests.set_index("key")
    assert set(t.index) == {"hormone_receptor", "recurrence"}  # one level: no test
    hr = t.loc["hormone_receptor"]
    assert hr["test"] == "fisher"
    assert hr["p_value"] == pytest.approx(R_HR_SUBGROUP["fisher_p"], rel=1e-9)
    assert hr["p_value"] == pytest.approx(fisher_exact([[54, 81], [40, 72]]).pvalue, rel=1e-12)
    assert hr["statistic"] == pytest.approx(54 * 72 / (81 * 40))
    assert (hr["rd"], hr["rd_lower"], hr["rd_upper"]) == pytest.approx(
        (R_HR_SUBGROUP["rd"], R_HR_SUBGROUP["rd_lb"], R_HR_SUBGROUP["rd_ub"]), rel=1e-9)
    rec = t.loc["recurrence"]
    assert rec["test"] == "chisq"
    assert (rec["statistic"], rec["df"], rec["p_value"]) == pytest.approx(
        R_RECURRENCE_CHISQ, rel=1e-9)
    text = chapters.describe_subgroups(levels, tests, "changed HER2 category")
    assert "40.0% (54/135) for hormone receptor-positive vs 35.7% (40/112)" in text
    assert "Fisher's exact test p = 0.513" in text
    assert "Pearson chi-square test of independence: χ² = 25.23 on 2 df, p < 0.001" in text
    assert "back-calculated" in text
    shown = chapters.subgroup_table(levels, tests)
    assert shown.iloc[0]["Comparison"].startswith("Fisher's exact test (two-sided): p = 0.513")
    assert shown.iloc[0]["Changed / total"] == "54 / 135 (back-calculated)"
    assert shown.iloc[4]["Changed / total"] == "42 / 66"


def test_subgroup_comparisons_reject_mixed_rows() -> None:
    rows = conversion_rows()
    with pytest.raises(ValueError, match="one study and one outcome"):
        chapters.subgroup_comparisons(rows.assign(outcome=["x"] + ["y"] * (len(rows) - 1)))
    with pytest.raises(ValueError, match="appears twice"):
        chapters.subgroup_comparisons(pd.concat([rows, rows.iloc[[1]]]))


def test_distribution_table_tests_match_r() -> None:
    recs = []
    for sub, counts in [("", (53, 127, 67)), ("hormone_receptor=positive", (23, 92, 20)),
                        ("hormone_receptor=negative", (30, 35, 47)),
                        ("recurrence=locoregional", (19, 48, 22)),
                        ("recurrence=distant", (22, 42, 28)),
                        ("recurrence=contralateral", (12, 37, 17))]:
        for cat, c in zip(chapters.CATEGORIES, counts, strict=True):
            recs.append((sub, "any", cat, c))
        recs.append((sub, "any", "any", sum(counts)))
    recs.append(("", "zero", "low", 25))  # a cell: ignored (not a column margin)
    rows = pd.DataFrame(recs, columns=["subgroup", "from_category", "to_category", "count"])
    table = chapters.distribution_table(rows)
    assert table.iloc[0]["Subgroup"] == "All patients"
    assert table.iloc[0]["HER2-low n (%)"] == "127 (51.4%)"
    assert table.iloc[1]["Test"] == "χ² = 35.55, df = 2, p < 0.001"  # R: 35.5543889159
    assert table.iloc[3]["Test"] == "χ² = 2.18, df = 4, p = 0.703"  # R: 2.17698353063, 0.7032
    bad = rows.copy()
    bad.loc[(bad["subgroup"] == "recurrence=distant") & (bad["to_category"] == "any"),
            "count"] = 93
    with pytest.raises(ValueError, match="add up to 92, not the reported total 93"):
        chapters.distribution_table(bad)


# ------------------------------------------------------------------------ contradictions


def test_contradictions_check_each_reading() -> None:
    prim = shi_rows()
    alt = pd.concat([shi_rows(zero_to_low=20).iloc[[0]], shi_rows(total=254).iloc[[-1]]],
                    ignore_index=True).assign(note=["zero to low note", "254 note"])
    out_prim = pd.DataFrame({"study_id": ["shi2023"], "arm": ["all"],
                             "outcome": ["tissue_conversion_to_low"],
                             "subgroup": ["primary_her2=zero"], "events": [25],
                             "total": [51], "note": ["outcome note"]})
    out_alt = out_prim.assign(events=[20])
    contra = chapters.contradictions({"transitions": alt, "outcomes": out_alt},
                                     {"transitions": prim, "outcomes": out_prim},
                                     discordant=94)
    assert contra["used"].tolist() == ["25", "247", "25 / 51"]
    assert contra["alternative"].tolist() == ["20", "254", "20 / 51"]
    assert contra["tables_used"].tolist()[:2] == [9.0, 9.0]
    assert contra["tables_alternative"].tolist()[:2] == [0.0, 0.0]
    assert math.isnan(contra["tables_used"].iloc[2])
    assert contra["note"].tolist() == ["zero to low note", "254 note", "outcome note"]
    text = chapters.describe_contradictions(contra)
    assert "**25** is used; 20 is the alternative" in text
    assert "no transition table of counts can match" in text
    assert chapters.contradictions_table(contra).shape == (3, 4)
    assert "does not contradict itself" in chapters.describe_contradictions(contra.iloc[0:0])
    with pytest.raises(ValueError, match="has no primary row"):
        chapters.contradictions({"transitions": alt}, {"transitions": prim.iloc[1:]})
    with pytest.raises(ValueError, match="unknown table 'effects'"):
        chapters.contradictions({"effects": alt}, {})


# ------------------------------------------------------------------------ two-arm


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


def test_two_arm_pairs() -> None:
    pairs = chapters.two_arm_pairs(outcome_rows())
    assert list(zip(pairs["study_id"], pairs["outcome"], strict=True)) == [
        ("verschoor2024", "objective_response"), ("verschoor2024", "pfr6"),
        ("ignatiadis2018", "ctc_persistence")]  # Pestrin: no control arm, not paired
    first = pairs.iloc[0]
    assert (first["arm_1"], first["ai"], first["n1i"], first["arm_2"], first["ci"],
            first["n2i"]) == ("trastuzumab_taxane", 4, 8, "taxane_only", 5, 25)
    only = chapters.two_arm_pairs(outcome_rows(), ["pfr6"])
    assert only["outcome"].tolist() == ["pfr6"]
    with pytest.raises(ValueError, match="no experimental/control pair"):
        chapters.two_arm_pairs(outcome_rows(), ["disease_control"])
    doubled = pd.concat([outcome_rows(), outcome_rows().iloc[[0]].assign(arm="other")])
    with pytest.raises(ValueError, match="more than one experimental or control arm"):
        chapters.two_arm_pairs(doubled)


@pytest.mark.parametrize("name", list(TABLES))
def test_two_arm_effects_match_metafor_and_fisher(name: str) -> None:
    ai, n1i, ci, n2i = TABLES[name]
    pairs = pd.DataFrame([{"study_id": name, "outcome": "o", "subgroup": "", "arm_1": "e",
                           "ai": ai, "n1i": n1i, "arm_2": "c", "ci": ci, "n2i": n2i}])
    eff = chapters.two_arm_effects(pairs).set_index("measure")
    for m in ("RR", "OR", "RD"):
        yi, vi, lb, ub = R[(name, m)]
        row = eff.loc[m]
        assert (row["yi"], row["vi"]) == pytest.approx((yi, vi), **TOL)
        back = (lambda v: v) if m == "RD" else math.exp
        assert (row["estimate"], row["ci_lower"], row["ci_upper"]) == pytest.approx(
            (back(yi), back(lb), back(ub)), rel=1e-9)
        assert row["fisher_pvalue"] == pytest.approx(R_FISHER[name], rel=1e-9)
    # hand-computed risk ratio and odds ratio (no zero cells: no correction)
    assert eff.loc["RR", "estimate"] == pytest.approx((ai / n1i) / (ci / n2i))
    assert eff.loc["OR", "estimate"] == pytest.approx(ai * (n2i - ci) / ((n1i - ai) * ci))
    assert eff.loc["RD", "fisher_pvalue"] == pytest.approx(
        fisher_exact([[ai, n1i - ai], [ci, n2i - ci]]).pvalue, rel=1e-12)
    with pytest.raises(ValueError, match="unknown measure 'HR'"):
        chapters.two_arm_effects(pairs, measures=("HR",))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 30), st.integers(1, 30), st.integers(0, 30),
                          st.integers(0, 30)), min_size=1, max_size=8),
       st.sampled_from(["only0", "all", "if0all", "none"]), st.sampled_from([0.5, 0.0]))
def test_two_arm_effects_equal_two_arm_effect_pair_by_pair(tables, to, add) -> None:
    from evidence.stats.twoarm import two_arm_effect

    rows = [(min(a, n1), n1, min(c, n2), n2) for n1, n2, a, c in tables]
    pairs = pd.DataFrame([{"study_id": f"s{i}", "outcome": "o", "subgroup": "", "ai": a,
                           "n1i": n1, "ci": c, "n2i": n2}
                          for i, (a, n1, c, n2) in enumerate(rows)])
    eff = chapters.two_arm_effects(pairs, add=add, to=to)
    assert len(eff) == 3 * len(rows)
    for r in eff.to_dict("records"):
        e = two_arm_effect(*rows[int(r["study_id"][1:])], r["measure"], add=add, to=to)
        got = [r[k] for k in ("yi", "vi", "estimate", "ci_lower", "ci_upper", "fisher_pvalue")]
        want = [e.yi, e.vi, e.pred, e.pred_ci_lower, e.pred_ci_upper, e.fisher_pvalue]
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0, equal_nan=True)
        assert r["corrected"] == e.corrected


def test_two_arm_effects_empty_and_bad_counts() -> None:
    empty = chapters.two_arm_pairs(outcome_rows()).iloc[0:0]
    assert chapters.two_arm_effects(empty).empty
    bad = pd.DataFrame([{"study_id": "x", "outcome": "o", "subgroup": "", "ai": 5, "n1i": 4,
                         "ci": 0, "n2i": 3}])
    with pytest.raises(ValueError, match=r"x, o: need 0 <= ai <= n1i"):
        chapters.two_arm_effects(bad)


def test_two_arm_words_and_tables() -> None:
    studies = study_rows()
    pairs = chapters.two_arm_pairs(outcome_rows())
    eff = chapters.two_arm_effects(pairs)
    table = chapters.two_arm_table(eff, studies)
    assert table["Study"].tolist() == ["Verschoor 2024 (not randomised)"] * 2 + [
        "Ignatiadis 2018 (Treat CTC)"]
    treat = table.iloc[2]
    assert treat["Experimental"] == "5/31 (16.1%)" and treat["Control"] == "4/32 (12.5%)"
    assert treat["RR [95% CI]"] == "1.29 [0.38, 4.36]"  # exp(R's -0.9636, 1.4734)
    assert treat["RD, points [95% CI]"] == "3.6 [-13.7, 20.9]"
    assert treat["Fisher p"] == "0.732"
    text = chapters.describe_two_arm(pairs, eff, studies)
    verschoor, treat_text = text.split("**Ignatiadis 2018 (Treat CTC)**")
    assert "not formed by randomisation" in verschoor
    assert "does not estimate the effect of the treatment" in verschoor
    assert ("- *Objective response*: in the trastuzumab + taxane arm 4 of 8 (50.0%) had an "
            "objective response, in the taxane only arm 5 of 25 (20.0%)") in verschoor
    assert "Patients were randomised between the arms." in treat_text
    assert "risk ratio 1.29 (0.38 to 4.36)" in treat_text
    assert "Fisher's exact test p = 0.732" in treat_text
    assert "includes 1 (no difference)" in treat_text
    unreported = chapters.unreported_randomised(studies, pairs)
    assert unreported["study_id"].tolist() == ["fehm2021"]
    words = chapters.describe_unreported(unreported)
    assert "Fehm 2021 (DETECT III)" in words and "no counts in the abstract" in words
    assert "Every randomised trial" in chapters.describe_unreported(unreported.iloc[0:0])
    overview = chapters.two_arm_overview(pairs, studies, unreported)
    assert overview.startswith(
        "The registry holds 3 comparisons of an experimental (anti-HER2) arm with a control "
        "arm, from 2 studies (Verschoor 2024, Ignatiadis 2018 (Treat CTC)); 1 of them was "
        "randomised.")
    assert ("1 further randomised trial reports no counts per arm (Fehm 2021 (DETECT III))."
            in overview)
    one = chapters.two_arm_overview(pairs[pairs["study_id"] == pairs["study_id"].iloc[0]],
                                    studies, unreported.iloc[0:0])
    assert "from 1 study (Verschoor 2024); it was not randomised." in one
    many = pd.concat([pairs.assign(study_id=f"s{i}") for i in range(11)], ignore_index=True)
    assert "from 11 studies; 0 of them were randomised." in chapters.two_arm_overview(
        many, studies, unreported.iloc[0:0])
    context = chapters.context_table(outcome_rows(), pairs["study_id"], studies)
    assert context["n / N"].tolist() == ["8 / 64", "95 / 1317"]


def test_describe_two_arm_caps_the_paragraphs_randomised_first() -> None:
    studies = study_rows()
    pairs = chapters.two_arm_pairs(outcome_rows())
    eff = chapters.two_arm_effects(pairs)
    full = chapters.describe_two_arm(pairs, eff, studies)
    assert chapters.describe_two_arm(pairs, eff, studies, max_studies=2) == full
    one = chapters.describe_two_arm(pairs, eff, studies, max_studies=1)
    # Treat CTC is randomised, Verschoor (more patients) is not: Treat CTC is kept
    assert one.startswith("Of the 2 studies with a two-arm comparison, 1 is described")
    assert "**Ignatiadis 2018 (Treat CTC)**" in one and "Verschoor" not in one
    treat = "**Ignatiadis 2018 (Treat CTC)**"
    assert one.split("\n\n", 1)[1] == treat + full.split(treat)[1]
    with pytest.raises(ValueError, match="max_studies must be >= 1"):
        chapters.describe_two_arm(pairs, eff, studies, max_studies=0)


def test_two_arm_pairs_rejects_two_rows_of_one_role() -> None:
    rows = outcome_rows()
    exp = rows[rows["arm_role"] == "experimental"].iloc[[0]]
    with pytest.raises(ValueError, match="more than one experimental or control arm"):
        chapters.two_arm_pairs(pd.concat([rows, exp], ignore_index=True))


def test_two_arm_figure() -> None:
    studies = study_rows()
    eff = chapters.two_arm_effects(chapters.two_arm_pairs(outcome_rows()))
    fig = chapters.two_arm_figure(eff, studies, "RR", title="Two-arm")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    markers = next(c for c in ax.collections if c.get_gid() == "study_markers")
    xy = markers.get_offsets()
    assert np.allclose(xy[:, 0], eff[eff["measure"] == "RR"]["estimate"])
    faces = markers.get_facecolors()
    assert faces[0][:3].tolist() == [1.0, 1.0, 1.0]  # Verschoor: open square
    assert faces[2][:3].tolist() != [1.0, 1.0, 1.0]  # Treat CTC: filled
    texts = [t.get_text() for t in ax.texts]
    assert "Verschoor 2024 (not randomised)\nObjective response" in texts
    assert "1.29 [0.38, 4.36]" in texts
    rd = chapters.two_arm_figure(eff, studies, "RD")
    assert rd.axes[0].get_xscale() == "linear"
    with pytest.raises(ValueError, match="unknown measure 'HR'"):
        chapters.two_arm_figure(eff, studies, "HR")


# ------------------------------------------------------------------------ hazard ratios


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


def test_harmonise_inverts_the_reverse_comparison() -> None:
    rows = pd.DataFrame({"study_id": ["a", "b", "c"],
                         "comparison": ["x_vs_y", "y_vs_x", "x_vs_z"],
                         "estimate": [2.0, 2.0, 3.0], "ci_lower": [1.25, 1.25, 1.0],
                         "ci_upper": [4.0, 4.0, 9.0], "p_value": [0.01, 0.01, 0.05]})
    out = chapters.harmonise_hazard_ratios(rows, "x_vs_y")
    assert out["study_id"].tolist() == ["a", "b"]
    assert out["direction"].tolist() == ["as reported", "inverted"]
    assert out.loc[1, ["hr", "hr_lower", "hr_upper"]].tolist() == pytest.approx(
        [0.5, 0.25, 0.8])
    assert out["comparison"].tolist() == ["x_vs_y", "x_vs_y"]
    assert out["reported_comparison"].tolist() == ["x_vs_y", "y_vs_x"]
    shared = pd.DataFrame({"study_id": ["a"], "comparison": ["ctc_her2_negative_vs_positive"],
                           "estimate": [4.0], "ci_lower": [2.0], "ci_upper": [8.0],
                           "p_value": [0.001]})
    inv = chapters.harmonise_hazard_ratios(shared, "ctc_her2_positive_vs_negative")
    assert inv.loc[0, ["hr", "hr_lower", "hr_upper"]].tolist() == pytest.approx(
        [0.25, 0.125, 0.5])
    with pytest.raises(ValueError, match="not '<numerator>_vs_<reference>'"):
        chapters.harmonise_hazard_ratios(rows, "x_versus_y")


def test_pooled_log_hazard_ratios_match_metafor() -> None:
    table = chapters.harmonise_hazard_ratios(effect_rows(), "ctc_her2_positive_vs_negative")
    pooled, shown = chapters.split_by_adjustment(table, "no")
    assert pooled["study_id"].tolist() == ["zhang2016", "jacot2025"]
    assert shown["adjusted"].tolist() == ["yes"]
    es = chapters.hazard_ratio_effects(pooled)
    assert es.measure == "HR"
    assert np.asarray(es.vi) == pytest.approx(R_HR_VI, rel=1e-9)
    for method, (est, se, tau2, q) in R_HR_FIT.items():
        fit = rma(es, method=method)
        assert (fit.estimate, fit.se, fit.tau2, fit.q) == pytest.approx(
            (est, se, tau2, q), rel=1e-8, abs=1e-10)
    lo, hi = chapters.hazard_ratio_study_ci(pooled, es)
    assert (lo[0], hi[0]) == (0.156, 0.62)  # as reported
    se = math.sqrt(R_HR_VI[1])
    assert (lo[1], hi[1]) == pytest.approx((0.48 * math.exp(-1.959963984540054 * se),
                                            0.48 * math.exp(1.959963984540054 * se)), rel=1e-9)
    with pytest.raises(ValueError, match="more than one hazard ratio for \\['zhang2016'\\]"):
        chapters.hazard_ratio_effects(table)
    with pytest.raises(ValueError, match="unknown pool_adjusted 'maybe'"):
        chapters.split_by_adjustment(table, "maybe")


def test_hazard_ratio_words_and_table() -> None:
    studies = pd.DataFrame({
        "study_id": ["zhang2016", "jacot2025"], "label": ["Zhang 2016", "Jacot 2025"],
        "tissue_her2": ["positive", "positive"], "setting": ["metastatic", "metastatic"],
        "intervention": ["trastuzumab or lapatinib + chemotherapy", "T-DXd"],
        "her2_cutoff": ["> 30% 3+", "ACCEPT"], "randomized": ["no", "no"]})
    table = chapters.harmonise_hazard_ratios(effect_rows(), "ctc_her2_positive_vs_negative")
    pooled, shown = chapters.split_by_adjustment(table, "no")
    es = chapters.hazard_ratio_effects(pooled)
    text = chapters.describe_hazard_ratios(rma(es, method="REML"), rma(es, method="FE"),
                                           pooled, shown, studies, "A with B",
                                           "progression-free survival")
    # exp(-1.02599) = 0.358, exp(-1.02599 -/+ 1.95996 * 0.29989) = 0.199, 0.645
    assert "hazard ratio of 0.36 (95% CI 0.20 to 0.65; random-effects model, REML)" in text
    assert "none had to be inverted" in text
    assert "The pooled interval excludes 1." in text
    assert "back-calculated from the printed p-value" in text
    assert ("The adjusted (multivariable) estimate is shown, not pooled: Zhang 2016 0.38 "
            "(95% CI 0.17 to 0.83)") in text
    assert "- *Jacot 2025*: tissue HER2-positive" in text
    shown_table = chapters.hazard_ratio_table(table, studies, "no")
    assert shown_table["Pooled"].tolist() == ["yes", "no (shown only)", "yes"]
    assert shown_table["SE from"].tolist() == ["reported CI", "reported CI", "p-value"]
    assert shown_table.iloc[2]["Hazard ratio (95% CI)"] == "0.48 (CI not reported)"
    notes = chapters.hazard_ratio_notes(table, studies)
    assert "- *Jacot 2025, unadjusted (univariable)*: no CI given" in notes
    es1 = chapters.hazard_ratio_effects(pooled.iloc[[0]])
    one = chapters.describe_hazard_ratios(rma(es1, method="REML"), rma(es1, method="FE"),
                                          pooled.iloc[[0]], shown.iloc[0:0], studies, "A",
                                          "x")
    assert "Only one unadjusted (univariable) estimate (Zhang 2016)" in one
    assert "nothing is pooled" in one and "Population:" in one


def test_two_arm_figure_caps_rows_randomised_first() -> None:
    import pandas as pd

    from evidence.book import chapters

    studies = pd.DataFrame({"study_id": ["r", "a", "b"], "label": ["R", "A", "B"],
                            "randomized": ["yes", "no", "no"]})
    effects = pd.DataFrame({
        "study_id": ["a", "b", "r"], "outcome": ["objective_response"] * 3,
        "measure": ["RR"] * 3, "estimate": [1.5, 2.0, 0.8], "ci_lower": [0.5, 0.9, 0.3],
        "ci_upper": [4.0, 4.4, 2.1], "ai": [3, 9, 4], "n1i": [10, 30, 20],
        "ci": [2, 5, 5], "n2i": [10, 30, 20]})
    fig = chapters.two_arm_figure(effects, studies, "RR", max_rows=2)
    shown = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "R\nObjective response" in shown  # the randomised comparison is kept
    assert "B (not randomised)" in shown and "A (not randomised)" not in shown
    assert any("2 of 3 comparisons (randomised first" in t.get_text() for t in fig.texts)
