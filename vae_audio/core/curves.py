"""Training curves from Lightning's CSV logs, drawn with matplotlib (Agg, no display)."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable
from pathlib import Path

from vae_audio.core._io import atomic_path
from vae_audio.errors import VaeAudioError


def read_metrics(metrics_csv: str | os.PathLike | Iterable[str | os.PathLike]) -> dict:
    """Read one or several ``metrics.csv`` files into ``{metric: ([step], [value])}``.

    Files are read in the given order (e.g. a run and its resumptions); a later file's value
    at a step replaces an earlier one. Empty cells (metrics not logged at that row) are skipped.
    """
    paths = [metrics_csv] if isinstance(metrics_csv, (str, os.PathLike)) else list(metrics_csv)
    series: dict[str, dict[int, float]] = {}
    for path in map(Path, paths):
        if not path.is_file():
            raise VaeAudioError(f"metrics file {path} does not exist; point at a run's logs")
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                step = row.get("step")
                if not step:
                    continue
                for key, value in row.items():
                    if key in ("step", "epoch") or value in (None, ""):
                        continue
                    number = float(value)
                    if math.isfinite(number):
                        series.setdefault(key, {})[int(float(step))] = number
    return {k: (sorted(v), [v[s] for s in sorted(v)]) for k, v in sorted(series.items())}


def plot_curves(
    metrics_csv: str | os.PathLike | Iterable[str | os.PathLike], out_png: str | os.PathLike
) -> Path:
    """Plot every logged metric against the global step into one PNG (atomic write).

    Metrics sharing a name after the stage prefix (``train/loss_step``, ``train/loss_epoch``,
    ``val/loss``) share a panel.

    Returns:
        ``Path(out_png)``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = read_metrics(metrics_csv)
    panels: dict[str, list[str]] = {}
    for key in series:
        name = key.split("/", 1)[-1].removesuffix("_step").removesuffix("_epoch")
        panels.setdefault(name, []).append(key)
    n = max(len(panels), 1)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
    for ax, (name, keys) in zip(axes.flat, panels.items(), strict=False):
        for key in keys:
            steps, values = series[key]
            style = "-" if key.endswith("_step") else "o-"
            ax.plot(steps, values, style, label=key, markersize=3, linewidth=1)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return Path(out_png)
