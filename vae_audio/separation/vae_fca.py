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
the source step of :class:`VaeSourceModel` (below) followed by the spatial step of the
chosen model (full: MU ``H ← A⁻¹ # B`` or EM, Sawada et al. 2013 / Duong et al. 2010; jd: g
by MU and ``Q`` by iterative projection, Sekiguchi et al. 2020) and the scale normalisation
(``tr H_nf = M`` or ``Q``/``g`` as FastMNMF; then ``mean_f u_nf = 1``, the scale in ``v``).

**Source step** (:class:`VaeSourceModel`): MM steps on the majoriser ``PsdStats`` of ``−L``,
which is a sum over slots and frames: ``z`` by ``z_steps`` Adam steps on majoriser +
``½‖z‖²`` with the frame gain ``v`` minimised out in closed form, keeping per frame the best
iterate (default), or by ``z_steps`` sweeps of random-walk Metropolis–Hastings on the exact
conditional ``p(z_nt | x, rest)`` (``z_update="mh"``; stochastic, not monotone); then ``u``
and the noise NMF by the square-root MU rules. One statistics evaluation per iteration
beyond the spatial model's cached one, as MNMF.
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

Registered as ``"vae-fca"`` (``spatial="full"``) and ``"vae-fastfca"`` (``spatial="jd"``), and
single-channel VAE-NMF (:mod:`~vae_audio.separation.vae_nmf`) as ``"vae-nmf"``
(:func:`fit_vae_nmf`). The prior's STFT must be the separation STFT: :func:`fit_vae_fca`
checks all settings when given ``stft``; through :func:`~vae_audio.separation.separate` (whose
fits see only the spectrogram) the number of bins is checked.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vae_audio.audio.stft import StftConfig, make_window
from vae_audio.errors import VaeAudioError
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
    fca_covariance,
    normalize_scm,
)
from vae_audio.separation.linalg import eps_load, hermitian, inv_logdet_psd, mean_power
from vae_audio.separation.source_model import NmfPsd, PsdStats, StatsFn, _is_stats, mu_ratio
from vae_audio.separation.wiener import wiener_full_rank, wiener_jd
from vae_audio.speech.model import SpeechVAE

SPATIAL = ("full", "jd")
Z_UPDATES = ("adam", "mh")
Z_INITS = ("separation", "mixture")
PRIOR_LEVEL_DBFS = -25.0  # loudness of the prior's training speech (recipes' target_dbfs)
_X_FLOOR = 1e-6  # FastMNMF observation floor (fit_fastmnmf's default)
_G_EPS = 1e-2  # off-diagonal g of the circular initialisation (Sekiguchi's default)
FrameLogLik = Callable[[torch.Tensor], torch.Tensor]


class VaeSourceModel:
    """Speech slots ``λ_nft = u_nf v_nt g_f(z_nt)`` from ``prior``'s decoder, then NMF noise.

    ``z [B, N_s, T, D]``, ``u [B, N_s, F]`` (kept at ``mean_f u_nf = 1``), ``v [B, N_s, T]``,
    ``noise`` an :class:`NmfPsd` with ``[B, N_n, ...]`` factors or None. Implements
    :class:`~vae_audio.separation.source_model.SourceModel`; one ``mm_update`` (module
    docstring) asks for one statistics evaluation beyond the spatial model's cached one:

    1. at ``λ̄`` (cached): ``z`` and ``v`` on the speech slots, W on the noise slot. The
       majoriser's frame term ``Σ_f [den λ + num λ̄² / λ]`` with ``λ = v a``, ``a = u g(z)``, is
       minimised by ``v* = sqrt(Σ_f num λ̄² / a / Σ_f den a)``, leaving
       ``J(z) = 2 sqrt(Σ_f den a · Σ_f num λ̄² / a) + ½‖z‖²``: Adam runs on ``J`` (only the
       spectral shape of ``g`` matters; the gain follows in closed form) and keeps per frame
       the best iterate, including the start, so ``J`` cannot increase; MH (``"mh"``) samples
       ``z`` from ``p(z_nt | x, rest)`` instead, then ``v = v*``.
    2. fresh: ``u`` (square-root MU) and the noise H.

    ``z_update="mh"`` needs ``frame_loglik`` (``λ [B, N, F, T] -> [B, T]``, the
    log-likelihood of every frame at the spatial model's current state), which the fit loops
    set before every step. MH draws come from one generator per batch item, so a batch gives
    the same result as its items one by one.
    """

    def __init__(
        self,
        prior: SpeechVAE,
        z: torch.Tensor,
        u: torch.Tensor,
        v: torch.Tensor,
        noise: NmfPsd | None = None,
        z_update: str = "adam",
        z_steps: int = 5,
        z_lr: float = 0.05,
        mh_std: float = 0.1,
        seed: int = 0,
    ) -> None:
        if z_update not in Z_UPDATES:
            raise VaeAudioError(f"unknown z_update {z_update!r}; use one of {', '.join(Z_UPDATES)}")
        self.prior, self.noise = prior, noise
        self.z = z.detach().clone().requires_grad_(z_update == "adam")
        self.u, self.v = u, v
        self.z_update, self.z_steps, self.mh_std = z_update, z_steps, mh_std
        self.frame_loglik: FrameLogLik | None = None
        self.acceptance = float("nan")  # MH acceptance rate of the last step
        self._opt = torch.optim.Adam([self.z], lr=z_lr) if z_update == "adam" else None
        self._gens = None
        if z_update == "mh":
            self._gens = [torch.Generator(z.device).manual_seed(seed) for _ in range(z.shape[0])]
        self._g = None
        self.normalize()

    @property
    def n_speech(self) -> int:
        return self.z.shape[1]

    def decoded(self) -> torch.Tensor:
        """Unit-gain speech PSDs ``g(z) [B, N_s, F, T]`` (cached)."""
        if self._g is None:
            with torch.no_grad():
                self._g = self.prior.decode(self.z)  # [B, N_s, T, D] -> [B, N_s, F, T]
        return self._g

    def speech_psd(self) -> torch.Tensor:
        return self.u[..., None] * self.v[:, :, None, :] * self.decoded()  # [B, N_s, F, T]

    def psd(self) -> torch.Tensor:
        if self.noise is None:
            return self.speech_psd()
        return torch.cat([self.speech_psd(), self.noise.psd()], 1)  # [B, N, F, T]

    def log_prior(self) -> torch.Tensor:
        """``Σ log N(z; 0, I)`` without the ``½ D log 2π`` per frame -> ``[B]`` (nats)."""
        return -0.5 * self.z.detach().square().sum((1, 2, 3))

    def mm_update(self, stats: StatsFn) -> None:
        ns = self.n_speech
        s1 = stats(self.psd())
        num, den = s1.num[:, :ns], s1.den[:, :ns]  # [B, N_s, F, T]
        c = num * s1.lam[:, :ns].square()  # [B, N_s, F, T]: majoriser num λ̄² / λ
        if self.z_steps > 0 and self.z_update == "adam":
            self._adam_z(den, c)
        elif self.z_steps > 0:
            self._mh_z()
        a = self.u[..., None] * self.decoded()  # [B, N_s, F, T]
        tiny = torch.finfo(a.dtype).tiny
        self.v = ((c / a).sum(-2) / (den * a).sum(-2).clamp_min(tiny)).sqrt().clamp_min(tiny)
        if self.noise is None:
            self._update_u(stats(self.psd()))
        else:
            calls = [0]

            def noise_stats(lam_noise: torch.Tensor) -> PsdStats:
                # call 1 (W): the noise part of s1, where the noise PSD still is; call 2 (H):
                # fresh statistics, which also serve u (the majoriser is a sum over slots,
                # so steps on different slots from one evaluation are jointly MM steps).
                calls[0] += 1
                s = s1 if calls[0] == 1 else stats(torch.cat([self.speech_psd(), lam_noise], 1))
                if calls[0] == 2:
                    self._update_u(s)
                return PsdStats(s.num[:, ns:], s.den[:, ns:], s.lam[:, ns:])

            self.noise.mm_update(noise_stats)
            if calls[0] < 2:  # a joint NMF update asks once
                self._update_u(stats(self.psd()))
        self.normalize()

    def em_update(self, power: torch.Tensor) -> None:
        """M-step on the posterior power ``[B, N, F, T]``: the same steps on the Itakura–Saito
        divergence (MH then targets ``exp(−IS) p(z)``, the EM auxiliary function)."""
        saved = self.frame_loglik
        self.frame_loglik = lambda lam: -(lam.log() + power / lam).sum((1, 2))  # [B, T]
        try:
            self.mm_update(_is_stats(power))
        finally:
            self.frame_loglik = saved

    def rescale(self, c: torch.Tensor) -> None:
        self.u = self.u * c[:, : self.n_speech]  # [B, N_s, F]
        if self.noise is not None:
            self.noise.rescale(c[:, self.n_speech :])
        self.normalize()

    def normalize(self) -> None:
        """``u_nf ← u_nf / mean_f u_nf`` with ``v`` multiplied back (λ unchanged)."""
        mu = self.u.mean(-1).clamp_min(torch.finfo(self.u.dtype).tiny)  # [B, N_s]
        self.u, self.v = self.u / mu[..., None], self.v * mu[..., None]

    def _update_u(self, s: PsdStats) -> None:
        """Square-root MU of ``u`` (the MM step for ``λ = u a``, Sawada et al. 2013)."""
        ns = self.n_speech
        a = self.v[:, :, None, :] * self.decoded()  # [B, N_s, F, T]
        num, den = (s.num[:, :ns] * a).sum(-1), (s.den[:, :ns] * a).sum(-1)  # [B, N_s, F]
        self.u = self.u * mu_ratio(num, den)

    def _adam_z(self, den: torch.Tensor, c: torch.Tensor) -> None:
        """``z_steps`` Adam steps on ``J(z)`` (class docstring), best iterate kept per frame."""
        u = self.u[..., None]  # [B, N_s, F, 1]

        def frame_objective(z: torch.Tensor) -> torch.Tensor:  # [B, N_s, T]
            a = u * self.prior.decode(z)  # [B, N_s, F, T]
            fit = ((den * a).sum(-2) * (c / a).sum(-2)).clamp_min(0).sqrt()
            return 2 * fit + 0.5 * z.square().sum(-1)

        z = self.z
        best_z = z.detach().clone()
        for step in range(self.z_steps + 1):
            with torch.enable_grad():
                obj = frame_objective(z)
            if step == 0:
                best = obj.detach()
            else:  # z moved: keep it where it is better
                better = obj.detach() < best
                best = torch.where(better, obj.detach(), best)
                best_z = torch.where(better[..., None], z.detach(), best_z)
            if step == self.z_steps:
                break
            self._opt.zero_grad()
            obj.sum().backward()
            self._opt.step()
        with torch.no_grad():
            z.copy_(best_z)
        self._g = None

    def _mh_z(self) -> None:
        """``z_steps`` random-walk MH sweeps over the speaker slots (every frame a chain)."""
        if self.frame_loglik is None:
            raise VaeAudioError(
                "z_update='mh' needs the spatial model's frame_loglik; use fit_vae_fca"
            )
        z, g = self.z.detach().clone(), self.decoded().clone()
        B, ns, T, D = z.shape
        uv = self.u[..., None] * self.v[:, :, None, :]  # [B, N_s, F, T]
        lam = self.psd().clone()  # [B, N, F, T]
        loglik = self.frame_loglik(lam)  # [B, T]
        accepted = 0
        for _ in range(self.z_steps):
            for n in range(ns):
                step = torch.stack(
                    [torch.randn(T, D, generator=r, device=z.device) for r in self._gens]
                )
                prop = z[:, n] + self.mh_std * step.to(z.dtype)  # [B, T, D]
                g_prop = self.prior.decode(prop)  # [B, F, T]
                lam_prop = lam.clone()
                lam_prop[:, n] = uv[:, n] * g_prop
                new = self.frame_loglik(lam_prop)  # [B, T]
                ratio = new - loglik - 0.5 * (prop.square() - z[:, n].square()).sum(-1)
                draw = torch.stack(
                    [torch.rand(T, generator=r, device=z.device) for r in self._gens]
                )
                ok = draw.to(z.dtype).log() < ratio  # [B, T]
                z[:, n] = torch.where(ok[..., None], prop, z[:, n])
                g[:, n] = torch.where(ok[:, None, :], g_prop, g[:, n])
                lam[:, n] = torch.where(ok[:, None, :], lam_prop[:, n], lam[:, n])
                loglik = torch.where(ok, new, loglik)
                accepted += int(ok.sum())
        self.acceptance = accepted / max(1, self.z_steps * B * ns * T)
        self.z, self._g = z, g


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
        prior: speech prior: None (the shipped ``speech-vae``), a model file or shipped name,
            or a :class:`SpeechVAE` (copied, never modified).
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
    net = load_prior(prior, x)
    what = (
        "the given speech prior"
        if isinstance(prior, SpeechVAE)
        else f"speech prior {prior or 'speech-vae'}"
    )
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
    with torch.no_grad():
        z = net.encode(_prior_level(spec.abs().square(), net)).mean  # [B, N_s, T, D]
        gz = net.decode(z)  # [B, N_s, F, T]
    v = lam0[:, :ns].sum(-2) / gz.sum(-2)  # [B, N_s, T]
    floor = eps_rel * power[:, None, None, None] if spatial == "full" else 0.0
    noise = None
    if n_noise:  # a seeded Uniform(0.5, 1.5) NMF (shared by the batch) around λ⁰_noise = w_f
        gen = torch.Generator().manual_seed(seed)
        W = torch.rand(F, n_basis, generator=gen, dtype=torch.float64) + 0.5
        H = torch.rand(n_basis, T, generator=gen, dtype=torch.float64) + 0.5
        W = lam0[:, ns:, :, :1] * W.to(lam0) / n_basis  # [B, 1, F, K]
        noise = NmfPsd(W, H.to(lam0).expand(B, 1, n_basis, T).clone(), floor)
    u = torch.ones(B, ns, F, dtype=v.dtype, device=x.device)
    source = VaeSourceModel(net, z, u, v, noise, z_update, z_steps, z_lr, mh_std, seed)
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


def _fit_full(x, source: VaeSourceModel, H, n_iter, algorithm, eps, callback):
    """FCA iterations (as :func:`~vae_audio.separation.fca.fit_fca`, with the MH hook)."""
    xt = x.permute(0, 2, 3, 1)  # [B, F, T, M]
    H = normalize_scm(eps_load(hermitian(H.to(x.dtype)), _INIT_LOAD), source)
    mom = _Moments.compute(xt, fca_covariance(source.psd(), H, eps))
    ll, lp = [mom.log_likelihood], [source.log_prior()]
    for it in range(n_iter):
        source.frame_loglik = _full_frame_loglik(xt, H, eps)
        if algorithm == "em":
            H = _em_step(mom, source, H)
        else:
            H = _mu_step(xt, mom, source, H, eps)
        H = normalize_scm(eps_load(H, _SCM_FLOOR[H.dtype]), source)
        mom = _Moments.compute(xt, fca_covariance(source.psd(), H, eps))
        ll.append(mom.log_likelihood)
        lp.append(source.log_prior())
        if callback is not None:
            callback(it, ll[-1])
    return H, torch.stack(ll, 1), torch.stack(lp, 1)


def _full_frame_loglik(xt: torch.Tensor, H: torch.Tensor, eps) -> FrameLogLik:
    def frame_loglik(lam: torch.Tensor) -> torch.Tensor:  # [B, N, F, T] -> [B, T]
        Yinv, logdet = inv_logdet_psd(fca_covariance(lam, H, eps))  # [B, F, T, M, M], [B, F, T]
        quad = (xt.conj() * (Yinv @ xt[..., None])[..., 0]).real.sum(-1)  # [B, F, T]
        return -(quad + logdet).sum(1)

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


def _prior_level(power: torch.Tensor, prior: SpeechVAE) -> torch.Tensor:
    """``power [..., F, T]`` rescaled so that its mean is that of speech at
    :data:`PRIOR_LEVEL_DBFS` under the prior's STFT (``10^(dBFS/10) · Σ w²``)."""
    window = make_window(prior.stft_config, dtype=torch.float64)
    target = 10 ** (PRIOR_LEVEL_DBFS / 10) * float(window.square().sum())
    mean = power.mean((-2, -1), keepdim=True).clamp_min(torch.finfo(power.dtype).tiny)
    return power * (target / mean)


def check_bins(prior: SpeechVAE, n_freq: int, what: str = "the speech prior") -> None:
    """Refuse a spectrogram with ``n_freq`` bins that ``prior`` was not trained for."""
    if n_freq != prior.config.n_freq:
        s = prior.stft_config
        raise VaeAudioError(
            f"{what} was trained with n_fft={s.n_fft}, hop_length={s.hop_length} "
            f"({s.n_freq} bins, {s.sample_rate} Hz) but the mixture STFT has {n_freq} bins; "
            f"pass stft=StftConfig(sample_rate={s.sample_rate}, n_fft={s.n_fft}, "
            f"hop_length={s.hop_length}) (the prior's `stft_config`) or a prior trained with yours"
        )


_LOADED: dict[tuple, SpeechVAE] = {}


def _cached_prior(source: Any) -> SpeechVAE:
    """The speech prior ``source`` (None, name, path or :class:`SpeechVAE`), shared: files are
    read once per process (until they change)."""
    from vae_audio.speech.prior import load_speech_prior

    if isinstance(source, SpeechVAE):
        return source
    path = Path(str(source)) if source is not None else None
    stamp = path.stat().st_mtime_ns if path is not None and path.is_file() else None
    key = (str(source), stamp)
    if key not in _LOADED:
        if len(_LOADED) >= 4:
            _LOADED.clear()
        _LOADED[key] = load_speech_prior(source)
    return _LOADED[key]


def check_prior_stft(method: str, source: Any, stft: StftConfig) -> None:
    """Refuse a sample rate or STFT that the speech prior ``source`` was not made for: its
    spectra mean nothing there, and ``sr=48000`` with a 512-point STFT has the 16-kHz prior's
    257 bins too, so :func:`check_bins` alone would not notice."""
    theirs = _cached_prior(source).stft_config
    if theirs.sample_rate != stft.sample_rate:
        raise VaeAudioError(
            f"method {method!r} runs a speech prior made for {theirs.sample_rate} Hz but the "
            f"mixture is at sr={stft.sample_rate}; resample it to {theirs.sample_rate} Hz "
            f"(vae_audio.audio.resample) and pass sr={theirs.sample_rate}"
        )
    fields = ("n_fft", "hop_length", "win_len", "window", "center")
    diff = [f for f in fields if getattr(theirs, f) != getattr(stft, f)]
    if diff:
        made = ", ".join(f"{f}={getattr(theirs, f)}" for f in diff)
        here = ", ".join(f"{f}={getattr(stft, f)}" for f in diff)
        raise VaeAudioError(
            f"method {method!r} runs a speech prior made with {made} but stft= has {here}; "
            f"pass stft=StftConfig(sample_rate={theirs.sample_rate}, n_fft={theirs.n_fft}, "
            f"hop_length={theirs.hop_length}) (the prior's stft_config)"
        )


def load_prior(source: Any, x: torch.Tensor) -> SpeechVAE:
    """The speech prior ``source`` (None, name, path or :class:`SpeechVAE`) as a frozen copy on
    ``x``'s device and real dtype, in eval mode (files are read once per process)."""
    base = _cached_prior(source)
    net = copy.deepcopy(base).to(device=x.device, dtype=x.real.dtype)  # 0.3 MB: cheap
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


# ---------------------------------------------------------------- vae-nmf in the registry


@dataclass
class VaeNmfFit:
    """Single-channel VAE-NMF as a separation model: slots (speech, noise), ``M = 1``.

    ``speech``, ``noise`` ``[B, F, T]`` (Wiener estimates), ``log_likelihood [B, I + 1]``
    (nats summed over F and T; entry 0, before the first iteration, is NaN: ``vae_nmf``
    does not report it; MCEM values average over the MH samples), ``noise_index [B]`` (1).
    """

    speech: torch.Tensor
    noise: torch.Tensor
    log_likelihood: torch.Tensor
    noise_index: torch.Tensor

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 2, 1, F, T]``: speech and noise estimates of ``x [B, 1, F, T]``."""
        return torch.stack([self.speech, self.noise], 1)[:, :, None]

    def scm(self) -> None:
        return None


def fit_vae_nmf(
    x: torch.Tensor,
    n_src: int,
    n_iter: int = 50,
    prior: Any = None,
    inference: str = "mcem",
    n_components: int = 8,
    mh_iters: int = 40,
    mh_burn_in: int = 30,
    mh_std: float = 0.1,
    z_steps: int = 5,
    z_lr: float = 0.05,
    seed: int = 0,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> VaeNmfFit:
    """:func:`~vae_audio.separation.vae_nmf.vae_nmf` on ``x [B, 1, F, T]`` with ``n_src = 2``
    slots (one speaker and the noise). A multichannel ``x`` is refused: the model has no
    spatial part, and filtering mic 0 only would return images that do not add up to the
    other channels. ``callback`` runs for every iteration after the fit (``vae_nmf`` has no
    hook)."""
    from vae_audio.separation.vae_nmf import VaeNmfConfig, vae_nmf

    B, M, F, T = x.shape
    if M != 1:
        raise VaeAudioError(
            f"vae-nmf is single-channel but the mixture has {M} channels; pass one channel "
            "(e.g. mixture[..., :1, :]) or use method='vae-fca'"
        )
    if n_src != 2:
        raise VaeAudioError(
            f"vae-nmf separates one speaker from the noise; pass n_src=1 (noise_slot=True), "
            f"got {n_src} slots"
        )
    net = load_prior(prior, x)
    check_bins(net, F, "the speech prior" if prior is None else f"speech prior {prior}")
    cfg = VaeNmfConfig(
        inference=inference,
        n_iter=n_iter,
        n_components=n_components,
        mh_iters=mh_iters,
        mh_burn_in=mh_burn_in,
        mh_std=mh_std,
        z_steps=z_steps,
        z_lr=z_lr,
        seed=seed,
    )
    res = vae_nmf(x[:, 0], net, cfg)
    nll = res.objective.T * (F * T) + F * T * math.log(math.pi)  # [B, I] nats
    nan = torch.full((B, 1), float("nan"), dtype=nll.dtype, device=nll.device)
    ll = torch.cat([nan, -nll], 1)  # [B, I + 1]
    if callback is not None:
        for it in range(n_iter):
            callback(it, ll[:, it + 1])
    index = torch.ones(B, dtype=torch.long, device=x.device)
    return VaeNmfFit(res.speech, res.noise, ll, index)
