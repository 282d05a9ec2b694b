"""Tests for evidence.book.reproduce: the R script of a pooled analysis, the numbers it
must print, and the comparison of its output with the book's result.

These run without R: the script's text is checked (which fits, which calls, every
string literal escaped), and the comparison is fed lines made from the expected values,
exact, within tolerance and beyond it.  ``tests/test_reproduce_live.py`` runs the
scripts with R.
"""

from __future__ import annotations

import json
import math
import re

import pytest
from reproduce_cases import (
    HOSTILE,
    entry_for,
    hazard_result,
    lines_of,
    proportion_result,
    studies,
)

from evidence.book import reproduce
from evidence.book.reproduce import (
    MARKER,
    compare,
    compare_values,
    expected_values,
    fits_of,
    parse_output,
    r_script,
    r_string,
    tolerances,
)


def decode_r_string(literal: str) -> str:
    """Decode a double-quoted R literal of the forms r_string writes."""
    assert literal[0] == literal[-1] == '"'
    body, out, i = literal[1:-1], [], 0
    simple = {"\\": "\\", '"': '"', "n": "\n", "r": "\r", "t": "\t"}
    while i < len(body):
        ch = body[i]
        assert ch != '"', f"unescaped quote at {i} in {literal!r}"
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in simple:
            out.append(simple[nxt])
            i += 2
            continue
        m = re.match(r"[uU]\{([0-9a-f]+)\}", body[i + 1:])
        assert m, f"unknown escape at {i} in {literal!r}"
        out.append(chr(int(m.group(1), 16)))
        i += 1 + m.end()
    return "".join(out)


def code_outside_strings(script: str) -> str:
    """The R code with every string literal and comment removed (a small R lexer)."""
    out, i, n = [], 0, len(script)
    while i < n:
        ch = script[i]
        if ch == "#":
            i = script.find("\n", i)
            i = n if i < 0 else i
        elif ch in "\"'":
            j = i + 1
            while script[j] != ch:
                j += 2 if script[j] == "\\" else 1
            out.append("STR")
            i = j + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


# ----------------------------------------------------------------------------- fits


def test_a_glmm_result_has_the_primary_and_the_key_panel_rows() -> None:
    fits = fits_of(proportion_result())
    assert [f.name for f in fits] == ["primary", "glmm_z", "reml_adhoc", "reml_knha",
                                      "reml_z", "dl_z", "fe_z"]
    assert (fits[0].method, fits[0].test) == ("GLMM", "t")
    assert [f.is_glmm for f in fits] == [True, True, False, False, False, False, False]


def test_the_key_row_that_is_the_primary_is_not_fitted_twice() -> None:
    fits = fits_of(proportion_result(method="REML", test="knha"))
    assert [f.name for f in fits] == ["primary", "glmm_t", "glmm_z", "reml_adhoc", "reml_z",
                                      "dl_z", "fe_z"]
    assert reproduce.r_packages(proportion_result(method="REML", test="knha")) == (
        "metafor", "lme4")


def test_a_single_study_has_no_fit_and_hazard_ratios_two() -> None:
    single = proportion_result(studies(counts=((4, 8),)))
    assert fits_of(single) == ()
    assert reproduce.r_packages(single) == ("metafor",)
    assert [f.name for f in fits_of(hazard_result())] == ["primary", "common_effect"]


def test_other_results_are_refused() -> None:
    assert not reproduce.reproducible({"analysis_id": "flow", "k": 3})
    with pytest.raises(ValueError, match="nothing to reproduce in R"):
        r_script({"analysis_id": "flow"}, "flow.csv", "flow")
    bad = proportion_result()
    bad["test"] = "knha"  # not a test of the GLMM
    with pytest.raises(ValueError, match="test 'knha' is not one of metafor's"):
        r_script(bad, "orr.csv", "orr")
    bad = proportion_result()
    bad["k"] = 4
    with pytest.raises(ValueError, match="k = 4 but the result lists 5 studies"):
        fits_of(bad)


# ----------------------------------------------------------------------------- script


def test_the_glmm_script_fits_with_metafor_and_says_what_it_does_not_reproduce() -> None:
    text = r_script(proportion_result(), "orr.csv", "orr")
    assert text.isascii() and text.endswith("\n")
    assert text == r_script(proportion_result(), "orr.csv", "orr")  # deterministic
    assert "checked with R 4.2.2, metafor 3.8-1, lme4 1.1-31" in text
    assert "#     Rscript orr.R" in text
    assert 'csv_name <- "orr.csv"' in text
    assert ('fit_primary <- rma.glmm(measure = "PLO", xi = events, ni = total, data = dat,\n'
            '    test = "t", level = 95)\nemit_fit("primary", fit_primary, transf.ilogit)'
            in text)
    assert 'try_fit("reml_adhoc", rma(measure = "PLO", xi = events, ni = total' in text
    assert 'method = "REML", test = "adhoc", level = 95))' in text
    assert 'method = "FE", test = "z", level = 95))' in text
    assert "NOT reproduced: the panel's Bayesian rows (metafor has no Bayesian model" in text
    assert "if (nrow(dat) != 5) stop(" in text
    assert 'requireNamespace("lme4"' in text
    assert "binom.test" not in text


def test_the_single_study_script_prints_the_exact_interval() -> None:
    text = r_script(proportion_result(studies(counts=((4, 8),))), "pfr6.csv", "pfr6")
    assert "binom.test(dat$events[1], dat$total[1], conf.level = 0.95)" in text
    assert 'emit("single_study", "ci_upper", exact$conf.int[2])' in text
    assert not re.search(r"\brma(\.glmm)?\(", code_outside_strings(text))
    assert "lme4" not in text


def test_the_hazard_ratio_script_derives_log_hazard_ratios_from_the_table() -> None:
    text = r_script(hazard_result(), "pfs.csv", "pfs")
    assert 'dat <- dat[which(dat$adjusted == "no"), ]' in text
    assert "qnorm(0.975)" in text and "qnorm(1 - dat$p_value / 2)" in text
    assert ('fit_primary <- rma(yi, vi, data = dat, method = "REML",\n    test = "adhoc", '
            "level = 95)\nemit_fit(\"primary\", fit_primary, exp)") in text
    assert 'fit_common_effect <- rma(yi, vi, data = dat, method = "FE"' in text
    assert "lme4" not in text


def test_other_measures_use_metafors_back_transformation() -> None:
    pft = r_script(proportion_result(method="REML", measure="PFT", test="z"), "x.csv", "x")
    assert ('emit_fit("primary", fit_primary, transf.ipft.hm, targs = list(ni = dat$total))'
            in pft)
    pr = r_script(proportion_result(method="DL", measure="PR", test="z"), "x.csv", "x")
    assert 'emit_fit("primary", fit_primary)\n' in pr


def test_registry_text_never_reaches_the_script() -> None:
    result = proportion_result(studies([HOSTILE, "b", "c", "d", "e"]))
    assert result["studies"][0]["label"] == HOSTILE
    text = r_script(result, "orr.csv", "orr")
    assert "system" not in text and "Evil" not in text
    assert "s0" not in text  # nor the study ids


def test_every_string_literal_is_escaped() -> None:
    for raw in (HOSTILE, 'a"b', "back\\slash", "tab\there", "😀 and é", "\r\n"):
        literal = r_string(raw)
        assert literal.isascii()
        assert decode_r_string(literal) == raw
    assert r_string('")); system("x') == '"\\")); system(\\"x"'
    with pytest.raises(ValueError, match="NUL"):
        r_string("a\0b")


def test_a_hostile_file_name_or_id_stays_inside_literals_and_comments() -> None:
    text = r_script(proportion_result(), f"{HOSTILE}.csv", HOSTILE)
    code = code_outside_strings(text)
    assert "system" not in code and "pwned" not in code
    assert text.isascii()
    literal = re.search(r"^csv_name <- (\".*\")$", text, flags=re.M).group(1)
    assert decode_r_string(literal) == f"{HOSTILE}.csv"
    for line in text.splitlines():  # a comment never spills onto a code line
        if "pwned" in line:
            assert line.startswith("#") or line.lstrip().startswith(("csv_name", "usage"))


# ----------------------------------------------------------------------------- values


def test_expected_values_come_from_the_result_and_the_library() -> None:
    from evidence.stats.proportions import pool_proportions

    result = proportion_result()
    exp = expected_values(result)
    assert exp[("data", "k")] == 5 and exp[("data", "events")] == 8
    assert exp[("data", "total")] == 85
    assert exp[("primary", "estimate")] == result["model"]["estimate"]
    assert exp[("primary", "pooled_pi_upper")] == result["pooled"]["pi_upper"]
    assert ("primary", "pval") not in exp  # not compared for the GLMM
    fit, pooled = pool_proportions([1, 0, 1, 4, 2], [14, 22, 11, 8, 30], measure="PLO",
                                   method="REML", test="knha")
    assert exp[("reml_knha", "ci_lower")] == fit.ci_lower
    assert exp[("reml_knha", "pooled_estimate")] == pooled["estimate"]
    assert exp[("reml_knha", "pval")] == fit.pval
    assert ("fe_z", "pi_lower") not in exp and ("fe_z", "pooled_pi_upper") not in exp
    assert {f for f, _ in exp} == {"data", "primary", "glmm_z", "reml_adhoc", "reml_knha",
                                   "reml_z", "dl_z", "fe_z"}


def test_expected_values_of_a_single_study_and_of_hazard_ratios() -> None:
    single = proportion_result(studies(counts=((4, 8),)))
    exp = expected_values(single)
    assert exp == {("data", "k"): 1.0, ("data", "events"): 4.0, ("data", "total"): 8.0,
                   ("single_study", "estimate"): 0.5,
                   ("single_study", "ci_lower"): single["pooled"]["ci_lower"],
                   ("single_study", "ci_upper"): single["pooled"]["ci_upper"]}
    hr = hazard_result()
    exp = expected_values(hr)
    assert exp[("effects", "yi_2")] == pytest.approx(math.log(0.48))
    assert exp[("effects", "vi_1")] == hr["studies"][0]["vi"]
    assert exp[("common_effect", "ci_upper")] == hr["common_effect"]["model"]["ci_upper"]
    assert ("common_effect", "pi_lower") not in exp


def test_glmm_tolerances_follow_the_parity_rule() -> None:
    result = proportion_result()
    exp = expected_values(result)
    tol = tolerances(result, exp)
    assert tol[("primary", "se")].rel == 1e-4 and tol[("primary", "se")].scale == 0
    assert tol[("primary", "estimate")].scale == 1.0
    assert tol[("reml_z", "estimate")] == reproduce.Tolerance(1e-6)
    assert tol[("data", "k")].rel == 1e-6
    half = (exp[("primary", "ci_upper")] - exp[("primary", "ci_lower")]) / 2
    assert tol[("primary", "ci_lower")].scale == max(1.0, half)
    p = exp[("primary", "pooled_estimate")]
    assert tol[("primary", "pooled_estimate")].scale == pytest.approx(
        p * (1 - p) * max(1.0, abs(exp[("primary", "estimate")])))


# ----------------------------------------------------------------------------- compare


@pytest.mark.parametrize("make", [proportion_result, hazard_result,
                                  lambda: proportion_result(studies(counts=((4, 8),)))])
def test_exact_lines_agree(make) -> None:
    result = make()
    exp = expected_values(result)
    diffs = compare_values(exp, lines_of(exp), tolerances(result, exp))
    assert len(diffs) == len(exp) and all(d.ok and d.difference == 0 for d in diffs)
    assert compare(exp, "\n".join(lines_of(exp)), tolerances(result, exp)) == []


def test_differences_within_and_beyond_tolerance() -> None:
    result = proportion_result()
    exp = expected_values(result)
    tol = tolerances(result, exp)
    near = lines_of(exp, lambda key, v: v * (1 + (5e-5 if key[0] == "primary" else 5e-7)))
    assert compare(exp, near, tol) == []
    far = lines_of(exp, lambda key, v: v * (1 + 5e-4) if key == ("primary", "se") else
                   (v * (1 + 5e-6) if key == ("reml_z", "tau2") else v))
    bad = compare(exp, far, tol)
    assert [(m.fit, m.quantity) for m in bad] == [("primary", "se"), ("reml_z", "tau2")]
    assert bad[0].difference == pytest.approx(5e-4, rel=1e-6) and bad[0].tolerance == 1e-4
    assert "primary se: book" in bad[0].describe() and "> 1e-04" in bad[0].describe()


def test_missing_lines_na_and_r_errors() -> None:
    result = proportion_result()
    exp = expected_values(result)
    tol = tolerances(result, exp)
    lines = [line for line in lines_of(exp) if not line.startswith(f"{MARKER} dl_z ")]
    lines.append(f"{MARKER} dl_z error Fisher scoring algorithm did not converge.")
    lines = [f"{MARKER} fe_z q NA" if line.startswith(f"{MARKER} fe_z q ") else line
             for line in lines]
    bad = compare(exp, lines, tol)
    assert {m.fit for m in bad} == {"dl_z", "fe_z"}
    dl = [m for m in bad if m.fit == "dl_z"]
    assert len(dl) == sum(1 for f, _ in exp if f == "dl_z")
    assert dl[0].printed is None and math.isinf(dl[0].difference)
    assert dl[0].note == "R error: Fisher scoring algorithm did not converge."
    fe = [m for m in bad if m.fit == "fe_z"]
    assert [(m.quantity, math.isnan(m.printed)) for m in fe] == [("q", True)]


def test_na_matches_a_missing_book_value_and_nothing_else() -> None:
    exp = {("primary", "pi_lower"): math.nan, ("primary", "tau2"): 0.5}
    tol = {k: reproduce.Tolerance(1e-6) for k in exp}
    assert compare(exp, ["EVIDENCE primary pi_lower NA", "EVIDENCE primary tau2 0.5"],
                   tol) == []
    bad = compare(exp, ["EVIDENCE primary pi_lower 0.1", "EVIDENCE primary tau2 NA"], tol)
    assert [m.quantity for m in bad] == ["pi_lower", "tau2"]


def test_malformed_output_is_an_error() -> None:
    with pytest.raises(ValueError, match="line 2: primary se: 'x' is not a number"):
        parse_output(["hello", "EVIDENCE primary se x"])
    with pytest.raises(ValueError, match="line 1: malformed"):
        parse_output(["EVIDENCE primary"])
    with pytest.raises(ValueError, match="primary se printed twice"):
        parse_output(["EVIDENCE primary se 1", "EVIDENCE primary se 1"])
    printed = parse_output("EVIDENCE version metafor 3.8.1\nEVIDENCE a b Inf\nEVIDENCE a c -Inf")
    assert printed.versions == {"metafor": "3.8.1"}
    assert printed.values == {("a", "b"): math.inf, ("a", "c"): -math.inf}


# ----------------------------------------------------------------------------- report


def test_summarise_records_what_was_compared() -> None:
    result = proportion_result()
    entry = entry_for(result, scale=lambda key, v: v * (1 + 2e-5) if key == ("primary", "tau2")
                      else v)
    assert entry["status"] == "ok" and entry["compared"] == len(expected_values(result))
    assert entry["fits"] == ["primary", "glmm_z", "reml_adhoc", "reml_knha", "reml_z",
                             "dl_z", "fe_z"]
    assert entry["largest"]["glmm"]["fit"] == "primary"
    assert entry["largest"]["glmm"]["quantity"] == "tau2"
    assert entry["largest"]["rma"]["difference"] == 0
    assert entry["versions"] == {"R": "4.2.2", "metafor": "3.8.1"}
    assert entry["result_sha256"] == reproduce.result_digest(result)
    json.dumps(entry, allow_nan=False)
    failed = reproduce.summarise("orr", result, [], None, "x", error="exited with status 1")
    assert failed["status"] == "error" and failed["compared"] == 0
