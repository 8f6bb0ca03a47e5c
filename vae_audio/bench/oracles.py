"""Oracle separators: upper bounds computed from the true source images of a simulated set.

Inputs are the mixture STFT ``x [M, F, T]`` and the STFTs of the true images
``C [J, M, F, T]`` of **all** its components: the ``K`` talkers and, last, the noise image
(``J = K + 1``; the mixture is their sum). Both return filtered estimates of all J images,
``[J, M, F, T]``; the benchmark scores the K talker images and discards the noise estimate.
They answer "how good can a (multichannel) Wiener filter get on this mixture when its
parameters are right?", i.e. the ceiling of the separators built on those filters.

**oracle-mwf** (multichannel Wiener filter, oracle parameters of the local Gaussian model of
Duong, Vincent & Gribonval, IEEE TASLP 2010). For each component j, with ``c_jft ∈ C^M``:

* time-varying PSD ``λ_jft = ‖c_jft‖² / M`` (the power averaged over mics);
* full-rank SCM ``H_jf = (1/|T_jf|) Σ_{t ∈ T_jf} c_jft c_jftᴴ / λ_jft``, the maximum-likelihood
  SCM given the images and PSDs (Duong et al. 2010, Sec. IV), over the frames where the
  component is present (``T_jf = {t : λ_jft > 0}``; ``H_jf = I`` if there is none). Each term
  has trace M, so ``tr H_jf = M``;
* ``ĉ_jft = λ_jft H_jf Y_ft⁻¹ x_ft``, ``Y_ft = Σ_j λ_jft H_jf + ε I`` with
  ``ε = 1e-8 · mean_ft(Σ_j λ_jft)``, which only matters in bins where every component is silent
  (:func:`vae_audio.separation.wiener.wiener_full_rank`).

A time-invariant SCM is the model's own limitation: the filter is exact only when each
source's image is rank-1-coherent in the same way at every frame, so reverberation and
moving energy between frames keep it below perfect even with oracle parameters.

**oracle-irm** (ideal ratio mask, one mic at a time): ``ĉ_jmft = m_jmft x_mft`` with the power
ratio ``m_jmft = |c_jmft|² / Σ_j' |c_j'mft|²`` (0 where every component is silent), i.e. the
single-channel Wiener filter with the instantaneous oracle PSDs (the "ideal Wiener mask", the
IRM of Wang et al. 2014 with exponent 1 on power). The masks of the J components sum to one,
so the estimates sum to the mixture; with a single component and no noise the mask is 1 and
the estimate is the mixture itself, i.e. exact.
"""

from __future__ import annotations

import torch

from vae_audio.separation.wiener import wiener_full_rank

_EPS_REL = 1e-8


def oracle_parameters(C: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Oracle PSDs and SCMs of true images ``C [J, M, F, T]`` (see the module docstring).

    Returns ``lam [J, F, T]`` (real, the images' power units) and ``H [J, F, M, M]``
    (Hermitian PSD, ``tr H_jf = M``).
    """
    J, M, F, T = C.shape
    c = C.permute(0, 2, 3, 1)  # [J, F, T, M]
    lam = c.abs().square().mean(-1)  # [J, F, T]
    active = lam > 0  # [J, F, T]
    w = torch.where(active, 1.0 / torch.where(active, lam, 1.0), 0.0)  # [J, F, T]: 1/λ or 0
    count = active.sum(-1)  # [J, F]
    H = torch.einsum("jftm,jftk->jfmk", c * w.to(c.dtype)[..., None], c.conj())  # Σ_t c cᴴ/λ
    H = H / count.clamp_min(1)[..., None, None]  # [J, F, M, M]
    eye = torch.eye(M, dtype=c.dtype, device=c.device)
    H = torch.where((count == 0)[..., None, None], eye, H)  # [J, F, M, M]
    return lam, H


def oracle_mwf(x: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """Multichannel Wiener filter with oracle parameters: mixture ``x [M, F, T]`` and true
    images ``C [J, M, F, T]`` -> estimated images ``[J, M, F, T]`` (module docstring)."""
    lam, H = oracle_parameters(C)  # [J, F, T], [J, F, M, M]
    eps = _EPS_REL * lam.sum(0).mean()
    return wiener_full_rank(x[None], lam[None], H[None], eps)[0]  # [J, M, F, T]


def oracle_irm(x: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """Ideal ratio (power) mask per mic: mixture ``x [M, F, T]`` and true images
    ``C [J, M, F, T]`` -> estimated images ``[J, M, F, T]`` (module docstring)."""
    power = C.abs().square()  # [J, M, F, T]
    total = power.sum(0)  # [M, F, T]
    mask = torch.where(total > 0, power / torch.where(total > 0, total, 1.0), 0.0)
    return mask.to(x.dtype) * x[None]  # [J, M, F, T]
