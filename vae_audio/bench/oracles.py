"""Oracle separators (ceilings and half-oracles) computed from the true source images of a set.

Inputs are the mixture STFT ``x [M, F, T]`` and the STFTs of the true images
``C [J, M, F, T]`` of **all** its components: the ``K`` talkers and, last, the noise image
(``J = K + 1``; the mixture is their sum). All return filtered estimates of all J images,
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

**Half-oracles** split the gap between a blind FCA separator and oracle-mwf into its two
halves: each keeps one half of oracle-mwf's parameters, fits the other half blind to the
mixture by maximising the FCA likelihood ``−Σ_ft [log det Y_ft + x_ftᴴ Y_ft⁻¹ x_ft]`` with
``HALF_ORACLE_ITERATIONS = 50`` iterations, then applies the same Wiener filter. Fifty
iterations: on the 2-s test fixture the last iteration adds < 0.05 % of the log-likelihood
gain, and the SDRs are within 0.15 dB (oracle-psd) and 0.5 dB (oracle-scm) of 100 iterations.

* **oracle-psd** (oracle PSDs, blind SCMs): ``λ_jft`` as in oracle-mwf, fixed; ``H_jf`` by
  the FCA EM update from ``H = I`` (:func:`fit_scm_given_psd`), ``ε`` as in oracle-mwf.
* **oracle-scm** (oracle SCMs, blind PSDs): ``H_jf`` as in oracle-mwf, fixed; one free
  ``λ_jft`` per slot and TF bin by the FCA multiplicative update from a start that is flat
  across the slots (:func:`fit_psd_given_scm`); ``ε = 1e-8 · mean_ft ‖x_ft‖² / M``, the
  mixture's stand-in for oracle-mwf's ``1e-8 · mean_ft Σ_j λ_jft``.
* **oracle-scm-vae** (oracle SCMs, blind PSDs from the speech prior): as oracle-scm, but the
  talkers' PSDs are those of VAE-FCA's source model, ``λ_nft = u_nf v_nt g_f(z_nt)`` with the
  decoder ``g`` of VAE-FCA's default prior, and the noise an NMF of 8 bases
  (:class:`~vae_audio.separation.vae_source.VaeSourceModel`, Adam on ``z``); it starts as
  VAE-FCA does, from the talkers' mic-0 images of a first fit, here 10 iterations of
  oracle-scm (:func:`~vae_audio.separation.vae_fca.initial_source`). Set beside oracle-scm,
  it says how much the prior's constraint on the PSDs is worth once the spatial model is
  right. The STFT must be the prior's. On the condition matrix (README) it scored 6.20 /
  3.35 dB (2 / 3 talkers), oracle-scm 6.61 / 3.47: no better than free PSDs.

Neither oracle-psd nor oracle-scm is bounded by oracle-mwf. Its SCM weights every frame alike
(``c cᴴ / λ``), so the frames where a talker is quiet and its image is mostly diffuse
reverberation count as much as the loud ones: the talkers' SCMs come out too diffuse. On the
2-s fixture (4 mics, two talkers, pink noise) oracle-psd, whose ML SCMs fit the mixture, is
about 2 dB above oracle-mwf, and oracle-scm 5-6 dB below it: each free PSD is fitted to the
single snapshot ``x_ft``, and the diffuse noise SCM explains the loud talker bins about as well
as the talkers' own SCMs do (the noise slot takes half the fitted power, 0.5 % of the true
power). Oracle-scm's SDR peaks near 10 iterations (10.8 / 6.7 dB) and falls as the likelihood
rises: the ML PSDs over-fit the snapshots; the half-oracle reports the ML fit, not a tuned
stop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vae_audio.separation.covariance import fca_covariance, image_parameters
from vae_audio.separation.fca import em_update_scm, fca_log_likelihood
from vae_audio.separation.linalg import eps_load, inv_logdet_psd
from vae_audio.separation.source_model import FreePsd, PsdStats, SourceModel
from vae_audio.separation.wiener import wiener_full_rank

_EPS_REL = 1e-8
HALF_ORACLE_ITERATIONS = 50  # EM (oracle-psd) / MU (oracle-scm) iterations of the half-oracles
_SCM_FLOOR = 1e-10  # relative loading after every SCM update (complex128): keeps H definite
VAE_START_ITERATIONS = 10  # oracle-scm-vae: free-PSD MU iterations whose images start the VAE
VAE_NOISE_BASES = 8  # oracle-scm-vae: NMF bases of the noise slot (VAE-FCA's default)


def oracle_parameters(C: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Oracle PSDs and SCMs of true images ``C [J, M, F, T]`` (see the module docstring).

    Returns ``lam [J, F, T]`` (real, the images' power units) and ``H [J, F, M, M]``
    (Hermitian PSD, ``tr H_jf = M``).
    """
    return image_parameters(C)


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


@dataclass
class HalfOracleFit:
    """FCA parameters of one mixture, one half held at its oracle value, the other fitted:
    ``lam [J, F, T]``, ``H [J, F, M, M]``, the isotropic floor ``eps`` (power units) and
    ``log_likelihood [I + 1]`` before the first iteration and after each one (nats, summed over
    F and T; None when it was not tracked)."""

    lam: torch.Tensor
    H: torch.Tensor
    eps: torch.Tensor
    log_likelihood: torch.Tensor | None

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """Wiener-filtered images ``ĉ_jft = λ_jft H_jf Y_ft⁻¹ x_ft`` ``[J, M, F, T]`` of the
        mixture ``x [M, F, T]``."""
        return wiener_full_rank(x[None], self.lam[None], self.H[None], self.eps)[0]


def fit_scm_given_psd(
    x: torch.Tensor,
    lam: torch.Tensor,
    n_iter: int = HALF_ORACLE_ITERATIONS,
    eps: float | torch.Tensor = 0.0,
    track: bool = False,
) -> HalfOracleFit:
    """Blind SCMs under fixed PSDs: ``n_iter`` FCA EM updates of ``H`` from ``H = I``.

    ``x [M, F, T]`` complex, ``lam [J, F, T]`` (held fixed), ``eps`` the isotropic floor
    (power units). Each iteration is :func:`~vae_audio.separation.fca.em_update_scm`
    (DESIGN §4; Duong et al. 2010, E-step ``R_jft = E[c cᴴ | x]``, M-step
    ``H_jf = (1/T) Σ_t R_jft / λ_jft``), an exact EM step in ``H`` with ``λ`` fixed, so the
    log-likelihood does not decrease; then a ``1e-10`` relative diagonal loading keeps ``H``
    definite. ``H`` is not normalised: the fixed PSDs carry the scale. ``track`` records the
    log-likelihood after every iteration (one more ``Y⁻¹`` per iteration).
    """
    J, F, _ = lam.shape
    M = x.shape[0]
    eps = torch.as_tensor(eps, dtype=lam.dtype, device=lam.device)
    H = torch.eye(M, dtype=x.dtype, device=x.device).expand(J, F, M, M).clone()  # [J, F, M, M]
    history = [_log_likelihood(x, lam, H, eps)] if track else None
    for _ in range(n_iter):
        H = em_update_scm(x[None], lam[None], H[None], eps)[0]  # [J, F, M, M]
        H = eps_load(H, _SCM_FLOOR)
        if track:
            history.append(_log_likelihood(x, lam, H, eps))
    return HalfOracleFit(lam, H, eps, torch.stack(history) if track else None)


def fit_psd_given_scm(
    x: torch.Tensor,
    H: torch.Tensor,
    n_iter: int = HALF_ORACLE_ITERATIONS,
    eps: float | torch.Tensor = 0.0,
    source: SourceModel | None = None,
) -> HalfOracleFit:
    """Blind PSDs under fixed SCMs: ``n_iter`` majorisation-minimisation steps of ``source``.

    ``x [M, F, T]`` complex, ``H [J, F, M, M]`` (held fixed, ``tr H_jf = M``), ``eps`` the
    isotropic floor (power units; also the free PSDs' floor). ``source``: a
    :class:`~vae_audio.separation.source_model.SourceModel` of batch 1 and J slots; by default
    one free PSD per slot and TF bin (:class:`~vae_audio.separation.source_model.FreePsd`,
    Duong et al. 2010), started flat across the slots at the mixture's power,
    ``λ_jft = ‖x_ft‖² / (M J)`` (so that ``tr Y_ft ≈ ‖x_ft‖²``), whose update (DESIGN §4, FCA
    MU; Sawada et al. 2013) is ``λ_jft ← λ_jft sqrt(tr(Y⁻¹XY⁻¹H_jf) / tr(Y⁻¹H_jf))``: the
    log-likelihood (always tracked: it comes with ``Y⁻¹``) does not decrease, and with ``H``
    fixed every TF bin is a separate problem.
    """
    J = H.shape[0]
    M, F, T = x.shape
    eps = torch.as_tensor(eps, dtype=x.real.dtype, device=x.device)
    xt = x.permute(1, 2, 0)  # [F, T, M]
    if source is None:
        flat = xt.abs().square().sum(-1) / (M * J)  # [F, T]
        source = FreePsd(flat.expand(1, J, F, T).clamp_min(eps), eps)  # λ [1, J, F, T]
    history = []

    def stats(lam: torch.Tensor) -> PsdStats:
        """FCA's ``PsdStats`` at ``lam [1, J, F, T]``; records the log-likelihood there."""
        Yinv, logdet = inv_logdet_psd(fca_covariance(lam, H[None], eps)[0])  # [F, T, M, M]
        u = (Yinv @ xt[..., None])[..., 0]  # [F, T, M]: Y⁻¹ x
        quad = (xt.conj() * u).real.sum(-1)  # [F, T]: xᴴ Y⁻¹ x
        history.append(-(quad + logdet).sum() - F * T * M * math.log(math.pi))
        num = torch.einsum("ftm,jfmk,ftk->jft", u.conj(), H, u).real  # tr(Y⁻¹XY⁻¹H_j)
        den = torch.einsum("ftkm,jfmk->jft", Yinv, H).real  # tr(Y⁻¹ H_j)
        return PsdStats(num=num[None], den=den[None], lam=lam)

    for _ in range(n_iter):
        source.mm_update(stats)
    lam = source.psd()[0]  # [J, F, T]
    history.append(_log_likelihood(x, lam, H, eps))
    return HalfOracleFit(lam, H, eps, torch.stack(history))


def _log_likelihood(
    x: torch.Tensor, lam: torch.Tensor, H: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """FCA log-likelihood (nats, sum over F and T) of ``x [M, F, T]`` under ``lam [J, F, T]``
    and ``H [J, F, M, M]`` -> scalar."""
    return fca_log_likelihood(x[None], fca_covariance(lam[None], H[None], eps))[0]


def oracle_psd(
    x: torch.Tensor, C: torch.Tensor, n_iter: int = HALF_ORACLE_ITERATIONS
) -> torch.Tensor:
    """Oracle PSDs, blind SCMs: mixture ``x [M, F, T]`` and true images ``C [J, M, F, T]``
    -> estimated images ``[J, M, F, T]`` (module docstring)."""
    lam, _ = oracle_parameters(C)  # [J, F, T]
    eps = _EPS_REL * lam.sum(0).mean()
    return fit_scm_given_psd(x, lam, n_iter, eps).images(x)


def _mixture_floor(x: torch.Tensor) -> torch.Tensor:
    """The half-oracles' floor without oracle PSDs, ``1e-8 · mean_ft ‖x_ft‖² / M``: the
    mixture's stand-in for oracle-mwf's ``1e-8 · mean_ft Σ_j λ_jft``."""
    return _EPS_REL * x.abs().square().sum(0).mean() / x.shape[0]


def oracle_scm(
    x: torch.Tensor, C: torch.Tensor, n_iter: int = HALF_ORACLE_ITERATIONS
) -> torch.Tensor:
    """Oracle SCMs, blind PSDs: mixture ``x [M, F, T]`` and true images ``C [J, M, F, T]``
    -> estimated images ``[J, M, F, T]`` (module docstring)."""
    _, H = oracle_parameters(C)  # [J, F, M, M]
    eps = _mixture_floor(x)
    return fit_psd_given_scm(x, H, n_iter, eps).images(x)


def oracle_scm_vae(
    x: torch.Tensor, C: torch.Tensor, n_iter: int = HALF_ORACLE_ITERATIONS
) -> torch.Tensor:
    """Oracle SCMs, blind PSDs from VAE-FCA's default speech prior: mixture ``x [M, F, T]`` and
    true images ``C [J, M, F, T]`` (J - 1 talkers, then the noise) -> estimated images
    ``[J, M, F, T]`` (module docstring)."""
    from vae_audio.separation.priors import check_bins, load_prior
    from vae_audio.separation.vae_fca import PRIOR, initial_source

    _, H = oracle_parameters(C)  # [J, F, M, M]
    eps = _mixture_floor(x)
    start = fit_psd_given_scm(x, H, VAE_START_ITERATIONS, eps)
    net = load_prior(PRIOR, x)
    check_bins(net, x.shape[1], f"the speech prior {PRIOR}")
    talkers = start.images(x)[:-1, 0].abs().square()  # [J - 1, F, T]: first images, mic 0
    source = initial_source(net, talkers[None], start.lam[None], 1, VAE_NOISE_BASES, eps, 0)
    return fit_psd_given_scm(x, H, n_iter, eps, source).images(x)


ORACLE_FILTERS = {
    "oracle-mwf": oracle_mwf,
    "oracle-irm": oracle_irm,
    "oracle-psd": oracle_psd,
    "oracle-scm": oracle_scm,
    "oracle-scm-vae": oracle_scm_vae,
}  # benchmark name -> filter (x [M, F, T], C [J, M, F, T]) -> [J, M, F, T]
