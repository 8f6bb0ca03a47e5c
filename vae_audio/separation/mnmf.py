"""Multichannel NMF (MNMF): FCA whose source PSDs are NMFs, ``λ_nft = Σ_k W_nfk H_nkt``.

Sawada, Kameoka, Araki & Ueda, IEEE TASLP 2013 (``"mu"``: the MM/multiplicative updates,
``H_nf ← A⁻¹ # B``) and Ozerov & Févotte, IEEE TASLP 2010 (``"em"``: EM for the SCMs,
an IS-NMF MM step on the posterior power for W and H). Both are monotone in the FCA
log-likelihood (:mod:`vae_audio.separation.fca`). Sawada's partitioning variant (bases
shared by all sources through latent weights) is not implemented: each source has its own
``K`` bases, as in Ozerov & Févotte and in Sekiguchi's reference ``MNMF``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from vae_audio.separation.fca import FcaResult, fit_fca, initial_scm
from vae_audio.separation.linalg import mean_power
from vae_audio.separation.source_model import NmfPsd


def fit_mnmf(
    x: torch.Tensor,
    n_src: int,
    n_basis: int = 8,
    n_iter: int = 100,
    algorithm: str = "mu",
    init: str = "fastmnmf2",
    n_iter_init: int = 30,
    eps_rel: float = 1e-6,
    seed: int = 0,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> FcaResult:
    """Fit MNMF to ``x [B, M, F, T]`` complex; returns an :class:`FcaResult` whose
    ``source`` is the fitted :class:`NmfPsd` (``W [B, N, F, K]``, ``H [B, N, K, T]``).

    ``init`` picks the SCMs (:func:`vae_audio.separation.fca.initial_scm`; ``"fastmnmf2"``
    is Sekiguchi's MNMF initialisation); the NMF starts from a seeded Uniform(0, 1) draw
    scaled to the mixture power, shared by all batch items. ``eps = eps_rel · mean|x|²``
    is the isotropic floor. ``callback(it, log_likelihood [B])`` runs after each iteration.
    """
    B, M, F, T = x.shape
    power = mean_power(x, (1, 2, 3))  # [B]
    H, _ = initial_scm(x, n_src, init, seed, n_iter_init)
    generator = torch.Generator().manual_seed(seed + 2)
    floor = eps_rel * power[:, None, None, None]  # [B, 1, 1, 1]
    source = NmfPsd.random(
        (B, n_src, F, n_basis, T), power, generator, power.dtype, x.device, floor
    )
    return fit_fca(x, source, H, n_iter, algorithm, eps_rel * power, callback)
