## Time metafor's fit alone on a CSV of single proportions (study,events,total).
## Usage: Rscript metafor_time.R INPUT.csv REML|GLMM
## Prints one JSON object: elapsed (seconds, system.time around the fit only; the data
## are read, escalc'd and a warm-up fit on the first 10 rows is done before), estimate,
## se, tau2, and the R / metafor versions.
args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2 || !(args[2] %in% c("REML", "GLMM")))
  stop("usage: Rscript metafor_time.R INPUT.csv REML|GLMM")
suppressPackageStartupMessages({ library(metafor); library(jsonlite) })
inp <- read.csv(args[1], stringsAsFactors = FALSE)
warm <- inp[seq_len(min(10, nrow(inp))), ]
if (args[2] == "REML") {
  dat <- escalc(measure = "PLO", xi = events, ni = total, data = inp)
  invisible(rma(yi, vi, data = escalc(measure = "PLO", xi = events, ni = total, data = warm),
                method = "REML"))
  t <- system.time(fit <- rma(yi, vi, data = dat, method = "REML"))
} else {
  invisible(rma.glmm(measure = "PLO", xi = events, ni = total, data = warm))
  t <- system.time(fit <- rma.glmm(measure = "PLO", xi = events, ni = total, data = inp))
}
cat(toJSON(list(elapsed = unname(t[["elapsed"]]), k = fit$k,
                estimate = as.numeric(fit$beta)[1], se = as.numeric(fit$se)[1],
                tau2 = as.numeric(fit$tau2)[1],
                r_version = paste(R.version$major, R.version$minor, sep = "."),
                metafor_version = as.character(packageVersion("metafor"))),
           auto_unbox = TRUE, digits = NA))
cat("\n")
