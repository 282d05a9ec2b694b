"""Tests for evidence.book.transitions: transition tables reconstructed from what a source
reports, rates by direction, tables and words.

Reference values: see ``chapter_data.py`` (R 4.2.2, metafor 3.8-1, and hand-worked tables).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from chapter_data import R_BINOM, brute_force, shi_closed_form, shi_rows, table_rows
from hypothesis import given, settings
from hypothesis import strategies as st

from evidence.book import transitions


def test_shi_tables_match_the_hand_solution() -> None:
    b = transitions.transition_bounds(shi_rows(), discordant=94)
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
    assert transitions.extreme_labels(b)[0] == ("HER2-zero → HER2-zero = 18, the smallest "
                                                "value possible")


def test_without_discordant_count_more_tables_fit() -> None:
    with_d = transitions.transition_bounds(shi_rows(), discordant=94)
    without = transitions.transition_bounds(shi_rows())
    assert without.n_tables > with_d.n_tables
    assert {tuple(t.ravel()) for t in with_d.tables} <= {tuple(t.ravel())
                                                         for t in without.tables}


def test_cell_sum_range_is_joint_not_cellwise() -> None:
    b = transitions.transition_bounds(shi_rows(), discordant=94)
    # zero->positive + low->positive = (26 - z) + (2z - 29) = z - 3: 15 to 23, not 0 + 7 to 8 + 23
    assert b.cell_sum_range([("zero", "positive"), ("low", "positive")]) == (15, 23)
    # off-diagonal cells always sum to the discordant count
    off = [(a, c) for a in transitions.CATEGORIES for c in transitions.CATEGORIES if a != c]
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
    b = transitions.transition_bounds(rows, discordant=discordant)
    got = {tuple(t.ravel().tolist()) for t in b.tables}
    assert tuple(table.ravel().tolist()) in got
    assert got == brute_force(table, reported, discordant)


def test_fully_reported_table_is_identified() -> None:
    table = np.array([[3, 1], [2, 4]])
    rows = table_rows(table, np.ones((2, 2), bool), ("a", "b"))
    b = transitions.transition_bounds(rows, categories=("a", "b"))
    assert b.identified and b.tables.shape == (1, 2, 2)
    assert b.tables[0].tolist() == table.tolist()
    assert b.extremes()[0].tolist() == table.tolist()
    assert b.first_unreported() is None


def test_contradictory_readings_are_rejected() -> None:
    # the Results' 20 HER2-zero -> HER2-low cannot fill the HER2-low column (127)
    with pytest.raises(ValueError, match="no table of counts"):
        transitions.transition_bounds(shi_rows(zero_to_low=20), discordant=94)
    # 254 recurrence samples: the margins add up to 247
    with pytest.raises(ValueError, match="do not add up to the total 254"):
        transitions.transition_bounds(shi_rows(total=254))


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
        transitions.transition_bounds(change(shi_rows()))


def test_transition_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="discordant must be between 0 and 247"):
        transitions.transition_bounds(shi_rows(), discordant=300)
    with pytest.raises(ValueError, match="max_tables"):
        transitions.transition_bounds(shi_rows(), max_tables=10)
    with pytest.raises(ValueError, match="distinct"):
        transitions.transition_bounds(shi_rows(), categories=("zero", "zero"))


# ------------------------------------------------------------------------ direction rates


def test_direction_rates_exact_and_bounded() -> None:
    b = transitions.transition_bounds(shi_rows(), discordant=94)
    rates = transitions.direction_rates(b).set_index("direction")
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
        transitions.direction_rates(b, level=95)


def test_rate_and_bounds_tables_say_what_is_reported() -> None:
    b = transitions.transition_bounds(shi_rows(), discordant=94)
    rates = transitions.rates_table(transitions.direction_rates(b))
    first = rates.iloc[0]
    assert first["Patients"] == "25 / 51"
    assert first["Proportion (95% exact CI)"] == "49.0% (34.8% to 63.4%)"
    assert first["Status"] == "fixed by the reported numbers"
    assert rates.iloc[1]["Patients"] == "19 to 35 / 125"
    assert rates.iloc[1]["Status"].startswith("bounded only")
    table = transitions.bounds_table(b)
    assert table.iloc[0]["→ HER2-zero"] == "18 to 26 (not reported)"
    assert table.iloc[0]["→ HER2-low"] == "25"
    assert table.iloc[3]["Total"] == "247"
    text = transitions.describe_transitions(b, transitions.direction_rates(b), "Shi 2023")
    assert "so nothing is pooled" in text
    assert "94 (38.1%; 95% CI 32.0% to 44.4%)" in text
    assert "Exactly 9 tables" in text and "anything from 18 to 26" in text
    assert "- between 15.2% and 28.0% of HER2-low primary tumours recurred as HER2-zero" in text


def test_bounds_table_marks_derived_cells() -> None:
    table = np.array([[3, 1], [2, 4]])
    reported = np.array([[True, False], [False, False]])
    b = transitions.transition_bounds(table_rows(table, reported, ("a", "b")),
                                   categories=("a", "b"))
    assert b.identified  # one cell and the margins fix a 2 x 2 table
    shown = transitions.bounds_table(b)
    assert shown.iloc[0]["→ b"] == "1 (derived)"
    assert "fix all 4 cells" in transitions.describe_transitions(
        b, transitions.direction_rates(b, directions=()), "S", k=2)


# ------------------------------------------------------------------------ subgroups


def test_distribution_table_tests_match_r() -> None:
    recs = []
    for sub, counts in [("", (53, 127, 67)), ("hormone_receptor=positive", (23, 92, 20)),
                        ("hormone_receptor=negative", (30, 35, 47)),
                        ("recurrence=locoregional", (19, 48, 22)),
                        ("recurrence=distant", (22, 42, 28)),
                        ("recurrence=contralateral", (12, 37, 17))]:
        for cat, c in zip(transitions.CATEGORIES, counts, strict=True):
            recs.append((sub, "any", cat, c))
        recs.append((sub, "any", "any", sum(counts)))
    recs.append(("", "zero", "low", 25))  # a cell: ignored (not a column margin)
    rows = pd.DataFrame(recs, columns=["subgroup", "from_category", "to_category", "count"])
    table = transitions.distribution_table(rows)
    assert table.iloc[0]["Subgroup"] == "All patients"
    assert table.iloc[0]["HER2-low n (%)"] == "127 (51.4%)"
    assert table.iloc[1]["Test"] == "χ² = 35.55, df = 2, p < 0.001"  # R: 35.5543889159
    assert table.iloc[3]["Test"] == "χ² = 2.18, df = 4, p = 0.703"  # R: 2.17698353063, 0.7032
    bad = rows.copy()
    bad.loc[(bad["subgroup"] == "recurrence=distant") & (bad["to_category"] == "any"),
            "count"] = 93
    with pytest.raises(ValueError, match="add up to 92, not the reported total 93"):
        transitions.distribution_table(bad)


# ------------------------------------------------------------------------ contradictions


