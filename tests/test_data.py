"""The shipped registry (data/): valid, and complete for what the book promises.

The expected counts are read off the source texts (Verschoor 2024 Table 2; Zhang 2016
Discussion, "the data was 62.1 % (36/58) and 51.8 % (14/27) ... 41.7 % (5/12) [23],
45.5 % (5/11) [24] and 50 % (1/2) [25]"), not from the registry.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from evidence.registry import load, validate

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def registry():
    return load(DATA)


def count(registry, study: str, outcome: str, **filters: str) -> tuple[int, int]:
    rows = registry.outcomes
    rows = rows[(rows["study_id"] == study) & (rows["outcome"] == outcome)
                & (rows["use"].replace("", "primary") == "primary")]
    for col, value in {"subgroup": "", **filters}.items():
        rows = rows[rows[col] == value]
    assert len(rows) == 1, (study, outcome, filters, len(rows))
    return int(rows["events"].iloc[0]), int(rows["total"].iloc[0])


def test_shipped_registry_is_valid() -> None:
    assert [str(p) for p in validate(DATA)] == []


@pytest.mark.parametrize(("study", "screened", "her2_pos", "treated"), [
    ("pestrin2012", 139, 7, 7),
    # Verschoor's 283 screened adds the 57 specimens of Part 1; Hainsworth's own report
    # (doi:10.1007/s10549-016-3969-7) screened 226 patients in Part 2, the 24 are theirs
    ("hainsworth2016", 226, 24, 14),
    ("jacot2019", 154, 14, 11),
    ("parsons2021", 311, 69, 20),
])
def test_every_table2_trial_with_its_counts(registry, study: str, screened: int,
                                            her2_pos: int, treated: int) -> None:
    assert count(registry, study, "her2_ctc_screening_yield") == (her2_pos, screened)
    assert count(registry, study, "treated_among_eligible") == (treated, her2_pos)


def test_hainsworth_seed_reading_kept_as_alternative(registry) -> None:
    rows = registry.outcomes
    alt = rows[(rows["study_id"] == "hainsworth2016") & (rows["use"] == "alternative")
               & (rows["outcome"] == "her2_ctc_screening_yield")]
    assert alt[["events", "total"]].values.tolist() == [[24, 283]]


def test_table2_responses(registry) -> None:
    assert count(registry, "pestrin2012", "objective_response") == (0, 7)
    assert count(registry, "hainsworth2016", "objective_response") == (1, 14)
    assert count(registry, "jacot2019", "objective_response") == (1, 11)
    assert count(registry, "jacot2019", "disease_control") == (5, 11)  # 1 PR + 4 SD
    assert count(registry, "parsons2021", "objective_response") == (1, 20)
    assert "fehm2021" in set(registry.studies["study_id"])  # DETECT III: no counts reported


def test_verschoor_arms_and_contradiction(registry) -> None:
    assert count(registry, "verschoor2024", "objective_response",
                 arm="trastuzumab_taxane") == (4, 8)
    assert count(registry, "verschoor2024", "pfr6", arm="taxane_only") == (14, 25)
    assert count(registry, "verschoor2024", "her2_ctc_screening_yield") == (8, 64)
    alt = registry.outcomes[(registry.outcomes["study_id"] == "verschoor2024")
                            & (registry.outcomes["use"] == "alternative")]
    assert alt[["events", "total"]].values.tolist() == [[8, 63]]


@pytest.mark.parametrize(("study", "events", "total"), [
    ("zhang2016", 36, 58), ("liu2013", 14, 27), ("pestrin2009", 5, 12),
    ("riethdorf2010", 5, 11), ("ignatiadis2011", 1, 2),
])
def test_every_discordance_figure_of_zhang_discussion(registry, study: str,
                                                      events: int, total: int) -> None:
    assert count(registry, study, "conversion_tissue_pos_to_ctc_neg") == (events, total)


def test_treat_ctc_and_shi(registry) -> None:
    assert count(registry, "ignatiadis2018", "ctc_persistence", arm="trastuzumab") == (5, 31)
    assert count(registry, "ignatiadis2018", "ctc_persistence", arm="observation") == (4, 32)
    assert count(registry, "shi2023", "tissue_conversion") == (94, 247)


def test_efficacy_rows_mark_their_arm_role(registry) -> None:
    rows = registry.outcomes
    treatment = rows[rows["outcome"].isin(["objective_response", "disease_control", "pfr6",
                                           "ctc_persistence"])]
    assert set(treatment["arm_role"]) == {"experimental", "control"}
