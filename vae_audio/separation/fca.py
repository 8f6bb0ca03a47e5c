"""Full-rank spatial covariance analysis (FCA; Duong, Vincent & Gribonval, IEEE TASLP 2010).

Model: ``x_ft ~ N_C(0, Y_ft)``, ``Y_ft = Σ_n λ_nft H_nf + ε I`` with full-rank SCMs
``H [B, N, F, M, M]`` and PSDs ``λ [B, N, F, T]`` given by a source model
(:mod:`vae_audio.separation.source_model`). ``ε`` (``eps [B]``, absolute, power units) is a
fixed isotropic floor that is part of the model, so every update below keeps the
log-likelihood (up to the relative SCM loading of :func:`fit_fca`, 1e-5 in complex64)

``L = −Σ_ft [M log π + log det Y_ft + x_ftᴴ Y_ft⁻¹ x_ft]``  (nats, summed over F and T)

non-decreasing. Two algorithms:

* ``"em"`` — Duong et al. 2010 (their EM algorithm): E-step posterior moments of the source
  images, M-step ``H_nf = (1/T) Σ_t R_nft / λ_nft`` then the source model's M-step on the
  posterior power ``tr(H_nf⁻¹ R_nft) / M`` (a generalised EM: coordinate ascent of the EM
  auxiliary function). The SCM update is positive semi-definite in exact arithmetic
  only; an updated SCM whose round-off broke that is projected back
  (:func:`~vae_audio.separation.linalg.floor_psd`) before the source step uses it.
* ``"mu"`` — Sawada et al., IEEE TASLP 2013 (multichannel NMF): the source model's MM
  step on ``PsdStats``, then ``H_nf ← A⁻¹ # B`` (their SCM update, a Riccati equation).

After each iteration ``tr(H_nf) = M`` and the scale moves into the source model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch

from vae_audio.errors import VaeAudioError
from vae_audio.separation.covariance import fca_covariance_packed
from vae_audio.separation.linalg import (
    eps_load,
    eye_like,
    floor_psd,
    hermitian,
    inv_psd,
    mean_power,
    outer_hermitian_planes,
    riccati_psd,
    trace,
)
from vae_audio.separation.packed import (
    inv_logdet_packed,
    pack_hermitian,
    packed_inner,
    packed_matvec,
    packed_weighted_sum,
)
from vae_audio.separation.source_model import PsdStats, SourceModel

FCA_ALGORITHMS = ("em", "mu")
_INIT_LOAD = 1e-3  # relative diagonal loading of the initial SCMs
# Relative loading after every SCM update: keeps H positive definite beyond round-off (an
# indefinite H would make tr(Y⁻¹ H) negative where Y ≈ εI); shifts L by O(floor).
_SCM_FLOOR = {torch.complex64: 1e-5, torch.complex128: 1e-10}


@dataclass
class FcaResult:
    """Fitted FCA model: ``H [B, N, F, M, M]`` (``tr H_nf = M``), ``lam [B, N, F, T]``,
    the ``source`` model, ``eps [B]`` and ``log_likelihood [B, I + 1]`` before the first
    iteration and after each one (nats, summed over F and T)."""

    H: torch.Tensor
    lam: torch.Tensor
    source: SourceModel
    eps: torch.Tensor
    log_likelihood: torch.Tensor

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """Wiener-filtered source images ``[B, N, M, F, T]`` of ``x [B, M, F, T]``."""
        from vae_audio.separation.wiener import wiener_full_rank

        return wiener_full_rank(x, self.lam, self.H, self.eps)

    def scm(self) -> torch.Tensor:
        """SCMs ``[B, N, F, M, M]``."""
        return self.H


def fca_log_likelihood(x: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Log-likelihood ``−Σ_ft [M log π + log det Y + xᴴ Y⁻¹ x]`` -> ``[B]`` (nats, sum over
    F and T) of ``x [B, M, F, T]`` complex under ``Y [B, F, T, M, M]``."""
    Yp = pack_hermitian(Y).mT  # [B, F, T, M²] -> packed planes [B, F, M², T]
    return _Moments.compute(x.transpose(1, 2), Yp).log_likelihood


@dataclass
class _Moments:
    """``Y⁻¹`` and ``P = Y⁻¹ x xᴴ Y⁻¹`` at one model covariance ``Y``, both as packed Hermitian
    planes ``[B, F, M², T]`` (:mod:`~vae_audio.separation.packed`), and ``L [B]``."""

    Yinv: torch.Tensor
    P: torch.Tensor
    log_likelihood: torch.Tensor

    @classmethod
    def at(cls, xf: torch.Tensor, lam: torch.Tensor, H: torch.Tensor, eps) -> _Moments:
        """At ``Y = Σ_n λ_n H_n + ε I``: ``xf [B, F, M, T]``, ``lam [B, N, F, T]``,
        ``H [B, N, F, M, M]``, ``eps`` scalar or ``[B]``."""
        return cls.compute(xf, fca_covariance_packed(lam, H, eps))

    @classmethod
    def compute(cls, xf: torch.Tensor, Y: torch.Tensor) -> _Moments:
        """``xf [B, F, M, T]`` complex, ``Y [B, F, M², T]`` packed planes."""
        F, M, T = xf.shape[1:]
        terms = gaussian_terms(xf, Y)
        ll = -terms.nll.sum((1, 2)) - F * T * M * math.log(math.pi)
        return cls(terms.Yinv, outer_hermitian_planes(terms.ur, terms.ui), ll)


class GaussianTerms(NamedTuple):
    """The complex-Gaussian terms of ``x`` under ``Y`` (:func:`gaussian_terms`)."""

    Yinv: torch.Tensor  # [B, F, M², T] packed planes
    ur: torch.Tensor  # [B, F, M, T]: real part of u = Y⁻¹ x
    ui: torch.Tensor  # [B, F, M, T]: its imaginary part
    nll: torch.Tensor  # [B, F, T]: log det Y + xᴴ Y⁻¹ x (the NLL per bin less M log π)


def gaussian_terms(xf: torch.Tensor, Y: torch.Tensor) -> GaussianTerms:
    """:class:`GaussianTerms` of ``xf [B, F, M, T]`` complex under packed planes
    ``Y [B, F, M², T]``. Differentiable."""
    Yinv, logdet = inv_logdet_packed(Y)  # [B, F, M², T], [B, F, T]
    xr, xi = xf.real.contiguous(), xf.imag.contiguous()  # [B, F, M, T]
    ur, ui = packed_matvec(Yinv, xr, xi)  # Y⁻¹ x
    quad = (xr * ur + xi * ui).sum(-2)  # [B, F, T]: xᴴ Y⁻¹ x
    return GaussianTerms(Yinv, ur, ui, logdet + quad)


def _inner(Z: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    """``Re tr(Z_ft H_nf)`` for packed planes ``Z [B, F, M², T]`` and Hermitian
    ``H [B, N, F, M, M]`` -> ``[B, N, F, T]``."""
    return packed_inner(Z, H.transpose(1, 2)).transpose(1, 2)


def _weighted_sum(lam: torch.Tensor, Z: torch.Tensor) -> torch.Tensor:
    """``Σ_t λ_nft Z_ft``: ``lam [B, N, F, T]``, packed planes ``Z [B, F, M², T]`` ->
    ``[B, N, F, M, M]``."""
    return packed_weighted_sum(lam.transpose(1, 2), Z).transpose(1, 2)


def em_update_scm(
    x: torch.Tensor,
    lam: torch.Tensor,
    H: torch.Tensor,
    eps: float | torch.Tensor = 0.0,
    project: bool = False,
) -> torch.Tensor:
    """One EM update of the SCMs (DESIGN §4; Duong et al. 2010, E- and M-step for ``H``).

    ``R_nft = E[c cᴴ | x] = Y_n + Y_n (Y⁻¹ x xᴴ Y⁻¹ − Y⁻¹) Y_n`` with ``Y_n = λ_nft H_nf``,
    and ``H_nf ← (1/T) Σ_t R_nft / λ_nft = H + H [(1/T) Σ_t λ_nft (P_ft − Y_ft⁻¹)] H``.
    ``x [B, M, F, T]``, ``lam [B, N, F, T]`` (> 0), ``H [B, N, F, M, M]``, ``eps`` scalar or
    ``[B]`` -> ``H [B, N, F, M, M]``. Pure and differentiable (Neural FCA back-propagates
    through it). ``project=True`` (not differentiable) projects an update that round-off left
    indefinite back to positive definite, as the EM step of :func:`fit_fca` does: for callers
    that repeat it without gradients.
    """
    mom = _Moments.at(x.transpose(1, 2), lam, H, eps)
    H_new = _em_scm(mom, lam, H)
    return _project_scm(H_new) if project else H_new


def _em_scm(mom: _Moments, lam: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    T = lam.shape[-1]
    S = _weighted_sum(lam, mom.P - mom.Yinv) / T  # [B, N, F, M, M]
    return hermitian(H + H @ S @ H)


def _project_scm(H: torch.Tensor) -> torch.Tensor:
    """An SCM update made positive definite again where round-off broke it: ``H + H S H``
    is PSD in exact arithmetic only, and in complex64 with many mics and a nearly rank-1
    ``H`` an indefinite update makes the next E-step diverge (floor: :data:`_SCM_FLOOR`)."""
    return floor_psd(H, _SCM_FLOOR[H.dtype])


def _em_step(mom: _Moments, source: SourceModel, H: torch.Tensor) -> torch.Tensor:
    """GEM iteration: SCMs, then the source M-step on ``tr(H_new⁻¹ R) / M`` with
    ``tr(H'⁻¹ R_nft) = λ tr(H'⁻¹ H) + λ² tr(H H'⁻¹ H (P − Y⁻¹))`` (no ``[N, F, T, M, M]``)."""
    lam = source.psd()
    M = H.shape[-1]
    H_new = _project_scm(_em_scm(mom, lam, H))
    H_new_inv = inv_psd(H_new)
    C = hermitian(H @ H_new_inv @ H)  # [B, N, F, M, M]
    a = (H_new_inv * H.conj()).sum((-2, -1)).real  # [B, N, F]: tr(H'⁻¹ H)
    b = _inner(mom.P - mom.Yinv, C)  # [B, N, F, T]
    source.em_update(((lam * a[..., None] + lam.square() * b) / M).clamp_min(0))
    return H_new


def _mu_step(xf, mom: _Moments, source: SourceModel, H: torch.Tensor, eps) -> torch.Tensor:
    """MU iteration (Sawada et al. 2013): source MM step, then ``H ← A⁻¹ # (H B H)``."""
    first = [True]

    def stats(lam: torch.Tensor) -> PsdStats:
        m = mom if first[0] else _Moments.at(xf, lam, H, eps)
        first[0] = False
        return PsdStats(num=_inner(m.P, H), den=_inner(m.Yinv, H), lam=lam)

    source.mm_update(stats)  # the first call is at λ = source.psd(), where ``mom`` was taken
    lam = source.psd()
    mom = _Moments.at(xf, lam, H, eps)
    A = _weighted_sum(lam, mom.Yinv)  # [B, N, F, M, M]: Σ_t λ Y⁻¹
    Bm = H @ _weighted_sum(lam, mom.P) @ H  # [B, N, F, M, M]: H (Σ_t λ Y⁻¹XY⁻¹) H
    tiny = torch.finfo(Bm.real.dtype).eps * trace(Bm).real / H.shape[-1]  # [B, N, F]
    return riccati_psd(A, Bm + tiny[..., None, None] * eye_like(Bm))


def normalize_scm(H: torch.Tensor, source: SourceModel) -> torch.Tensor:
    """``H_nf ← M H_nf / tr(H_nf)``, the scale moved into the source model: L is unchanged
    unless the source model has a PSD floor, which is not rescaled (L then moves by a term of
    the order of the floor)."""
    tau = (trace(H).real / H.shape[-1]).clamp_min(torch.finfo(H.real.dtype).tiny)  # [B, N, F]
    source.rescale(tau)
    return H / tau[..., None, None]


def fit_fca(
    x: torch.Tensor,
    source: SourceModel,
    H: torch.Tensor,
    n_iter: int = 100,
    algorithm: str = "em",
    eps: float | torch.Tensor = 0.0,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> FcaResult:
    """Fit FCA to ``x [B, M, F, T]`` complex from ``H [B, N, F, M, M]`` and ``source``.

    The initial SCMs get ``1e-3 · tr(H)/M · I`` and every updated one ``1e-5`` (complex64)
    or ``1e-10`` (complex128) ``· tr(H)/M · I`` so that they stay positive definite.
    ``algorithm`` ``"em"`` or ``"mu"`` (module docstring); ``eps`` the isotropic floor
    (scalar or ``[B]``, power units). ``callback(it, log_likelihood [B])`` runs after every
    iteration. ``source`` is updated in place.
    """
    if algorithm not in FCA_ALGORITHMS:
        raise VaeAudioError(
            f"unknown FCA algorithm {algorithm!r}; use one of {', '.join(FCA_ALGORITHMS)}"
        )
    xf = x.transpose(1, 2)  # [B, F, M, T]
    eps = torch.as_tensor(eps, dtype=x.real.dtype, device=x.device).expand(x.shape[0])
    H = normalize_scm(eps_load(hermitian(H.to(x.dtype)), _INIT_LOAD), source)
    mom = _Moments.at(xf, source.psd(), H, eps)
    history = [mom.log_likelihood]
    for it in range(n_iter):
        if algorithm == "em":
            H = _em_step(mom, source, H)
        else:
            H = _mu_step(xf, mom, source, H, eps)
        H = normalize_scm(eps_load(H, _SCM_FLOOR[H.dtype]), source)
        mom = _Moments.at(xf, source.psd(), H, eps)
        history.append(mom.log_likelihood)
        if callback is not None:
            callback(it, mom.log_likelihood)
    return FcaResult(H, source.psd(), source, eps, torch.stack(history, 1))


SCM_INITS = ("identity", "random", "fastmnmf2")


def initial_scm(
    x: torch.Tensor,
    n_src: int,
    init: str = "fastmnmf2",
    seed: int = 0,
    n_iter_init: int = 30,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Initial SCMs ``H [B, N, F, M, M]`` and PSDs ``[B, N, F, T]`` (or None) for
    ``x [B, M, F, T]``.

    ``"identity"``: ``H = I`` (Sekiguchi's MNMF ``unit``; only the source model breaks the
    symmetry). ``"random"``: ``H_nf = a aᴴ + I`` with a seeded complex Gaussian ``a``.
    ``"fastmnmf2"``: ``n_iter_init`` FastMNMF2 iterations (``twostep``, K = 2), then
    ``H = Q⁻¹ diag(g_n) Q⁻ᴴ`` and its PSDs (Sekiguchi's MNMF ``FastMNMF2`` init; also
    Sekiguchi et al. 2020). Batch items share the seeded draws.
    """
    B, M, F, T = x.shape
    eye = torch.eye(M, dtype=x.dtype, device=x.device)
    if init == "identity":
        return eye.expand(B, n_src, F, M, M).clone(), None
    if init == "random":
        g = torch.Generator().manual_seed(seed)
        a = torch.view_as_complex(torch.randn(n_src, F, M, 2, generator=g, dtype=torch.float64))
        a = a.to(device=x.device, dtype=x.dtype) / math.sqrt(2)  # [N, F, M]
        H = a[..., :, None] * a.conj()[..., None, :] + eye  # [N, F, M, M]
        return H.expand(B, n_src, F, M, M).clone(), None
    if init == "fastmnmf2":
        from vae_audio.separation.fastmnmf import fit_fastmnmf, jd_scm

        n_first = max(1, n_iter_init // 3)
        fit = fit_fastmnmf(
            x, n_src, 2, n_iter_init - n_first, init="twostep", n_iter_init=n_first, seed=seed
        )
        return jd_scm(fit.Q, fit.g), fit.lam
    raise VaeAudioError(f"unknown FCA init {init!r}; use one of {', '.join(SCM_INITS)}")


def fit_free_fca(
    x: torch.Tensor,
    n_src: int,
    n_iter: int = 100,
    algorithm: str = "em",
    init: str = "fastmnmf2",
    n_iter_init: int = 30,
    eps_rel: float = 1e-6,
    seed: int = 0,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> FcaResult:
    """Blind FCA with unconstrained PSDs (Duong et al. 2010) on ``x [B, M, F, T]``.

    ``init`` picks the SCMs (:func:`initial_scm`); PSDs start from the init's PSDs, or
    from a seeded Uniform(0.5, 1.5) draw times the mean power. ``eps = eps_rel · mean|x|²``
    per item is the isotropic floor (also the PSD floor, times ``eps_rel``).
    """
    from vae_audio.separation.source_model import FreePsd

    B, M, F, T = x.shape
    power = mean_power(x, (1, 2, 3))  # [B]
    H, lam = initial_scm(x, n_src, init, seed, n_iter_init)
    if lam is None:
        g = torch.Generator().manual_seed(seed)
        lam = torch.rand(n_src, F, T, generator=g, dtype=torch.float64) + 0.5
        lam = lam.to(device=x.device, dtype=power.dtype) * power[:, None, None, None]
    floor = eps_rel * power[:, None, None, None]  # [B, 1, 1, 1]
    source = FreePsd(lam.clamp_min(floor), floor)
    return fit_fca(x, source, H, n_iter, algorithm, eps_rel * power, callback)
