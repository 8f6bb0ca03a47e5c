"""Training objective of Neural FCA / Neural FastFCA: FCA negative log-likelihood + β·KL.

Per batch (Bando et al., IEEE SPL 2021, Eq. (10); the published training code):

    loss = (1/BFT) Σ_bft [log det Y_ft + x_ftᴴ Y_ft⁻¹ x_ft] + β · (1/BFT) Σ_bntd KL_bntd,

on the power-normalised mixture. For the JD model ``Y = Q⁻¹ diag(ŷ) Q⁻ᴴ`` the same quantity is

    (1/BFT) Σ_bftm [log ŷ_ftm + x̃_ftm / ŷ_ftm] − (2/BF) Σ_bf log|det Q_f|

(Bando et al., EUSIPCO 2023, Eq. (8)), so both variants report comparable numbers.
**Reduction and units:** nats per time-frequency bin (summed over mics, averaged over
batch, frequency and frames), without the constant ``M log π``; the KL is summed over slots,
frames and latent dimensions and divided by ``B F T`` as well.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vae_audio.neural_fca.model import NeuralFCAOutput
from vae_audio.separation.covariance import fca_covariance_packed
from vae_audio.separation.fastmnmf import jd_model_power
from vae_audio.separation.fca import gaussian_terms


@dataclass
class NeuralFCALoss:
    """Scalars in nats per time-frequency bin (module docstring).

    Attributes:
        loss: ``nll + beta * kl``, what the optimiser minimises.
        nll: FCA negative log-likelihood (without ``M log π``).
        kl: KL of the latents per bin.
        nll_items: ``[B]`` per-item NLL (for diagnostics and inference).
    """

    loss: Tensor
    nll: Tensor
    kl: Tensor
    nll_items: Tensor


def full_nll(x: Tensor, lam: Tensor, H: Tensor, eps: float | Tensor) -> Tensor:
    """``(1/FT) Σ_ft [log det Y_ft + x_ftᴴ Y_ft⁻¹ x_ft]`` -> ``[B]`` nats per bin.

    ``x [B, M, F, T]`` complex, ``lam [B, N, F, T]``, ``H [B, N, F, M, M]``, ``eps`` scalar or
    ``[B]``; ``Y = Σ_n λ H + ε I``.
    """
    Y = fca_covariance_packed(lam, H, eps)  # [B, F, M², T]
    return gaussian_terms(x.transpose(1, 2), Y).nll.mean((1, 2))


def jd_nll(xt: Tensor, lam: Tensor, g: Tensor, Q: Tensor, eps: float | Tensor) -> Tensor:
    """JD negative log-likelihood per bin -> ``[B]`` (module docstring).

    ``xt [B, F, M, T]`` = ``|Q x|²``, ``lam [B, N, F, T]``, ``g [B, N, F, M]``,
    ``Q [B, F, M, M]``, ``eps`` scalar or ``[B]``.
    """
    B, F = xt.shape[:2]
    eps = torch.as_tensor(eps, dtype=xt.dtype, device=xt.device).reshape(-1, 1).expand(B, F)
    y = jd_model_power(lam, g, eps)  # [B, F, M, T]
    data = (y.log() + xt / y).sum(2).mean((1, 2))  # [B]
    return data - 2 * torch.linalg.slogdet(Q)[1].mean(1)


def model_nll(x: Tensor, out: NeuralFCAOutput, eps: float | Tensor) -> Tensor:
    """Per-item NLL ``[B]`` of a :class:`NeuralFCAOutput` on the normalised ``x [B, M, F, T]``."""
    if out.H is not None:
        return full_nll(x, out.lam, out.H, eps)
    return jd_nll(out.xt, out.lam, out.g, out.Q, eps)


def neural_fca_loss(
    x: Tensor, out: NeuralFCAOutput, beta: float = 1.0, eps: float | Tensor = 1e-6
) -> NeuralFCALoss:
    """Loss of one forward pass (module docstring).

    Args:
        x: the normalised mixture ``[B, M, F, T]`` the pass was run on.
        out: the model output.
        beta: KL weight.
        eps: the model's floor ``ε``.
    """
    F, T = x.shape[-2:]
    nll_items = model_nll(x, out, eps)  # [B]
    nll = nll_items.mean()
    kl = out.kl.mean() / (F * T)
    return NeuralFCALoss(loss=nll + beta * kl, nll=nll, kl=kl, nll_items=nll_items)
