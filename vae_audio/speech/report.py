"""Held-out report of a trained speech prior: scores, reconstructions, prior samples.

Scores (nats per frame: sum over F, mean over the frames of all held-out utterances):

- ``is_div_vae``: IS divergence between ``|x|²`` and ``g(μ(x))``, the PSD decoded from the
  posterior mean — how well the prior's manifold covers held-out speech;
- ``elbo``: the ELBO per frame with one posterior sample (β = 1);
- ``is_div_fixed``: the fixed-PSD baseline, the mean training-speech PSD ``m_f`` for every
  frame;
- ``is_div_fixed_gain``: the same with the per-frame gain that minimises the IS divergence,
  ``a_t = mean_f(|x_ft|² / m_f)`` — the best a single spectral shape can do.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from vae_audio.audio.stft import STFT  # noqa: E402
from vae_audio.core.likelihoods import is_divergence  # noqa: E402
from vae_audio.fileio import atomic_write, atomic_write_text  # noqa: E402
from vae_audio.speech.model import SpeechVAE  # noqa: E402
from vae_audio.speech.objective import speech_vae_loss  # noqa: E402


@dataclass
class PriorScores:
    """Held-out scores, nats per frame (see the module docstring)."""

    n_utterances: int
    n_frames: int
    is_div_vae: float
    elbo: float
    is_div_fixed: float
    is_div_fixed_gain: float


def mean_psd(model: SpeechVAE, waves: list[Tensor]) -> Tensor:
    """Mean power spectrum ``[F]`` over all frames of ``waves`` (each ``[S]``)."""
    stft = STFT(model.stft_config)
    total, count = 0.0, 0
    for wav in waves:
        power = stft(wav).abs().pow(2)  # [F, T]
        total = total + power.sum(-1)
        count += power.shape[-1]
    return total / max(count, 1)


@torch.no_grad()
def score_prior(model: SpeechVAE, waves: list[Tensor], reference_psd: Tensor) -> PriorScores:
    """Scores of ``model`` on held-out ``waves`` (``[S]`` each) vs ``reference_psd [F]``."""
    model.eval()
    stft = STFT(model.stft_config)
    sums = dict(vae=0.0, elbo=0.0, fixed=0.0, gain=0.0)
    frames = 0
    for wav in waves:
        power = stft(wav).abs().pow(2)[None]  # [1, F, T]
        n = power.shape[-1]
        psd_mean = model.decode(model.encode(power).mean)  # [1, F, T]
        sums["vae"] += is_divergence(power, psd_mean).sum().item()
        sums["elbo"] += speech_vae_loss(power, model(power)).elbo.item() * n
        ref = reference_psd[None, :, None]  # [1, F, 1]
        sums["fixed"] += is_divergence(power, ref.expand_as(power)).sum().item()
        gain = (power / ref).mean(-2, keepdim=True)  # [1, 1, T], argmin of IS over a_t
        sums["gain"] += is_divergence(power, gain * ref).sum().item()
        frames += n
    f = max(frames, 1)
    return PriorScores(
        n_utterances=len(waves),
        n_frames=frames,
        is_div_vae=sums["vae"] / f,
        elbo=sums["elbo"] / f,
        is_div_fixed=sums["fixed"] / f,
        is_div_fixed_gain=sums["gain"] / f,
    )


def _db(power: Tensor) -> Tensor:
    return 10 * torch.log10(power.clamp_min(1e-10))


@torch.no_grad()
def plot_reconstructions(model: SpeechVAE, waves: list[Tensor], path: Path) -> Path:
    """Clean vs reconstructed (posterior-mean) log spectrograms, one row per utterance."""
    stft = STFT(model.stft_config)
    fig, axes = plt.subplots(len(waves), 2, figsize=(10, 2.4 * len(waves)), squeeze=False)
    for row, wav in enumerate(waves):
        power = stft(wav).abs().pow(2)[None]  # [1, F, T]
        recon = model.decode(model.encode(power).mean)
        for col, (img, title) in enumerate(((power, "clean"), (recon, "reconstruction"))):
            ax = axes[row][col]
            ax.imshow(
                _db(img[0]).numpy(),
                origin="lower",
                aspect="auto",
                cmap="magma",
                vmin=float(_db(power).max()) - 80,
                vmax=float(_db(power).max()),
            )
            ax.set_title(f"{title} (dB)")
            ax.set_xlabel("frame")
            ax.set_ylabel("bin")
    fig.tight_layout()
    return _save_fig(fig, path)


@torch.no_grad()
def plot_prior_samples(model: SpeechVAE, path: Path, n: int = 4, n_frames: int = 120) -> Path:
    """Spectrograms decoded from ``z ~ N(0, I)`` with a slowly varying latent trajectory.

    Frames are drawn as an AR(1) latent path (unit marginal variance) so the picture shows
    speech-like continuity; each frame's ``z_t`` is still a sample of the prior.
    """
    gen = torch.Generator().manual_seed(0)
    rho = 0.9
    z = torch.empty(n, n_frames, model.latent_dim)
    z[:, 0] = torch.randn(n, model.latent_dim, generator=gen)
    for t in range(1, n_frames):
        noise = torch.randn(n, model.latent_dim, generator=gen)
        z[:, t] = rho * z[:, t - 1] + (1 - rho**2) ** 0.5 * noise
    psd = model.decode(z)  # [n, F, T]
    fig, axes = plt.subplots(1, n, figsize=(3 * n, 2.6), squeeze=False)
    top = float(_db(psd).max())
    for i in range(n):
        ax = axes[0][i]
        ax.imshow(
            _db(psd[i]).numpy(),
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=top - 80,
            vmax=top,
        )
        ax.set_title(f"prior sample {i + 1} (dB)")
    fig.tight_layout()
    return _save_fig(fig, path)


def _save_fig(fig, path: Path) -> Path:
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return Path(path)


def write_report(
    model: SpeechVAE,
    train_waves: list[Tensor],
    valid_waves: list[Tensor],
    out_dir: Path,
    n_examples: int = 3,
) -> PriorScores:
    """Score ``model`` on ``valid_waves`` and write ``report.json``, ``report.md`` and figures."""
    out_dir = Path(out_dir)
    scores = score_prior(model, valid_waves, mean_psd(model, train_waves))
    plot_reconstructions(model, valid_waves[:n_examples], out_dir / "reconstructions.png")
    plot_prior_samples(model, out_dir / "prior_samples.png")
    atomic_write_text(out_dir / "report.json", json.dumps(asdict(scores), indent=2) + "\n")
    lines = [
        "| held-out score (nats/frame) | value |",
        "|---|---:|",
        f"| IS divergence, VAE (posterior mean) | {scores.is_div_vae:.2f} |",
        f"| IS divergence, mean speech PSD | {scores.is_div_fixed:.2f} |",
        f"| IS divergence, mean speech PSD with per-frame gain | {scores.is_div_fixed_gain:.2f} |",
        f"| ELBO (1 sample) | {scores.elbo:.2f} |",
        "",
        f"{scores.n_utterances} utterances, {scores.n_frames} frames.",
    ]
    atomic_write_text(out_dir / "report.md", "\n".join(lines) + "\n")
    return scores
