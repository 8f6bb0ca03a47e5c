"""Single-channel NMF Wiener filtering: the classic baseline of VAE-NMF enhancement.

Speech is an IS-NMF with a basis ``W_s [F, K_s]`` learnt beforehand on clean speech and kept
fixed; noise is a free IS-NMF ``W_n H_n`` with the same number of components as VAE-NMF's
noise model (semi-supervised NMF, Smaragdis et al. 2007; Févotte et al. 2009 for the IS
multiplicative updates):

    x_ft ~ N_C(0, v_ft),   v = W_s H_s + W_n H_n.

The speech estimate is the Wiener filter ``(W_s H_s / v) x``. Objectives are the IS negative
log-likelihood per TF bin, ``Σ_ft [log v + |x|²/v] / (F T)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def _mu_step(power: Tensor, v: Tensor, w: Tensor, h: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """Factors of one IS-NMF MU step: ``(num, den)`` for ``H`` given ``W`` (``[B, K, T]`` each)."""
    num = torch.einsum("bfk,bft->bkt", w, power / v.square())
    den = torch.einsum("bfk,bft->bkt", w, v.reciprocal()).clamp_min(eps)
    return num, den


def is_nmf(
    power: Tensor, n_components: int, n_iter: int = 200, seed: int = 0, eps: float = 1e-8
) -> tuple[Tensor, Tensor]:
    """IS-NMF ``power [B, F, T] ≈ W [B, F, K] H [B, K, T]`` by multiplicative updates."""
    gen = torch.Generator(device=power.device).manual_seed(seed)
    n_batch, n_freq, n_frames = power.shape
    kw = dict(generator=gen, device=power.device, dtype=power.dtype)
    w = torch.rand(n_batch, n_freq, n_components, **kw) + 0.1
    h = torch.rand(n_batch, n_components, n_frames, **kw) + 0.1
    h = h * power.mean() / (w @ h).mean()
    for _ in range(n_iter):
        v = (w @ h).clamp_min(eps)
        num, den = _mu_step(power, v, w, h, eps)
        h = h * num / den
        v = (w @ h).clamp_min(eps)
        w = (
            w
            * ((power / v.square()) @ h.transpose(1, 2))
            / (v.reciprocal() @ h.transpose(1, 2)).clamp_min(eps)
        )
        scale = w.sum(1, keepdim=True).clamp_min(eps)  # [B, 1, K]
        w, h = w / scale, h * scale.transpose(1, 2)
    return w, h


def learn_speech_basis(
    frames: Tensor, n_components: int = 32, n_iter: int = 200, seed: int = 0
) -> Tensor:
    """Speech basis ``W_s [F, K_s]`` from clean power spectrogram frames ``[F, T]``."""
    w, _ = is_nmf(frames[None], n_components, n_iter, seed)
    return w[0]


@dataclass
class NmfEnhanceResult:
    """Output of :func:`nmf_enhance`: STFTs ``[B, F, T]`` and ``objective [n_iter, B]``."""

    speech: Tensor
    noise: Tensor
    speech_psd: Tensor
    noise_psd: Tensor
    objective: Tensor


def nmf_enhance(
    x: Tensor,
    speech_basis: Tensor,
    n_noise_components: int = 8,
    n_iter: int = 100,
    seed: int = 0,
    eps: float = 1e-8,
) -> NmfEnhanceResult:
    """Semi-supervised NMF Wiener filter on complex STFTs ``x [B, F, T]``.

    Args:
        speech_basis: ``W_s [F, K_s]`` from :func:`learn_speech_basis` (kept fixed).
        n_noise_components: ``K_n`` of the free noise NMF.
    """
    power = x.abs().square()  # [B, F, T]
    n_batch, n_freq, n_frames = power.shape
    gen = torch.Generator(device=x.device).manual_seed(seed)
    kw = dict(generator=gen, device=x.device, dtype=power.dtype)
    ws = speech_basis.to(power)[None].expand(n_batch, -1, -1)  # [B, F, Ks]
    hs = torch.rand(n_batch, ws.shape[-1], n_frames, **kw) + 0.1
    wn = torch.rand(n_batch, n_freq, n_noise_components, **kw) + 0.1
    wn = wn / wn.sum(1, keepdim=True)
    hn = torch.rand(n_batch, n_noise_components, n_frames, **kw) + 0.1
    level = power.mean((1, 2), keepdim=True)
    hs = hs * 0.5 * level / (ws @ hs).mean((1, 2), keepdim=True)
    hn = hn * 0.5 * level / (wn @ hn).mean((1, 2), keepdim=True)
    history = []

    def model():
        return (ws @ hs + wn @ hn).clamp_min(eps)

    for _ in range(n_iter):
        num, den = _mu_step(power, model(), ws, hs, eps)
        hs = hs * num / den
        num, den = _mu_step(power, model(), wn, hn, eps)
        hn = hn * num / den
        v = model()
        wn = (
            wn
            * ((power / v.square()) @ hn.transpose(1, 2))
            / (v.reciprocal() @ hn.transpose(1, 2)).clamp_min(eps)
        )
        scale = wn.sum(1, keepdim=True).clamp_min(eps)
        wn, hn = wn / scale, hn * scale.transpose(1, 2)
        v = model()
        history.append((torch.log(v) + power / v).mean((1, 2)))  # [B]
    speech_psd, noise_psd = ws @ hs, wn @ hn
    speech = speech_psd / model() * x
    return NmfEnhanceResult(
        speech=speech,
        noise=x - speech,
        speech_psd=speech_psd,
        noise_psd=noise_psd,
        objective=torch.stack(history),
    )
