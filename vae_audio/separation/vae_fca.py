"""VAE-FCA: FCA and FastMNMF2 with the VAE speech prior as the speech source model.

Model (MNMF-DP: Sekiguchi, Bando, Yoshii & Kawahara, APSIPA ASC 2018; FastMNMF-DP:
Sekiguchi et al., EUSIPCO 2019; the frequency-independent JD form is FastMNMF2-DP of
Sekiguchi's reference code), for ``N_s`` speaker slots and (``n_noise=1``) one noise slot:

    λ_nft = u_nf v_nt g_f(z_nt),  z_nt ~ N(0, I_D)      (speech, n < N_s; g the prior's decoder)
    λ_Nft = Σ_k W_fk H_kt                                 (noise, the last slot, an NmfPsd)
    spatial="full": Y_ft = Σ_n λ_nft H_nf + ε I            (FCA, Duong et al. 2010)
    spatial="jd":   Y_ft = Q_f⁻¹ diag(Σ_n λ_nft g_n + ε) Q_f⁻ᴴ   (FastMNMF2, g_n shared over f)

Fitted by MAP in ``z``: maximise ``L + Σ log N(z; 0, I)`` with ``L`` the log-likelihood of
:mod:`~vae_audio.separation.fca` / :mod:`~vae_audio.separation.fastmnmf`. One iteration is
the source step of :class:`~vae_audio.separation.vae_source.VaeSourceModel` followed by the
spatial step of the chosen model (full: MU ``H ← A⁻¹ # B`` or EM, Sawada et al. 2013 / Duong
et al. 2010; jd: g by MU and ``Q`` by iterative projection, Sekiguchi et al. 2020) and the
scale normalisation (``tr H_nf = M`` or ``Q``/``g`` as FastMNMF; then ``mean_f u_nf = 1``,
the scale in ``v``).

**Source step** (:class:`~vae_audio.separation.vae_source.VaeSourceModel`): MM steps on the
majoriser ``PsdStats`` of ``−L``, which is a sum over slots and frames: ``z`` by ``z_steps``
Adam steps on majoriser + ``½‖z‖²`` with the frame gain ``v`` minimised out in closed form,
keeping per frame the best iterate (default), or by ``z_steps`` sweeps of random-walk
Metropolis–Hastings on the exact conditional ``p(z_nt | x, rest)`` (``z_update="mh"``;
stochastic, not monotone); then ``u`` and the noise NMF by the square-root MU rules. One
statistics evaluation per iteration beyond the spatial model's cached one, as MNMF.
**Monotonicity:** with ``"adam"`` the MAP objective ``L + log p(z)`` (``log_likelihood +
log_prior``) never decreases (up to the floors' round-off, as MNMF); ``L`` alone may, when a
z step trades likelihood for prior. With ``z_steps=0`` ``L`` itself never decreases.

**Initialisation** (Sekiguchi's ``twostep``): ``n_iter_init`` FastMNMF2 iterations from
``Q = I`` and circular ``g`` with frequency-flat speech PSDs ``λ = p_nt`` and a stationary
noise PSD ``λ = w_f`` in the last slot. That asymmetry makes the last slot the noise (no
diffuseness heuristic: with three exchangeable NMF slots FastMNMF2 often splits one talker
over two slots, and the most diffuse slot of such a fit was a talker on ``egs/bench``
mixture 0). The full model starts from ``H = Q⁻¹ diag(g_n) Q⁻ᴴ``; the noise NMF from a
seeded Uniform(0.5, 1.5) draw around ``w_f``; ``u = 1``, ``v_nt = Σ_f λ⁰_nft / Σ_f g_f(z_nt)``.
``z`` starts at the encoder mean of each speaker slot's first-stage Wiener image power at
mic 0, rescaled to the loudness the prior was trained at (``-25 dBFS``, the recipes'
``target_dbfs``; ``z_init="separation"``, as Sekiguchi). Encoding the mixture's mic-0 power
(``z_init="mixture"``) starts every speaker slot from the same latent, which describes the
sum of talkers and noise; only the spatial model then tells the slots apart. On 4
``egs/bench`` mixtures (JD, 100 iterations) the two gave the same mean SDR (8.98 vs 8.95 dB;
z steps add 0.9 dB over ``z_steps=0``); the default follows the model, not a measured gain.
On 10 default-preset simulated mixtures (2 talkers + noise, 4 mics; ``egs/bench/
vae_fca_vs_mnmf.py``, table and command in its docstring) the mean SDR was 10.99 dB for
VAE-FCA vs 8.26 dB for MNMF and 10.67 dB for VAE-FastFCA vs 5.97 dB for FastMNMF2, at about
1.2x MNMF's and 4x FastMNMF2's time (FastMNMF2 with its then default ``twostep`` start
and diffuseness rule; its noise-slot start, the same first stage as here, now gives 9.60 dB).

Registered as ``"vae-fca"`` (``spatial="full"``) and ``"vae-fastfca"`` (``spatial="jd"``),
and single-channel VAE-NMF (:mod:`~vae_audio.separation.vae_nmf`) as ``"vae-nmf"``
(:func:`~vae_audio.separation.vae_nmf.fit_vae_nmf`). The speech prior defaults to
:data:`PRIOR`, the shipped temporal prior trained for 16 epochs on many TTS voices and one
recorded voice: in VAE-FastFCA on the condition matrix it gained over the frame MLP
``speech-vae`` on 2-talker and 3-talker TTS mixtures and on recorded voices, where the same
prior after 8 epochs (single-channel ``vae-nmf``'s) lost 1 dB on the TTS ones (README,
"Sixteen epochs"). It is loaded and checked by :mod:`~vae_audio.separation.priors`. The
prior's STFT must be the separation STFT: :func:`fit_vae_fca` checks all settings when given
``stft``; through :func:`~vae_audio.separation.separate` (whose fits see only the
spectrogram) the number of bins is checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from vae_audio.audio.stft import StftConfig
from vae_audio.errors import VaeAudioError
from vae_audio.separation.covariance import fca_covariance_packed, image_parameters
from vae_audio.separation.fastmnmf import (
    jd_iterations,
    jd_model_power,
    jd_scm,
    noise_first_stage,
)
from vae_audio.separation.fca import (
    _INIT_LOAD,
    _SCM_FLOOR,
    FCA_ALGORITHMS,
    _em_step,
    _Moments,
    _mu_step,
    gaussian_terms,
    normalize_scm,
)
from vae_audio.separation.linalg import eps_load, hermitian, mean_power
from vae_audio.separation.priors import check_bins, load_prior, prior_level
from vae_audio.separation.source_model import NmfPsd
from vae_audio.separation.vae_source import FrameLogLik, VaeSourceModel
from vae_audio.separation.wiener import wiener_full_rank, wiener_jd
from vae_audio.speech.model import SpeechVAE

SPATIAL = ("full", "jd")
Z_INITS = ("separation", "mixture")
_X_FLOOR = 1e-6  # FastMNMF observation floor (fit_fastmnmf's default)
_G_EPS = 1e-2  # off-diagonal g of the circular initialisation (Sekiguchi's default)
REFIT_ITERATIONS = 10  # refit_vae_fca's iterations
PRIOR = "speech-vae-conv16"  # the shipped prior that fit_vae_fca and refit_vae_fca default to


@dataclass
class VaeFcaResult:
    """Fitted VAE-FCA model.

    ``lam [B, N, F, T]`` PSDs, ``source`` the fitted :class:`VaeSourceModel` (``z``, ``u``,
    ``v``, noise NMF), ``eps`` the floor (full: ``[B]``, jd: ``[B, F]``); full model
    ``H [B, N, F, M, M]``, JD model ``Q [B, F, M, M]``, ``g [B, N, 1, M]``;
    ``log_likelihood`` and ``log_prior`` ``[B, I + 1]`` (nats; ``L`` summed over F and T,
    ``Σ log N(z; 0, I)`` without its constant) before the first iteration and after each;
    ``noise_index [B]`` the NMF slot (None without one).
    """

    lam: torch.Tensor
    source: VaeSourceModel
    eps: torch.Tensor
    log_likelihood: torch.Tensor
    log_prior: torch.Tensor
    noise_index: torch.Tensor | None
    H: torch.Tensor | None = None
    Q: torch.Tensor | None = None
    g: torch.Tensor | None = None

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """Wiener-filtered source images ``[B, N, M, F, T]`` of ``x [B, M, F, T]``."""
        if self.H is not None:
            return wiener_full_rank(x, self.lam, self.H, self.eps)
        return wiener_jd(x, self.lam, self.g, self.Q, self.eps)

    def scm(self) -> torch.Tensor:
        """SCMs ``[B, N, F, M, M]`` (``Q⁻¹ diag(g_n) Q⁻ᴴ`` for the JD model)."""
        return self.H if self.H is not None else jd_scm(self.Q, self.g)


def fit_vae_fca(
    x: torch.Tensor,
    n_src: int,
    n_iter: int = 100,
    spatial: str = "full",
    prior: Any = None,
    algorithm: str | None = None,
    n_noise: int = 1,
    n_basis: int = 8,
    z_update: str = "adam",
    z_steps: int = 5,
    z_lr: float = 0.05,
    mh_std: float = 0.1,
    z_init: str = "separation",
    n_iter_init: int = 30,
    eps_rel: float = 1e-6,
    seed: int = 0,
    callback: Callable[[int, torch.Tensor], None] | None = None,
    stft: StftConfig | None = None,
) -> VaeFcaResult:
    """Fit VAE-FCA (module docstring) to ``x [B, M, F, T]`` complex with ``n_src`` slots.

    Args:
        n_src: slots ``N``; the last ``n_noise`` (0 or 1) are NMF noise, the others speech
            (with ``separate(..., noise_slot=False)`` pass ``n_noise=0``, or the NMF slot is
            returned as a talker).
        spatial: ``"full"`` (FCA SCMs; MNMF-DP) or ``"jd"`` (FastMNMF2-DP).
        prior: speech prior: None (:data:`PRIOR`), a model file or shipped name, or a
            :class:`SpeechVAE` (copied, never modified).
        algorithm: full model only, ``"mu"`` (default) or ``"em"`` for the SCMs.
        n_basis: NMF bases of the noise slot.
        z_update: ``"adam"`` (``z_steps`` steps of size ``z_lr`` per iteration) or ``"mh"``
            (``z_steps`` sweeps with proposal std ``mh_std``).
        z_init: ``"separation"`` or ``"mixture"`` (module docstring).
        n_iter_init: first-stage FastMNMF2 iterations (module docstring: initialisation).
        eps_rel: isotropic floor ``ε = eps_rel · mean |x|²`` per item (full model: also the
            noise NMF's PSD floor).
        stft: the STFT that made ``x``; if given, it must equal the prior's.
        callback: ``callback(it, log_likelihood [B])`` after every iteration.
    """
    if spatial not in SPATIAL:
        raise VaeAudioError(f"unknown spatial model {spatial!r}; use one of {', '.join(SPATIAL)}")
    if spatial == "jd" and algorithm not in (None, "mu"):
        raise VaeAudioError(f"algorithm={algorithm!r} applies to spatial='full' only; drop it")
    algorithm = algorithm or "mu"
    if algorithm not in FCA_ALGORITHMS:
        raise VaeAudioError(
            f"unknown FCA algorithm {algorithm!r}; use one of {', '.join(FCA_ALGORITHMS)}"
        )
    if z_init not in Z_INITS:
        raise VaeAudioError(f"unknown z_init {z_init!r}; use one of {', '.join(Z_INITS)}")
    if n_noise not in (0, 1) or n_src - n_noise < 1:
        raise VaeAudioError(
            f"VAE-FCA needs n_noise 0 or 1 and at least one speech slot, got n_src={n_src} "
            f"slots with n_noise={n_noise}"
        )
    prior = PRIOR if prior is None else prior
    net = load_prior(prior, x)
    what = _prior_name(prior)
    if stft is not None:
        net.check_stft(stft, what)
    check_bins(net, x.shape[2], what)
    B, M, F, T = x.shape
    ns = n_src - n_noise
    power = mean_power(x, (1, 2, 3))  # [B]
    Q, g, eps, lam0 = noise_first_stage(
        x, n_src, ns, n_iter_init, eps_rel * power, _G_EPS, _X_FLOOR
    )
    if z_init == "separation":
        spec = wiener_jd(x, lam0[:, :ns], g[:, :ns], Q, eps)[:, :, 0]  # [B, N_s, F, T] mic 0
    else:
        spec = x[:, None, 0].expand(B, ns, F, T)  # [B, N_s, F, T]
    floor = eps_rel * power[:, None, None, None] if spatial == "full" else 0.0
    source = initial_source(
        net, spec.abs().square(), lam0, n_noise, n_basis, floor, seed,
        z_update=z_update, z_steps=z_steps, z_lr=z_lr, mh_std=mh_std,
    )  # fmt: skip
    if spatial == "full":
        eps = eps_rel * power
        H, ll, lp = _fit_full(x, source, jd_scm(Q, g), n_iter, algorithm, eps, callback)
        Q = g = None
    else:
        Q, g, eps, ll, lp = _fit_jd(x, source, Q, g, eps, n_iter, callback)
        H = None
    noise_index = None
    if n_noise:
        noise_index = torch.full((B,), n_src - 1, dtype=torch.long, device=x.device)
    return VaeFcaResult(source.psd(), source, eps, ll, lp, noise_index, H, Q, g)


def refit_vae_fca(
    x: torch.Tensor,
    talkers: torch.Tensor,
    n_iter: int = REFIT_ITERATIONS,
    prior: Any = None,
    n_basis: int = 8,
    z_steps: int = 5,
    z_lr: float = 0.05,
    eps_rel: float = 1e-6,
    seed: int = 0,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> VaeFcaResult:
    """VAE-FCA (full-rank SCMs, MU) started from an earlier separation of ``x [B, M, F, T]``.

    ``talkers [B, K, M, F, T]`` are that separation's talker images (STFTs), the rest of the
    mixture ``x − Σ_k talkers`` its noise. Their PSDs and SCMs
    (:func:`~vae_audio.separation.covariance.image_parameters`) start the fit, which then runs
    as :func:`fit_vae_fca` does after its own first stage: ``z`` from the encoder on the
    talkers' mic-0 power, the NMF noise slot (``n_basis`` bases, last) around the rest's mean
    PSD, ``n_iter`` iterations. An average of several blind fits (``separate(..., blend=...)``)
    gives PSDs no single fit reaches; the speech prior and the full-rank spatial model then
    sharpen them. Returns the fit with ``K + 1`` slots.

    Args:
        prior: speech prior, as for :func:`fit_vae_fca`.
        n_basis: NMF bases of the noise slot.
        z_steps, z_lr: Adam steps on ``z`` per iteration and their size.
        eps_rel: isotropic floor ``ε = eps_rel · mean |x|²`` per item, also the noise NMF's
            PSD floor.
        seed: the noise NMF's random start.
        callback: ``callback(it, log_likelihood [B])`` after every iteration.
    """
    K = talkers.shape[1]
    prior = PRIOR if prior is None else prior
    net = load_prior(prior, x)
    check_bins(net, x.shape[2], _prior_name(prior))
    C = torch.cat([talkers, (x - talkers.sum(1))[:, None]], 1)  # [B, K + 1, M, F, T]
    lam0, H = image_parameters(C)  # [B, K + 1, F, T], [B, K + 1, F, M, M]
    power = mean_power(x, (1, 2, 3))  # [B]
    floor = eps_rel * power[:, None, None, None]
    spec = talkers[:, :, 0].abs().square()  # [B, K, F, T] mic 0
    source = initial_source(
        net, spec, lam0, 1, n_basis, floor, seed, z_update="adam", z_steps=z_steps, z_lr=z_lr
    )
    eps = eps_rel * power
    H, ll, lp = _fit_full(x, source, H, n_iter, "mu", eps, callback)
    noise_index = torch.full((x.shape[0],), K, dtype=torch.long, device=x.device)
    return VaeFcaResult(source.psd(), source, eps, ll, lp, noise_index, H)


def _prior_name(prior: Any) -> str:
    """How errors name the speech prior ``prior`` (a model, a file or shipped name)."""
    if isinstance(prior, SpeechVAE):
        return "the given speech prior"
    return f"speech prior {prior}"


def initial_source(
    net: SpeechVAE,
    power: torch.Tensor,
    lam0: torch.Tensor,
    n_noise: int,
    n_basis: int,
    floor: float | torch.Tensor,
    seed: int,
    **updates: Any,
) -> VaeSourceModel:
    """The source model started from a first estimate (module docstring, initialisation).

    ``power [B, N_s, F, T]`` the speech slots' spectrograms, whose encoder means (at the
    prior's level) are the first ``z``; ``lam0 [B, N_s + n_noise, F, T]`` first PSDs: ``v_nt =
    Σ_f λ⁰_nft / Σ_f g_f(z_nt)``, ``u = 1``, and with ``n_noise`` a seeded Uniform(0.5, 1.5) NMF
    of ``n_basis`` bases (shared by the batch) around the noise slot's mean over frames of
    ``λ⁰``, with PSD floor ``floor``. ``updates``: :class:`VaeSourceModel`'s ``z_update``,
    ``z_steps``, ``z_lr``, ``mh_std``.
    """
    B, ns, F, T = power.shape
    with torch.no_grad():
        z = net.encode(prior_level(power, net)).mean  # [B, N_s, T, D]
        gz = net.decode(z)  # [B, N_s, F, T]
    v = lam0[:, :ns].sum(-2) / gz.sum(-2)  # [B, N_s, T]
    noise = None
    if n_noise:
        gen = torch.Generator().manual_seed(seed)
        W = torch.rand(F, n_basis, generator=gen, dtype=torch.float64) + 0.5
        H = torch.rand(n_basis, T, generator=gen, dtype=torch.float64) + 0.5
        W = lam0[:, ns:].mean(-1, keepdim=True) * W.to(lam0) / n_basis  # [B, 1, F, K]
        noise = NmfPsd(W, H.to(lam0).expand(B, 1, n_basis, T).clone(), floor)
    u = torch.ones(B, ns, F, dtype=v.dtype, device=v.device)
    return VaeSourceModel(net, z, u, v, noise, seed=seed, **updates)


def _fit_full(x, source: VaeSourceModel, H, n_iter, algorithm, eps, callback):
    """FCA iterations (as :func:`~vae_audio.separation.fca.fit_fca`, with the MH hook)."""
    xf = x.transpose(1, 2)  # [B, F, M, T]
    H = normalize_scm(eps_load(hermitian(H.to(x.dtype)), _INIT_LOAD), source)
    mom = _Moments.at(xf, source.psd(), H, eps)
    ll, lp = [mom.log_likelihood], [source.log_prior()]
    for it in range(n_iter):
        source.frame_loglik = _full_frame_loglik(xf, H, eps)
        if algorithm == "em":
            H = _em_step(mom, source, H)
        else:
            H = _mu_step(xf, mom, source, H, eps)
        H = normalize_scm(eps_load(H, _SCM_FLOOR[H.dtype]), source)
        mom = _Moments.at(xf, source.psd(), H, eps)
        ll.append(mom.log_likelihood)
        lp.append(source.log_prior())
        if callback is not None:
            callback(it, ll[-1])
    return H, torch.stack(ll, 1), torch.stack(lp, 1)


def _full_frame_loglik(xf: torch.Tensor, H: torch.Tensor, eps) -> FrameLogLik:
    def frame_loglik(lam: torch.Tensor) -> torch.Tensor:  # [B, N, F, T] -> [B, T]
        return -gaussian_terms(xf, fca_covariance_packed(lam, H, eps)).nll.sum(1)

    return frame_loglik


def _fit_jd(x, source: VaeSourceModel, Q, g, eps, n_iter, callback):
    """FastMNMF2 iterations (:func:`~vae_audio.separation.fastmnmf.jd_iterations`, with the
    MH hook and the prior's trace) from ``Q [B, F, M, M]``, ``g [B, N, 1, M]``, ``eps [B, F]``."""
    xf = x.transpose(1, 2).contiguous()  # [B, F, M, T]
    delta = _X_FLOOR * mean_power(xf, (2, 3))  # [B, F]
    lp = [source.log_prior()]

    def before_step(xt, g, eps):
        source.frame_loglik = _jd_frame_loglik(xt, g, eps)

    def after_step(it, ll):
        lp.append(source.log_prior())
        if callback is not None:
            callback(it, ll)

    Q, g, eps, ll = jd_iterations(xf, source, Q, g, eps, delta, n_iter, after_step, before_step)
    return Q, g, eps, ll, torch.stack(lp, 1)


def _jd_frame_loglik(xt: torch.Tensor, g: torch.Tensor, eps: torch.Tensor) -> FrameLogLik:
    def frame_loglik(lam: torch.Tensor) -> torch.Tensor:  # [B, N, F, T] -> [B, T]
        y = jd_model_power(lam, g, eps)  # [B, F, M, T]
        return -(xt / y + y.log()).sum((1, 2))

    return frame_loglik
