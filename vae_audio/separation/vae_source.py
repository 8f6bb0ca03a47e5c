"""The VAE speech prior as the source model of FCA/FastMNMF-style fits: the source step of
VAE-FCA (:mod:`vae_audio.separation.vae_fca`, whose docstring gives the model and the update
rules). Slots ``n < N_s`` are speech, ``λ_nft = u_nf v_nt g_f(z_nt)``; the last is NMF noise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from vae_audio.errors import VaeAudioError
from vae_audio.separation.source_model import NmfPsd, PsdStats, StatsFn, _is_stats, mu_ratio
from vae_audio.speech.model import SpeechVAE

Z_UPDATES = ("adam", "mh")
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
