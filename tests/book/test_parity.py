"""Tests for evidence.book.parity: refitting metafor's reference fixtures and judging agreement.

The reference values are metafor 3.8-1's (``tests/fixtures/metafor/*.json`` and
``tests/fixtures/glmm/*.json``, written by ``metafor_reference.R``; R 4.2.2, lme4
1.1-31, as each file's ``meta`` records).  The comparison rule is checked with
hand-computed numbers, and the table with references perturbed by known amounts,
so that a comparison that always says "agrees" cannot pass.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from evidence.book import parity
from evidence.book.parity import (
    ABS_TOLERANCE,
    COMPARED_FIELDS,
    GLMM_TOLERANCE,
    RMA_TOLERANCE,
    compare_reference,
    glmm_scale,
    load_reference_sets,
    relative_difference,
    zero_handling,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ORR = FIXTURES / "metafor" / "orr_her2ctc"


def orr() -> tuple[dict, pd.DataFrame]:
    """The objective-response reference (5 studies, one with 0 events)."""
    ref = json.loads(ORR.with_suffix(".json").read_text(encoding="utf-8"))
    return ref, pd.read_csv(ORR.with_suffix(".csv"))


def first_index(ref: dict, measure: str, method: str, zero_prefix: str) -> int:
    for i, rec in enumerate(ref["records"]):
        if (rec["measure"], rec["method"], rec["test"]) == (measure, method, "z") \
                and rec["zero_handling"].startswith(zero_prefix):
            return i
    raise LookupError((measure, method, zero_prefix))


# --------------------------------------------------------------------------- zero handling


@pytest.mark.parametrize(("text", "measure", "expected"), [
    ("add=1/2,to=only0 (default)", "PLO", (0.5, "only0")),
    ("add=1/2,to=only0 (default; applies to PR too)", "PR", (0.5, "only0")),
    ("add=1/2,to=all", "PLO", (0.5, "all")),
    ("add=1/2,to=if0all", "PLO", (0.5, "if0all")),
    ("add=0 (zero studies dropped)", "PLO", (0.0, "only0")),
    ("add=0.25,to=none", "PR", (0.25, "none")),
    ("none (PFT)", "PFT", (None, "only0")),
    ("none (PAS)", "PAS", (None, "only0")),
])
def test_zero_handling_reads_the_strings_of_metafor_reference_r(text, measure, expected):
    assert zero_handling(text, measure) == expected


@pytest.mark.parametrize(("text", "measure", "message"), [
    ("add=half", "PLO", "unknown zero_handling 'add=half'"),
    ("to=all", "PLO", "unknown zero_handling 'to=all'"),
    ("add=1/2,to=sometimes", "PLO", "unknown to='sometimes'"),
    ("none (PLO)", "PLO", "'none' is metafor's default only for PAS and PFT"),
])
def test_zero_handling_rejects_what_it_cannot_reproduce(text, measure, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        zero_handling(text, measure)


def test_every_zero_handling_in_the_fixtures_is_understood():
    seen = set()
    for s in load_reference_sets(FIXTURES):
        for rec in s.reference["records"]:
            zero_handling(rec["zero_handling"], rec["measure"])
            seen.add(rec["zero_handling"])
    assert {"add=1/2,to=all", "add=1/2,to=if0all", "add=0 (zero studies dropped)",
            "none (PFT)"} <= seen


# --------------------------------------------------------------------------- the rule


def test_relative_difference_is_relative_to_metafors_value():
    assert relative_difference(2.000004, 2.0, RMA_TOLERANCE) == pytest.approx(2e-6)
    assert relative_difference(-3.0, -3.0000003, RMA_TOLERANCE) == pytest.approx(1e-7)


def test_relative_difference_uses_the_absolute_floor_near_zero():
    # |0 - 5e-11| = 5e-11 <= 1e-10: agrees; floor = 1e-10 / 1e-6 = 1e-4
    assert relative_difference(5e-11, 0.0, RMA_TOLERANCE) == pytest.approx(5e-7)
    assert relative_difference(5e-11, 0.0, RMA_TOLERANCE) <= RMA_TOLERANCE
    # 2e-10 off zero is beyond the 1e-10 absolute tolerance
    assert relative_difference(2e-10, 0.0, RMA_TOLERANCE) == pytest.approx(2e-6)
    assert relative_difference(2e-10, 0.0, RMA_TOLERANCE) > RMA_TOLERANCE
    # for the GLMM the floor is 1e-10 / 1e-4 = 1e-6
    assert relative_difference(1e-6 + 5e-11, 1e-6, GLMM_TOLERANCE) == pytest.approx(5e-5)


def test_relative_difference_matches_the_test_suite_rule():
    # agrees  <=>  |a - e| <= max(tol * |e|, 1e-10)   (tests/conftest.py)
    for a, e in [(1.0, 1.0 + 1e-6), (1.0, 1.0 + 1.1e-6), (0.0, 9e-11), (0.0, 1.1e-10),
                 (-5.0, -5.0 + 4.9e-6), (1e-5, 1e-5 + 2e-10)]:
        rule = abs(a - e) <= max(RMA_TOLERANCE * abs(e), ABS_TOLERANCE)
        assert (relative_difference(a, e, RMA_TOLERANCE) <= RMA_TOLERANCE) == rule, (a, e)


def test_missing_values_match_only_missing_values():
    assert relative_difference(math.nan, None, RMA_TOLERANCE) == 0.0
    assert relative_difference(math.inf, None, RMA_TOLERANCE) == 0.0
    assert relative_difference(1.0, None, RMA_TOLERANCE) == math.inf
    assert relative_difference(math.nan, 1.0, RMA_TOLERANCE) == math.inf
    assert relative_difference(math.inf, math.inf, RMA_TOLERANCE) == 0.0
    assert relative_difference(-math.inf, math.inf, RMA_TOLERANCE) == math.inf


def test_relative_difference_needs_positive_tolerances():
    with pytest.raises(ValueError, match="tolerances must be > 0"):
        relative_difference(1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="scale >= 0"):
        relative_difference(1.0, 1.0, 1e-6, scale=-1.0)


def test_glmm_scale_follows_the_glmm_tests():
    ref = {"ci_lb": -3.0, "ci_ub": 1.0, "pi_lb": -0.5, "pi_ub": 0.5, "tau2": 0.2}
    assert glmm_scale("estimate", ref) == 1.0
    assert glmm_scale("ci_lower", ref) == 2.0  # half-width (1 - -3) / 2
    assert glmm_scale("pi_upper", ref) == 1.0  # half-width 0.5 < 1
    assert glmm_scale("tau2", ref) == 0.0
    assert glmm_scale("tau2", {**ref, "tau2": 0.0}) == pytest.approx(1e-2)  # 1e-6 absolute
    assert glmm_scale("i2", ref) == pytest.approx(1e-2)
    assert glmm_scale("se", ref) == 0.0 and glmm_scale("q", ref) == 0.0
    assert glmm_scale("ci_upper", {"ci_lb": None, "ci_ub": 0.1}) == 1.0
    with pytest.raises(ValueError, match="unknown field 'zval'"):
        glmm_scale("zval", ref)
    # an estimate near zero: 5e-5 off is 5e-5 of the scale 1, within 1e-4
    d = relative_difference(-0.05 + 5e-5, -0.05, GLMM_TOLERANCE, scale=1.0)
    assert d == pytest.approx(5e-5)
    assert relative_difference(-0.05 + 5e-5, -0.05, GLMM_TOLERANCE) == pytest.approx(1e-3)


# --------------------------------------------------------------------------- comparisons


def test_compare_reference_refits_every_record_and_the_glmm():
    ref, data = orr()
    table = compare_reference(ref, data, "metafor/orr_her2ctc")
    assert len(table) == len(ref["records"]) + len(ref["glmm"])
    assert list(table["kind"]) == ["rma"] * len(ref["records"]) + ["glmm"]
    assert (table["data_set"] == "metafor/orr_her2ctc").all()
    # metafor's side is copied from the JSON as it is
    for row, rec in zip(table.to_dict("records"), ref["records"], strict=False):
        assert row["estimate_metafor"] == rec["estimate"]
        assert row["i2_metafor"] == rec["I2"]
        assert (row["measure"], row["method"], row["test"]) == (
            rec["measure"], rec["method"], rec["test"])
    assert table.iloc[-1]["q_metafor"] == ref["glmm"][0]["QE_Wld"]
    # add=0 drops the study with 0 events, as metafor does (k = 4 of 5)
    dropped = table[table["zero_handling"].str.startswith("add=0")]
    assert len(dropped) == 3
    assert (dropped["k_evidence"] == 4).all() and (dropped["k_metafor"] == 4).all()


def test_every_fit_of_the_fixtures_agrees_with_metafor():
    table = parity.parity_table(load_reference_sets(FIXTURES))
    rma_rows = table[table["kind"] == "rma"]
    glmm_rows = table[table["kind"] == "glmm"]
    assert len(rma_rows) > 100 and len(glmm_rows) >= 6
    bad = table[~table["agrees"]]
    assert bad.empty, parity.verdict(bad)
    assert rma_rows["max_rel_diff"].max() <= RMA_TOLERANCE
    assert glmm_rows["max_rel_diff"].max() <= GLMM_TOLERANCE
    assert set(rma_rows["tolerance"]) == {RMA_TOLERANCE}
    assert set(glmm_rows["tolerance"]) == {GLMM_TOLERANCE}


def test_a_perturbed_reference_value_is_caught_with_its_size():
    ref, data = orr()
    bad = copy.deepcopy(ref)
    i = first_index(ref, "PLO", "REML", "add=1/2,to=only0")
    bad["records"][i]["tau2"] *= 1 + 1e-5
    table = compare_reference(bad, data, "orr")
    row = table.iloc[i]
    assert not row["agrees"]
    assert row["worst_field"] == "tau2"
    assert row["max_rel_diff"] == pytest.approx(1e-5, rel=1e-3)
    others = table.drop(index=i)
    assert others[others["kind"] == "rma"]["agrees"].all()
    text = parity.verdict(table)
    assert text.startswith(f"1 of {len(table)} comparisons on 1 data sets do not agree")
    assert "orr, PLO REML, add=1/2,to=only0 (default) (tau2 " in text


def test_a_small_perturbation_within_tolerance_still_agrees():
    ref, data = orr()
    ok = copy.deepcopy(ref)
    i = first_index(ref, "PLO", "DL", "add=1/2,to=only0")
    ok["records"][i]["estimate"] *= 1 + 2e-7
    row = compare_reference(ok, data).iloc[i]
    assert row["agrees"]
    assert row["max_rel_diff"] == pytest.approx(2e-7, rel=1e-3)
    assert row["worst_field"] == "estimate"


@pytest.mark.parametrize(("factor", "agrees"), [(1 + 5e-6, True), (1 + 1e-3, False)])
def test_the_glmm_is_judged_against_its_own_tolerance(factor, agrees):
    ref, data = orr()
    g = copy.deepcopy(ref)
    g["records"] = []
    g["glmm"][0]["tau2"] *= factor
    row = compare_reference(g, data).iloc[0]
    assert row["kind"] == "glmm" and row["tolerance"] == GLMM_TOLERANCE
    assert bool(row["agrees"]) is agrees
    if not agrees:
        assert row["worst_field"] == "tau2"
        assert row["max_rel_diff"] == pytest.approx(1e-3, rel=0.05)


@pytest.mark.parametrize(("shift", "agrees"), [(0.5e-4, True), (2e-4, False)])
def test_glmm_limits_are_judged_on_the_half_width(shift, agrees):
    ref, data = orr()
    g = copy.deepcopy(ref)
    g["records"] = []
    rec = g["glmm"][0]
    half = (rec["ci_ub"] - rec["ci_lb"]) / 2
    assert half > 1 > abs(rec["ci_ub"])
    rec["ci_ub"] += shift * half
    row = compare_reference(g, data).iloc[0]
    assert bool(row["agrees"]) is agrees
    assert row["worst_field"] == "ci_upper"
    assert row["max_rel_diff"] == pytest.approx(shift, rel=0.2)


def test_a_different_number_of_studies_fails():
    ref, data = orr()
    bad = copy.deepcopy(ref)
    bad["records"] = bad["records"][:1]
    bad["glmm"] = []
    bad["records"][0]["k"] = 4
    row = compare_reference(bad, data).iloc[0]
    assert not row["agrees"] and row["worst_field"] == "k"
    assert "k = 5 here, 4 in metafor" in parity.verdict(compare_reference(bad, data))


def test_metafor_na_against_a_number_fails():
    ref, data = orr()
    bad = copy.deepcopy(ref)
    bad["records"] = bad["records"][:1]
    bad["glmm"] = []
    bad["records"][0]["pi_lb"] = None
    row = compare_reference(bad, data).iloc[0]
    assert not row["agrees"] and row["worst_field"] == "pi_lower"
    assert row["max_rel_diff"] == math.inf


def test_a_fit_evidence_refuses_agrees_only_if_metafor_refused_too():
    ref = {"records": [], "glmm": [{"k": 3, "estimate": None}]}
    data = pd.DataFrame({"study": ["a", "b", "c"], "events": [0, 0, 0], "total": [5, 9, 7]})
    row = compare_reference(ref, data).iloc[0]
    assert not row["agrees"]
    assert row["error"].startswith("evidence refused: ")
    ref["glmm"][0]["error"] = "Cannot fit ML model."
    row = compare_reference(ref, data).iloc[0]
    assert row["agrees"]
    assert "both refuse" in row["error"] and "Cannot fit ML model." in row["error"]


@pytest.mark.parametrize(("key", "value", "message"), [
    ("measure", "PLN", "unknown measure 'PLN'; allowed: PLO, PFT, PAS, PR"),
    ("method", "EB", "unknown method 'EB'; allowed: FE, DL, REML, PM, ML, HE, SJ"),
    ("test", "t", "unknown test 't'; allowed: z, knha"),
])
def test_records_with_unknown_options_are_rejected(key, value, message):
    ref, data = orr()
    bad = copy.deepcopy(ref)
    bad["records"][0][key] = value
    with pytest.raises(ValueError, match=message):
        compare_reference(bad, data, "orr")


def test_data_without_counts_is_rejected():
    ref, _ = orr()
    with pytest.raises(ValueError, match=r"orr: missing columns \['total'\]"):
        compare_reference(ref, pd.DataFrame({"events": [1, 2]}), "orr")


# --------------------------------------------------------------------------- reading files


def _write_reference(folder: Path, stem: str, generator: str = "metafor_reference.R") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.csv").write_text("study,events,total\na,1,10\nb,3,12\n", encoding="utf-8")
    ref = {"meta": {"generator": generator, "input": f"{stem}.csv", "metafor": "3.8.1"},
           "records": [], "glmm": []}
    (folder / f"{stem}.json").write_text(json.dumps(ref), encoding="utf-8")


def test_load_reference_sets_reads_reference_jsons_and_hashes_their_files(tmp_path):
    _write_reference(tmp_path / "metafor", "two")
    _write_reference(tmp_path / "metafor", "extra", generator="make_extra_fixtures.R")
    (tmp_path / "glmm").mkdir()
    (tmp_path / "glmm" / "seq.json").write_text('{"meta": {}, "full": []}', encoding="utf-8")
    sets = load_reference_sets(tmp_path)
    assert [s.name for s in sets] == ["metafor/two"]
    assert list(sets[0].data["events"]) == [1, 3]
    expected = {f"metafor/two.{ext}": hashlib.sha256(
        (tmp_path / "metafor" / f"two.{ext}").read_bytes()).hexdigest() for ext in ("json", "csv")}
    assert sets[0].sha256 == expected
    assert parity.file_digests(sets) == dict(sorted(expected.items()))


def test_load_reference_sets_fails_loudly(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        load_reference_sets(tmp_path)
    (tmp_path / "metafor").mkdir()
    (tmp_path / "glmm").mkdir()
    with pytest.raises(ValueError, match=r"no metafor_reference\.R reference JSON"):
        load_reference_sets(tmp_path)
    _write_reference(tmp_path / "glmm", "lost")
    (tmp_path / "glmm" / "lost.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"input CSV .*lost\.csv not found"):
        load_reference_sets(tmp_path)


def test_the_project_fixtures_are_read(tmp_path):
    sets = load_reference_sets(FIXTURES)
    names = [s.name for s in sets]
    assert "metafor/orr_her2ctc" in names and "glmm/zeros_but_one" in names
    assert not any("extra" in n or "sequences" in n for n in names)
    for s in sets:
        assert s.reference["meta"]["metafor"] == "3.8.1"
        assert set(s.data.columns) >= {"events", "total"}
    # a copy elsewhere gives the same digests (paths are relative to the fixtures dir)
    shutil.copytree(FIXTURES / "metafor", tmp_path / "metafor")
    shutil.copytree(FIXTURES / "glmm", tmp_path / "glmm")
    assert parity.file_digests(load_reference_sets(tmp_path)) == parity.file_digests(sets)


# --------------------------------------------------------------------------- display


def test_display_summary_and_verdict():
    ref, data = orr()
    table = compare_reference(ref, data, "metafor/orr_her2ctc")
    shown = parity.display_table(table)
    assert list(shown.columns) == [
        "Data set", "Model", "k", "Estimate (95% CI), evidence", "Estimate (95% CI), metafor",
        "τ², evidence", "τ², metafor", "I² (%), evidence", "I² (%), metafor",
        "Largest rel. difference", "In", "Tolerance", "Agrees"]
    first = ref["records"][0]
    assert shown.iloc[0]["Estimate (95% CI), metafor"] == (
        f"{first['estimate']:.6g} ({first['ci_lb']:.6g} to {first['ci_ub']:.6g})"
        .replace("-", "−"))
    assert shown.iloc[0]["Tolerance"] == "1e-06" and shown.iloc[-1]["Tolerance"] == "1e-04"

    summary = parity.summary(table)
    assert summary["comparisons"] == len(table) == summary["agree"]
    assert summary["disagreements"] == []
    assert summary["tolerance"] == {"rma": 1e-6, "glmm": 1e-4, "abs": 1e-10}
    assert summary["max_rel_diff_glmm"] == table.iloc[-1]["max_rel_diff"]

    sets = [parity.ReferenceSet("metafor/orr_her2ctc", ref, data, {"metafor/a.json": "0" * 64})]
    per_set = parity.dataset_summary(table, sets)
    assert per_set.iloc[0]["Agree"] == f"{len(table)} of {len(table)}"
    assert per_set.iloc[0]["Studies (k)"] == "5"
    assert per_set.iloc[0]["metafor / lme4 / R"] == "3.8.1 / 1.1.31 / 4.2.2"

    text = parity.verdict(table)
    assert text.startswith(f"All {len(table)} comparisons on 1 data sets agree with metafor")


def test_reference_files_lists_each_file_with_its_provenance():
    sets = load_reference_sets(FIXTURES)
    files = parity.reference_files(sets)
    assert len(files) == 2 * len(sets)
    row = files[files["File"] == "metafor/orr_her2ctc.json"].iloc[0]
    assert row["SHA-256"] == hashlib.sha256(ORR.with_suffix(".json").read_bytes()).hexdigest()
    assert (row["Made by"], row["R"], row["metafor"], row["lme4"]) == (
        "metafor_reference.R", "4.2.2", "3.8.1", "1.1.31")
    csv_row = files[files["File"] == "metafor/orr_her2ctc.csv"].iloc[0]
    assert csv_row["Made by"] == "input of orr_her2ctc.json"


def test_describe_rule_states_the_tolerances():
    text = parity.describe_rule()
    assert "1e-06 of metafor's value" in text and "1e-10 near zero" in text
    assert "the tolerance is 1e-04" in text
    assert set(COMPARED_FIELDS) == {"estimate", "se", "ci_lower", "ci_upper", "pi_lower",
                                    "pi_upper", "tau2", "i2", "q"}
