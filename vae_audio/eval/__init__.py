"""Evaluation of separated sources: SI-SDR and BSS Eval metrics, permutation solving,
directory-level evaluation against simulated sets, and reports (CSV, Markdown, JSON).

Names are imported on first use, so that `vae-audio --help` (which registers the
``evaluate`` subcommand from :mod:`vae_audio.eval.cli`) does not load torch or the BSS Eval
engines.
"""

import importlib

_EXPORTS = {
    "EvalResult": "evaluate",
    "MetricStats": "evaluate",
    "evaluate_dir": "evaluate",
    "summarise": "evaluate",
    "Reference": "matching",
    "load_references": "matching",
    "match_estimates": "matching",
    "CRITERIA": "metrics",
    "BssEvalResult": "metrics",
    "ENGINES": "metrics",
    "MixtureBaseline": "metrics",
    "bss_eval": "metrics",
    "mixture_baseline": "metrics",
    "pairwise_scores": "metrics",
    "pairwise_sdr": "metrics",
    "si_sdr": "metrics",
    "pesq_wb": "perceptual",
    "stoi": "perceptual",
    "Assignment": "permutation",
    "solve_permutation": "permutation",
    "markdown_table": "report",
    "summary_markdown": "report",
    "write_reports": "report",
    "METRICS": "scoring",
    "MixtureScores": "scoring",
    "score_mixture": "scoring",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vae_audio.eval' has no attribute {name!r}")
    return getattr(importlib.import_module(f"vae_audio.eval.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
