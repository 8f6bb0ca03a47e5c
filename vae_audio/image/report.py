"""Small command-line helpers of the image recipes (used by ``egs/dsprites`` and ``egs/digits``).

::

    python -m vae_audio.image.report preview dsprites --out exp/dsprites/data_preview.png
    python -m vae_audio.image.report table exp/dsprites/vae exp/dsprites/beta_tcvae --out t.md

``preview`` draws a grid of a data set (dSprites: random sprites; digits: upright sources over
their warped versions). ``table`` gathers the ``metrics.json`` of run folders into a Markdown
table (ELBO terms in nats per image; metrics as fractions, angle spreads in radians).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from vae_audio.errors import VaeAudioError
from vae_audio.fileio import atomic_write_text
from vae_audio.image import plots
from vae_audio.image.datasets import AffineDigits, DSprites


def preview(name: str, out: str, n: int = 32, seed: int = 0) -> None:
    """Write a PNG grid of ``n`` images of data set ``name`` (``dsprites`` or ``digits``)."""
    if name == "dsprites":
        data = DSprites()
        x = data.sample_observations(n, np.random.RandomState(seed))
        plots.save_grid(torch.from_numpy(x), 8, out, "procedural dSprites (random factors)")
    elif name == "digits":
        d = AffineDigits(n // 2, seed=seed)
        k = min(8, n // 4)
        grid = torch.cat([d.upright[:k], d.images[:k], d.upright[k : 2 * k], d.images[k : 2 * k]])
        plots.save_grid(grid, k, out, "digits: upright (rows 1, 3) and warped (rows 2, 4)")
    else:
        raise VaeAudioError(f"preview: data set {name!r} unknown; use dsprites or digits")


def _flatten(metrics: dict) -> dict[str, float]:
    row = {f"val_{k}": v for k, v in metrics.get("val", {}).items()}
    for name, score in metrics.get("disentanglement", {}).items():
        row[name] = score.get("mig", score.get("eval_accuracy", score.get("disentanglement")))
    row.update(metrics.get("affine", {}))
    if "image_only_accuracy" in metrics:
        row["image_only_accuracy"] = metrics["image_only_accuracy"]
    return row


def table(runs: list[str]) -> str:
    """Markdown table of the runs' ``metrics.json`` (one row per run folder)."""
    rows, columns = [], []
    for run in runs:
        path = Path(run) / "metrics.json"
        if not path.is_file():
            raise VaeAudioError(f"{path} does not exist; train the run first (vae-audio train)")
        row = _flatten(json.loads(path.read_text(encoding="utf-8")))
        rows.append((Path(run).name, row))
        columns += [c for c in row if c not in columns]
    lines = ["| run | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in rows:
        cells = [
            f"{row[c]:.3f}" if isinstance(row.get(c), float) else str(row.get(c, ""))
            for c in columns
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vae_audio.image.report", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    pv = sub.add_parser("preview", help="grid PNG of a data set")
    pv.add_argument("name", choices=["dsprites", "digits"])
    pv.add_argument("--out", required=True)
    tb = sub.add_parser("table", help="Markdown table of run folders' metrics.json")
    tb.add_argument("runs", nargs="+")
    tb.add_argument("--out", help="write the table here (also printed)")
    args = p.parse_args(argv)
    try:
        if args.command == "preview":
            preview(args.name, args.out)
            print(f"wrote {args.out}")
        else:
            text = table(args.runs)
            if args.out:
                atomic_write_text(args.out, text)
            print(text, end="")
    except VaeAudioError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
