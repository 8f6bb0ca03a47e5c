"""FastMNMF (Sekiguchi et al., EUSIPCO 2019) and FastMNMF2 (Sekiguchi et al., TASLP 2020).

The SCMs are jointly diagonalised, ``H_nf = Q_f⁻¹ diag(g_nf) Q_f⁻ᴴ``, so the mixture
covariance is ``Y_ft = Q_f⁻¹ diag(ŷ_ft) Q_f⁻ᴴ`` with ``ŷ_ftm = Σ_n λ_nft g_nfm + ε``. FastMNMF
has frequency-dependent gains ``g [B, N, F, M]``; FastMNMF2 shares them over frequency,
``g [B, N, M]`` (stored here as ``[B, N, 1, M]``). One iteration (the order of Sekiguchi's
reference code): NMF by MU (W, then H), g by MU, every row of ``Q_f`` by iterative projection
(IP), then a scale normalisation that leaves the likelihood unchanged. Every step is a
majorisation-minimisation or exact coordinate step, so the log-likelihood never decreases.

Log-likelihood (Sekiguchi et al. 2020, the JD form of the FCA likelihood), in nats, summed
over F and T:
``L = Σ_ft [−Σ_m (x̃_ftm / ŷ_ftm + log ŷ_ftm) − M log π] + 2T Σ_f log|det Q_f|``
with ``x̃_ftm = |(Q_f x_ft)_m|²``. **Observation floor:** at frequencies where the array
barely resolves directions (DC, low bins of a small array) ``Σ_t x xᴴ`` is nearly singular
and IP breaks down in float32. The data term is therefore evaluated on ``x xᴴ + δ_f I``
(``x̃_ftm = |(Q_f x_ft)_m|² + δ_f ‖q_fm‖²``, ``δ_f = x_floor · mean_mt |x_mft|²``, default
1e-6, i.e. a white floor 60 dB under each bin's mean power); every update is exact for this
objective, so it stays monotone, and ``x_floor=0`` gives the plain likelihood above.

Initialisations of ``(Q, g)``: ``"identity"`` (Q = I, g "circular": source ``m mod N``
dominates channel ``m``, the others get ``g_eps``; as pyroomacoustics and Sekiguchi's
``circular``), ``"random"`` (seeded complex Gaussian Q), ``"obs"`` (Q from the eigenvectors
of the observed SCM, Sekiguchi's option for one dominant source) and ``"twostep"``
(Sekiguchi's default: ``n_iter_init`` FastMNMF2 iterations with K = 2 bases from
``"identity"``; its Q and g start the main run, whose NMF is drawn afresh).

``"noise"`` makes the last slot the noise by construction (``noise_index``; the first stage
of Sekiguchi's FastMNMF2-DP/FastBSS2 ``twostep``, :func:`noise_first_stage`, shared with
:mod:`~vae_audio.separation.vae_fca`): ``n_iter_init`` FastMNMF2 iterations from
``"identity"`` with frequency-flat speech PSDs ``λ = p_nt`` and a stationary PSD ``λ = w_f``
in the last slot, then the main run with fresh NMFs for the speech slots and the last slot
kept stationary (Sekiguchi's ``TimeInv`` noise model: ``w_f`` by MU, constant in time;
:class:`~vae_audio.separation.source_model.ConcatPsd`). A stationary slot cannot follow a
talker's onsets, so it takes the diffuse background; with a free NMF in the last slot for
the main run instead, the talkers' NMFs and the noise NMF are exchangeable again and the
last slot took a talker on the first ``data/sim/bench10`` mixture (``egs/bench/
noise_slot_start.py``). The price is a noise model for stationary noise only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from vae_audio.errors import VaeAudioError
from vae_audio.separation.linalg import mean_power, outer_real, weighted_covariances
from vae_audio.separation.source_model import (
    ConcatPsd,
    FlatPsd,
    NmfPsd,
    PsdStats,
    SourceModel,
)

JD_INITS = ("identity", "random", "obs", "twostep", "noise")
NMF_UPDATES = ("sequential", "joint")


@dataclass
class FastMnmfResult:
    """Fitted FastMNMF/FastMNMF2 model.

    ``Q [B, F, M, M]`` diagonalisers (row m is ``q_fmᴴ``), ``g [B, N, F', M]`` gains with
    ``F' = F`` (FastMNMF) or 1 (FastMNMF2), ``lam [B, N, F, T]`` source PSDs, ``eps [B, F]``
    the floor inside ``ŷ``, ``log_likelihood [B, I + 1]`` before each iteration and after
    the last (nats, summed over F and T), ``noise_index [B]`` the slot made the noise by
    ``init="noise"`` (the last; None for the other starts).
    """

    Q: torch.Tensor
    g: torch.Tensor
    lam: torch.Tensor
    source: SourceModel
    eps: torch.Tensor
    log_likelihood: torch.Tensor
    noise_index: torch.Tensor | None = None

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """Wiener-filtered source images ``[B, N, M, F, T]`` of ``x [B, M, F, T]``."""
        from vae_audio.separation.wiener import wiener_jd

        return wiener_jd(x, self.lam, self.g, self.Q, self.eps)

    def scm(self) -> torch.Tensor:
        """Full SCMs ``Q⁻¹ diag(g_n) Q⁻ᴴ`` ``[B, N, F, M, M]``."""
        return jd_scm(self.Q, self.g)


def jd_model_power(lam: torch.Tensor, g: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """``ŷ_ftm = Σ_n λ_nft g_nfm + ε_f``: ``lam [B, N, F, T]``, ``g [B, N, F|1, M]``,
    ``eps [B, F]`` -> ``[B, F, M, T]``."""
    y = g.permute(0, 2, 3, 1) @ lam.transpose(1, 2)  # [B, F|1, M, N] @ [B, F, N, T]
    return y + eps[:, :, None, None]  # [B, F, M, T]


def jd_log_likelihood(xt: torch.Tensor, y: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """Exact Gaussian log-likelihood of the JD model -> ``[B]`` (nats, sum over F and T).

    ``xt [B, F, M, T]`` = ``|Q x|²``, ``y [B, F, M, T]`` = ``ŷ``, ``Q [B, F, M, M]``.
    """
    F, M, T = xt.shape[1:]
    logabsdet = torch.linalg.slogdet(Q)[1]  # [B, F]
    data = -(xt / y + y.log()).sum((1, 2, 3))  # [B]
    return data + 2 * T * logabsdet.sum(1) - F * T * M * math.log(math.pi)


def jd_scm(Q: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Full SCMs of the JD model ``H_nf = Q_f⁻¹ diag(g_nf) Q_f⁻ᴴ`` -> ``[B, N, F, M, M]``.

    ``Q [B, F, M, M]``, ``g [B, N, F|1, M]``.
    """
    A = torch.linalg.inv(Q)[:, None]  # [B, 1, F, M, M] mixing matrices
    return (A * g.to(A.dtype)[..., None, :]) @ A.mH  # [B, N, F, M, M]


def _transform(xf: torch.Tensor, Q: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """``x̃_ftm = q_fmᴴ (x xᴴ + δ_f I) q_fm = |(Q_f x_ft)_m|² + δ_f ‖q_fm‖²``.

    ``xf [B, F, M, T]``, ``Q [B, F, M, M]``, ``delta [B, F]`` -> ``[B, F, M, T]`` real.
    """
    z = Q @ xf  # [B, F, M, T]
    rows = Q.real.square().sum(-1) + Q.imag.square().sum(-1)  # [B, F, M]: ‖q_fm‖²
    return z.real.square() + z.imag.square() + (delta[..., None] * rows)[..., None]


def _stats_fn(xt: torch.Tensor, g: torch.Tensor, eps: torch.Tensor):
    """MM statistics for the source model (Sekiguchi et al. 2020, the NMF update rules)."""
    gf = g.transpose(1, 2)  # [B, F|1, N, M]

    def stats(lam: torch.Tensor) -> PsdStats:
        y = jd_model_power(lam, g, eps)  # [B, F, M, T]
        num = (gf @ (xt / y.square())).transpose(1, 2)  # [B, F, N, T] -> [B, N, F, T]
        den = (gf @ y.reciprocal()).transpose(1, 2)  # [B, N, F, T]
        return PsdStats(num=num, den=den, lam=lam)

    return stats


def update_jd_gains(xt, lam, g, eps):
    """MU for g (Sekiguchi et al. 2020, the update of g); sums over T (and F for FastMNMF2)."""
    y = jd_model_power(lam, g, eps)  # [B, F, M, T]
    lam_f = lam.transpose(1, 2)  # [B, F, N, T]
    num = lam_f @ (xt / y.square()).mT  # [B, F, N, M]
    den = lam_f @ y.reciprocal().mT  # [B, F, N, M]
    if g.shape[2] == 1:
        num, den = num.sum(1, keepdim=True), den.sum(1, keepdim=True)  # [B, 1, N, M]
    return g * (num / den).sqrt().transpose(1, 2)  # [B, N, F|1, M]


def _update_q_ip(
    xx: torch.Tensor, Q: torch.Tensor, y: torch.Tensor, delta: torch.Tensor
) -> torch.Tensor:
    """Iterative projection for every row of ``Q_f`` (Sekiguchi et al. 2020; Ono 2011, AuxIVA).

    ``V_fm = (1/T) Σ_t (x xᴴ + δ_f I) / ŷ_ftm``; ``q_fm ← (Q_f V_fm)⁻¹ e_m``;
    ``q ← q / sqrt(qᴴ V_fm q)``. ``xx [B, F, 2M², T]`` from
    :func:`~vae_audio.separation.linalg.outer_real`,
    ``Q [B, F, M, M]``, ``y [B, F, M, T]``, ``delta [B, F]``.
    """
    B, F, M, _ = Q.shape
    w = y.reciprocal()  # [B, F, M, T]
    V = weighted_covariances(xx, w)  # [B, F, M, M, M]: V[b, f, m] = V_fm
    load = delta[..., None] * w.mean(-1)  # [B, F, M]: δ_f (1/T) Σ_t 1/ŷ_ftm
    # The small M x M solves run in double precision: V can be ill-conditioned at low
    # frequencies, and this costs nothing next to the [F, M, T] work.
    V = V.to(torch.complex128) + load.double()[..., None, None] * torch.eye(M, device=V.device)
    Q_out, Q = Q, Q.to(torch.complex128)
    eye = torch.eye(M, dtype=Q.dtype, device=Q.device)
    for m in range(M):  # rows depend on each other; M is small
        Vm = V[:, :, m]  # [B, F, M, M]
        q = torch.linalg.solve(Q @ Vm, eye[:, m].expand(B, F, M))  # [B, F, M]
        norm = (q.conj()[..., None, :] @ Vm @ q[..., None])[..., 0, 0].real  # [B, F]
        row = (q / norm.clamp_min(torch.finfo(norm.dtype).tiny).sqrt()[..., None]).conj()
        Q = torch.cat([Q[:, :, :m], row[:, :, None], Q[:, :, m + 1 :]], 2)  # new row m
    return Q.to(Q_out.dtype)


def _normalize(Q, g, source, eps):
    """Scale normalisation as in Sekiguchi's reference code; leaves L unchanged.

    ``Q_f ← Q_f / sqrt(φ_f)`` with ``φ_f = tr(Q_f Q_fᴴ)/M`` (``x̃``, ``λ`` and ``ε`` scale by
    ``1/φ_f``), then ``g_n ← g_n / Σ_m g_nm`` with ``λ_n`` multiplied back.
    """
    M = Q.shape[-1]
    phi = Q.abs().square().sum((-2, -1)) / M  # [B, F]
    Q = Q / phi.sqrt()[..., None, None].to(Q.dtype)
    mu = g.sum(-1)  # [B, N, F|1]
    g = g / mu[..., None]
    source.rescale(mu / phi[:, None])  # [B, N, F]
    return Q, g, eps / phi


def initial_jd(
    xf: torch.Tensor,
    n_src: int,
    init: str,
    generator: torch.Generator,
    g_eps: float,
    frequency_dependent: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Initial ``Q [B, F, M, M]`` and ``g [B, N, F|1, M]`` for ``xf [B, F, M, T]``
    (``"identity"``, ``"random"`` or ``"obs"``; see the module docstring)."""
    x = xf
    B, F, M, T = x.shape
    real = x.real.dtype
    if init == "identity":
        Q = torch.eye(M, dtype=x.dtype, device=x.device).expand(B, F, M, M)
    elif init == "random":
        z = torch.randn(F, M, M, 2, generator=generator, dtype=torch.float64)
        Q = torch.view_as_complex(z).to(device=x.device, dtype=x.dtype).expand(B, F, M, M)
    elif init == "obs":
        R = x @ x.mH  # [B, F, M, T] @ [B, F, T, M] -> [B, F, M, M] = Σ_t x xᴴ
        _, V = torch.linalg.eigh(R)  # ascending eigenvalues
        Q = V.flip(-1).mH  # rows: eigenvectors by decreasing power
    else:
        raise VaeAudioError(f"unknown FastMNMF init {init!r}; use one of {', '.join(JD_INITS)}")
    g = torch.full((B, n_src, F if frequency_dependent else 1, M), g_eps, dtype=real)
    for m in range(M):
        g[:, m % n_src, :, m] = 1.0
    return Q.contiguous(), g.to(x.device)


def fit_fastmnmf(
    x: torch.Tensor,
    n_src: int,
    n_basis: int = 8,
    n_iter: int = 100,
    frequency_dependent: bool = False,
    init: str = "twostep",
    n_iter_init: int = 10,
    g_eps: float = 5e-2,
    eps_rel: float = 1e-8,
    x_floor: float = 1e-6,
    seed: int = 0,
    callback: Callable[[int, torch.Tensor], None] | None = None,
    source: SourceModel | None = None,
    nmf_update: str = "sequential",
) -> FastMnmfResult:
    """Fit FastMNMF2 (``frequency_dependent=False``) or FastMNMF to ``x [B, M, F, T]`` complex.

    ``n_basis`` NMF bases per source, ``n_iter`` iterations (``"twostep"`` and ``"noise"``
    run ``n_iter_init`` more first-stage iterations before them; ``"noise"`` needs
    ``n_src >= 2``, keeps the last slot stationary and names it in ``noise_index``).
    ``eps_rel`` sets the floor ``ε = eps_rel · mean |x|²`` (per batch item) inside ``ŷ``;
    ``x_floor`` the observation floor ``δ_f = x_floor · mean_mt |x_mft|²`` (module
    docstring). Every batch item starts
    from the same seeded draw, so a batched fit equals one-by-one fits.
    ``callback(it, log_likelihood [B])`` runs after every iteration. ``source`` replaces the
    random NMF (``n_basis`` is then unused): any :class:`SourceModel` with PSDs
    ``[B, N, F, T]``, e.g. a warm start or a VAE-based speech model; it is updated in place.
    ``nmf_update``: ``"sequential"`` (monotone) or ``"joint"`` (pyroomacoustics' rule; see
    :class:`NmfPsd`).
    """
    if init not in JD_INITS:
        raise VaeAudioError(f"unknown FastMNMF init {init!r}; use one of {', '.join(JD_INITS)}")
    if nmf_update not in NMF_UPDATES:
        raise VaeAudioError(
            f"unknown nmf_update {nmf_update!r}; use one of {', '.join(NMF_UPDATES)}"
        )
    xf = x.transpose(1, 2).contiguous()  # [B, F, M, T]
    B, F, M, T = xf.shape
    generator = torch.Generator().manual_seed(seed)
    if init == "twostep":
        first = fit_fastmnmf(
            x,
            n_src,
            2,
            n_iter_init,
            init="identity",
            g_eps=g_eps,
            eps_rel=eps_rel,
            x_floor=x_floor,
            seed=seed,
            nmf_update=nmf_update,
        )
        Q, g = first.Q, first.g.expand(B, n_src, F if frequency_dependent else 1, M)
        generator.manual_seed(seed + 1)
    elif init == "noise":
        if n_src < 2:
            raise VaeAudioError(
                f"init='noise' needs a speech slot and the noise slot (n_src >= 2), got {n_src}"
            )
        eps0 = eps_rel * mean_power(x, (1, 2, 3))  # [B]
        Q, g, _, lam0 = noise_first_stage(x, n_src, n_src - 1, n_iter_init, eps0, g_eps, x_floor)
        g = g.expand(B, n_src, F if frequency_dependent else 1, M)
        generator.manual_seed(seed + 1)
    else:
        Q, g = initial_jd(xf, n_src, init, generator, g_eps, frequency_dependent)
    delta = x_floor * mean_power(xf, (2, 3))  # [B, F]
    xt = _transform(xf, Q, delta)  # [B, F, M, T]
    power = mean_power(xt, (1, 2, 3))  # [B]
    eps = (eps_rel * mean_power(x, (1, 2, 3)))[:, None].expand(B, F)  # [B, F]
    noise_index = None
    if source is None:
        joint = nmf_update == "joint"
        n_speech = n_src - 1 if init == "noise" else n_src
        shape = (B, n_speech, F, n_basis, T)
        source = NmfPsd.random(shape, power, generator, xt.dtype, x.device, joint=joint)
        if init == "noise":  # the noise slot keeps the first stage's stationary PSD model
            a, p = lam0[:, n_speech:, :, 0], torch.ones_like(lam0[:, n_speech:, 0])  # [B, 1, F|T]
            source = ConcatPsd([source, FlatPsd(a, p, n_speech=0)])
    if init == "noise":
        noise_index = torch.full((B,), n_src - 1, dtype=torch.long, device=x.device)
    Q, g, eps, history = jd_iterations(xf, source, Q, g, eps, delta, n_iter, callback)
    return FastMnmfResult(Q, g, source.psd(), source, eps, history, noise_index)


def jd_iterations(
    xf: torch.Tensor,
    source: SourceModel,
    Q: torch.Tensor,
    g: torch.Tensor,
    eps: torch.Tensor,
    delta: torch.Tensor,
    n_iter: int,
    callback: Callable[[int, torch.Tensor], None] | None = None,
    before_step: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n_iter`` FastMNMF iterations (module docstring) of ``source`` (updated in place)
    from ``Q [B, F, M, M]``, ``g [B, N, F|1, M]``, ``eps [B, F]`` on ``xf [B, F, M, T]`` with
    the observation floor ``delta [B, F]``.

    ``before_step(x̃ [B, F, M, T], g, eps)`` runs before every source step (e.g. to hand a
    sampler the current spatial model), ``callback(it, log_likelihood [B])`` after every
    iteration. Returns ``Q``, ``g``, ``eps`` and ``log_likelihood [B, I + 1]`` (nats, summed
    over F and T; entry 0 after the initial scale normalisation).
    """
    Q, g, eps = _normalize(Q, g, source, eps)
    xt = _transform(xf, Q, delta)  # [B, F, M, T]
    xx = outer_real(xf)  # [B, F, 2M², T]
    history = [jd_log_likelihood(xt, jd_model_power(source.psd(), g, eps), Q)]
    for it in range(n_iter):
        if before_step is not None:
            before_step(xt, g, eps)
        source.mm_update(_stats_fn(xt, g, eps))
        lam = source.psd()
        g = update_jd_gains(xt, lam, g, eps)
        Q = _update_q_ip(xx, Q, jd_model_power(lam, g, eps), delta)
        Q, g, eps = _normalize(Q, g, source, eps)
        xt = _transform(xf, Q, delta)
        history.append(jd_log_likelihood(xt, jd_model_power(source.psd(), g, eps), Q))
        if callback is not None:
            callback(it, history[-1])
    return Q, g, eps, torch.stack(history, 1)


def noise_first_stage(
    x: torch.Tensor,
    n_src: int,
    n_speech: int,
    n_iter: int,
    eps: torch.Tensor,
    g_eps: float,
    x_floor: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """First stage of the noise-slot start (Sekiguchi's ``twostep`` of FastMNMF2-DP/FastBSS2):
    ``n_iter`` FastMNMF2 iterations on ``x [B, M, F, T]`` with frequency-flat speech PSDs in
    the first ``n_speech`` slots and stationary PSDs in the others
    (:class:`~vae_audio.separation.source_model.FlatPsd`), from ``Q = I`` and circular ``g``
    (source ``m mod N`` dominates channel ``m``, the others get ``g_eps``). The stationary
    slots cannot follow a talker's onsets, so they end up holding the noise. ``eps [B]`` is
    the floor inside ``ŷ``. Returns ``Q [B, F, M, M]``, ``g [B, N, 1, M]``, ``eps [B, F]``
    and ``λ [B, N, F, T]``.
    """
    xf = x.transpose(1, 2).contiguous()  # [B, F, M, T]
    B, F, M, T = xf.shape
    Q, g = initial_jd(xf, n_src, "identity", torch.Generator(), g_eps, False)
    power = mean_power(xf, (1, 2, 3))  # [B]
    p = power[:, None, None].expand(B, n_src, T).clone()  # [B, N, T]
    a = torch.ones(B, n_src, F, dtype=power.dtype, device=x.device)  # [B, N, F]
    source = FlatPsd(a, p, n_speech)
    delta = x_floor * mean_power(xf, (2, 3))  # [B, F]
    Q, g, eps, _ = jd_iterations(xf, source, Q, g, eps[:, None].expand(B, F), delta, n_iter)
    return Q, g, eps, source.psd()
