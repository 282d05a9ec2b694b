"""The text of the R scripts of :mod:`evidence.book.reproduce` (private to the book wing).

Every block of a script is written here: the header, the helpers that print the
``EVIDENCE <fit> <quantity> <value>`` lines, reading the study table, and the fits.  The
only values that reach the R code are numbers (written by :func:`r_number`), metafor's
codes checked by :mod:`evidence.book.reproduce`, and string literals written by
:func:`r_string`.  No registry text is written at all: ids and labels reach R only
through the CSV.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["CHECKED_WITH", "Fit", "hazard_lines", "header_lines", "helper_lines",
           "proportion_lines", "r_number", "r_string", "read_lines", "version_lines"]

#: The versions the scripts were checked with (the project's reference, DESIGN.md).
CHECKED_WITH: tuple[tuple[str, str], ...] = (("R", "4.2.2"), ("metafor", "3.8-1"),
                                             ("lme4", "1.1-31"))
#: metafor's back-transformation of each measure (``predict(..., transf=)``).
TRANSF: dict[str, str | None] = {"PLO": "transf.ilogit", "PAS": "transf.iarcsin",
                                 "PFT": "transf.ipft.hm", "PR": None, "HR": "exp"}
#: Reported hazard-ratio intervals are 95% intervals (``hazard_ratio_effects``).
HR_CI_LEVEL = 0.95
_PLAIN = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Fit:
    """One model a script fits: the name of its output lines and metafor's arguments."""

    name: str
    measure: str
    method: str
    test: str

    @property
    def is_glmm(self) -> bool:
        """The binomial-normal model (``rma.glmm``), judged with the GLMM tolerance."""
        return self.method == "GLMM"

    @property
    def is_common_effect(self) -> bool:
        """The common-effect model (no prediction interval in metafor's ``predict``)."""
        return self.method == "FE"


def r_string(text: str) -> str:
    """``text`` as an R string literal, double-quoted, ASCII only.

    Backslash and quote are escaped, newline, carriage return and tab written as
    ``\\n``, ``\\r``, ``\\t``, every other character outside printable ASCII as
    ``\\u{hex}`` (``\\U{hex}`` beyond the Basic Multilingual Plane), so that no text can
    end the literal or change the encoding of the script.

    Raises
    ------
    ValueError
        ``text`` contains a NUL character (R strings cannot hold one).
    """
    out = ['"']
    for ch in str(text):
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif 32 <= code < 127:
            out.append(ch)
        elif code == 0:
            raise ValueError("an R string cannot contain a NUL character")
        elif code <= 0xFFFF:
            out.append(f"\\u{{{code:x}}}")
        else:
            out.append(f"\\U{{{code:x}}}")
    out.append('"')
    return "".join(out)


def r_number(x: float) -> str:
    """A finite number as an R literal (15 significant digits)."""
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"not a finite number: {x!r}")
    return f"{x:.15g}"


def _shown(text: str) -> str:
    """A name for a comment: as it is when plain (letters, digits, ``_.-``), else as an
    escaped literal (a comment ends at a line break)."""
    return text if _PLAIN.fullmatch(text) else r_string(text)


def header_lines(analysis_id: str, csv_name: str, packages: Sequence[str], version: str,
                 tolerance: str) -> list[str]:
    """The opening comment: what the script reproduces, with what, and how to run it."""
    checked = ", ".join(f"{name} {v}" for name, v in CHECKED_WITH
                        if name == "R" or name in packages)
    script = _shown(f"{analysis_id}.R")
    return [
        f"# Reproduces the pooled analysis {_shown(analysis_id)} of the evidence book in R, "
        "with metafor.",
        "#",
        f"# Written by the evidence library {_shown(version)} (evidence.book.reproduce) from "
        "the page's",
        f"# result file; checked with {checked}.",
        "#",
        f"# Run it in the folder that holds the page's study table {_shown(csv_name)}:",
        f"#     Rscript {script}",
        f"# or give the table's path:   Rscript {script} path/to/table.csv",
        "#",
        "# It prints metafor's results for readers and one line per number for machines,",
        "#     EVIDENCE <fit> <quantity> <value>",
        "# which `evidence reproduce` compares with the book's results",
        f"# ({tolerance}).",
    ]


def version_lines(packages: Sequence[str]) -> list[str]:
    """Load metafor (check lme4), print the versions."""
    lines = ["", "suppressPackageStartupMessages(library(metafor))"]
    if "lme4" in packages:
        lines += ['if (!requireNamespace("lme4", quietly = TRUE)) {',
                  '  stop("rma.glmm() needs the R package lme4", call. = FALSE)', "}"]
    lines += ['cat(sprintf("EVIDENCE version R %s.%s\\n", R.version$major, R.version$minor))']
    lines += [f'cat(sprintf("EVIDENCE version {p} %s\\n", packageVersion("{p}")))'
              for p in packages]
    lines += ['if (packageVersion("metafor") != "3.8.1") {',
              '  message("note: checked with metafor 3.8-1; this is metafor ", '
              'packageVersion("metafor"))', "}"]
    return lines


_HELPERS = r'''
# ---- helpers: one machine-readable line per number ----------------------------------
# emit() prints "EVIDENCE <fit> <quantity> <value>"; `evidence reproduce` reads these
# lines and compares them with the book's results. NA: R has no such number.
emit <- function(fit, quantity, value) {
  value <- if (is.null(value) || length(value) == 0) NA_real_ else as.numeric(value[1])
  cat(sprintf("EVIDENCE %s %s %.15g\n", fit, quantity, value))
}
# Every number of one fit: on the model's scale (the page's "model" block), then
# back-transformed: the pooled estimate, CI and prediction interval (its "pooled" block).
overview <- list()
emit_fit <- function(fit, res, transf = NULL, targs = NULL) {
  pred <- predict(res)
  back <- if (is.null(transf)) pred else predict(res, transf = transf, targs = targs)
  emit(fit, "estimate", res$b)
  emit(fit, "se", res$se)
  emit(fit, "ci_lower", res$ci.lb)
  emit(fit, "ci_upper", res$ci.ub)
  emit(fit, "pi_lower", pred$pi.lb)
  emit(fit, "pi_upper", pred$pi.ub)
  emit(fit, "tau2", res$tau2)
  emit(fit, "i2", res$I2)
  emit(fit, "q", if (inherits(res, "rma.glmm")) res$QE.Wld else res$QE)
  emit(fit, "pval", res$pval)
  emit(fit, "pooled_estimate", back$pred)
  emit(fit, "pooled_ci_lower", back$ci.lb)
  emit(fit, "pooled_ci_upper", back$ci.ub)
  emit(fit, "pooled_pi_lower", back$pi.lb)
  emit(fit, "pooled_pi_upper", back$pi.ub)
  num <- function(x) if (is.null(x)) NA_real_ else as.numeric(x)
  overview[[fit]] <<- data.frame(
    fit = fit, estimate = num(back$pred), ci.lb = num(back$ci.lb), ci.ub = num(back$ci.ub),
    pi.lb = num(back$pi.lb), pi.ub = num(back$pi.ub), tau2 = num(res$tau2),
    I2 = num(res$I2))
  invisible(res)
}
# A sensitivity fit that fails prints "EVIDENCE <fit> error <message>" and the script
# goes on; the primary fit is not wrapped: if it fails, the script fails.
try_fit <- function(fit, expr) {
  tryCatch(expr, error = function(e) {
    cat(sprintf("EVIDENCE %s error %s\n", fit,
                gsub("[[:space:]]+", " ", conditionMessage(e))))
    NULL
  })
}
'''


def helper_lines() -> list[str]:
    """``emit``, ``emit_fit`` and ``try_fit`` (constant R code)."""
    return _HELPERS.rstrip("\n").split("\n")


def read_lines(csv_name: str, analysis_id: str, numeric: Sequence[str]) -> list[str]:
    """Find and read the study table; convert the ``numeric`` columns."""
    usage = r_string(f"Rscript {analysis_id}.R path/to/{csv_name}")
    lines = [
        "",
        "# ---- the study table -----------------------------------------------------------",
        "# The CSV next to this script (else in the working directory), or the path given",
        "# as the first argument. Every column is read as text; the numbers are converted.",
        f"csv_name <- {r_string(csv_name)}",
        "script_dir <- function() {",
        '  file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)',
        '  if (length(file_arg)) dirname(normalizePath(sub("^--file=", "", file_arg[1])))',
        "  else getwd()",
        "}",
        "args <- commandArgs(trailingOnly = TRUE)",
        "candidates <- if (length(args)) args[1] else",
        "  c(file.path(script_dir(), csv_name), csv_name)",
        "csv_path <- candidates[file.exists(candidates)][1]",
        f"usage <- {usage}",
        "if (is.na(csv_path)) {",
        '  stop("cannot find ", candidates[1], ": download the study table (CSV) from the ",',
        '       "same page into this folder, or run ", usage, call. = FALSE)',
        "}",
        'dat <- read.csv(csv_path, colClasses = "character", na.strings = "",',
        '                check.names = FALSE, encoding = "UTF-8")',
    ]
    return lines + [f"dat${c} <- as.numeric(dat${c})" for c in numeric]


def _rows_check(k: int, what: str) -> str:
    return (f"if (nrow(dat) != {k}) stop(\"expected {k} {what}, found \", nrow(dat), "
            "call. = FALSE)")


_WORDS = {"GLMM": "The binomial-normal model (GLMM, exact binomial likelihood)",
          "REML": "The random-effects model (REML tau2)",
          "DL": "The random-effects model (DerSimonian-Laird tau2)",
          "PM": "The random-effects model (Paule-Mandel tau2)",
          "ML": "The random-effects model (maximum-likelihood tau2)",
          "HE": "The random-effects model (Hedges tau2)",
          "SJ": "The random-effects model (Sidik-Jonkman tau2)",
          "FE": "The common-effect model"}
_TEST_WORDS = {"z": "normal (z) interval", "t": "Student's t interval (k - 1 df)",
               "knha": "Hartung-Knapp interval",
               "adhoc": "Hartung-Knapp interval, never narrower than z (ad hoc)"}
_MEASURE_WORDS = {"PLO": "logit", "PFT": "Freeman-Tukey double arcsine", "PAS": "arcsine",
                  "PR": "raw proportion", "HR": "log hazard ratio"}


def _call(fit: Fit, level: float) -> str:
    lvl = r_number(level * 100)
    opts = f"test = {r_string(fit.test)}, level = {lvl})"
    if fit.is_glmm:
        return ('rma.glmm(measure = "PLO", xi = events, ni = total, data = dat,\n'
                f"    {opts}")
    if fit.measure == "HR":
        return f"rma(yi, vi, data = dat, method = {r_string(fit.method)},\n    {opts}"
    return (f"rma(measure = {r_string(fit.measure)}, xi = events, ni = total, data = dat,\n"
            f"    method = {r_string(fit.method)}, {opts}")


def _emit_call(fit: Fit, var: str) -> str:
    transf = TRANSF[fit.measure]
    if transf is None:
        return f'emit_fit("{fit.name}", {var})'
    if transf == "transf.ipft.hm":
        return f'emit_fit("{fit.name}", {var}, {transf}, targs = list(ni = dat$total))'
    return f'emit_fit("{fit.name}", {var}, {transf})'


def _fit_lines(fit: Fit, level: float, wrapped: bool) -> list[str]:
    var = f"fit_{fit.name}"
    words = f"# {_WORDS[fit.method]}, {_TEST_WORDS[fit.test]}"
    if fit.measure != "HR":
        words += f", {_MEASURE_WORDS[fit.measure]} scale"
    call = _call(fit, level)
    if not wrapped:
        return [words, f"{var} <- {call}", _emit_call(fit, var)]
    call = call.replace("\n    ", "\n      ")
    return [words, f'{var} <- try_fit("{fit.name}", {call})',
            f"if (!is.null({var})) {_emit_call(fit, var)}"]


def _for_readers(what: str) -> list[str]:
    return ["", "# ---- for readers -----------------------------------------------------------",
            'cat("\\nThe primary analysis:\\n")', "print(fit_primary)",
            f'cat("\\n{what} of every fit, with its 95% CI and prediction interval:\\n")',
            "print(do.call(rbind, overview), digits = 4, row.names = FALSE)"]


def proportion_lines(fits: Sequence[Fit], k: int, level: float) -> list[str]:
    """A pooled proportion: the counts, then the primary fit and the sensitivity fits,
    or for a single study its exact interval."""
    lines = ["", _rows_check(k, "studies" if k != 1 else "study"),
             'emit("data", "k", nrow(dat))',
             'emit("data", "events", sum(dat$events))',
             'emit("data", "total", sum(dat$total))']
    if not fits:
        lines += [
            "",
            "# ---- one study: nothing is pooled -------------------------------------------",
            "# As on the page: the study's own proportion with its exact (Clopper-Pearson)",
            "# 95% interval, from binom.test().",
            "exact <- binom.test(dat$events[1], dat$total[1], conf.level = 0.95)",
            'emit("single_study", "estimate", dat$events[1] / dat$total[1])',
            'emit("single_study", "ci_lower", exact$conf.int[1])',
            'emit("single_study", "ci_upper", exact$conf.int[2])',
            "",
            "# ---- for readers -----------------------------------------------------------",
            'cat("\\nOnly one study, so nothing is pooled; its proportion and exact 95% CI:\\n")',
            "print(c(proportion = dat$events[1] / dat$total[1], ci.lb = exact$conf.int[1],",
            "        ci.ub = exact$conf.int[2]))",
        ]
        return lines
    primary, *others = fits
    lines += ["",
              "# ---- the primary analysis: the page's pooled estimate -----------------------",
              *_fit_lines(primary, level, False)]
    if others:
        lines += [
            "",
            "# ---- sensitivity: the key rows of the page's estimator panel (logit scale) ----",
            "# NOT reproduced: the panel's Bayesian rows (metafor has no Bayesian model; the",
            "# library integrates the binomial-normal model under half-normal priors on tau,",
            "# see the page), the other measures and estimators of the collapsed panel,",
            "# leave-one-out and the subgroups."]
        for fit in others:
            lines += _fit_lines(fit, level, True)
    return lines + _for_readers("The pooled proportion")


def hazard_lines(fits: Sequence[Fit], k: int, level: float, pooled_adjusted: str
                 ) -> list[str]:
    """Pooled hazard ratios: the log hazard ratios from the table, the primary
    (random-effects) fit and the common-effect fit."""
    primary, common = fits
    z = f"qnorm({r_number(1 - (1 - HR_CI_LEVEL) / 2)})"
    return [
        "",
        "# ---- log hazard ratios ------------------------------------------------------",
        "# The table lists every hazard ratio of the comparison, already in its direction;",
        "# pooled are those of one kind (adjusted or not). yi = log HR, its variance from",
        "# the reported 95% CI where complete, else from the two-sided p-value.",
        f"dat <- dat[which(dat$adjusted == {r_string(pooled_adjusted)}), ]",
        _rows_check(k, "hazard ratios to pool"),
        "dat$yi <- log(dat$hr)",
        "from_ci <- !is.na(dat$hr_lower) & !is.na(dat$hr_upper)",
        f"dat$vi <- ifelse(from_ci, ((log(dat$hr_upper) - log(dat$hr_lower)) / (2 * {z}))^2,",
        "                 (abs(dat$yi) / qnorm(1 - dat$p_value / 2))^2)",
        'emit("data", "k", nrow(dat))',
        "for (i in seq_len(nrow(dat))) {",
        '  emit("effects", paste0("yi_", i), dat$yi[i])',
        '  emit("effects", paste0("vi_", i), dat$vi[i])',
        "}",
        "",
        "# ---- the primary analysis: the page's pooled hazard ratio ------------------",
        *_fit_lines(primary, level, False),
        "",
        "# ---- the common-effect model, which the page compares with it -------------",
        *_fit_lines(common, level, False),
        *_for_readers("The pooled hazard ratio"),
    ]
