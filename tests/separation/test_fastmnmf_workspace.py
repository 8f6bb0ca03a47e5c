"""The fast FastMNMF iteration (``_JdWorkspace``, ``jd_iterations``) against reference
computations: the packed weighted covariances against an einsum, every workspace step against
the reference functions and an independent IP, whole fits against a loop of the reference
functions, the ``ll_every`` record, and the double-precision IP step at barely resolved
bins."""

from __future__ import annotations

import pytest
import torch

from vae_audio.errors import VaeAudioError
from vae_audio.separation import fastmnmf
from vae_audio.separation.fastmnmf import (
    _JdWorkspace,
    _normalize,
    _stats_fn,
    _transform,
    _update_q_ip,
    fit_fastmnmf,
    jd_iterations,
    jd_log_likelihood,
    jd_model_power,
    update_jd_gains,
)
from vae_audio.separation.linalg import (
    mean_power,
    outer_hermitian,
    outer_real,
    weighted_covariances,
    weighted_covariances_packed,
)
from vae_audio.separation.source_model import FreePsd, NmfPsd

from .conftest import sample_jd


@pytest.mark.parametrize("M", [2, 3, 4, 6])
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_packed_covariances_match_einsum(M, dtype):
    gen = torch.Generator().manual_seed(M)
    x = torch.randn(2, M, 5, 40, dtype=dtype, generator=gen).transpose(1, 2)  # [B, F, M, T] view
    w = torch.rand(2, 5, 3, 40, dtype=x.real.dtype, generator=gen)  # [B, F, K, T]
    ref = torch.einsum("bfkt,bfit,bfjt->bfkij", w.to(dtype), x, x.conj()) / 40
    got = weighted_covariances_packed(outer_hermitian(x), w)  # [B, F, K, M, M]
    tol = 1e-5 if dtype == torch.complex64 else 1e-12
    scale = ref.abs().max()
    assert (got - ref).abs().max() <= tol * scale
    assert (got - weighted_covariances(outer_real(x), w)).abs().max() <= tol * scale
    assert outer_hermitian(x).shape == (2, 5, 40, M * M)


def test_outer_hermitian_in_blocks_and_differentiable(monkeypatch):
    """Rows filled block by block give the same coordinates as one block, and the packed
    coordinates carry gradients to the mixture (gradcheck)."""
    import vae_audio.separation.linalg as linalg

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(7, 3, 20, dtype=torch.complex128, generator=gen)  # [F, M, T]
    whole = outer_hermitian(x)
    monkeypatch.setattr(linalg, "_OUTER_BLOCK", 2 * 9 * 20)  # 2 rows per block, 4 blocks
    assert torch.equal(outer_hermitian(x), whole)
    xs = x[:3, :, :6].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(outer_hermitian, (xs,))


def _problem(B, frequency_dependent, seed=0):
    """A JD mixture, a random non-trivial point (Q, g, λ, ε) and the observation floor."""
    x, _, Q, g, lam = sample_jd(B=B, M=3, N=2, F=10, T=50, seed=seed)
    gen = torch.Generator().manual_seed(seed + 10)
    Q = Q + 0.3 * torch.randn(Q.shape, dtype=Q.dtype, generator=gen)  # not the true Q
    if frequency_dependent:
        g = g * torch.rand(B, 2, 10, 3, dtype=g.dtype, generator=gen) + 0.05  # [B, N, F, M]
    lam = lam * torch.rand(lam.shape, dtype=lam.dtype, generator=gen) + 0.1
    xf = x.transpose(1, 2).contiguous()  # [B, F, M, T]
    delta = 1e-3 * mean_power(xf, (2, 3))  # [B, F]
    eps = torch.full((B, 10), 1e-2, dtype=torch.float64)
    return xf, Q, g, lam, eps, delta


def _reference_ip(xf, Q, y, delta):
    """Iterative projection written out: ``V_fm`` by an einsum, rows by ``torch.linalg.solve``."""
    B, F, M, T = xf.shape
    V = torch.einsum("bfmt,bfit,bfjt->bfmij", y.reciprocal().to(xf.dtype), xf, xf.conj()) / T
    load = delta[..., None] * y.reciprocal().mean(-1)  # [B, F, M]
    V = V + load[..., None, None] * torch.eye(M, dtype=xf.dtype)
    Q = Q.clone()
    for m in range(M):
        e = torch.zeros(B, F, M, 1, dtype=xf.dtype)
        e[..., m, 0] = 1
        q = torch.linalg.solve(Q @ V[:, :, m], e)[..., 0]  # [B, F, M]
        norm = torch.einsum("bfi,bfij,bfj->bf", q.conj(), V[:, :, m], q).real
        Q[:, :, m] = (q / norm.sqrt()[..., None]).conj()
    return Q


@pytest.mark.parametrize("B", [1, 2])
@pytest.mark.parametrize("frequency_dependent", [False, True])
def test_workspace_steps_match_reference(B, frequency_dependent):
    xf, Q, g, lam, eps, delta = _problem(B, frequency_dependent)
    ws = _JdWorkspace(xf, delta)
    xt_ref = _transform(xf, Q, delta)  # [B, F, M, T]
    y_ref = jd_model_power(lam, g, eps)  # [B, F, M, T]
    xt = ws.transform(Q)  # [B, M, F, T]
    torch.testing.assert_close(xt.transpose(1, 2), xt_ref, rtol=1e-12, atol=0)
    torch.testing.assert_close(ws.power(lam, g, eps).transpose(1, 2), y_ref, rtol=1e-12, atol=0)

    ll = ws.point(xt, Q, g, y=ws.power(lam, g, eps), record=True)
    torch.testing.assert_close(ll, jd_log_likelihood(xt_ref, y_ref, Q), rtol=1e-12, atol=0)

    stats = ws.stats_fn(xt, g, eps)
    first = stats(lam)  # answered from the buffer that point() filled
    lam2 = lam * 1.5 + 0.2
    second = stats(lam2)  # evaluated afresh
    for got, at in ((first, lam), (second, lam2)):
        ref = _stats_fn(xt_ref, g, eps)(at)
        torch.testing.assert_close(got.num, ref.num, rtol=1e-12, atol=0)
        torch.testing.assert_close(got.den, ref.den, rtol=1e-12, atol=0)

    g_new = ws.update_gains(xt, lam, g, eps)
    torch.testing.assert_close(g_new, update_jd_gains(xt_ref, lam, g, eps), rtol=1e-12, atol=0)

    Q_new = ws.update_q(Q, lam, g_new, eps)
    Q_ref = _reference_ip(xf, Q, jd_model_power(lam, g_new, eps), delta)
    torch.testing.assert_close(Q_new, Q_ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("B", [1, 2])
def test_likelihood_after_normalisation_reuses_ip_power(B):
    """After the IP step and an exact scale normalisation, ``point(phi=...)`` (ŷ of the IP step
    over φ_f) equals the likelihood evaluated from scratch at the normalised parameters."""
    xf, Q, g, lam, eps, delta = _problem(B, False, seed=3)
    source = FreePsd(lam.clone())  # rescales exactly
    ws = _JdWorkspace(xf, delta)
    Q = ws.update_q(Q, source.psd(), g, eps)
    Q, g, eps, phi = _normalize(Q, g, source, eps)
    xt = ws.transform(Q)
    got = ws.point(xt, Q, g, phi=phi, record=True)
    ref = jd_log_likelihood(_transform(xf, Q, delta), jd_model_power(source.psd(), g, eps), Q)
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=0)


def _reference_fit(xf, source, Q, g, eps, delta, n_iter):
    """FastMNMF iterations as a plain loop of the reference functions (the module docstring's
    order: NMF, g, IP, normalisation)."""
    xx = outer_real(xf)
    Q, g, eps, _ = _normalize(Q, g, source, eps)
    xt = _transform(xf, Q, delta)
    history = [jd_log_likelihood(xt, jd_model_power(source.psd(), g, eps), Q)]
    for _ in range(n_iter):
        source.mm_update(_stats_fn(xt, g, eps))
        lam = source.psd()
        g = update_jd_gains(xt, lam, g, eps)
        Q = _update_q_ip(xx, Q, jd_model_power(lam, g, eps), delta)
        Q, g, eps, _ = _normalize(Q, g, source, eps)
        xt = _transform(xf, Q, delta)
        history.append(jd_log_likelihood(xt, jd_model_power(source.psd(), g, eps), Q))
    return Q, g, torch.stack(history, 1)


class _Opaque:
    """A source model the fast loop does not know to rescale exactly (delegates to NMF)."""

    def __init__(self, inner):
        self.inner = inner

    def psd(self):
        return self.inner.psd()

    def mm_update(self, stats):
        self.inner.mm_update(stats)

    def em_update(self, power):
        self.inner.em_update(power)

    def rescale(self, c):
        self.inner.rescale(c)


@pytest.mark.parametrize("frequency_dependent", [False, True])
@pytest.mark.parametrize("opaque", [False, True])
@pytest.mark.parametrize("joint", [False, True])
def test_jd_iterations_match_reference_loop(frequency_dependent, opaque, joint):
    """The whole fast loop (either way of getting ŷ after the normalisation) reproduces the
    reference loop in double precision."""
    xf, Q, g, _, eps, delta = _problem(2, frequency_dependent, seed=5)
    gen = torch.Generator().manual_seed(7)
    W = torch.rand(2, 2, 10, 3, dtype=torch.float64, generator=gen)
    H = torch.rand(2, 2, 3, 50, dtype=torch.float64, generator=gen)
    ref_source = NmfPsd(W.clone(), H.clone(), joint=joint)
    Q_ref, g_ref, ll_ref = _reference_fit(xf, ref_source, Q, g, eps, delta, 12)
    source = NmfPsd(W.clone(), H.clone(), joint=joint)
    Q_got, g_got, _, ll = jd_iterations(
        xf, _Opaque(source) if opaque else source, Q, g, eps, delta, 12
    )
    torch.testing.assert_close(ll, ll_ref, rtol=1e-10, atol=0)
    torch.testing.assert_close(Q_got, Q_ref, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(g_got, g_ref, rtol=1e-8, atol=1e-12)
    torch.testing.assert_close(source.psd(), ref_source.psd(), rtol=1e-8, atol=1e-12)


def test_nmf_with_floor_recomputes_the_power():
    """An NMF with a floor does not rescale exactly (``c W H + floor``), so after the
    normalisation ŷ is recomputed from the PSDs; the record equals the reference loop's."""
    xf, Q, g, _, eps, delta = _problem(1, False, seed=6)
    gen = torch.Generator().manual_seed(8)
    W = torch.rand(1, 2, 10, 3, dtype=torch.float64, generator=gen)
    H = torch.rand(1, 2, 3, 50, dtype=torch.float64, generator=gen)
    _, _, ll_ref = _reference_fit(xf, NmfPsd(W.clone(), H.clone(), 0.05), Q, g, eps, delta, 8)
    _, _, _, ll = jd_iterations(xf, NmfPsd(W.clone(), H.clone(), 0.05), Q, g, eps, delta, 8)
    torch.testing.assert_close(ll, ll_ref, rtol=1e-10, atol=0)


@pytest.mark.parametrize("ll_every", [0, 3])
def test_ll_every_thins_the_record_only(ll_every):
    x, *_ = sample_jd(M=3, N=2, F=8, T=60, seed=9)
    full = fit_fastmnmf(x, 2, n_basis=3, n_iter=10, n_iter_init=3)
    thin = fit_fastmnmf(x, 2, n_basis=3, n_iter=10, n_iter_init=3, ll_every=ll_every)
    kept = [0, 10] if ll_every == 0 else [0, 3, 6, 9, 10]
    mask = torch.zeros(11, dtype=torch.bool)
    mask[kept] = True
    assert torch.isnan(thin.log_likelihood[:, ~mask]).all()
    assert torch.equal(thin.log_likelihood[:, mask], full.log_likelihood[:, mask])
    assert torch.equal(thin.Q, full.Q) and torch.equal(thin.lam, full.lam)


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_ll_every_must_be_a_count(bad):
    x, *_ = sample_jd(F=4, T=10)
    with pytest.raises(VaeAudioError, match="ll_every"):
        fit_fastmnmf(x, 2, n_iter=2, init="identity", ll_every=bad)


def test_barely_resolved_bins_take_the_ip_step_in_double(monkeypatch):
    """Bins where every mic sees nearly the same signal (DC of a small array): single-precision
    ``V`` is too coarse for the IP step there (errors of 0.8-3 % in Q measured), so the step is
    redone from double-precision ``V`` at those bins and only there."""
    x, _, _, g, lam = sample_jd(B=1, M=3, N=2, F=8, T=300, seed=12)
    gen = torch.Generator().manual_seed(0)
    for f in range(2):  # one common signal plus a faint independent one per mic
        common = x[:, :1, f]
        faint = torch.randn(x[:, :, f].shape, dtype=x.dtype, generator=gen)
        x[:, :, f] = common + 1e-4 * common.abs().mean() * faint
    lam = lam * (1 + 1e3 * torch.rand(lam.shape, dtype=lam.dtype, generator=gen))
    xf = x.transpose(1, 2).contiguous()  # [B, F, M, T]
    delta = 1e-6 * mean_power(xf, (2, 3))
    eps = torch.full((1, 8), 1e-3, dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.complex128)
    Q = eye + 0.1 * torch.randn(1, 8, 3, 3, dtype=torch.complex128, generator=gen)

    def step(xf):
        ws = _JdWorkspace(xf, delta.to(xf.real.dtype))
        real = xf.real.dtype
        Q_new = ws.update_q(Q.to(xf.dtype), lam.to(real), g.to(real), eps.to(real))
        return Q_new.to(torch.complex128), ws._n_exact

    ref, _ = step(xf)  # double precision throughout
    torch.testing.assert_close(ref, _reference_ip(xf, Q, jd_model_power(lam, g, eps), delta))

    def error(Q_new):  # [F]: max relative error per bin
        return ((Q_new - ref).abs().amax((-2, -1)) / ref.abs().amax((-2, -1)))[0]

    got, n_exact = step(xf.to(torch.complex64))
    assert n_exact == 2
    assert (error(got) < 2e-4).all(), error(got)
    assert (error(got)[:2] < 1e-5).all()
    monkeypatch.setattr(fastmnmf, "_FRAGILE", 0.0)  # never fall back: single precision only
    coarse, n_exact = step(xf.to(torch.complex64))
    assert n_exact == 0 and (error(coarse)[:2] > 1e-3).all(), error(coarse)
