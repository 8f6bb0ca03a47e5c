"""Benchmark reports: per-run CSV, per-method summary (Markdown, CSV), JSON and a bar plot.

**Summary statistics.** For each method and metric, each mixture is first averaged over its
talkers (finite values only: a silent estimate scores NaN and is counted in ``undefined``);
``mean`` is the mean of these per-mixture values over the mixtures and ``ci95`` the half-width
of the 95 % Student-t confidence interval of that mean (``t_{0.975, n-1} · sd / √n`` over the
n mixtures; NaN for n < 2). Mixtures, not talkers, are the independent samples: the two
talkers of one mixture share its room, noise and separator run. ``rtf`` is the total
separation time over the total audio duration of the method's runs; ``rss_mb`` / ``cuda_mb``
the largest peak over its runs (MiB, see :mod:`vae_audio.bench.memory`).

All files are written atomically (:func:`vae_audio.fileio.atomic_write`); the tables use
:func:`vae_audio.eval.report.markdown_table` so they look the same in files and on screen.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vae_audio.bench.runner import BenchResult
from vae_audio.eval.report import json_safe, markdown_table
from vae_audio.fileio import atomic_write, atomic_write_text

PathLike = str | os.PathLike

# summary metric column -> header of the Markdown table
SUMMARY_METRICS = {
    "sdr": "SDR (dB)",
    "sir": "SIR (dB)",
    "sar": "SAR (dB)",
    "si_sdr": "SI-SDR (dB)",
    "sdr_i": "SDRi (dB)",
    "si_sdr_i": "SI-SDRi (dB)",
}


@dataclass(frozen=True)
class OutputPaths:
    """Where :func:`write_outputs` put its files."""

    per_file: Path
    summary_csv: Path
    summary_md: Path
    json: Path
    plot: Path


def mean_ci(values: np.ndarray) -> tuple[float, float]:
    """Mean and 95 % t-interval half-width of ``values [n]`` (finite), NaN where undefined."""
    from scipy.stats import t

    n = values.size
    if n == 0:
        return math.nan, math.nan
    mean = float(values.mean())
    if n < 2:
        return mean, math.nan
    return mean, float(t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n))


def mixture_means(rows: list[dict], col: str) -> np.ndarray:
    """Per mixture (order of first appearance), the mean of ``col`` over its talkers' rows,
    finite values only; mixtures without a finite value are left out -> ``[n]``."""
    per_mix = []
    for i in dict.fromkeys(r["id"] for r in rows):
        v = np.array([r[col] for r in rows if r["id"] == i], dtype=np.float64)
        if np.isfinite(v).any():
            per_mix.append(v[np.isfinite(v)].mean())
    return np.asarray(per_mix, dtype=np.float64)


def real_time_factor(runs: Iterable[dict]) -> float:
    """Separation seconds over audio seconds of ``runs`` (one row per run); failed runs
    (NaN seconds) are left out; NaN without any."""
    ran = [r for r in runs if math.isfinite(r["seconds"])]
    audio = sum(r["audio_seconds"] for r in ran)
    return sum(r["seconds"] for r in ran) / audio if audio else math.nan


def summarise(result: BenchResult) -> list[dict]:
    """One dict per method (in the order asked): ``method``, ``n_mixtures``, ``n_sources``,
    ``<metric>_mean`` / ``<metric>_ci95`` for :data:`SUMMARY_METRICS`, ``undefined``,
    ``rtf``, ``rss_mb``, ``cuda_mb`` (see the module docstring)."""
    out = []
    for method in result.methods:
        rows = [r for r in result.rows if r["method"] == method]
        ids = list(dict.fromkeys(r["id"] for r in rows))
        runs = {r["id"]: r for r in rows}  # cost columns repeat on every talker of a run
        entry = {"method": method, "n_mixtures": len(ids), "n_sources": len(rows)}
        undefined = 0
        for col in SUMMARY_METRICS:
            v = np.array([r[col] for r in rows], dtype=np.float64)
            undefined += int((~np.isfinite(v)).sum())
            entry[f"{col}_mean"], entry[f"{col}_ci95"] = mean_ci(mixture_means(rows, col))
        entry["undefined"] = undefined
        entry["rtf"] = real_time_factor(runs.values())
        for col in ("rss_mb", "cuda_mb"):
            v = np.array([r[col] for r in runs.values()], dtype=np.float64)
            entry[col] = float(np.nanmax(v)) if np.isfinite(v).any() else math.nan
        out.append(entry)
    return out


def _pm(mean: float, ci: float) -> str:
    if not math.isfinite(mean):
        return "nan"
    return f"{mean:.2f}" + (f" ± {ci:.2f}" if math.isfinite(ci) else "")


def summary_table(summary: list[dict]) -> str:
    """The Markdown table of :func:`summarise`: mean ± ci95 per metric, RTF, peak memory."""
    gpu = any(math.isfinite(s["cuda_mb"]) for s in summary)
    headers = ["method", *SUMMARY_METRICS.values(), "RTF", "peak RSS (MiB)"]
    headers += ["peak CUDA (MiB)"] if gpu else []
    rows = []
    for s in summary:
        row = [s["method"], *(_pm(s[f"{c}_mean"], s[f"{c}_ci95"]) for c in SUMMARY_METRICS)]
        row += [float(s["rtf"]), float(s["rss_mb"])] + ([float(s["cuda_mb"])] if gpu else [])
        rows.append(row)
    table = markdown_table(rows, headers, floatfmt=".2f")
    return table.replace(" nan |", "   - |")  # no memory measure (e.g. no CUDA run)


def summary_markdown(result: BenchResult, summary: list[dict]) -> str:
    """The report: what was run, the table, how to read it, notes."""
    s = result.settings
    iters = ", ".join(
        f"{m} {v['n_iter']}" for m, v in s["methods"].items() if v["n_iter"] is not None
    )
    n_src = s["n_src"] or "each mixture's talker count"
    n_talkers = len({(r["id"], r["source"]) for r in result.rows})
    lines = [
        "# Separation benchmark",
        "",
        f"- set: `{s['set']}`, {result.n_mixtures} mixtures, {n_talkers} talkers",
        f"- n_src: {n_src}; iterations: {iters or 'n/a'}; seed {s['seed']}; "
        f"talker selection: {s['select']}; {s['jobs']} worker process(es), one thread each",
        f"- STFT: {s['stft']['n_fft']}-point {s['stft']['window']}, hop {s['stft']['hop_length']}",
        "",
        summary_table(summary),
        "",
        "Scores on the reference mic (channel 0) against the reverberant talker images: BSS Eval "
        "SDR/SIR/SAR (fast_bss_eval, 512-tap filter), SI-SDR, and their improvements over the "
        "unprocessed mixture. mean ± half-width of the 95 % t-interval over mixtures "
        "(per-mixture means over talkers). RTF: separation seconds / audio seconds. Peak RSS: "
        "largest growth of the worker's peak resident memory during one separation.",
    ]
    if s["select"] == "best":
        lines += [
            "",
            "Talker selection 'best': of each method's outputs (talkers + noise slot, or M for "
            "AuxIVA/ILRMA) the scorer keeps those matching the references best (see the "
            "'dropped' column of per_file.csv).",
        ]
    if result.notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in result.notes]
    return "\n".join(lines) + "\n"


def plot_bars(summary: list[dict], path: Path) -> None:
    """Bar plot of mean SDR and SI-SDR per method with the 95 % intervals, written to ``path``
    (any matplotlib format, chosen by the suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [s["method"] for s in summary]
    x = np.arange(len(methods))
    width = 0.38
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(methods) + 1.5), 4.0))
    for k, (col, label) in enumerate((("sdr", "SDR"), ("si_sdr", "SI-SDR"))):
        means = [s[f"{col}_mean"] for s in summary]
        cis = [s[f"{col}_ci95"] if math.isfinite(s[f"{col}_ci95"]) else 0.0 for s in summary]
        ax.bar(x + (k - 0.5) * width, means, width, yerr=cis, capsize=3, label=label)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(x, methods, rotation=30, ha="right")
    ax.set_ylabel("dB (mean over mixtures, 95 % CI)")
    ax.set_title("Separation quality at the reference mic")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(
    result: BenchResult, out_dir: PathLike, *, protect: Iterable[PathLike] = ()
) -> OutputPaths:
    """Write ``per_file.csv`` (one row per mixture, method and talker), ``summary.csv``,
    ``summary.md``, ``results.json`` (settings, summary, rows, notes) and ``bars.png``."""
    out_dir = Path(out_dir).expanduser()
    protect = list(protect)
    paths = OutputPaths(
        out_dir / "per_file.csv",
        out_dir / "summary.csv",
        out_dir / "summary.md",
        out_dir / "results.json",
        out_dir / "bars.png",
    )
    summary = summarise(result)
    with atomic_write(paths.per_file, protect=protect) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=result.columns)
            writer.writeheader()
            writer.writerows(result.rows)
    with atomic_write(paths.summary_csv, protect=protect) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(summary[0]))
            writer.writeheader()
            writer.writerows(summary)
    atomic_write_text(paths.summary_md, summary_markdown(result, summary), protect=protect)
    record = {
        "settings": result.settings,
        "summary": summary,
        "notes": result.notes,
        "rows": result.rows,
    }
    atomic_write_text(paths.json, json.dumps(json_safe(record), indent=2) + "\n", protect=protect)
    with atomic_write(paths.plot, protect=protect) as tmp:
        plot_bars(summary, tmp)
    return paths
