"""evidence.registry.appraisal: each tool's overall rule, the risk_of_bias.csv rules and
the coverage rule (every study the registry pools from is assessed with its tool)."""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_cases import OUTCOME_TYPES, make

from evidence.registry import load, validate
from evidence.registry.appraisal import TOOLS, overall

DATA = Path(__file__).resolve().parents[2] / "data"


def domains(tool: str, *values: str) -> dict[str, str]:
    return dict(zip(TOOLS[tool].domain_codes, values, strict=True))


@pytest.mark.parametrize(("tool", "values", "expected"), [
    ("rob2", ("low",) * 5, "low"),
    ("rob2", ("low", "some_concerns", "low", "low", "low"), "some_concerns"),
    ("rob2", ("some_concerns",) * 4 + ("high",), "high"),
    ("rob2", ("some_concerns",) * 5, "some_concerns"),  # no automatic escalation
    ("robins_i", ("low",) * 7, "low"),
    ("robins_i", ("low", "moderate") + ("low",) * 5, "moderate"),
    ("robins_i", ("moderate", "no_information") + ("low",) * 5, "no_information"),
    ("robins_i", ("serious", "no_information") + ("low",) * 5, "serious"),
    ("robins_i", ("serious", "critical") + ("low",) * 5, "critical"),
    ("quadas2", ("low",) * 4, "low"),
    ("quadas2", ("low", "unclear", "low", "low"), "unclear"),
    ("quadas2", ("unclear", "unclear", "high", "low"), "high"),
    ("jbi_case_series", ("yes",) * 10, "low"),
    ("jbi_case_series", ("yes",) * 9 + ("unclear",), "low"),
    ("jbi_case_series", ("yes",) * 8 + ("unclear", "unclear"), "some_concerns"),
    ("jbi_case_series", ("yes",) * 9 + ("no",), "some_concerns"),
    ("jbi_case_series", ("yes",) * 8 + ("no", "no"), "high"),
    ("jbi_case_series", ("yes",) * 5 + ("unclear",) * 5, "high"),  # half not met
    ("jbi_case_series", ("yes",) * 6 + ("unclear",) * 3 + ("not_applicable",), "some_concerns"),
    ("jbi_case_series", ("yes",) * 5 + ("unclear",) * 4 + ("not_applicable",),
     "some_concerns"),  # 4 of 9 applicable items: less than half
    ("jbi_case_series", ("yes",) * 4 + ("unclear",) * 5 + ("not_applicable",), "high"),
    ("quips", ("low",) * 6, "low"),
    ("quips", ("moderate",) + ("low",) * 5, "low"),
    ("quips", ("moderate", "moderate") + ("low",) * 4, "moderate"),
    ("quips", ("moderate",) * 3 + ("low",) * 3, "high"),
    ("quips", ("high",) + ("low",) * 5, "high"),
])
def test_overall_follows_each_tools_rule(tool: str, values: tuple[str, ...],
                                         expected: str) -> None:
    assert overall(tool, domains(tool, *values)) == expected


def test_overall_rejects_incomplete_or_foreign_judgements() -> None:
    with pytest.raises(ValueError, match="domains missing"):
        overall("rob2", {"randomisation": "low"})
    with pytest.raises(ValueError, match="not in low, some_concerns, high"):
        overall("rob2", domains("rob2", "low", "low", "low", "low", "moderate"))
    with pytest.raises(ValueError, match="unknown tool"):
        overall("rob3", {})


RISK = "study_id,tool,domain,signalling,judgement,reason,source,quote,locator,retrieved\n"


def jbi_rows(study: str = "pestrin2012", **change: str) -> str:
    lines = []
    for code in TOOLS["jbi_case_series"].domain_codes:
        row = {"study_id": study, "tool": "jbi_case_series", "domain": code, "signalling": "",
               "judgement": "yes", "reason": "stated", "source": "a.txt",
               "quote": "one PR among 7", "locator": "", "retrieved": ""}
        if code == "inclusion_criteria":
            row.update(change)
        lines.append(",".join(row.values()))
    return "\n".join(lines) + "\n"


def rob2_rows(study: str = "fehm2021", signalling: str = "1.1=Y; 1.2=PY") -> str:
    return "".join(
        f"{study},rob2,{code},{signalling if i == 0 else f'{i + 1}.1=Y'},low,ok,"
        "doi:10.1093/clinchem/hvad144,,Abstract,2026-12-01\n"
        for i, code in enumerate(TOOLS["rob2"].domain_codes))


TYPES = OUTCOME_TYPES.replace("outcome,events,total,description\n",
                              "outcome,events,total,description,appraisal\n")
TYPES = TYPES.replace(",ORR\n", ",ORR,single_arm\n").replace(",yield\n", ",yield,\n")
TYPES = TYPES.replace(",PFR6\n", ",PFR6,\n")


def messages(tmp_path: Path, risk: str, types: str = OUTCOME_TYPES,
             effects: bool = False) -> list[str]:
    files: dict[str, str | None] = {"risk_of_bias.csv": RISK + risk,
                                    "outcome_types.csv": types}
    if not effects:
        files["effects.csv"] = None
    return [str(p) for p in validate(make(tmp_path, files=files))]


def test_complete_assessments_are_valid(tmp_path: Path) -> None:
    assert messages(tmp_path, jbi_rows() + rob2_rows()) == []


@pytest.mark.parametrize(("risk", "message"), [
    (jbi_rows(judgement="maybe"),
     "data/risk_of_bias.csv:2: judgement: 'maybe' is not one of yes, no, unclear, "
     "not_applicable"),
    (jbi_rows(tool="jbi"), "data/risk_of_bias.csv:2: tool: 'jbi' is not one of rob2"),
    (jbi_rows(domain="criteria"),
     "data/risk_of_bias.csv:2: domain: 'criteria' is not one of inclusion_criteria"),
    (jbi_rows(study_id="pestrin2013"),
     "data/risk_of_bias.csv:2: study_id: unknown study_id 'pestrin2013' (not in studies.csv)"),
    (jbi_rows(reason=""), "data/risk_of_bias.csv:2: reason: missing value"),
    (jbi_rows(quote=""), "data/risk_of_bias.csv:2: quote: missing value: a judgement from a "
                         "seed text carries the verbatim passage"),
    (jbi_rows(signalling="1.1=Y"), "data/risk_of_bias.csv:2: signalling: jbi_case_series has "
                                   "no signalling questions"),
    (jbi_rows(domain="condition_measurement"),
     "data/risk_of_bias.csv:3: domain: jbi_case_series domain 'condition_measurement' of "
     "'pestrin2012' given twice (first on line 2)"),
    (jbi_rows()[: jbi_rows().rindex("pestrin2012")],
     "data/risk_of_bias.csv:2: domain: 'pestrin2012' assessed with jbi_case_series lacks "
     "domain(s) statistical_analysis"),
    (rob2_rows(signalling=""), "data/risk_of_bias.csv:2: signalling: missing value"),
    (rob2_rows(signalling="2.1=Y"), "data/risk_of_bias.csv:2: signalling: '2.1=Y': question "
                                    "2.1 is not of domain 1 (randomisation)"),
    (rob2_rows(signalling="1.1=Maybe"), "data/risk_of_bias.csv:2: signalling: '1.1=Maybe' is "
                                        "not 'question=answer'"),
    (rob2_rows(signalling="1.1=YES"), "data/risk_of_bias.csv:2: signalling: '1.1=YES': answer "
                                      "'YES' is not one of Y, PY, PN, N, NI, NA"),
    (rob2_rows(signalling="1.1=Y; 1.1=N"), "question 1.1 answered twice"),
    (rob2_rows().replace(",,Abstract,", ",a quoted sentence,Abstract,", 1),
     "data/risk_of_bias.csv:2: quote: must be empty for an external source"),
    (rob2_rows().replace(",,Abstract,2026-12-01", ",,,2026-12-01", 1),
     "data/risk_of_bias.csv:2: locator: missing value: required for a judgement from "
     "doi:10.1093/clinchem/hvad144"),
])
def test_each_rule_names_file_line_and_column(tmp_path: Path, risk: str,
                                              message: str) -> None:
    found = messages(tmp_path, risk)
    assert any(m.startswith(message) or message in m for m in found), found


def test_every_pooled_study_needs_its_tool(tmp_path: Path) -> None:
    """With outcome_types.csv's appraisal column, objective response is a single-arm
    outcome: each study with a primary row of it needs the case-series checklist, and
    Verschoor's two arms (experimental and control) a comparison tool as well."""
    found = messages(tmp_path, jbi_rows(), TYPES)
    assert ("data/outcomes.csv:3: study_id: 'jacot2019' is pooled from this row, so it needs "
            "a jbi_case_series risk-of-bias assessment, and data/risk_of_bias.csv has none"
            in found)
    assert any("'verschoor2024' is pooled from this row, so it needs a jbi_case_series" in m
               for m in found)
    assert not any("'pestrin2012' is pooled" in m for m in found)


def test_every_hazard_ratio_study_needs_quips(tmp_path: Path) -> None:
    found = messages(tmp_path, jbi_rows(), effects=True)
    assert [m.split(": ")[0] for m in found] == ["data/effects.csv:2", "data/effects.csv:3"]
    assert all("needs a quips risk-of-bias assessment" in m for m in found)


def test_appraisal_kind_must_be_known(tmp_path: Path) -> None:
    found = messages(tmp_path, jbi_rows(), TYPES.replace(",ORR,single_arm", ",ORR,single"))
    assert found[0].startswith("data/outcome_types.csv:2: appraisal: 'single' is not one of")


def test_shipped_registry_assesses_every_study_it_pools() -> None:
    reg = load(DATA)
    assert not reg.risk_of_bias.empty
    assert validate(DATA) == []
    assert set(reg.outcome_types["appraisal"]) >= {"single_arm", "comparison", "agreement"}
    for (study, tool), group in reg.risk_of_bias.groupby(["study_id", "tool"]):
        judgement = overall(tool, dict(zip(group["domain"], group["judgement"], strict=True)))
        assert judgement in TOOLS[tool].overall_levels, (study, tool)
