"""Separation examples written during training: spectrograms and an SDR / SI-SDR table.

Every few epochs the training task separates a handful of held-out simulated mixtures with
the current weights (amortised, or with refinement), scores the speaker estimates against
the reverberant reference images with :func:`vae_audio.eval.scoring.score_mixture` (BSS Eval
SDR/SIR/SAR and SI-SDR at mic 0, dB; estimates matched to references by SDR), and writes::

    out_dir/examples/epoch_EEEE/<id>.png   mixture, references and every slot (dB, mic 0)
    out_dir/examples/epoch_EEEE/scores.md  one row per reference speaker + the mean
    out_dir/examples/epoch_EEEE/scores.json
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from vae_audio.audio.stft import istft, stft
from vae_audio.fileio import atomic_write, atomic_write_text
from vae_audio.neural_fca.inference import fit_neural_fca
from vae_audio.neural_fca.model import NeuralFCA

COLUMNS = ("sdr", "sir", "sar", "si_sdr", "sdr_i", "si_sdr_i")


@dataclass
class ExampleScores:
    """Scores of one round of examples: ``rows`` (one per reference speaker: ``id``,
    ``speaker``, ``slot`` and :data:`COLUMNS` in dB) and their ``mean`` (NaN-free mean)."""

    epoch: int
    rows: list[dict]
    mean: dict[str, float]


def separate_item(model: NeuralFCA, mix: torch.Tensor, n_iter: int = 0) -> torch.Tensor:
    """Images ``[N, M, S]`` of every slot (noise last) for one mixture ``mix [M, S]``."""
    cfg = model.stft_config
    X = stft(mix[None], cfg)  # [1, M, F, T]
    fit = fit_neural_fca(X, model, n_iter=n_iter)
    return istft(fit.images(X), cfg, length=mix.shape[-1])[0]  # [N, M, S]


def write_examples(
    model: NeuralFCA, items: list[dict], out_dir: str | Path, epoch: int, n_iter: int = 0
) -> ExampleScores:
    """Separate, score and plot ``items`` (dicts with ``mix [M, S]``, ``sources [K, M, S]``
    and ``id``) into ``out_dir/examples/epoch_EEEE`` (module docstring)."""
    from vae_audio.eval.scoring import score_mixture

    folder = Path(out_dir) / "examples" / f"epoch_{epoch:04d}"
    sr = model.stft_config.sample_rate
    device = next(model.parameters()).device
    rows = []
    for item in items:
        mix = item["mix"].to(device=device, dtype=torch.float32)
        refs = item["sources"].float().cpu()
        images = separate_item(model, mix, n_iter).detach().cpu()  # [N, M, S]
        speakers = images[:-1]  # the last slot is the noise slot
        scores = score_mixture(refs, speakers, mix.cpu(), sr, metrics=("sdr", "si-sdr"))
        for k in range(refs.shape[0]):
            row = {"id": str(item["id"]), "speaker": k, "slot": int(scores.perm[k])}
            row.update({c: float(scores.values[c][k]) for c in COLUMNS})
            rows.append(row)
        _plot(mix.cpu(), refs, images, model, folder / f"{item['id']}.png")
    mean = {c: _nanmean([r[c] for r in rows]) for c in COLUMNS}
    result = ExampleScores(epoch, rows, mean)
    _write_table(result, folder)
    return result


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def _write_table(result: ExampleScores, folder: Path) -> None:
    head = "| id | speaker | slot | " + " | ".join(COLUMNS) + " |"
    lines = [
        f"Separation examples after epoch {result.epoch} (dB, mic 0; slot = matched estimate)",
        "",
        head,
        "|" + "---|" * (3 + len(COLUMNS)),
    ]
    for r in result.rows:
        values = " | ".join(f"{r[c]:.2f}" for c in COLUMNS)
        lines.append(f"| {r['id']} | {r['speaker']} | {r['slot']} | {values} |")
    lines.append("| mean | | | " + " | ".join(f"{result.mean[c]:.2f}" for c in COLUMNS) + " |")
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "scores.md", "\n".join(lines) + "\n")
    atomic_write_text(folder / "scores.json", json.dumps(asdict(result), indent=2) + "\n")


def _plot(mix: torch.Tensor, refs: torch.Tensor, images: torch.Tensor, model, path: Path) -> None:
    """Mixture, K references and N slot estimates at mic 0 as dB spectrograms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = model.stft_config
    rows = [("mixture", mix[0])]
    rows += [(f"reference {k}", refs[k, 0]) for k in range(refs.shape[0])]
    n_src = images.shape[0]
    rows += [
        (f"slot {n}" + (" (noise)" if n == n_src - 1 else ""), images[n, 0]) for n in range(n_src)
    ]
    specs = [10 * torch.log10(stft(w, cfg).abs().square() + 1e-10).numpy() for _, w in rows]
    top = max(float(s.max()) for s in specs)
    fig, axes = plt.subplots(len(rows), 1, figsize=(8, 1.6 * len(rows)), sharex=True)
    for ax, (title, _), spec in zip(axes, rows, specs, strict=True):
        ax.imshow(spec, origin="lower", aspect="auto", vmin=top - 80, vmax=top, cmap="magma")
        ax.set_ylabel(title, fontsize=8)
        ax.set_yticks([])
    axes[-1].set_xlabel(f"frame (hop {cfg.hop_length} samples at {cfg.sample_rate} Hz)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
