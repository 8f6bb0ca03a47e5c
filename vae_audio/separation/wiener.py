"""Multichannel Wiener filters: posterior means of the source images ``c_nft ∈ C^M``.

Both return the images at every microphone, ``[B, N, M, F, T]`` complex; channel 0 is the
reference the toolkit reports. Images sum to the mixture up to the ``ε`` floor's share.
"""

from __future__ import annotations

import torch

from vae_audio.separation.covariance import fca_covariance, jd_model_power
from vae_audio.separation.linalg import cholesky_psd


def wiener_full_rank(
    x: torch.Tensor, lam: torch.Tensor, H: torch.Tensor, eps: float | torch.Tensor = 0.0
) -> torch.Tensor:
    """``ĉ_nft = λ_nft H_nf Y_ft⁻¹ x_ft`` with ``Y_ft = Σ_n λ_nft H_nf + ε I`` (Duong et al.
    2010, the multichannel Wiener filter).

    ``x [B, M, F, T]`` complex, ``lam [B, N, F, T]``, ``H [B, N, F, M, M]``, ``eps`` scalar
    or ``[B]`` -> ``[B, N, M, F, T]``.
    """
    xt = x.permute(0, 2, 3, 1)[..., None]  # [B, F, T, M, 1]
    u = torch.cholesky_solve(xt, cholesky_psd(fca_covariance(lam, H, eps)))  # Y⁻¹ x
    Hu = H[:, :, :, None] @ u[:, None]  # [B, N, F, 1, M, M] @ [B, 1, F, T, M, 1]
    c = lam[..., None].to(x.dtype) * Hu[..., 0]  # [B, N, F, T, M]
    return c.permute(0, 1, 4, 2, 3)  # [B, N, M, F, T]


def wiener_jd(
    x: torch.Tensor, lam: torch.Tensor, g: torch.Tensor, Q: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """``ĉ_nft = Q_f⁻¹ diag(λ_nft g_nf / ŷ_ft) Q_f x_ft`` (Sekiguchi et al. 2020).

    ``x [B, M, F, T]`` complex, ``lam [B, N, F, T]``, ``g [B, N, F|1, M]``,
    ``Q [B, F, M, M]``, ``eps [B, F]`` -> ``[B, N, M, F, T]``.
    """
    xf = x.transpose(1, 2)  # [B, F, M, T]
    z = (Q @ xf) / jd_model_power(lam, g, eps)  # [B, F, M, T]: diag(1/ŷ) Q x
    gain = g.transpose(1, 2)[..., None] * lam.transpose(1, 2)[:, :, :, None]  # [B, F, N, M, T]
    Qinv = torch.linalg.inv(Q)[:, :, None]  # [B, F, 1, M, M]
    c = Qinv @ (gain.to(z.dtype) * z[:, :, None])  # [B, F, N, M, T]
    return c.permute(0, 2, 3, 1, 4)  # [B, N, M, F, T]
