"""Training objective of the speech VAE: IS-divergence NLL + β·KL.

Per frame ``t`` (Leglaive et al. 2018, Eq. (6)):

    −ELBO_t = Σ_f [log(π g_f(z*_t)) + |x_ft|² / g_f(z*_t)] + β · KL(q(z_t | x) ‖ N(0, I)),

``z*`` one reparameterised sample. **Reduction:** sum over ``F`` (and ``D`` for the KL),
mean over batch and frames; units are nats per frame. The Itakura–Saito divergence
``Σ_f d_IS(|x_ft|² | g_f)`` is reported beside it: it differs from the NLL by a term free
of the model (``Σ_f log(π |x_ft|²) + 1``), so it is the interpretable reconstruction score.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from vae_audio.core.likelihoods import complex_gaussian_nll, is_divergence
from vae_audio.speech.model import SpeechVAEOutput


@dataclass
class SpeechVAELoss:
    """Scalars, each in nats per frame (sum over F or D, mean over batch and frames).

    Attributes:
        loss: ``nll + beta * kl``, what the optimiser minimises.
        nll: complex-Gaussian negative log-likelihood.
        is_div: Itakura–Saito divergence between ``|x|²`` and the decoded PSD.
        kl: ``KL(q(z_t | x) ‖ N(0, I))``.
        elbo: ``−(nll + kl)`` (β = 1), the evidence lower bound per frame.
    """

    loss: Tensor
    nll: Tensor
    is_div: Tensor
    kl: Tensor
    elbo: Tensor


def speech_vae_loss(power: Tensor, out: SpeechVAEOutput, beta: float = 1.0) -> SpeechVAELoss:
    """Loss of one pass of :class:`~vae_audio.speech.model.SpeechVAE`.

    Args:
        power: ``|x|²`` ``[B, F, T]``.
        out: the model's output for ``power`` (``psd`` ``[B, F, T]``, posterior ``[B, T, D]``).
        beta: weight of the KL term.

    Returns:
        :class:`SpeechVAELoss`, reduced as the module docstring states.
    """
    nll = complex_gaussian_nll(power, out.psd).sum(-2).mean()  # sum F, mean B T
    is_div = is_divergence(power, out.psd).sum(-2).mean()
    kl = out.posterior.kl().mean()  # kl(): [B, T] summed over D
    return SpeechVAELoss(loss=nll + beta * kl, nll=nll, is_div=is_div, kl=kl, elbo=-(nll + kl))
