"""The spatial estimators: EM from the identity (full) and ISS (jointly diagonalisable)."""

from __future__ import annotations

import pytest
import torch

from vae_audio.neural_fca.em import estimate_scm
from vae_audio.neural_fca.iss import (
    decorrelated_power,
    iss_objective,
    iss_sweep,
    iss_update,
    jd_spatial_updates,
    normalise_scale,
    weighted_covariance,
)
from vae_audio.neural_fca.objective import full_nll, jd_nll
from vae_audio.separation.fastmnmf import jd_scm
from vae_audio.separation.fca import em_update_scm
from vae_audio.separation.linalg import stack_real

from .conftest import random_stft, tiny_model


def _naive_em(x, lam, n_iter, eps):
    """The EM estimator written out as in the published code (explicit inverses, no tricks)."""
    B, M, F, T = x.shape
    N = lam.shape[1]
    xt = x.permute(0, 2, 3, 1)  # [B, F, T, M]
    lm = lam.transpose(1, 2).to(x.dtype)  # [B, F, N, T]
    H = torch.eye(M, dtype=x.dtype).expand(B, F, N, M, M)
    eye = eps * torch.eye(M, dtype=x.dtype)
    for _ in range(n_iter):
        Yk = torch.einsum("bfkt,bfkmn->bftkmn", lm, H)  # [B, F, T, N, M, M]
        Yi = torch.linalg.inv(Yk.sum(3) + eye)
        u = torch.einsum("bftmn,bftn->bftm", Yi, xt)
        P = u[..., :, None] * u.conj()[..., None, :]
        Z = Yk + torch.einsum("bftkmn,bftno,bftkop->bftkmp", Yk, P - Yi, Yk)
        H = torch.einsum("bfkt,bftkmn->bfkmn", 1 / lm, Z) / T
    return H.transpose(1, 2)  # [B, N, F, M, M]


@pytest.mark.parametrize("n_mics", [2, 4])
def test_model_em_matches_fca_update_and_naive_estimator(n_mics):
    model = tiny_model(n_mics).double()
    x, _ = model.normalise(random_stft(2, n_mics, dtype=torch.complex128))
    with torch.no_grad():
        out = model(x, sample=False)  # H from the model's 3 EM iterations
    H = torch.eye(n_mics, dtype=x.dtype).expand(2, 3, 9, n_mics, n_mics)
    for _ in range(3):
        H = em_update_scm(x, out.lam, H, model.config.eps)
    torch.testing.assert_close(out.H, H, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(
        out.H, _naive_em(x, out.lam, 3, model.config.eps), rtol=1e-7, atol=1e-8
    )


def test_em_iterations_raise_the_likelihood():
    x = random_stft(2, 3, dtype=torch.complex128)
    lam = torch.rand(2, 3, 9, 24, dtype=torch.float64) + 0.1
    nll = [full_nll(x, lam, estimate_scm(x, lam, k, 1e-6), 1e-6) for k in range(5)]
    steps = torch.stack(nll).diff(dim=0)  # [4, B]
    assert bool((steps <= 1e-9).all())  # EM is monotone
    assert bool((nll[-1] < nll[0] - 1e-3).all())


def test_gradients_through_em_are_exact():
    """gradcheck of the loss after 2 EM iterations with respect to the PSDs."""
    x = random_stft(1, 2, F=3, T=6, dtype=torch.complex128)
    lam = (torch.rand(1, 2, 3, 6, dtype=torch.float64) + 0.2).requires_grad_(True)

    def loss(lam):
        return full_nll(x, lam, estimate_scm(x, lam, 2, 1e-3), 1e-3)

    assert torch.autograd.gradcheck(loss, (lam,), eps=1e-6, atol=1e-5)


def _random_psd_stack(B, F, M, seed):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(B, F, M, M, M, 2, generator=g, dtype=torch.float64)
    A = torch.view_as_complex(A)
    return A @ A.mH + 0.1 * torch.eye(M, dtype=A.dtype)  # [B, F, M, M, M]


@pytest.mark.parametrize("n_mics", [2, 3, 5])
def test_iss_sweeps_lower_the_auxiliary_function(n_mics):
    V = _random_psd_stack(2, 3, n_mics, seed=n_mics)
    g = torch.Generator().manual_seed(1)
    Q = torch.view_as_complex(
        torch.randn(2, 3, n_mics, n_mics, 2, generator=g, dtype=torch.float64)
    )
    values = [iss_objective(Q, V)]
    for _ in range(4):
        Q = iss_sweep(Q, V)
        values.append(iss_objective(Q, V))
    assert bool((torch.stack(values).diff(dim=0) <= 1e-9).all())
    assert bool((values[-1] < values[0] - 1e-3).all())


def test_iss_with_a_shared_covariance_whitens_it():
    """With V_m = V for every m, the minimisers of J satisfy Q V Qᴴ = I (closed form)."""
    V1 = _random_psd_stack(1, 2, 3, seed=5)[:, :, 0]  # [B, F, M, M]
    V = V1[:, :, None].expand(1, 2, 3, 3, 3)
    Q = torch.eye(3, dtype=V.dtype).expand(1, 2, 3, 3)
    for _ in range(60):
        Q = iss_sweep(Q, V)
    torch.testing.assert_close(
        Q @ V1 @ Q.mH, torch.eye(3, dtype=V.dtype).expand(1, 2, 3, 3), atol=1e-8, rtol=0
    )


def test_iss_update_is_monotone_on_single_precision_data_with_a_wide_power_range():
    """Nearly coherent mics (a 5-cm array at low frequencies) and weights ``1/ŷ`` over 8
    decades, complex64 data (where a single-precision ``V`` can lose positive definiteness):
    the double-precision update lowers the auxiliary function at every sweep."""
    g = torch.Generator().manual_seed(3)
    B, F, M, T = 1, 4, 4, 200
    y = 10 ** (torch.rand(B, F, M, T, generator=g, dtype=torch.float64) * 8 - 5)  # ŷ
    noise = torch.view_as_complex(torch.randn(B, F, M, T, 2, generator=g, dtype=torch.float64))
    A = torch.view_as_complex(torch.randn(B, F, M, M, 2, generator=g, dtype=torch.float64))
    A = 1 + 1e-3 * A  # condition number ~1e4
    x = A @ (y.sqrt() * noise / 2**0.5)  # [B, F, M, T]
    V64 = weighted_covariance(x, 1 / y)
    Q0 = torch.eye(M, dtype=torch.complex64).expand(B, F, M, M)

    def J(Q):
        return float(iss_objective(Q.to(torch.complex128), V64).sum())

    Q, values = Q0, [J(Q0)]
    for _ in range(6):
        Q = iss_update(x.to(torch.complex64), (1 / y).float(), Q)
        values.append(J(Q))
    assert Q.dtype == torch.complex64
    assert all(b <= a + 1e-3 * abs(a) for a, b in zip(values, values[1:], strict=False))
    assert values[-1] < values[0] - 50.0


def test_weighted_covariance_is_the_weighted_outer_product_sum():
    x = random_stft(1, 3, F=2, T=5, dtype=torch.complex128).transpose(1, 2)  # [B, F, M, T]
    r = torch.rand(1, 2, 3, 5, dtype=torch.float64)
    V = weighted_covariance(x, r, load=0.5)
    expect = torch.einsum("bfkt,bfmt,bfnt->bfkmn", r.to(x.dtype), x, x.conj()) / 5
    torch.testing.assert_close(V, expect + 0.5 * torch.eye(3, dtype=x.dtype))


def _jd_draw(B: int, N: int, F: int, M: int, T: int, seed: int):
    """A mixture ``x [B, M, F, T]``, diagonalisers ``Q``, gains ``[B, N, F, M]``, PSDs
    ``[B, N, F, T]`` and the decorrelated power ``x̃ [B, F, M, T]``, in float64."""
    x = random_stft(B, M, F=F, T=T, dtype=torch.complex128)
    g0 = torch.Generator().manual_seed(seed)
    Q = torch.view_as_complex(torch.randn(B, F, M, M, 2, generator=g0, dtype=torch.float64))
    gains = torch.rand(B, N, F, M, generator=g0, dtype=torch.float64) + 0.1
    lam = torch.rand(B, N, F, T, generator=g0, dtype=torch.float64) + 0.1
    return x, Q, gains, lam, decorrelated_power(x.transpose(1, 2), Q)


def test_jd_likelihood_equals_full_rank_likelihood_of_its_scms():
    """Y = Q⁻¹ diag(ŷ) Q⁻ᴴ: the JD NLL must equal the full-rank NLL with H_n = Q⁻¹ diag(g_n) Q⁻ᴴ
    and ε I replaced by ε Q⁻¹ Q⁻ᴴ (here ε = 0 up to 1e-12)."""
    x, Q, gains, lam, xt = _jd_draw(B=2, N=3, F=4, M=3, T=7, seed=3)
    got = jd_nll(xt, lam, gains, Q, 1e-12)
    expect = full_nll(x, lam, jd_scm(Q, gains), 0.0)
    torch.testing.assert_close(got, expect, rtol=1e-8, atol=1e-8)


def test_per_item_floors_apply_to_their_own_item():
    """``eps [B]`` (one floor per mixture, as inference passes it) gives each item the NLL it
    has with its floor as a scalar, for the JD and the full-rank model alike."""
    B = 3
    x, Q, gains, lam, xt = _jd_draw(B=B, N=2, F=4, M=3, T=6, seed=5)
    eps = torch.tensor([0.5, 2.0, 8.0], dtype=torch.float64)
    H = jd_scm(Q, gains)
    got_jd, got_full = jd_nll(xt, lam, gains, Q, eps), full_nll(x, lam, H, eps)
    for b in range(B):
        one = slice(b, b + 1)
        alone = jd_nll(xt[one], lam[one], gains[one], Q[one], float(eps[b]))
        torch.testing.assert_close(got_jd[b : b + 1], alone)
        alone = full_nll(x[one], lam[one], H[one], float(eps[b]))
        torch.testing.assert_close(got_full[b : b + 1], alone)
    assert not torch.allclose(got_jd, jd_nll(xt, lam, gains, Q, 2.0))


def test_jd_spatial_updates_never_raise_the_nll_and_carry_gradients():
    from vae_audio.neural_fca.iss import jd_spatial_updates

    model = tiny_model(3, "jd", jd_iterations=3).double()
    x, _ = model.normalise(random_stft(2, 3, dtype=torch.complex128))
    xf = x.transpose(1, 2)
    enc = model.encoder(x)
    lam = model.psd(enc.posterior.mean, enc.log_gain).detach()
    Q, g = enc.Q.detach(), enc.g.detach()
    values = [float(jd_nll(decorrelated_power(xf, Q), lam, g, Q, 1e-6).sum())]
    for _ in range(5):
        Q, g, _ = jd_spatial_updates(xf, lam, Q, g, 1e-6, 1)
        values.append(float(jd_nll(decorrelated_power(xf, Q), lam, g, Q, 1e-6).sum()))
    assert all(b <= a + 1e-9 * abs(a) for a, b in zip(values, values[1:], strict=False))
    assert values[-1] < values[0] - 1e-3
    out = model(x)  # inside the forward pass: gradients reach the encoder's weights
    assert torch.isfinite(jd_nll(out.xt, out.lam, out.g, out.Q, 1e-6)).all()
    jd_nll(out.xt, out.lam, out.g, out.Q, 1e-6).sum().backward()
    assert float(model.encoder.head.z.weight.grad.abs().sum()) > 0


def test_iss_update_is_one_sweep_on_the_plain_weighted_covariance():
    """Defaults: one sweep, no loading, and the floor only guards a vanishing ``q V qᴴ``."""
    x = random_stft(2, 3, F=5, T=9, dtype=torch.complex128).transpose(1, 2)  # [B, F, M, T]
    g0 = torch.Generator().manual_seed(7)
    r = torch.rand(2, 5, 3, 9, generator=g0, dtype=torch.float64) + 0.1
    Q = torch.eye(3, dtype=torch.complex128).expand(2, 5, 3, 3).clone()
    V = weighted_covariance(x, r)
    plain = torch.einsum("bfkt,bfmt,bfnt->bfkmn", r.to(x.dtype), x, x.conj()) / 9
    torch.testing.assert_close(V, plain)
    torch.testing.assert_close(iss_update(x, r, Q), iss_sweep(Q, V))
    assert not torch.allclose(iss_update(x, r, Q), iss_update(x, r, Q, sweeps=2))
    # a decorrelated channel with no power at all: q V qᴴ = 0 is floored at 1e-6, not below
    V0 = V.clone()
    V0[:, :, 0] = 0
    out = iss_sweep(Q, V0)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[:, :, 0, 0].real, torch.full((2, 5), 1e3, dtype=torch.float64))


def test_normalise_scale_gives_unit_mean_power_of_the_new_diagonaliser():
    x = 1e-3 * random_stft(2, 3, F=4, T=6, dtype=torch.complex128).transpose(1, 2)  # quiet
    Q = torch.view_as_complex(torch.randn(2, 4, 3, 3, 2, dtype=torch.float64))
    Qn, xt = normalise_scale(x, Q)
    torch.testing.assert_close(xt, decorrelated_power(x, Qn))
    torch.testing.assert_close(xt.mean((1, 2, 3)), torch.ones(2, dtype=torch.float64))
    Qz, xz = normalise_scale(torch.zeros_like(x), Q)  # silence: guarded, not divided by 0
    assert torch.isfinite(torch.view_as_real(Qz)).all() and not xz.any()


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_decorrelated_power_is_the_squared_modulus_of_q_x(dtype):
    """The real product on ``[Re x; Im x]`` gives ``|Q x|²`` of the complex product, with or
    without a shared ``stack_real(x)``, and the same gradient with respect to ``Q``."""
    x = random_stft(2, 3, F=4, T=7, dtype=dtype).transpose(1, 2)  # [B, F, M, T]
    g0 = torch.Generator().manual_seed(11)
    Q = torch.view_as_complex(torch.randn(2, 4, 3, 3, 2, generator=g0, dtype=x.real.dtype))
    expect = (Q @ x).abs().square()  # [B, F, M, T]
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.complex64 else {}
    torch.testing.assert_close(decorrelated_power(x, Q), expect, **tol)
    torch.testing.assert_close(decorrelated_power(x, Q, stack_real(x)), expect, **tol)
    w = torch.rand(expect.shape, generator=g0, dtype=expect.dtype)  # a weighted sum's gradient
    Qa, Qb = Q.clone().requires_grad_(True), Q.clone().requires_grad_(True)
    (decorrelated_power(x, Qa) * w).sum().backward()
    ((Qb @ x).abs().square() * w).sum().backward()
    torch.testing.assert_close(Qa.grad, Qb.grad, **tol)


def test_iss_objective_matches_its_closed_form_for_a_scaled_identity():
    """``J(2I) = Σ_m 4 V_m[m, m] − 2 M log 2`` per frequency."""
    x = random_stft(1, 3, F=4, T=8, dtype=torch.complex128).transpose(1, 2)
    r = torch.rand(1, 4, 3, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    V = weighted_covariance(x, r + 0.1)
    Q = 2 * torch.eye(3, dtype=torch.complex128).expand(1, 4, 3, 3)
    diag = torch.diagonal(torch.diagonal(V, dim1=-2, dim2=-1), dim1=-2, dim2=-1).real  # [1, F, M]
    expect = 4 * diag.sum(-1) - 2 * 3 * torch.log(torch.tensor(2.0, dtype=torch.float64))
    torch.testing.assert_close(iss_objective(Q, V), expect)


def _random_q(B, F, M, seed):
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(B, F, M, M, 2, generator=gen, dtype=torch.float64)
    return torch.eye(M, dtype=torch.complex128) + 0.3 * torch.view_as_complex(noise)


def test_a_sweep_in_a_given_order_is_the_plain_sweep_of_the_permuted_channels():
    """``iss_sweep(Q, V, order)`` visits row ``order[i]`` at step ``i``: permuting the rows of
    ``Q`` and the channels of ``V`` by ``order``, sweeping ``0..M-1`` and permuting back gives
    the same ``Q`` (a different order per batch item and bin), and the order matters."""
    B, F, M, T = 2, 3, 4, 12
    x = random_stft(B, M, F=F, T=T, dtype=torch.complex128).transpose(1, 2)  # [B, F, M, T]
    gen = torch.Generator().manual_seed(3)
    V = weighted_covariance(x, torch.rand(B, F, M, T, generator=gen, dtype=torch.float64) + 0.1)
    Q = _random_q(B, F, M, seed=4)
    order = torch.stack([torch.randperm(M, generator=gen) for _ in range(B * F)]).view(B, F, M)
    got = iss_sweep(Q, V, order=order)
    for b in range(B):
        for f in range(F):
            p = order[b, f]
            plain = iss_sweep(Q[b, f][p][None, None], V[b, f][p][None, None])[0, 0]
            want = torch.empty_like(plain)
            want[p] = plain
            torch.testing.assert_close(got[b, f], want, rtol=1e-12, atol=1e-12)
    reverse = order.flip(-1)
    assert not torch.allclose(iss_sweep(Q, V, order=reverse), got, rtol=1e-6, atol=0)


def test_power_order_sorts_the_channels_by_mean_power_ties_by_index():
    """``power_order(x̃ [B, F, M, T])``: per item and bin, the channels by decreasing
    ``mean_t x̃``; equal means keep the lower index first."""
    from vae_audio.neural_fca.iss import power_order

    gen = torch.Generator().manual_seed(5)
    xt = torch.rand(2, 3, 4, 5, generator=gen, dtype=torch.float64)
    xt[1, 2, 3] = xt[1, 2, 1].flip(-1)  # same mean, channels 1 and 3
    got = power_order(xt)
    assert got.shape == (2, 3, 4)
    for b in range(2):
        for f in range(3):
            means = xt[b, f].mean(-1).tolist()
            want = sorted(range(4), key=lambda m: (-round(means[m], 12), m))
            assert got[b, f].tolist() == want, (b, f)
    ranks = got[1, 2].tolist()
    assert ranks.index(1) < ranks.index(3)


def test_ordered_spatial_updates_sweep_by_the_current_power_order():
    """``jd_spatial_updates(..., ordered=True)``: every iteration sweeps the rows of ``Q`` in
    :func:`power_order` of the current decorrelated power, then updates the gains; the
    default (``ordered=False``) sweeps ``0..M-1``, which gives another ``Q``."""
    from vae_audio.neural_fca.iss import jd_spatial_updates, power_order
    from vae_audio.separation.fastmnmf import jd_model_power, update_jd_gains

    B, F, M, T, N = 1, 4, 3, 16, 2
    x = random_stft(B, M, F=F, T=T, dtype=torch.complex128).transpose(1, 2)  # [B, F, M, T]
    gen = torch.Generator().manual_seed(6)
    lam = torch.rand(B, N, F, T, generator=gen, dtype=torch.float64) + 0.1
    g = torch.rand(B, N, F, M, generator=gen, dtype=torch.float64) + 0.1
    Q = _random_q(B, F, M, seed=7)
    floor = torch.full((B, F), 1e-6, dtype=torch.float64)
    Qw, gw = Q, g
    for _ in range(2):
        order = power_order(decorrelated_power(x, Qw))
        Qw = iss_update(x, jd_model_power(lam, gw, floor).reciprocal(), Qw, order=order)
        gw = update_jd_gains(decorrelated_power(x, Qw), lam, gw, floor)
    Qo, go, _ = jd_spatial_updates(x, lam, Q, g, 1e-6, 2, ordered=True)
    torch.testing.assert_close(Qo, Qw, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(go, gw, rtol=1e-10, atol=1e-12)
    Qd, gd, _ = jd_spatial_updates(x, lam, Q, g, 1e-6, 2)
    Qf, gf, _ = jd_spatial_updates(x, lam, Q, g, 1e-6, 2, ordered=False)
    assert torch.equal(Qd, Qf) and torch.equal(gd, gf)
    assert not torch.allclose(Qd, Qo, rtol=1e-6, atol=0)


@pytest.mark.parametrize("ordered", [False, True])
def test_spatial_updates_in_frequency_blocks_are_the_updates_on_all_bins(monkeypatch, ordered):
    """The JD updates act on each frequency alone and, unless the caller shares ``xx``, run
    on blocks of bins: any block size gives the same ``Q``, ``g``, ``x̃`` and gradients as
    one block of all bins, and as the updates with a shared ``xx`` (all bins at once)."""
    import vae_audio.neural_fca.iss as iss_module
    from vae_audio.separation.linalg import frequency_blocks, outer_hermitian

    B, F, M, T, N = 2, 7, 3, 12, 2
    x = random_stft(B, M, F=F, T=T, dtype=torch.complex128).transpose(1, 2)  # [B, F, M, T]
    gen = torch.Generator().manual_seed(11)
    lam = (torch.rand(B, N, F, T, generator=gen, dtype=torch.float64) + 0.1).requires_grad_()
    g = torch.rand(B, N, F, M, generator=gen, dtype=torch.float64) + 0.1
    Q = _random_q(B, F, M, seed=12)

    def run(xx=None):
        Qn, gn, xt = jd_spatial_updates(x, lam, Q, g, 1e-6, 3, xx=xx, ordered=ordered)
        (grad,) = torch.autograd.grad(xt.log().sum() + gn.sum() + Qn.abs().sum(), lam)
        return Qn.detach(), gn.detach(), xt.detach(), grad

    whole = run()
    monkeypatch.setattr(iss_module, "_JD_BLOCK", 2 * B * T * M * M)  # 2 bins a block: 4 blocks
    assert len(frequency_blocks(F, B * T * M * M, iss_module._JD_BLOCK)) == 4
    for got in (run(), run(outer_hermitian(x))):
        for a, b in zip(got, whole, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
