"""Reports of an evaluation: per-source CSV, Markdown summary, JSON summary (atomic writes).

:func:`markdown_table` is the one table formatter of the package: the evaluation summary,
the benchmark scripts and anything printing results to a terminal use it, so tables look the
same in files and on screen (GitHub-flavoured Markdown, padded to line up as plain text).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from vae_audio.eval.evaluate import EvalResult
from vae_audio.fileio import atomic_write, atomic_write_text

PathLike = str | os.PathLike

# column -> (label, unit) for the summary table
LABELS = {
    "sdr": ("SDR", "dB"),
    "sir": ("SIR", "dB"),
    "sar": ("SAR", "dB"),
    "isr": ("ISR", "dB"),
    "si_sdr": ("SI-SDR", "dB"),
    "sdr_mix": ("SDR of the mixture", "dB"),
    "si_sdr_mix": ("SI-SDR of the mixture", "dB"),
    "sdr_i": ("SDR improvement", "dB"),
    "si_sdr_i": ("SI-SDR improvement", "dB"),
    "pesq": ("PESQ (wideband)", "MOS-LQO"),
    "stoi": ("STOI", "index 0-1"),
}
# headline metrics of the one-line summary, in order
_HEADLINE = ("sdr", "si_sdr", "sdr_i", "si_sdr_i", "pesq", "stoi")


@dataclass(frozen=True)
class ReportPaths:
    """Where :func:`write_reports` put the three files."""

    csv: Path
    markdown: Path
    json: Path


def _cell(value, floatfmt: str) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, float):
        return format(value, floatfmt) if math.isfinite(value) else str(value)
    return str(value).replace("|", "\\|")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def markdown_table(
    rows: Iterable[Mapping | Sequence],
    columns: Sequence[str],
    floatfmt: str = ".2f",
    headers: Sequence[str] | None = None,
) -> str:
    """A Markdown table of ``rows`` (mappings keyed by ``columns``, or sequences in that order).

    Floats use ``floatfmt`` (non-finite ones print as ``nan``/``inf``), missing keys print
    empty, numeric columns are right-aligned; ``headers`` replaces the column names shown.
    Returns the table without a trailing newline.
    """
    rows = list(rows)
    headers = list(headers or columns)
    if len(headers) != len(columns):
        raise ValueError(f"{len(headers)} headers for {len(columns)} columns")
    values = [
        [row.get(c) for c in columns] if isinstance(row, Mapping) else list(row) for row in rows
    ]
    bad = [i for i, row in enumerate(values) if len(row) != len(columns)]
    if bad:
        raise ValueError(f"row {bad[0]} has {len(values[bad[0]])} cells for {len(columns)} columns")
    cells = [[_cell(v, floatfmt) for v in row] for row in values]
    numeric = [
        bool(values) and all(_is_number(r[i]) or r[i] is None for r in values)
        for i in range(len(columns))
    ]
    widths = [max([len(h), 3] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(parts: Sequence[str]) -> str:
        padded = [
            p.rjust(w) if num else p.ljust(w)
            for p, w, num in zip(parts, widths, numeric, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w - 1) + ":" if num else "-" * w for w, num in zip(widths, numeric, strict=True)]
    return "\n".join([line(headers), line(rule)] + [line(r) for r in cells])


def summary_rows(result: EvalResult) -> list[dict]:
    """One dict per metric column: label, unit, mean, median, count (and undefined)."""
    return [
        {"metric": LABELS.get(col, (col, ""))[0], "unit": LABELS.get(col, ("", ""))[1]}
        | asdict(stats)
        for col, stats in result.summary.items()
    ]


def summary_markdown(result: EvalResult, floatfmt: str = ".2f") -> str:
    """The Markdown summary: settings, the summary table and the notes."""
    s = result.settings
    n_sources = len(result.rows)
    columns = ["metric", "unit", "mean", "median", "count"]
    if any(stats.undefined for stats in result.summary.values()):
        columns.append("undefined")
    lines = [
        "# Separation evaluation",
        "",
        f"- estimates: `{s.get('est', '')}`",
        f"- references: `{s.get('ref', '')}`",
        f"- mixtures: {result.n_mixtures} ({n_sources} reference sources); estimates matched "
        f"to references by {str(s.get('criterion', '')).upper()}"
        + (", image-based BSS Eval" if s.get("images") else ", reference microphone"),
    ]
    bss = s.get("bss_eval")
    if bss and "sdr" in s.get("metrics", ()):
        lines.append(
            f"- BSS Eval: {bss['engine']} (`{bss['function']}` definitions, "
            f"{bss['filter_length']}-tap distortion filter)"
        )
    lines += [
        "",
        markdown_table(summary_rows(result), columns, floatfmt),
    ]
    if result.notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in result.notes]
    return "\n".join(lines) + "\n"


def one_line_summary(result: EvalResult) -> str:
    """E.g. ``20 mixtures, 40 sources: SDR 12.31 dB, SI-SDR 11.02 dB, SDRi 9.87 dB``."""
    parts = []
    for col in _HEADLINE:
        if col in result.summary:
            label, unit = LABELS[col]
            label = label.replace(" improvement", "i").replace(" (wideband)", "")
            unit = f" {unit}" if unit == "dB" else ""
            parts.append(f"{label} {result.summary[col].mean:.2f}{unit}")
    line = f"{result.n_mixtures} mixtures, {len(result.rows)} sources: " + ", ".join(parts)
    bad = undefined_sources(result)
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        line += (
            f"; {len(bad)} source(s) with undefined metrics, left out of these means "
            f"(silent estimates?): {shown}"
        )
    return line


def undefined_sources(result: EvalResult) -> list[str]:
    """``id/source`` of the rows with a non-finite headline metric (NaN: silent estimate)."""
    cols = [c for c in _HEADLINE if c in result.summary]
    return [
        f"{r['id']}/{r['source']}"
        for r in result.rows
        if any(not math.isfinite(float(r[c])) for c in cols)
    ]


def json_safe(value):
    """``value`` with non-finite floats replaced by None, through dicts, lists and tuples
    (JSON has no NaN or infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def summary_dict(result: EvalResult) -> dict:
    """JSON-ready summary (non-finite numbers become ``null``)."""
    return json_safe(
        {
            "settings": result.settings,
            "n_mixtures": result.n_mixtures,
            "n_sources": len(result.rows),
            "summary": {col: asdict(stats) for col, stats in result.summary.items()},
            "notes": result.notes,
            "missing": result.missing,
        }
    )


def write_reports(
    result: EvalResult, out_dir: PathLike, *, protect: Iterable[PathLike] = ()
) -> ReportPaths:
    """Write ``results.csv`` (one row per source), ``summary.md`` and ``summary.json``."""
    out_dir = Path(out_dir).expanduser()
    protect = list(protect)
    paths = ReportPaths(out_dir / "results.csv", out_dir / "summary.md", out_dir / "summary.json")
    with atomic_write(paths.csv, protect=protect) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=result.columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(result.rows)
    atomic_write_text(paths.markdown, summary_markdown(result), protect=protect)
    atomic_write_text(
        paths.json, json.dumps(summary_dict(result), indent=2) + "\n", protect=protect
    )
    return paths
