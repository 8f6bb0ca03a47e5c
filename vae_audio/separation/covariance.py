"""Model covariances of the two spatial models, shared by their fits, the Wiener filters and
the Neural FCA objective (a module of its own so that none of them imports another for it).

* full-rank (FCA, MNMF): ``Y_ft = Σ_n λ_nft H_nf + ε I`` (:func:`fca_covariance`);
* jointly diagonalised (FastMNMF, FastFCA): ``ŷ_ftm = Σ_n λ_nft g_nfm + ε_f`` in the basis
  ``Q_f`` (:func:`jd_model_power`);

how close an SCM is to rank 1 (:func:`diffuseness_rank`), which tells the noise slot; and
the PSDs and SCMs that given source images imply (:func:`image_parameters`), which the oracles
compute from the true images and a re-fit from an earlier separation's.
"""

from __future__ import annotations

import torch

from vae_audio.separation.linalg import eye_like
from vae_audio.separation.packed import pack_hermitian


def fca_covariance(
    lam: torch.Tensor, H: torch.Tensor, eps: float | torch.Tensor = 0.0
) -> torch.Tensor:
    """``Y_ft = Σ_n λ_nft H_nf + ε I``: ``lam [B, N, F, T]``, ``H [B, N, F, M, M]``,
    ``eps`` scalar or ``[B]`` -> ``[B, F, T, M, M]``."""
    B, N, F, M, _ = H.shape
    Hr = torch.view_as_real(H.reshape(B, N, F, M * M))  # [B, N, F, M², 2]
    Hr = Hr.permute(0, 2, 1, 3, 4).reshape(B, F, N, 2 * M * M)  # [B, F, N, 2M²]
    Y = lam.transpose(1, 2).mT.to(Hr.dtype) @ Hr  # [B, F, T, N] @ [B, F, N, 2M²]
    Y = torch.view_as_complex(Y.reshape(*Y.shape[:-1], M * M, 2)).reshape(B, F, -1, M, M)
    eps = torch.as_tensor(eps, dtype=Hr.dtype, device=H.device).reshape(-1, 1, 1, 1, 1)
    return Y + eps * eye_like(Y)  # [B, F, T, M, M]


def fca_covariance_packed(
    lam: torch.Tensor, H: torch.Tensor, eps: float | torch.Tensor = 0.0
) -> torch.Tensor:
    """:func:`fca_covariance` as packed Hermitian planes (:mod:`vae_audio.separation.packed`):
    ``lam [B, N, F, T]``, ``H [B, N, F, M, M]``, ``eps`` scalar or ``[B]`` -> ``[B, F, M², T]``
    real, from one real GEMM over the slots."""
    M = H.shape[-1]
    Hp = pack_hermitian(H).permute(0, 2, 3, 1)  # [B, F, M², N]
    Y = Hp @ lam.transpose(1, 2).to(Hp.dtype)  # [B, F, M², T]
    diag = torch.zeros(M * M, 1, dtype=Y.dtype, device=Y.device)
    diag[:M] = 1.0
    eps = torch.as_tensor(eps, dtype=Y.dtype, device=Y.device).reshape(-1, 1, 1, 1)
    return Y + eps * diag  # [B, F, M², T]


def jd_model_power(lam: torch.Tensor, g: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """``ŷ_ftm = Σ_n λ_nft g_nfm + ε_f``: ``lam [B, N, F, T]``, ``g [B, N, F|1, M]``,
    ``eps [B, F]`` -> ``[B, F, M, T]``."""
    y = g.permute(0, 2, 3, 1) @ lam.transpose(1, 2)  # [B, F|1, M, N] @ [B, F, N, T]
    return y + eps[:, :, None, None]  # [B, F, M, T]


def diffuseness_rank(H: torch.Tensor) -> torch.Tensor:
    """Rank-1-ness ``mean_f λ_max(H_nf) / tr(H_nf)`` of SCMs ``H [B, N, F, M, M]`` -> ``[B, N]``
    (1 for a point source, ``1/M`` for isotropic noise)."""
    w = torch.linalg.eigvalsh(H)  # [B, N, F, M], ascending
    return (w[..., -1] / w.sum(-1).clamp_min(torch.finfo(w.dtype).tiny)).mean(-1)


def image_parameters(C: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """PSDs and full-rank SCMs of source images ``C [..., M, F, T]`` (complex STFTs).

    ``λ_ft = ‖c_ft‖² / M``, the power averaged over the mics, and the maximum-likelihood SCM
    given the images and those PSDs (Duong, Vincent & Gribonval, IEEE TASLP 2010, Sec. IV),
    ``H_f = (1/|T_f|) Σ_{t ∈ T_f} c_ft c_ftᴴ / λ_ft`` over the frames where the image is not
    silent (``T_f = {t : λ_ft > 0}``; ``H_f = I`` when there is none), so ``tr H_f = M``.
    Returns ``lam [..., F, T]`` (real, the images' power units) and ``H [..., F, M, M]``.
    """
    M = C.shape[-3]
    c = C.movedim(-3, -1)  # [..., F, T, M]
    lam = c.abs().square().mean(-1)  # [..., F, T]
    active = lam > 0  # [..., F, T]
    w = torch.where(active, 1.0 / torch.where(active, lam, 1.0), 0.0)  # [..., F, T]: 1/λ or 0
    count = active.sum(-1)  # [..., F]
    H = torch.einsum("...tm,...tk->...mk", c * w.to(c.dtype)[..., None], c.conj())  # Σ_t c cᴴ/λ
    H = H / count.clamp_min(1)[..., None, None]  # [..., F, M, M]
    eye = torch.eye(M, dtype=c.dtype, device=c.device)
    return lam, torch.where((count == 0)[..., None, None], eye, H)
