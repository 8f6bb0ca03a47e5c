"""Details of FastMNMF(2) that the main tests leave open: the ``"random"`` and ``"obs"``
starts, the hand-over from the ``"twostep"`` and ``"noise"`` first stages, the default
``n_iter_init``, scale equivariance (the floors ``ε`` and ``δ_f`` follow the data's power),
options given as strings built at run time, the ``before_step`` arguments, the last record of
a long run, the FastMNMF statistics at shapes that look like FastMNMF2's, and the fragile-bin
check of the single-precision IP step; the defaults of :func:`fit_fastmnmf`, the identity start,
the noise slot with 2 and 4 sources, what ``callback`` gets, the workspace at 1, 2 and 4
channels and a later extension of the double-precision bins."""

from __future__ import annotations

import math

import pytest
import torch

from vae_audio.errors import VaeAudioError
from vae_audio.separation import fastmnmf
from vae_audio.separation.fastmnmf import (
    _fragile_bins,
    _JdWorkspace,
    _stats_fn,
    _transform,
    fit_fastmnmf,
    initial_jd,
    jd_iterations,
    jd_model_power,
    noise_first_stage,
    update_jd_gains,
)
from vae_audio.separation.linalg import mean_power
from vae_audio.separation.source_model import FreePsd

from .conftest import sample_jd


def _xf(x):
    return x.transpose(1, 2).contiguous()  # [B, M, F, T] -> [B, F, M, T]


def _runtime(s: str) -> str:
    """``s`` as a new string object, as read from a config file or the command line."""
    return "".join(list(s))


# --- the starts -----------------------------------------------------------------------------


def test_random_start_is_a_seeded_complex_gaussian():
    x, *_ = sample_jd(M=3, N=2, F=6, T=20, seed=1)
    xf = _xf(x)

    def draw(seed):
        return initial_jd(xf, 2, "random", torch.Generator().manual_seed(seed), 0.05, False)

    Q, g = draw(4)
    assert Q.shape == (1, 6, 3, 3) and Q.dtype == xf.dtype
    assert torch.equal(Q, draw(4)[0]) and not torch.allclose(Q, draw(5)[0])
    off = Q - torch.diag_embed(Q.diagonal(0, -2, -1))
    assert off.abs().square().sum() > 0.3 * Q.abs().square().sum()  # not a diagonal start
    assert Q.imag.abs().amax() > 0.1  # complex
    assert g.shape == (1, 2, 1, 3)
    torch.testing.assert_close(g[0, :, 0], torch.tensor([[1, 0.05, 1], [0.05, 1, 0.05]]).double())
    # the fit starts from this draw, scale-normalised (φ_f = tr(Q_f Q_fᴴ)/M)
    fit = fit_fastmnmf(x, 2, n_basis=2, n_iter=0, init="random", seed=4)
    phi = Q.abs().square().sum((-2, -1)) / 3  # [B, F]
    torch.testing.assert_close(fit.Q, Q / phi.sqrt()[..., None, None], rtol=1e-12, atol=0)


def test_obs_start_rows_are_eigenvectors_by_decreasing_power():
    x, *_ = sample_jd(M=3, N=2, F=6, T=40, seed=2)
    xf = _xf(x)
    Q, _ = initial_jd(xf, 2, "obs", torch.Generator(), 0.05, False)
    R = xf @ xf.mH  # [B, F, M, M]: Σ_t x xᴴ
    D = Q @ R @ Q.mH  # diagonal: the powers along the rows
    power = D.diagonal(0, -2, -1).real  # [B, F, M]
    scale = power.amax(-1)[..., None, None]
    assert ((D - torch.diag_embed(power.to(D.dtype))).abs() <= 1e-10 * scale).all()
    assert (power[..., :-1] > power[..., 1:]).all()  # row 0: the strongest direction
    eye = torch.eye(3, dtype=Q.dtype)
    torch.testing.assert_close(Q @ Q.mH, eye.expand_as(Q), rtol=0, atol=1e-12)  # unitary
    fit = fit_fastmnmf(x, 2, n_basis=2, n_iter=0, init="obs")  # φ_f = 1: unchanged
    torch.testing.assert_close(fit.Q, Q, rtol=0, atol=1e-12)


@pytest.mark.parametrize("bad", ["ilrma", "pca", "twostep"])
def test_initial_jd_takes_only_its_three_starts(bad):
    x, *_ = sample_jd(F=4, T=10)
    with pytest.raises(VaeAudioError, match="unknown FastMNMF init"):
        initial_jd(_xf(x), 2, bad, torch.Generator(), 0.05, False)


def test_twostep_starts_from_n_iter_init_identity_iterations():
    """``"twostep"``: the main run starts from the Q and g of ``n_iter_init`` (default 10)
    FastMNMF2 iterations with 2 bases from ``"identity"``."""
    x, *_ = sample_jd(M=3, N=2, F=6, T=30, seed=3)
    start = fit_fastmnmf(x, 2, n_basis=3, n_iter=0)
    for k, same in ((10, True), (9, False)):
        first = fit_fastmnmf(x, 2, n_basis=2, n_iter=k, init="identity")
        assert torch.allclose(start.Q, first.Q, rtol=1e-12, atol=1e-14) == same, k
        assert torch.allclose(start.g, first.g, rtol=1e-12, atol=1e-14) == same, k
    explicit = fit_fastmnmf(x, 2, n_basis=3, n_iter=2, n_iter_init=10)
    default = fit_fastmnmf(x, 2, n_basis=3, n_iter=2)
    assert torch.equal(default.log_likelihood, explicit.log_likelihood)
    assert torch.equal(default.Q, explicit.Q) and torch.equal(default.lam, explicit.lam)


def test_twostep_start_of_fastmnmf_gives_every_bin_the_first_stage_gains():
    """FastMNMF (frequency-dependent gains) from ``"twostep"``: the first stage is FastMNMF2,
    whose one gain row per slot is copied to every frequency bin."""
    x, *_ = sample_jd(M=3, N=2, F=6, T=30, seed=3)
    start = fit_fastmnmf(x, 2, n_basis=3, n_iter=0, frequency_dependent=True)
    first = fit_fastmnmf(x, 2, n_basis=2, n_iter=10, init="identity")
    assert start.g.shape == (1, 2, 6, 3) and first.g.shape == (1, 2, 1, 3)
    torch.testing.assert_close(start.g, first.g.expand(1, 2, 6, 3), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("F", [1, 6])
def test_noise_start_hands_over_the_first_stage(F):
    """``"noise"``: the main run starts from :func:`noise_first_stage`'s Q and g (``n_src - 1``
    frequency-flat speech slots, one stationary slot), and the last slot keeps its stationary
    PSD (also on a single frequency bin)."""
    x, *_ = sample_jd(M=3, N=3, F=F, T=30, seed=4)
    fit = fit_fastmnmf(x, 3, n_basis=2, n_iter=0, init="noise", n_iter_init=4)
    eps0 = 1e-8 * mean_power(x, (1, 2, 3))
    Q, g, _, lam0 = noise_first_stage(x, 3, 2, 4, eps0, 5e-2, 1e-6)
    torch.testing.assert_close(fit.Q, Q, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(fit.g, g, rtol=1e-12, atol=1e-14)
    assert fit.lam.shape == (1, 3, F, 30) and fit.noise_index.tolist() == [2]
    noise = fit.lam[:, 2]  # [B, F, T]
    assert torch.equal(noise, noise[..., :1].expand_as(noise))  # stationary
    torch.testing.assert_close(noise, lam0[:, 2], rtol=1e-12, atol=0)


@pytest.mark.parametrize("init", ["identity", "noise"])
def test_fit_is_scale_equivariant(init):
    """The floors ``ε = eps_rel · mean |x|²`` and ``δ_f = x_floor · mean_mt |x_mft|²`` (also
    those of the ``"noise"`` first stage) follow the data's power: from PSDs scaled with it,
    a fit of ``c x`` is the fit of ``x`` with ``λ`` and ``ε`` times ``c²``, the same Q and g,
    and L lower by ``2 F T M log c``, also for tiny ``c``."""
    x, _, _, _, lam = sample_jd(M=3, N=3, F=6, T=30, seed=5)
    c = 2.0**-20
    kw = dict(n_iter=4, n_iter_init=4, init=init, x_floor=1e-3)
    ref = fit_fastmnmf(x, 3, source=FreePsd(lam + 0.1), **kw)
    got = fit_fastmnmf(c * x, 3, source=FreePsd(c**2 * (lam + 0.1)), **kw)
    torch.testing.assert_close(got.Q, ref.Q, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(got.g, ref.g, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(got.lam, c**2 * ref.lam, rtol=1e-9, atol=0)
    torch.testing.assert_close(got.eps, c**2 * ref.eps, rtol=1e-9, atol=0)
    shift = 2 * 6 * 30 * 3 * math.log(c)
    torch.testing.assert_close(got.log_likelihood, ref.log_likelihood - shift, rtol=1e-10, atol=0)


@pytest.mark.parametrize("init", ["identity", "noise", "twostep"])
def test_the_random_nmf_start_follows_the_data_power(init):
    """Without given PSDs the NMF start is drawn at the power of the transformed mixture x̃
    (itself a power): a fit of ``c x`` is then the fit of ``x`` with ``λ`` times ``c²``, the
    same Q, g and the same separation, whatever the recording's level."""
    x, *_ = sample_jd(M=3, N=3, F=6, T=30, seed=7)
    c = 2.0**-10
    kw = dict(n_basis=2, n_iter=5, n_iter_init=3, init=init, seed=3)
    ref = fit_fastmnmf(x, 3, **kw)
    got = fit_fastmnmf(c * x, 3, **kw)
    torch.testing.assert_close(got.Q, ref.Q, rtol=1e-7, atol=1e-10)
    torch.testing.assert_close(got.lam, c**2 * ref.lam, rtol=1e-7, atol=0)
    torch.testing.assert_close(got.images(c * x), c * ref.images(x), rtol=1e-7, atol=1e-12)


# --- options as strings built at run time ---------------------------------------------------


@pytest.mark.parametrize("init", ["random", "obs", "noise", "twostep"])
def test_init_given_as_a_runtime_string(init):
    x, *_ = sample_jd(M=3, N=2, F=6, T=20, seed=6)
    name = _runtime(init)
    assert name == init and name is not init
    kw = dict(n_basis=2, n_iter=2, n_iter_init=2)
    got = fit_fastmnmf(x, 2, init=name, **kw)
    ref = fit_fastmnmf(x, 2, init=init, **kw)
    assert torch.equal(got.Q, ref.Q) and torch.equal(got.lam, ref.lam)
    assert torch.equal(got.log_likelihood, ref.log_likelihood)
    assert (got.noise_index is None) == (init != "noise")


def test_nmf_update_given_as_a_runtime_string():
    x, *_ = sample_jd(M=3, N=2, F=6, T=20, seed=7)
    kw = dict(n_basis=2, n_iter=3, init="identity")
    joint = fit_fastmnmf(x, 2, nmf_update="joint", **kw)
    assert joint.source.joint
    got = fit_fastmnmf(x, 2, nmf_update=_runtime("joint"), **kw)
    assert got.source.joint and torch.equal(got.lam, joint.lam)
    sequential = fit_fastmnmf(x, 2, nmf_update=_runtime("sequential"), **kw)
    assert not sequential.source.joint
    assert not torch.allclose(sequential.lam, joint.lam)


# --- jd_iterations --------------------------------------------------------------------------


def _start(B=2, F=5, T=20, seed=8):
    x, _, Q, g, lam = sample_jd(B=B, M=3, N=2, F=F, T=T, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    Q = Q + 0.3 * torch.randn(Q.shape, dtype=Q.dtype, generator=gen)
    xf = _xf(x)
    delta = 1e-3 * mean_power(xf, (2, 3))  # [B, F]
    eps = torch.full((B, F), 1e-2, dtype=torch.float64)
    return xf, Q, g, lam + 0.1, eps, delta


def test_before_step_gets_the_current_point():
    """``before_step(x̃ [B, F, M, T], g, ε)`` runs before every iteration, at the point that
    iteration starts from."""
    xf, Q, g, lam, eps, delta = _start()
    seen = []

    def before(xt, g, eps):
        seen.append((xt.clone(), g.clone(), eps.clone()))

    jd_iterations(xf, FreePsd(lam.clone()), Q, g, eps, delta, 3, before_step=before)
    assert len(seen) == 3
    for k, (xt, g_k, eps_k) in enumerate(seen):
        Q_ref, g_ref, eps_ref, _ = jd_iterations(xf, FreePsd(lam.clone()), Q, g, eps, delta, k)
        assert xt.shape == (2, 5, 3, 20) and g_k.shape == (2, 2, 1, 3) and eps_k.shape == (2, 5)
        torch.testing.assert_close(xt, _transform(xf, Q_ref, delta), rtol=1e-10, atol=0)
        torch.testing.assert_close(g_k, g_ref, rtol=1e-10, atol=0)
        torch.testing.assert_close(eps_k, eps_ref, rtol=1e-10, atol=0)


def test_ll_every_zero_records_the_last_entry_of_a_long_run():
    xf, Q, g, lam, eps, delta = _start(B=1, F=2, T=8, seed=9)
    n_iter = 300
    *_, ll = jd_iterations(xf, FreePsd(lam.clone()), Q, g, eps, delta, n_iter, ll_every=0)
    assert ll.shape == (1, n_iter + 1)
    assert torch.isfinite(ll[:, [0, n_iter]]).all() and torch.isnan(ll[:, 1:n_iter]).all()
    assert ll[0, n_iter] > ll[0, 0]


@pytest.mark.parametrize(("N", "F"), [(1, 4), (2, 2)])
def test_frequency_dependent_statistics_at_small_shapes(N, F):
    """FastMNMF (g ``[B, N, F, M]``) with one source or two bins: the workspace's MU
    statistics, power and gain update equal the reference functions."""
    gen = torch.Generator().manual_seed(10 + N)
    B, M, T = 1, 3, 12
    xf = torch.randn(B, F, M, T, dtype=torch.complex128, generator=gen)
    Q = torch.eye(M, dtype=xf.dtype) + 0.3 * torch.randn(B, F, M, M, dtype=xf.dtype, generator=gen)
    g = torch.rand(B, N, F, M, dtype=torch.float64, generator=gen) + 0.1
    lam = torch.rand(B, N, F, T, dtype=torch.float64, generator=gen) + 0.1
    eps = torch.full((B, F), 1e-2, dtype=torch.float64)
    delta = 1e-3 * mean_power(xf, (2, 3))
    ws = _JdWorkspace(xf, delta)
    xt = ws.transform(Q)  # [B, M, F, T]
    xt_ref = _transform(xf, Q, delta)  # [B, F, M, T]
    y = ws.power(lam, g, eps).transpose(1, 2)
    torch.testing.assert_close(y, jd_model_power(lam, g, eps), rtol=1e-12, atol=0)
    got = ws.stats_fn(xt, g, eps)(lam)
    ref = _stats_fn(xt_ref, g, eps)(lam)
    torch.testing.assert_close(got.num, ref.num, rtol=1e-12, atol=0)
    torch.testing.assert_close(got.den, ref.den, rtol=1e-12, atol=0)
    g_new = ws.update_gains(xt, lam, g, eps)
    torch.testing.assert_close(g_new, update_jd_gains(xt_ref, lam, g, eps), rtol=1e-12, atol=0)


# --- the fragile-bin check of the single-precision IP step ----------------------------------


def test_fragile_bins_closed_form():
    """A bin is fragile when some row's Rayleigh quotient ``1/‖q̂_m‖²`` is below
    ``1e-4 · tr(V_fm)/M`` (so when ``‖q̂_m‖² tr(V_fm)/M > 1e4``), or is NaN."""
    B, F, M = 2, 2, 3
    gen = torch.Generator().manual_seed(11)
    v = torch.rand(B, F, M, dtype=torch.float64, generator=gen) + 0.5  # tr(V_fm)/M
    # ‖q̂_m‖² tr(V_fm)/M in units of 1e4: every bin has its largest row at 0.8 or 1.2
    level = torch.tensor([[[0.8, 0.1, 0.3], [0.2, 1.2, 0.5]], [[0.4, 0.8, 0.8], [1.2, 0.9, 1.2]]])
    level = level.double()
    direction = torch.randn(B, F, M, M, dtype=torch.complex128, generator=gen)
    direction = direction / direction.norm(dim=-1, keepdim=True)
    Q = direction * (1e4 * level / v).sqrt()[..., None]  # rows with ‖q̂_m‖² = 1e4 level / v
    a = torch.randn(B, F, M, M, M, dtype=torch.complex128, generator=gen)
    off = a + a.mH
    off = off - torch.diag_embed(off.diagonal(0, -2, -1))  # Hermitian, zero diagonal
    eye = torch.eye(M, dtype=torch.complex128)
    V = v[..., None, None].to(torch.complex128) * eye + 0.3 * off  # tr(V_fm) = M v_fm
    got = _fragile_bins(Q, V)
    assert got.shape == (B, F)
    assert got.tolist() == [[False, True], [False, True]]
    assert _fragile_bins(1j * Q, V).tolist() == got.tolist()  # only |q| matters
    Q_nan = Q.clone()
    Q_nan[0, 0, 1, 2] = math.nan
    assert _fragile_bins(Q_nan, V).tolist() == [[True, True], [False, True]]


def _barely_resolved(bad, F=8, seed=12):
    """A JD mixture whose bins ``bad`` carry one common signal plus a faint independent one
    per mic (a barely resolved bin), and a point to take the IP step from."""
    x, _, _, g, lam = sample_jd(B=1, M=3, N=2, F=F, T=300, seed=seed)
    gen = torch.Generator().manual_seed(0)
    for f in bad:
        common = x[:, :1, f]
        faint = torch.randn(x[:, :, f].shape, dtype=x.dtype, generator=gen)
        x[:, :, f] = common + 1e-4 * common.abs().mean() * faint
    lam = lam * (1 + 1e3 * torch.rand(lam.shape, dtype=lam.dtype, generator=gen))
    xf = _xf(x)
    delta = 1e-6 * mean_power(xf, (2, 3))
    eps = torch.full((1, F), 1e-3, dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.complex128)
    Q = eye + 0.1 * torch.randn(1, F, 3, 3, dtype=torch.complex128, generator=gen)
    return xf, Q, g, lam, eps, delta


@pytest.mark.parametrize("n_bad", [1, 3])
def test_double_precision_bins_are_those_up_to_the_last_fragile_one(n_bad):
    xf, Q, g, lam, eps, delta = _barely_resolved(range(n_bad))
    ws = _JdWorkspace(xf.to(torch.complex64), delta.float())
    ws.update_q(Q.to(torch.complex64), lam.float(), g.float(), eps.float())
    assert ws._n_exact == n_bad


def test_fragile_check_runs_at_the_first_step_and_every_tenth(monkeypatch):
    """With finite rows the quotients are checked at IP steps 1, 11, 21, ..."""
    xf, Q, g, lam, eps, delta = _barely_resolved([], F=4)
    ws = _JdWorkspace(xf.to(torch.complex64), delta.float())
    checked = []

    def spy(Q, V):
        checked.append(ws._steps)
        return _fragile_bins(Q, V)

    monkeypatch.setattr(fastmnmf, "_fragile_bins", spy)
    Q = Q.to(torch.complex64)
    for _ in range(22):
        Q = ws.update_q(Q, lam.float(), g.float(), eps.float())
        assert torch.isfinite(Q).all()
    assert checked == [1, 11, 21] and ws._n_exact == 0


# --- the defaults, the identity start, the noise slot at other source counts ----------------


def test_fit_defaults_are_8_bases_100_iterations_and_seed_0():
    """``n_basis=8`` (as :func:`~vae_audio.separation.separate` documents), ``n_iter=100`` and
    ``seed=0``: the defaults give bitwise the fit with them spelt out, and each matters."""
    x, *_ = sample_jd(M=2, N=2, F=4, T=12, seed=13)
    default = fit_fastmnmf(x, 2)
    assert default.log_likelihood.shape == (1, 101)  # entry 0 and one per iteration
    explicit = fit_fastmnmf(x, 2, n_basis=8, n_iter=100, seed=0)
    assert torch.equal(default.log_likelihood, explicit.log_likelihood)
    assert torch.equal(default.Q, explicit.Q) and torch.equal(default.lam, explicit.lam)
    short = fit_fastmnmf(x, 2, n_iter=2)
    for change in ({"n_basis": 7}, {"n_basis": 9}, {"seed": 1}, {"seed": -1}):
        other = fit_fastmnmf(x, 2, n_iter=2, **change)
        assert not torch.equal(other.lam, short.lam), change


@pytest.mark.parametrize("M", [3, 5])
def test_identity_start_is_the_identity_and_circular_gains(M):
    """``init="identity"`` (also named by a string built at run time): the run starts from
    ``Q = I`` (``φ_f = 1``: the scale normalisation keeps it) and circular gains (source
    ``m mod N`` dominates channel ``m``, ``g_eps`` elsewhere; with 5 channels the channel
    index wraps twice) normalised to sum 1 over the channels, with no first stage and no
    noise slot."""
    x, *_ = sample_jd(M=M, N=2, F=5, T=16, seed=14)
    circular = torch.full((2, M), 0.1, dtype=torch.float64)  # [N, M]
    circular[0, 0::2], circular[1, 1::2] = 1.0, 1.0
    for init in ("identity", _runtime("identity")):
        fit = fit_fastmnmf(x, 2, n_basis=2, n_iter=0, init=init, g_eps=0.1)
        assert torch.equal(fit.Q, torch.eye(M, dtype=x.dtype).expand(1, 5, M, M))
        want = circular / circular.sum(-1, keepdim=True)
        torch.testing.assert_close(fit.g[0, :, 0], want, rtol=1e-15, atol=0)
        assert fit.noise_index is None


@pytest.mark.parametrize("bad", ["Identity", "circular", "eye"])
def test_initial_jd_refuses_names_that_sort_before_identity(bad):
    """Other spellings and other toolkits' names for the identity start (Sekiguchi's
    ``circular``) are refused, not taken for ``"identity"``."""
    x, *_ = sample_jd(F=4, T=10)
    with pytest.raises(VaeAudioError, match="unknown FastMNMF init"):
        initial_jd(_xf(x), 2, bad, torch.Generator(), 0.05, False)


@pytest.mark.parametrize("n_src", [2, 4])
def test_noise_start_at_other_source_counts(n_src):
    """``"noise"`` with 2 and 4 slots: the main run starts from the Q and g of
    :func:`noise_first_stage` with ``n_src - 1`` speech slots (the last one stationary),
    ``noise_index`` names the last slot, and that slot stays stationary (``λ = w_f``, constant
    over frames) through the main run while its spectrum ``w_f`` is updated."""
    x, *_ = sample_jd(M=3, N=n_src, F=5, T=16, seed=16)
    kw = dict(n_basis=2, init="noise", n_iter_init=3)
    start = fit_fastmnmf(x, n_src, n_iter=0, **kw)
    eps0 = 1e-8 * mean_power(x, (1, 2, 3))
    Q, g, _, lam0 = noise_first_stage(x, n_src, n_src - 1, 3, eps0, 5e-2, 1e-6)
    torch.testing.assert_close(start.Q, Q, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(start.g, g, rtol=1e-12, atol=1e-14)
    assert start.noise_index.tolist() == [n_src - 1]
    fit = fit_fastmnmf(x, n_src, n_iter=3, **kw)
    assert fit.noise_index.tolist() == [n_src - 1]
    noise = fit.lam[:, -1]  # [B, F, T]
    assert torch.equal(noise, noise[..., :1].expand_as(noise))  # stationary
    shape = noise[..., 0] / noise[..., 0].sum(-1, keepdim=True)  # [B, F]: w_f up to scale
    shape0 = lam0[:, -1, :, 0] / lam0[:, -1, :, 0].sum(-1, keepdim=True)
    assert not torch.allclose(shape, shape0, rtol=1e-3, atol=0)  # w_f moved


# --- what callback gets; the workspace at other channel counts -------------------------------


@pytest.mark.parametrize("ll_every", [1, 2])
def test_callback_gets_the_new_entry_of_the_record(ll_every):
    """``callback(it, ll)`` after iteration ``it`` gets entry ``it + 1`` of the returned
    log-likelihood record, NaN where ``ll_every`` skips it."""
    xf, Q, g, lam, eps, delta = _start(B=2, F=3, T=10, seed=15)
    seen = []

    def callback(it, ll):
        seen.append((it, ll.clone()))

    *_, record = jd_iterations(
        xf, FreePsd(lam.clone()), Q, g, eps, delta, 5, callback, ll_every=ll_every
    )
    assert [it for it, _ in seen] == [0, 1, 2, 3, 4]
    for it, ll in seen:
        torch.testing.assert_close(ll, record[:, it + 1], rtol=0, atol=0, equal_nan=True)
    assert bool(torch.isnan(record[:, 1]).all()) == (ll_every == 2)
    assert torch.isfinite(record[:, [0, 2, 4, 5]]).all()
    assert (record[:, [2, 4, 5]].diff(dim=1) > 0).all()  # distinct entries


@pytest.mark.parametrize("frequency_dependent", [False, True])
@pytest.mark.parametrize("M", [1, 2, 4])
def test_workspace_updates_at_other_channel_counts(M, frequency_dependent):
    """At 1, 2 and 4 channels (the other tests use 3), FastMNMF2 and FastMNMF: the workspace's
    ``x̃ = |Q x|² + δ_f ‖q_m‖²``, ``ŷ = Σ_n λ_n g_n + ε_f``, MU statistics
    ``Σ_m g_nm x̃_m/ŷ_m²`` and ``Σ_m g_nm/ŷ_m``, and the gain update
    ``g_nm ← g_nm (Σ_t λ_n x̃_m/ŷ_m² / Σ_t λ_n/ŷ_m)^½`` (sums also over f for FastMNMF2)
    against dense einsums."""
    gen = torch.Generator().manual_seed(17 + M)
    B, N, F, T = 2, 2, 3, 7
    xf = torch.randn(B, F, M, T, dtype=torch.complex128, generator=gen)
    Q = torch.eye(M, dtype=xf.dtype) + 0.3 * torch.randn(B, F, M, M, dtype=xf.dtype, generator=gen)
    g = torch.rand(B, N, F if frequency_dependent else 1, M, dtype=torch.float64, generator=gen)
    g = g + 0.1
    lam = torch.rand(B, N, F, T, dtype=torch.float64, generator=gen) + 0.1
    eps = 0.01 + 0.1 * torch.rand(B, F, dtype=torch.float64, generator=gen)
    delta = 1e-3 * mean_power(xf, (2, 3))  # [B, F]
    ws = _JdWorkspace(xf, delta)
    xt = ws.transform(Q)  # [B, M, F, T]
    rows = Q.abs().square().sum(-1)  # [B, F, M]
    xq = (Q @ xf).abs().square() + (delta[..., None] * rows)[..., None]  # [B, F, M, T]
    torch.testing.assert_close(xt.transpose(1, 2), xq, rtol=1e-12, atol=0)
    gf = g.expand(B, N, F, M)
    y = torch.einsum("bnfm,bnft->bfmt", gf, lam) + eps[..., None, None]  # [B, F, M, T]
    torch.testing.assert_close(ws.power(lam, g, eps).transpose(1, 2), y, rtol=1e-12, atol=0)
    s = ws.stats_fn(xt, g, eps)(lam)
    num = torch.einsum("bnfm,bfmt->bnft", gf, xq / y.square())
    den = torch.einsum("bnfm,bfmt->bnft", gf, y.reciprocal())
    torch.testing.assert_close(s.num, num, rtol=1e-12, atol=0)
    torch.testing.assert_close(s.den, den, rtol=1e-12, atol=0)
    a = torch.einsum("bnft,bfmt->bnfm", lam, xq / y.square())  # [B, N, F, M]
    b = torch.einsum("bnft,bfmt->bnfm", lam, y.reciprocal())
    if not frequency_dependent:
        a, b = a.sum(2, keepdim=True), b.sum(2, keepdim=True)
    got = ws.update_gains(xt, lam, g, eps)
    torch.testing.assert_close(got, g * (a / b).sqrt(), rtol=1e-12, atol=0)


def test_a_later_check_extends_the_double_precision_bins():
    """A later check that finds fragile bins above the ``K`` already in double precision takes
    the double-precision range up to the last of them. Bin 0 is barely resolved from the start
    (``K = 1`` after step 1); bin 1 carries one common signal in the first half of the frames
    and independent ones in the second, so it is resolved until the weights ``1/ŷ`` of the
    second half collapse (``λ`` there raised ``10¹⁰``-fold) at the check of step 11: then
    ``K = 2``."""
    xf, Q, g, lam, eps, delta = _barely_resolved([0], F=4, seed=18)
    T = xf.shape[-1]
    xf[:, 1, :, : T // 2] = xf[:, 1, :1, : T // 2]  # one common signal at every mic
    xf, Q, g = xf.to(torch.complex64), Q.to(torch.complex64), g.float()
    lam, eps = lam.float(), eps.float()
    ws = _JdWorkspace(xf, delta.float())
    for _ in range(10):  # steps 1-10: the check at step 1 only
        assert torch.isfinite(ws.update_q(Q, lam, g, eps)).all()
    assert ws._n_exact == 1
    collapsed = lam.clone()
    collapsed[:, :, 1, T // 2 :] *= 1e10
    ws.update_q(Q, collapsed, g, eps)  # step 11
    assert ws._n_exact == 2
