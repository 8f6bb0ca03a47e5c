"""Reports of the condition matrix: per-cell scores, the mean over cells, the gap to the best
peer, and a heat map of it.

**Per cell.** For each cell and method: SDR, SI-SDR and SDRi in dB, each the mean over the
cell's mixtures of the per-mixture mean over talkers (finite values only, as in
:mod:`vae_audio.bench.report`), and the RTF (separation seconds over audio seconds).
**Best peer** of a cell: the highest cell SDR among the matrix's ``peers``; ``Δ`` = a
method's cell SDR minus it (dB). **Mean over cells**: the unweighted mean of the cell values
(every condition counts once, whatever its mixture count), over all cells and per talker
count.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vae_audio.bench.matrix import MatrixSets, MatrixSpec
from vae_audio.bench.report import mixture_means, real_time_factor
from vae_audio.bench.runner import BenchResult
from vae_audio.eval.report import json_safe, markdown_table
from vae_audio.fileio import atomic_write, atomic_write_text

CELL_METRICS = {"sdr": "SDR", "si_sdr": "SI-SDR", "sdr_i": "SDRi"}
# targets of the reference method (auto) against the best peer, dB of SDR
TARGETS = {"2-talker mean": 3.0, "3-talker mean": 2.0, "worst cell": -0.5}


@dataclass
class MatrixTable:
    """``rows``: one dict per (cell, method) with ``cell``, ``talkers``, ``method``,
    ``n_mixtures``, the :data:`CELL_METRICS`, ``rtf``, ``best_peer`` (its SDR) and
    ``delta`` (SDR minus it); ``methods`` and ``cells`` in run order."""

    rows: list[dict]
    methods: tuple[str, ...]
    cells: list[str]
    peers: tuple[str, ...]
    reference: str


def _cell_mean(rows: list[dict], col: str) -> float:
    per_mix = mixture_means(rows, col)
    return float(per_mix.mean()) if per_mix.size else math.nan


def cell_table(result: BenchResult, sets: MatrixSets, spec: MatrixSpec) -> MatrixTable:
    """Aggregate the bench rows of a matrix run per cell and method (module docstring)."""
    by_key: dict[tuple[str, str], list[dict]] = {}
    for row in result.rows:
        by_key.setdefault((sets.cell_of[row["id"]].name, row["method"]), []).append(row)
    rows = []
    for cell in sets.cells:
        cell_rows = []
        for method in result.methods:
            rs = by_key.get((cell.name, method), [])
            runs = {r["id"]: r for r in rs}  # cost columns repeat on every talker of a run
            entry = {
                "cell": cell.name,
                **dict(cell.levels),
                "talkers": spec.talkers(cell),  # the count (the level's name may differ)
                "method": method,
                "n_mixtures": len(runs),
            }
            entry.update({c: _cell_mean(rs, c) for c in CELL_METRICS})
            entry["rtf"] = real_time_factor(runs.values())
            cell_rows.append(entry)
        peer_sdr = [r["sdr"] for r in cell_rows if r["method"] in spec.peers]
        best = max((v for v in peer_sdr if math.isfinite(v)), default=math.nan)
        for r in cell_rows:
            r["best_peer"], r["delta"] = best, r["sdr"] - best
        rows += cell_rows
    return MatrixTable(
        rows, tuple(result.methods), [c.name for c in sets.cells], spec.peers, spec.reference
    )


def means(table: MatrixTable, talkers: int | None = None) -> dict[str, dict[str, float]]:
    """Per method: the mean over cells (of ``talkers`` talkers; None: all) of each metric,
    RTF and ``delta``, and ``worst`` (the lowest ``delta``)."""
    out = {}
    for method in table.methods:
        rs = [
            r
            for r in table.rows
            if r["method"] == method and (talkers is None or r["talkers"] == talkers)
        ]
        if not rs:
            continue
        entry = {}
        for col in (*CELL_METRICS, "rtf", "delta"):
            v = np.array([r[col] for r in rs], dtype=np.float64)
            entry[col] = float(np.nanmean(v)) if np.isfinite(v).any() else math.nan
        d = np.array([r["delta"] for r in rs], dtype=np.float64)
        entry["worst"] = float(np.nanmin(d)) if np.isfinite(d).any() else math.nan
        entry["n_cells"] = len(rs)
        out[method] = entry
    return out


def target_check(table: MatrixTable) -> list[tuple[str, float, float, bool]]:
    """``(what, measured, target, met)`` for the reference method against :data:`TARGETS`."""
    checks = []
    for n, what in ((2, "2-talker mean"), (3, "3-talker mean")):
        m = means(table, n).get(table.reference)
        if m is not None:
            checks.append((what, m["delta"], TARGETS[what], m["delta"] >= TARGETS[what]))
    allm = means(table).get(table.reference)
    if allm is not None:
        worst = allm["worst"]
        checks.append(("worst cell", worst, TARGETS["worst cell"], worst >= TARGETS["worst cell"]))
    return checks


def _f(v: float, fmt: str = ".2f") -> str:
    return format(v, fmt) if math.isfinite(v) else "-"


def matrix_markdown(table: MatrixTable, header: Sequence[str] = ()) -> str:
    """The matrix report: cells × methods SDR (Δ to the best peer), means, targets."""
    lines = ["# Condition matrix", "", *header, ""]
    lines += ["## Mean over cells (dB; RTF)", ""]
    rows = []
    groups = [("all", None), ("2 talkers", 2), ("3 talkers", 3)]
    present = [(g, n) for g, n in groups if n is None or any(r["talkers"] == n for r in table.rows)]
    for method in table.methods:
        row = [method]
        for _, n in present:
            m = means(table, n).get(method, {})
            row += [_f(m.get("sdr", math.nan)), _f(m.get("delta", math.nan), "+.2f")]
        m = means(table).get(method, {})
        row += [_f(m.get("si_sdr", math.nan)), _f(m.get("sdr_i", math.nan)),
                _f(m.get("worst", math.nan), "+.2f"), _f(m.get("rtf", math.nan))]  # fmt: skip
        rows.append(row)
    headers = ["method"]
    for g, _ in present:
        headers += [f"SDR ({g})", "Δ best peer"]
    headers += ["SI-SDR", "SDRi", "worst cell Δ", "RTF"]
    lines += [markdown_table(rows, headers), ""]
    checks = target_check(table)
    if checks:
        lines += [f"## Targets of `{table.reference}` against the best peer (SDR, dB)", ""]
        lines += [
            f"- {what}: {measured:+.2f} (target ≥ {target:+.1f}): {'met' if ok else 'NOT met'}"
            for what, measured, target, ok in checks
        ]
        lines.append("")
    lines += ["## SDR per cell (dB; Δ to the best peer in brackets)", ""]
    rows = []
    for cell in table.cells:
        rs = {r["method"]: r for r in table.rows if r["cell"] == cell}
        first = next(iter(rs.values()))
        row = [cell, first["n_mixtures"]]
        row += [f"{_f(rs[m]['sdr'])} ({_f(rs[m]['delta'], '+.1f')})" for m in table.methods]
        rows.append(row)
    lines += [markdown_table(rows, ["cell", "mixtures", *table.methods]), ""]
    lines += [
        "Blind talker choice for every method. Cell values: mean over the cell's mixtures of "
        "the per-mixture mean over talkers, at mic 0 against the reverberant images. Best "
        f"peer: the highest SDR among {', '.join(table.peers)} in the cell.",
    ]
    return "\n".join(lines) + "\n"


def plot_heatmap(table: MatrixTable, path: Path, methods: Sequence[str] | None = None) -> None:
    """Heat map of ``delta`` (SDR minus the best peer's, dB): cells (rows) × methods, colours
    clipped at ±6 dB so that the oracle does not wash out the others; numbers unclipped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(methods or table.methods)
    delta = {(r["cell"], r["method"]): r["delta"] for r in table.rows}
    D = np.array([[delta[c, m] for m in methods] for c in table.cells], dtype=np.float64)
    fig, ax = plt.subplots(figsize=(3.5 + 0.8 * len(methods), 1.2 + 0.3 * len(table.cells)))
    im = ax.imshow(D, cmap="RdBu", vmin=-6.0, vmax=6.0, aspect="auto")
    for i, j in np.ndindex(D.shape):
        if math.isfinite(D[i, j]):
            ax.text(j, i, f"{D[i, j]:+.1f}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(table.cells)), table.cells, fontsize=7)
    fig.colorbar(im, ax=ax, label="SDR − best peer's SDR (dB)", fraction=0.04)
    ax.set_title("SDR minus the best peer's, per cell (blind talker choice)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_matrix_outputs(
    table: MatrixTable, out: Path, header: Sequence[str], settings: dict
) -> dict[str, Path]:
    """``matrix.md``, ``matrix.csv``, ``matrix.json`` and ``heatmap.png`` into ``out``."""
    paths = {k: out / f"matrix.{k}" for k in ("md", "csv", "json")}
    paths["heatmap"] = out / "heatmap.png"
    atomic_write_text(paths["md"], matrix_markdown(table, header))
    with atomic_write(paths["csv"]) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(table.rows[0]))
            writer.writeheader()
            writer.writerows(table.rows)
    record = {"settings": settings, "means": means(table), "rows": table.rows}
    atomic_write_text(paths["json"], json.dumps(json_safe(record), indent=2) + "\n")
    with atomic_write(paths["heatmap"]) as tmp:
        plot_heatmap(table, tmp)
    return paths
