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

**Implementation** (:func:`jd_iterations`, :class:`_JdWorkspace`): the same updates as the
reference functions below (:func:`update_jd_gains`, :func:`_update_q_ip`, :func:`_transform`,
:func:`jd_log_likelihood`), arranged for fewer passes over the ``[F, M, T]`` data, which
bound the run time on a CPU: ``x̃`` and ``ŷ`` as ``[B, M, F, T]`` so that the ``N <-> M``
mixings are single GEMMs, ``V_fm`` from the packed Hermitian outer products (half of
:func:`~vae_audio.separation.linalg.outer_real`), reused buffers, and the ``1/ŷ`` of the
IP step reused after the scale normalisation (``ŷ`` is divided by ``φ_f`` when the source
model rescales exactly). With single-precision data, ``V_fm`` is accumulated in single
precision except at the few lowest bins where that is too coarse for the IP step (detected
from the step's Rayleigh quotients, :meth:`_JdWorkspace.update_q`); the M x M solves always
run in double. Recording the log-likelihood costs about a tenth of an iteration (a log over
``[F, M, T]``); ``ll_every`` thins the record.

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
from vae_audio.separation.covariance import jd_model_power
from vae_audio.separation.linalg import (
    mean_power,
    outer_hermitian,
    real_form,
    stack_real,
    weighted_covariances,
    weighted_covariances_packed,
)
from vae_audio.separation.source_model import (
    ConcatPsd,
    FlatPsd,
    FreePsd,
    NmfPsd,
    PsdStats,
    SourceModel,
)

JD_INITS = ("identity", "random", "obs", "twostep", "noise")
# IP Rayleigh quotients below this fraction of tr(V)/M are within a few hundred times the
# single-precision rounding of V: such bins are updated from double-precision V
_FRAGILE = 1e-4
_FRAGILE_EVERY = 10
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


def update_jd_gains(xt, lam, g, eps, y=None):
    """MU for g (Sekiguchi et al. 2020, the update of g); sums over T (and F for FastMNMF2).
    ``y``: ``jd_model_power(lam, g, eps)`` if already computed."""
    y = jd_model_power(lam, g, eps) if y is None else y  # [B, F, M, T]
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
    w = y.reciprocal()  # [B, F, M, T]
    V = weighted_covariances(xx, w)  # [B, F, M, M, M]: V[b, f, m] = V_fm
    load = delta[..., None] * w.mean(-1)  # [B, F, M]: δ_f (1/T) Σ_t 1/ŷ_ftm
    return _ip_rows(_with_floor(V, load), Q)


def _with_floor(V: torch.Tensor, load: torch.Tensor) -> torch.Tensor:
    """``V + load·I`` in double precision (the small M x M solves of IP run in double: ``V``
    can be ill-conditioned at low frequencies). ``V [B, F, M, M, M]``, ``load [B, F, M]``."""
    V = V.to(torch.complex128, copy=True)
    V.diagonal(0, -2, -1).real.add_(load.double()[..., None])  # + δ_f (1/T) Σ_t 1/ŷ_ftm I
    return V


def _ip_rows(V: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """The row-by-row IP sweep given ``V [B, F, M, M, M]`` complex128 (``V[b, f, m] = V_fm``,
    floor included, :func:`_with_floor`); returns the new ``Q [B, F, M, M]`` in ``Q``'s
    dtype."""
    B, F, M, _ = Q.shape
    Q_out, Q = Q, Q.to(torch.complex128, copy=True)  # rows are replaced in place
    E = torch.eye(M, dtype=Q.dtype, device=Q.device).expand(B, F, M, M)
    tiny = torch.finfo(torch.float64).tiny
    for m in range(M):  # rows depend on each other; M is small
        Vm = V[:, :, m]  # [B, F, M, M]
        q = torch.linalg.solve_ex(Q @ Vm, E[..., m : m + 1])[0]  # [B, F, M, 1]
        norm = (q.conj() * (Vm @ q)).real.sum((-2, -1))  # [B, F]: qᴴ V_fm q
        Q[:, :, m] = (q[..., 0] * norm.clamp_min(tiny).rsqrt()[..., None]).conj()
    return Q.to(Q_out.dtype)


def _normalize(Q, g, source, eps):
    """Scale normalisation as in Sekiguchi's reference code; leaves L unchanged.

    ``Q_f ← Q_f / sqrt(φ_f)`` with ``φ_f = tr(Q_f Q_fᴴ)/M`` (``x̃``, ``λ`` and ``ε`` scale by
    ``1/φ_f``), then ``g_n ← g_n / Σ_m g_nm`` with ``λ_n`` multiplied back. Returns ``Q``,
    ``g``, ``ε`` and ``φ [B, F]`` (``ŷ`` is divided by ``φ_f`` when ``source.rescale`` is
    exact).
    """
    M = Q.shape[-1]
    phi = (Q.real.square() + Q.imag.square()).sum((-2, -1)) / M  # [B, F]
    Q = Q * phi.rsqrt()[..., None, None].to(Q.dtype)
    mu = g.sum(-1)  # [B, N, F|1]
    g = g / mu[..., None]
    source.rescale(mu / phi[:, None])  # [B, N, F]
    return Q, g, eps / phi, phi


def _rescales_exactly(source: SourceModel) -> bool:
    """Whether ``source.rescale(c)`` multiplies ``psd()`` by ``c`` exactly (an NMF with a
    floor does not: ``c W H + floor``); then :func:`_normalize` divides ``ŷ`` by ``φ_f``."""
    if isinstance(source, NmfPsd):
        return not source._has_floor
    if isinstance(source, ConcatPsd):
        return all(_rescales_exactly(part) for part in source.parts)
    return isinstance(source, (FreePsd, FlatPsd))


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
    ll_every: int = 1,
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
    :class:`NmfPsd`). ``ll_every``: how often the log-likelihood is recorded
    (:func:`jd_iterations`; 1 = every iteration, 0 = only before the first and after the
    last; the skipped entries of ``log_likelihood`` are NaN; each record costs about a tenth
    of an iteration).
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
            ll_every=0,  # the first stage's record is not returned
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
    eps = (eps_rel * mean_power(x, (1, 2, 3)))[:, None].expand(B, F)  # [B, F]
    noise_index = None
    if source is None:
        power = _transform(xf, Q, delta).mean((1, 2, 3))  # [B]: mean x̃ (> 0: δ_f > 0)
        joint = nmf_update == "joint"
        n_speech = n_src - 1 if init == "noise" else n_src
        shape = (B, n_speech, F, n_basis, T)
        source = NmfPsd.random(shape, power, generator, power.dtype, x.device, joint=joint)
        if init == "noise":  # the noise slot keeps the first stage's stationary PSD model
            a, p = lam0[:, n_speech:, :, 0], torch.ones_like(lam0[:, n_speech:, 0])  # [B, 1, F|T]
            source = ConcatPsd([source, FlatPsd(a, p, n_speech=0)])
    if init == "noise":
        noise_index = torch.full((B,), n_src - 1, dtype=torch.long, device=x.device)
    Q, g, eps, history = jd_iterations(
        xf, source, Q, g, eps, delta, n_iter, callback, ll_every=ll_every
    )
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
    ll_every: int = 1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n_iter`` FastMNMF iterations (module docstring) of ``source`` (updated in place)
    from ``Q [B, F, M, M]``, ``g [B, N, F|1, M]``, ``eps [B, F]`` on ``xf [B, F, M, T]`` with
    the observation floor ``delta [B, F]``.

    ``before_step(x̃ [B, F, M, T], g, eps)`` runs before every source step (e.g. to hand a
    sampler the current spatial model), ``callback(it, log_likelihood [B])`` after every
    iteration. Returns ``Q``, ``g``, ``eps`` and ``log_likelihood [B, I + 1]`` (nats, summed
    over F and T; entry 0 after the initial scale normalisation). ``ll_every = k`` evaluates
    entry ``i`` only when ``k`` divides ``i``, and always entries 0 and ``I`` (``k = 0``: only
    those two); the others are NaN, and so is what ``callback`` gets for them (the iterates do
    not depend on ``ll_every``). The arithmetic runs in :class:`_JdWorkspace` (module
    docstring, "Implementation").
    """
    if isinstance(ll_every, bool) or not isinstance(ll_every, int) or ll_every < 0:
        raise VaeAudioError(f"ll_every must be a non-negative integer, got {ll_every!r}")
    ws = _JdWorkspace(xf, delta)
    exact = _rescales_exactly(source)
    Q, g, eps, _ = _normalize(Q, g, source, eps)
    xt = ws.transform(Q)  # [B, M, F, T]
    history = [ws.point(xt, Q, g, y=ws.power(source.psd(), g, eps), record=True)]
    skipped = torch.full_like(history[0], math.nan)
    for it in range(n_iter):
        if before_step is not None:
            before_step(xt.transpose(1, 2), g, eps)
        source.mm_update(ws.stats_fn(xt, g, eps))
        lam = source.psd()
        g = ws.update_gains(xt, lam, g, eps)
        Q = ws.update_q(Q, lam, g, eps)  # leaves 1/ŷ(λ, g, ε) in the workspace
        Q, g, eps, phi = _normalize(Q, g, source, eps)
        xt = ws.transform(Q)
        record = it + 1 == n_iter or (ll_every > 0 and (it + 1) % ll_every == 0)
        if exact:  # ŷ is now the IP's ŷ over φ_f: no new ŷ
            ll = ws.point(xt, Q, g, phi=phi, record=record)
        else:
            ll = ws.point(xt, Q, g, y=ws.power(source.psd(), g, eps), record=record)
        history.append(ll if record else skipped)
        if callback is not None:
            callback(it, history[-1])
    return Q, g, eps, torch.stack(history, 1)


class _JdWorkspace:
    """Precomputed data and scratch buffers for :func:`jd_iterations` on ``xf [B, F, M, T]``.

    Layout: ``x̃`` and ``ŷ`` are kept as ``[B, M, F, T]``, so that with frequency-independent
    gains (FastMNMF2) every ``N <-> M`` mixing (``ŷ = Σ_n g_n λ_n``, the MU statistics, the
    g update) is one GEMM on the ``[B, N, F, T]`` PSDs; the per-frequency work (``Q x``,
    ``V_fm``) reads them through transposed views. ``Q x`` runs as a real GEMM on
    ``[Re x; Im x]`` and ``V_fm`` as one real GEMM on the packed outer products
    (:func:`~vae_audio.separation.linalg.outer_hermitian`). ``ŷ`` and the ratios ``x̃/ŷ²``,
    ``1/ŷ`` live in reused buffers (``[B, M, F, T]``, ``[B, M, 2, F, T]``; writing into a
    buffer measured up to twice as fast as into a fresh tensor on CPU); the tensors handed out
    (``x̃``, the statistics, ``Q``, ``g``) are fresh.
    """

    def __init__(self, xf: torch.Tensor, delta: torch.Tensor) -> None:
        B, F, M, T = xf.shape
        self.B, self.F, self.M, self.T = B, F, M, T
        self.delta = delta  # [B, F]
        self.xr = stack_real(xf)  # [B, F, 2M, T]
        self.xx = outer_hermitian(xf)  # [B, F, T, M²]
        real = self.xr.dtype
        self.ratio = torch.empty(B, M, 2, F, T, dtype=real, device=xf.device)  # x̃/ŷ², 1/ŷ
        self.y = torch.empty(B, M, F, T, dtype=real, device=xf.device)  # ŷ
        self.xf = xf  # [B, F, M, T], for double-precision V at the lowest bins (update_q)
        self._n_exact = 0  # how many of the lowest bins the IP step takes in double precision
        self._steps = 0  # IP steps so far
        self._xx64: torch.Tensor | None = None  # their outer products [B, K, T, M²], double
        self._cached: torch.Tensor | None = None  # g of the ratios in the buffer, if current
        self._eps: torch.Tensor | None = None  # ε of _eps_row
        self._eps_row: torch.Tensor | None = None  # ε_f repeated over T [B, 1, FT]

    def transform(self, Q: torch.Tensor) -> torch.Tensor:
        """``x̃ [B, M, F, T]`` (:func:`_transform`) for ``Q [B, F, M, M]``."""
        M = self.M
        z = real_form(Q).to(self.xr.dtype) @ self.xr  # [B, F, 2M, T]: [Re Q x; Im Q x]
        rows = Q.real.square().sum(-1) + Q.imag.square().sum(-1)  # [B, F, M]: ‖q_fm‖²
        load = (self.delta[..., None] * rows)[..., None]  # [B, F, M, 1]
        xt = torch.empty(self.B, M, self.F, self.T, dtype=z.dtype, device=z.device)
        view = xt.transpose(1, 2)  # [B, F, M, T]
        torch.addcmul(load, z[:, :, :M], z[:, :, :M], out=view)
        view.addcmul_(z[:, :, M:], z[:, :, M:])
        return xt

    def power(self, lam: torch.Tensor, g: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """``ŷ [B, M, F, T]`` (:func:`jd_model_power`, transposed) into the ``y`` buffer."""
        B, N, F, T = lam.shape
        y = self.y.view(B, -1, F * T)  # [B, M, FT]
        if g.shape[2] == 1:  # FastMNMF2: ε + [B, M, N] @ [B, N, FT], one GEMM
            if self._eps is not eps:  # ε changes once per iteration (normalisation)
                self._eps = eps
                self._eps_row = eps[:, None, :, None].expand(B, 1, F, T).reshape(B, 1, F * T)
            torch.baddbmm(self._eps_row, g[:, :, 0].mT, lam.reshape(B, N, F * T), out=y)
        else:
            torch.add(torch.einsum("bnfm,bnft->bmft", g, lam), eps[:, None, :, None], out=self.y)
        return self.y

    def ratios(self, xt: torch.Tensor, y: torch.Tensor) -> None:
        """``x̃/ŷ²`` and ``1/ŷ`` into the ratio buffer."""
        a, r = self.ratio[:, :, 0], self.ratio[:, :, 1]  # [B, M, F, T]
        torch.reciprocal(y, out=r)
        torch.mul(xt, r, out=a).mul_(r)

    def _mix_ratios(self, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``Σ_m g_nm x̃_m/ŷ_m²`` and ``Σ_m g_nm/ŷ_m`` ``[B, N, F, T]`` from the ratio buffer."""
        B, M, _, F, T = self.ratio.shape
        if g.shape[2] == 1:  # [B, N, M] @ [B, M, 2FT]
            nd = (g[:, :, 0] @ self.ratio.view(B, M, 2 * F * T)).view(B, -1, 2, F, T)
        else:
            nd = torch.einsum("bnfm,bmsft->bnsft", g, self.ratio)
        return nd[:, :, 0], nd[:, :, 1]

    def point(
        self,
        xt: torch.Tensor,
        Q: torch.Tensor,
        g: torch.Tensor,
        y: torch.Tensor | None = None,
        phi: torch.Tensor | None = None,
        record: bool = False,
    ) -> torch.Tensor | None:
        """Ratios at the current point into the buffer, where the next :meth:`stats_fn`'s
        first call finds them, and with ``record`` the log-likelihood ``[B]``
        (:func:`jd_log_likelihood`). ``ŷ`` is given as ``y [B, M, F, T]`` or, after an exact
        scale normalisation, as ``φ [B, F]``: the ``y`` buffer then still holds ``1/ŷ`` of
        :meth:`update_q`, and the new ``ŷ`` is that ``ŷ / φ_f``."""
        a, r = self.ratio[:, :, 0], self.ratio[:, :, 1]  # [B, M, F, T]
        if phi is None:
            torch.reciprocal(y, out=r)
        else:
            torch.mul(self.y, phi[:, None, :, None], out=r)
        torch.mul(xt, r, out=a)
        data = a.sum((1, 2, 3)) if record else None  # [B]: Σ x̃/ŷ
        a.mul_(r)
        self._cached = g
        if not record:
            return None
        logdet_y = -torch.log(r, out=self.y).sum((1, 2, 3))  # [B]: Σ log ŷ
        M, F, T = self.M, self.F, self.T
        LU = torch.linalg.lu_factor_ex(Q)[0]  # [B, F, M, M]: |det Q| = Π |U_ii|
        logabsdet = LU.diagonal(0, -2, -1).abs().log().sum((1, 2))  # [B]
        return -(data + logdet_y) + 2 * T * logabsdet - F * T * M * math.log(math.pi)

    def stats_fn(self, xt: torch.Tensor, g: torch.Tensor, eps: torch.Tensor):
        """MM statistics for the source model (:func:`_stats_fn`); the first call, at the
        current ``psd()`` (source-model protocol), is answered from the ratio buffer."""
        cached = self._cached is g

        def stats(lam: torch.Tensor) -> PsdStats:
            nonlocal cached
            if not cached:
                self.ratios(xt, self.power(lam, g, eps))
            cached = False
            num, den = self._mix_ratios(g)
            return PsdStats(num=num, den=den, lam=lam)

        self._cached = None
        return stats

    def update_gains(self, xt, lam, g, eps) -> torch.Tensor:
        """MU for g (:func:`update_jd_gains`) -> ``[B, N, F|1, M]``."""
        self.ratios(xt, self.power(lam, g, eps))
        B, M, _, F, T = self.ratio.shape
        ratio = self.ratio.permute(0, 3, 1, 2, 4).reshape(B, F, 2 * M, T)  # view, (m, num|den)
        # per-frequency GEMMs over T, then a pairwise sum over F: one float32 GEMM over all
        # F·T terms loses about two digits here
        nd = (lam.transpose(1, 2) @ ratio.mT).view(B, F, -1, M, 2)  # [B, F, N, M, 2]
        if g.shape[2] == 1:
            nd = nd.sum(1, keepdim=True)  # [B, 1, N, M, 2]
        return g * (nd[..., 0] / nd[..., 1]).sqrt().transpose(1, 2)  # [B, N, F|1, M]

    def update_q(self, Q, lam, g, eps) -> torch.Tensor:
        """Iterative projection (:func:`_update_q_ip`) at ``ŷ(lam, g, eps)``.

        Single-precision ``V_fm`` carry a rounding error of about ``1e-7 tr(V_fm)``. At the
        bins the array barely resolves (DC and the lowest bins) the IP's Rayleigh quotients
        ``q̂ᴴ V q̂ / ‖q̂‖² = 1/‖q̂‖²`` come down to that level and the step goes wrong (a row
        can blow up to inf). When a bin's smallest quotient falls below :data:`_FRAGILE`
        ``· tr(V_fm)/M``, the step is redone for the bins up to it from double-precision
        ``V_fm``, and those bins stay in double from then on (the lowest 7-9 of 257 bins,
        13-22 of 513, on the bench mixtures: below about 300 Hz). The quotients are checked
        at the first step and every :data:`_FRAGILE_EVERY` steps, and whenever a row is not
        finite.
        """
        w = torch.reciprocal(self.power(lam, g, eps), out=self.y)  # [B, M, F, T]
        wt = w.transpose(1, 2)  # [B, F, M, T]
        load = self.delta[..., None] * w.mean(-1).transpose(1, 2)  # [B, F, M]
        V = _with_floor(weighted_covariances_packed(self.xx, wt), load)  # [B, F, M, M, M]
        if self.xx.dtype == torch.float64:
            return _ip_rows(V, Q)
        K = self._n_exact
        if K:  # the lowest K bins in double precision
            V64 = weighted_covariances_packed(self._xx64, wt[:, :K].double())
            V[:, :K] = _with_floor(V64, load[:, :K])
        Q_new = _ip_rows(V, Q)
        self._steps += 1
        check = (self._steps - 1) % _FRAGILE_EVERY == 0 or not bool(torch.isfinite(Q_new).all())
        fragile = _fragile_bins(Q_new[:, K:], V[:, K:]).any(0) if check else None  # [F - K]
        if fragile is not None and bool(fragile.any()):
            K_new = K + int(fragile.nonzero()[-1]) + 1
            self._xx64 = outer_hermitian(self.xf[:, :K_new].to(torch.complex128))
            V64 = weighted_covariances_packed(self._xx64[:, K:], wt[:, K:K_new].double())
            V[:, K:K_new] = _with_floor(V64, load[:, K:K_new])
            Q_new[:, K:K_new] = _ip_rows(V[:, K:K_new], Q[:, K:K_new])
            self._n_exact = K_new
        return Q_new


def _fragile_bins(Q: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """``[B, F]`` bool: bins whose smallest IP Rayleigh quotient ``1/‖q̂_m‖²`` is below
    :data:`_FRAGILE` ``· tr(V_fm)/M`` (or that did not come out finite). ``Q [B, F, M, M]``
    after the IP, ``V [B, F, M, M, M]`` with the floor."""
    M = Q.shape[-1]
    rows = Q.real.square().sum(-1) + Q.imag.square().sum(-1)  # [B, F, M]: ‖q̂_m‖²
    scale = V.diagonal(0, -2, -1).real.sum(-1) / M  # [B, F, M]: tr(V_fm)/M
    return ~(rows * scale * _FRAGILE < 1).all(-1)  # NaN counts as fragile


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
    Q, g, eps, _ = jd_iterations(
        xf, source, Q, g, eps[:, None].expand(B, F), delta, n_iter, ll_every=0
    )
    return Q, g, eps, source.psd()
