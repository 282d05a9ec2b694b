"""Tests for evidence.registry.audit on the fixture registries and texts in
tests/fixtures/registry/.

``good`` passes; each ``audit_*`` registry fails for one reason (README.md there).
The texts are short verbatim excerpts of the seed papers plus one invented text.
"""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
from pathlib import Path

import pytest

from evidence.registry.audit import (
    AuditFinding,
    AuditReport,
    audit_sources,
    normalise_text,
    percentage_mismatches,
    quote_in_text,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "registry"
TEXTS = FIXTURES / "texts"

GOOD_NOTES = [
    "data/outcomes.csv:9: shi2023: alternative reading (shift_to_low 25/51, arm=all; "
    "primary on line 8): Abstract: 25 (49.0%) against the results' 20 out of 51 (39.2%).",
]


def audit(name: str) -> AuditReport:
    return audit_sources(FIXTURES / name / "data", TEXTS)


def strs(findings: list[AuditFinding]) -> list[str]:
    return [str(f) for f in findings]


# --------------------------------------------------------------------------- fixtures


def test_good_registry_passes() -> None:
    report = audit("good")
    assert report.ok
    assert report.failures == []
    assert strs(report.notes) == GOOD_NOTES


def test_missing_source_file_fails() -> None:
    report = audit("audit_missing_source")
    assert not report.ok
    assert strs(report.failures) == [
        "data/outcomes.csv:2: zhang2016: source file 'zhang2016_fulltext.txt' not found "
        "in the texts directory"]


def test_quote_not_in_source_fails() -> None:
    assert strs(audit("audit_quote_not_found").failures) == [
        "data/outcomes.csv:2: zhang2016: quote not found in zhang2016_excerpt.txt: the first "
        "10 of 51 characters match, then 'found in 57.4 % (58/101) of the patients' does not"]


def test_percentage_mismatches_fail() -> None:
    assert strs(audit("audit_percentage").failures) == [
        # the row's total (50) disagrees with the percentage next to its count
        "data/outcomes.csv:9: shi2023: percentage mismatch in '25 (49.0%)': the quote says "
        "49.0% but 100*25/50 = 50.000%",
        # the source itself: 14/27 = 51.85%, printed as 51.8 % (Zhang 2016, Discussion)
        "data/outcomes.csv:14: zhang2016: percentage mismatch in '51.8 % (14/27)': the quote "
        "says 51.8% but 100*14/27 = 51.852%",
        "data/outcomes.csv:15: synthetic2020: percentage mismatch in '12/40 (31%)': the quote "
        "says 31% but 100*12/40 = 30.00%",
    ]


def test_transition_margins_fail() -> None:
    report = audit("audit_margins")
    cells = ("26 (zero->zero) + 20 (zero->low) + 5 (zero->positive) + 30 (low->zero) + "
             "82 (low->low) + 12 (low->positive) + 2 (positive->zero) + 19 (positive->low) + "
             "50 (positive->positive)")
    assert strs(report.failures) == [
        "data/transitions.csv:12: synthetic2020: margin low->any: the parts sum to 124 = "
        "30 (low->zero) + 82 (low->low) + 12 (low->positive), but the row says 125",
        "data/transitions.csv:15: synthetic2020: margin any->low: the parts sum to 121 = "
        "20 (zero->low) + 82 (low->low) + 19 (positive->low), but the row says 122",
        f"data/transitions.csv:17: synthetic2020: margin any->any: the parts sum to 246 = "
        f"{cells}, but the row says 247",
    ]
    assert strs(report.notes) == [*GOOD_NOTES,
                                  "data/transitions.csv:6: synthetic2020: `derived` is empty "
                                  "but the quote does not state count 82 as a number"]


def test_audit_never_modifies_files() -> None:
    def state() -> dict[str, str]:
        return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(FIXTURES.rglob("*")) if p.is_file()}
    before = state()
    for name in ("good", "audit_margins", "bad_csv"):
        audit(name)
    assert state() == before


# --------------------------------------------------------------------------- tmp variants


@pytest.fixture
def good_copy(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(FIXTURES / "good" / "data", target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_source_outside_texts_dir_is_not_found(good_copy: Path) -> None:
    edit(good_copy / "outcomes.csv", "58,101,,zhang2016_excerpt.txt",
         "58,101,,../data/outcomes.csv")
    shutil.copy(good_copy / "outcomes.csv", good_copy.parent / "outcomes.csv")
    assert strs(audit_sources(good_copy, TEXTS).failures) == [
        "data/outcomes.csv:2: zhang2016: source file '../data/outcomes.csv' not found in "
        "the texts directory"]


def _edit_row(data: Path, line: int, **changes: str) -> None:
    """Change cells of the outcomes.csv record that starts on ``line`` (a physical line)."""
    path = data / "outcomes.csv"
    text = path.read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    starts, count = [], 1
    for row in csv.reader(io.StringIO(text)):
        starts.append(count)
        count += sum(cell.count("\n") for cell in row) + 1
    index = starts.index(line) - 1
    rows[index].update(changes)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")


def test_external_row_printed_figures_are_checked_against_its_counts(good_copy: Path) -> None:
    """The external row (a DOI source) of the good fixture passes: its printed figures
    show the derivation's inputs; without 'derived' they must show events and total."""
    assert audit_sources(good_copy, TEXTS).ok
    _edit_row(good_copy, 13, derived="", printed="9/63 (14.3%)")
    assert audit_sources(good_copy, TEXTS).ok
    _edit_row(good_copy, 13, printed="9 patients (15%)")
    failures = strs(audit_sources(good_copy, TEXTS).failures)
    assert failures == [
        "data/outcomes.csv:13: treatctc2019: printed '9 patients (15%)' shows neither the "
        "total 63 nor a percentage that agrees with 9/63"]
    _edit_row(good_copy, 13, printed="9 (15%) of 63")
    assert strs(audit_sources(good_copy, TEXTS).failures) == [
        "data/outcomes.csv:13: treatctc2019: percentage mismatch in '9 (15%)': the quote says "
        "15% but 100*9/63 = 14.29%"]
    _edit_row(good_copy, 13, printed="nine of 63")
    assert audit_sources(good_copy, TEXTS).ok  # a number word counts
    _edit_row(good_copy, 13, printed="8/63", retrieved="")
    failures = strs(audit_sources(good_copy, TEXTS).failures)
    assert failures == [
        "data/outcomes.csv:13: treatctc2019: retrieved: missing value: required for a row "
        "from doi:10.1055/a-1031-1120 (an external source)",
        "data/outcomes.csv:13: treatctc2019: printed '8/63' does not show the events 9 (fill "
        "'derived' if they were computed)"]


def test_alternative_rows_in_effects_and_transitions_are_noted(good_copy: Path) -> None:
    with (good_copy / "effects.csv").open("a", encoding="utf-8") as fh:
        fh.write("zhang2016,pfs,ctc_her2_positive_vs_negative,,0.38,0.166,0.831,0.019,yes,,"
                 "zhang2016_excerpt.txt,\"multivariate (HR = 0.383, 95%CI, 0.166–0.831, "
                 "P = 0.019)\",alternative,rounded in the figure legend\n")
    with (good_copy / "transitions.csv").open("a", encoding="utf-8") as fh:
        fh.write("synthetic2020,,any,any,248,flow chart total,synthetic_transitions.txt,"
                 "Of the 247 paired samples,alternative,the flow chart says 248\n")
    report = audit_sources(good_copy, TEXTS)
    assert report.ok
    assert strs(report.notes)[1:] == [
        "data/effects.csv:4: zhang2016: alternative reading (pfs 0.38 [0.166, 0.831]; "
        "primary on line 3): rounded in the figure legend",
        "data/transitions.csv:18: synthetic2020: alternative reading (any->any = 248; "
        "primary on line 17): the flow chart says 248",
    ]


def test_margins_use_margin_sets_when_cells_are_missing(good_copy: Path) -> None:
    path = good_copy / "transitions.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if ",low,low," not in line]
    kept = [line.replace(",any,zero,58,", ",any,zero,59,") for line in kept]
    path.write_text("".join(kept), encoding="utf-8")
    report = audit_sources(good_copy, TEXTS)
    assert strs(report.failures) == [
        # the any->zero margin is still checkable from its three cells
        "data/transitions.csv:13: synthetic2020: margin any->zero: the parts sum to 58 = "
        "26 (zero->zero) + 30 (low->zero) + 2 (positive->zero), but the row says 59",
        # the grand total now falls back to the complete sets of margins
        "data/transitions.csv:16: synthetic2020: grand total vs the column margins: the "
        "parts sum to 248 = 59 (any->zero) + 122 (any->low) + 67 (any->positive), but the "
        "row says 247",
    ]
    assert [str(n) for n in report.notes if "not checked" in n.message
            and "DOI" not in n.message] == [
        "data/transitions.csv:11: synthetic2020: margin low->any not checked: cells missing "
        "(low->low)",
        "data/transitions.csv:14: synthetic2020: margin any->low not checked: cells missing "
        "(low->low)",
    ]


def test_unreadable_registry_file_is_a_failure() -> None:
    report = audit("bad_csv")
    assert strs(report.failures)[:2] == [
        "data/outcomes.csv:2: cannot read: malformed CSV: expected 17 fields (as in the "
        "header), found 18",
        "data/outcomes.csv:13: cannot read: malformed CSV: unexpected end of data",
    ]


def test_missing_texts_dir_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="texts directory not found"):
        audit_sources(FIXTURES / "good" / "data", tmp_path / "nowhere")


# --------------------------------------------------------------------------- quote matching


ZHANG = (TEXTS / "zhang2016_excerpt.txt").read_text(encoding="utf-8")
SYNTHETIC = (TEXTS / "synthetic_transitions.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize(("quote", "found"), [
    # whitespace and line breaks
    ("The remaining 62.1 % (36/58) of histologically HER2-positive", True),
    ("The  remaining\t62.1 %\n(36/58)", True),
    # a word hyphenated at a line break ("prolifera-\ntion", "Not-\nably")
    ("cell survival and proliferation [1].", True),
    ("Notably, with the positive criterion", True),
    ("cell survival and prolifera- tion [1].", True),
    # a real hyphen at a line break ("HER2-\npositive"): with or without the hyphen
    ("not all HER2-positive metastatic breast cancer", True),
    ("not all HER2positive metastatic breast cancer", True),
    # different words, digits or punctuation do not match
    ("The remaining 62.1 % (36/59) of", False),
    ("The remaining 62.1% (36/58) of", False),
    ("the remaining 62.1 % (36/58) of", False),
    ("cell survival and prolifer ation", False),
    ("", False),
])
def test_quote_in_text_real_excerpt(quote: str, found: bool) -> None:
    assert quote_in_text(quote, ZHANG) is found


@pytest.mark.parametrize(("quote", "found"), [
    ("the classification used a no-break space in 20 % of the refined samples;", True),
    ("HER2-low status was assigned", True),
    ("the classi-fication", False),
])
def test_quote_in_text_soft_hyphen_nfkc_tabs(quote: str, found: bool) -> None:
    assert quote_in_text(quote, SYNTHETIC) is found


def test_normalise_text() -> None:
    assert normalise_text("  a\u00a0b\t\tc\n\nd\u00ade \ufb01 ") == "a b c de fi"


# --------------------------------------------------------------------------- percentages


@pytest.mark.parametrize(("quote", "events", "total", "n_bad"), [
    # the five forms, agreeing at the stated precision
    ("CTCs were detected in 57.4 % (58/101) of the patients.", 58, 101, 0),
    ("was 38.1% (94 out of 247).", 94, 247, 0),
    ("20 out of 51 (39.2%) patients", 20, 51, 0),
    ("20 of 51 (39.2%) patients", 20, 51, 0),
    ("36/58 (62.1%)", 36, 58, 0),
    ("53 (21.5%) were HER2-zero", 53, 247, 0),
    ("accounted for 54.7% (135) of all tumors", 135, 247, 0),
    # decimal comma, no decimals, boundary of the stated precision
    ("1 of 3 (33,3 %)", 1, 3, 0),
    ("1 of 3 (33 %)", 1, 3, 0),
    ("1/3 (33.4%)", 1, 3, 1),
    ("1/3 (34%)", 1, 3, 1),
    ("1/8 (12.5%)", 1, 8, 0),
    ("1/8 (13%)", 1, 8, 0),      # 12.5 rounds either way within 0.5
    ("1/8 (12%)", 1, 8, 0),
    ("1/8 (11%)", 1, 8, 1),
    # "N (P%)" uses the row's total, and only when N is the row's events
    ("25 (49.0%) primary HER2-zero patients", 25, 50, 1),
    ("25 (49.0%) primary HER2-zero patients and 19 (26.8%)", 19, 71, 0),
    # a fraction is not read as "N (P%)" with N its denominator
    ("36 / 58 (62.1%)", 58, 100, 0),
    # other groups' fractions in the same quote are not this row's business
    ("62.1 % (36/58) and 51.8 % (14/27)", 36, 58, 0),
    ("62.1 % (36/58) and 51.8 % (14/27)", 14, 27, 1),
    # rows without counts: every fraction is checked, "N (P%)" skipped
    ("62.1 % (36/58) and 51.8 % (14/27)", None, None, 1),
    ("25 (49.0%) primary", None, None, 0),
    # a percentage and its counts a few words apart (Verschoor 2024's PFR6: 14/25 is 56%)
    ("50% in treatment group (4 out of 8 patients) and 54% in the control group "
     "(14 out of 25 patients)", 14, 25, 1),
    ("50% in treatment group (4 out of 8 patients)", 4, 8, 0),
    ("95% of the patients (19 of 20)", 19, 20, 0),
    # not percentages of counts
    ("(95% CI 77.3–98.4)", 5, 31, 0),
    ("95% confidence interval of the 12 (30 of 40", 30, 40, 0),
    ("HR = 0.321, 95%CI, 0.156–0.62", None, None, 0),
])
def test_percentage_mismatches(quote: str, events: int | None, total: int | None,
                               n_bad: int) -> None:
    assert len(percentage_mismatches(quote, events, total)) == n_bad


def test_percentage_message_names_both_numbers() -> None:
    assert percentage_mismatches("were 12/40 (31%) of", 12, 40) == [
        "percentage mismatch in '12/40 (31%)': the quote says 31% but 100*12/40 = 30.00%"]


def test_declared_source_error_is_a_note_not_a_failure(tmp_path: Path) -> None:
    """A row whose ``source_error`` documents the source's own rounding keeps its
    percentage mismatch visible as a note, and the audit passes on it."""
    shutil.copytree(FIXTURES / "audit_percentage" / "data", tmp_path / "data")
    path = tmp_path / "data" / "outcomes.csv"
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    rows[0].append("source_error")
    for row in rows[1:]:
        row.append("14/27 is printed as 51.8 %" if "51.8 %" in row[8] else "")
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")
    report = audit_sources(tmp_path / "data", TEXTS)
    assert not any("51.8" in f for f in strs(report.failures))
    assert any("51.8" in n and "declared source error: 14/27 is printed as 51.8 %" in n
               for n in strs(report.notes))
    assert len(report.failures) == 2


def test_risk_of_bias_quotes_and_harms_are_audited(good_copy: Path) -> None:
    """A judgement's seed quote must occur in its seed (nothing else is checked: it states
    no numbers); a harm's quote like an outcome's."""
    header = "study_id,tool,domain,signalling,judgement,reason,source,quote,locator,retrieved\n"
    (good_copy / "risk_of_bias.csv").write_text(
        header
        + "zhang2016,quips,participation,,low,ok,zhang2016_excerpt.txt,CTCs were detected in "
          "57.4 % (58/101) of the patients.,,\n"
        + "zhang2016,quips,attrition,,low,ok,zhang2016_excerpt.txt,All patients completed "
          "follow-up.,,\n"
        + "zhang2016,quips,analysis,,low,ok,doi:10.1000/x1,,Table 2,2026-12-01\n",
        encoding="utf-8")
    (good_copy / "harms.csv").write_text(
        "study_id,arm,arm_role,harm,definition,events,total,source,quote\n"
        "zhang2016,all,,ctc,detected,58,101,zhang2016_excerpt.txt,CTCs were detected in "
        "57.4 % (58/101) of the patients.\n"
        "zhang2016,all,,ctc2,detected,58,100,zhang2016_excerpt.txt,CTCs were found in all "
        "patients.\n", encoding="utf-8")
    failures = strs(audit_sources(good_copy, TEXTS).failures)
    assert len(failures) == 2, failures
    assert failures[0].startswith("data/harms.csv:3: zhang2016: quote not found")
    assert failures[1].startswith("data/risk_of_bias.csv:3: zhang2016: quote not found in "
                                  "zhang2016_excerpt.txt")
