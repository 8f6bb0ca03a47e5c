"""Spatial covariance matrices of Neural FCA: K EM iterations from the identity.

Neural FCA (Bando et al., IEEE SPL 2021, Sec. 3.3) does not let a network predict the SCMs.
Given the decoded PSDs ``λ_nft`` it re-estimates ``H_nf`` inside every forward pass by a few
iterations of the FCA EM update (Duong et al., IEEE TASLP 2010, Eqs. (14)-(17); DESIGN §4),
started from ``H_nf = I``:

    Y_nft = λ_nft H_nf,   Y_ft = Σ_n Y_nft + ε I,
    H_nf ← (1/T) Σ_t [Y_nft + Y_nft (Y_ft⁻¹ x xᴴ Y_ft⁻¹ − Y_ft⁻¹) Y_nft] / λ_nft,

and back-propagates through the iterations, so the encoder learns PSDs under which the
resulting spatial model explains the mixture. The update itself is
:func:`vae_audio.separation.fca.em_update_scm`; this module only fixes the initialisation
and the iteration count.
"""

from __future__ import annotations

import torch

from vae_audio.separation.fca import em_update_scm


def identity_scm(x: torch.Tensor, n_src: int) -> torch.Tensor:
    """``H_nf = I`` for every slot and bin: ``x [B, M, F, T]`` -> ``[B, N, F, M, M]``."""
    B, M, F, _ = x.shape
    eye = torch.eye(M, dtype=x.dtype, device=x.device)
    return eye.expand(B, n_src, F, M, M)


def estimate_scm(
    x: torch.Tensor,
    lam: torch.Tensor,
    n_iter: int,
    eps: float | torch.Tensor,
    H: torch.Tensor | None = None,
) -> torch.Tensor:
    """``n_iter`` EM updates of the SCMs (module docstring), differentiable in ``lam``.

    Args:
        x: mixture STFT ``[B, M, F, T]`` complex.
        lam: source PSDs ``[B, N, F, T]`` (> 0).
        n_iter: number of EM iterations ``K`` (0 returns the start).
        eps: isotropic floor ``ε`` of ``Y`` (scalar or ``[B]``, power units of ``x``).
        H: start ``[B, N, F, M, M]``; None for the identity.

    Returns:
        ``H [B, N, F, M, M]`` Hermitian.
    """
    if H is None:
        H = identity_scm(x, lam.shape[1])
    for _ in range(n_iter):
        H = em_update_scm(x, lam, H, eps)
    return H
