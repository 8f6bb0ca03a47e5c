"""FCA in detail: one EM and one MU iteration of ``fit_fca`` against dense computations of
the paper formulas (Duong et al. 2010; Sawada et al. 2013), the log-likelihood, the scale
normalisation, the starts, the defaults and the argument errors."""

from __future__ import annotations

import math

import pytest
import torch

from vae_audio.errors import VaeAudioError
from vae_audio.separation.fastmnmf import fit_fastmnmf, jd_scm
from vae_audio.separation.fca import (
    FcaResult,
    em_update_scm,
    fca_log_likelihood,
    fit_fca,
    fit_free_fca,
    initial_scm,
    normalize_scm,
)
from vae_audio.separation.source_model import FreePsd, NmfPsd
from vae_audio.separation.wiener import wiener_full_rank

from .conftest import random_psd, sample_fca

_REAL = {torch.complex128: torch.float64, torch.complex64: torch.float32}


# --- dense references (no code of the package) ---------------------------------------------


def _dense_covariance(lam, H, eps):
    """``Y_ft = Σ_n λ_nft H_nf + ε I``: ``lam [B, N, F, T]``, ``H [B, N, F, M, M]``, ``eps``
    scalar or ``[B]`` -> ``[B, F, T, M, M]``."""
    M = H.shape[-1]
    Y = (lam[..., None, None].to(H.dtype) * H[:, :, :, None]).sum(1)  # [B, F, T, M, M]
    eps = torch.as_tensor(eps, dtype=torch.float64).reshape(-1, 1, 1, 1, 1)
    return Y + eps * torch.eye(M, dtype=H.dtype)


def _dense_log_likelihood(x, Y):
    """``−Σ_ft [tr(X Y⁻¹) + log det(π Y)]`` with ``X = x xᴴ`` -> ``[B]`` (nats)."""
    xt = x.permute(0, 2, 3, 1)[..., None]  # [B, F, T, M, 1]
    X = xt @ xt.mH  # [B, F, T, M, M]
    quad = torch.linalg.solve(Y, X).diagonal(dim1=-2, dim2=-1).sum(-1).real  # tr(Y⁻¹ X)
    logdet = torch.linalg.slogdet(math.pi * Y)[1]  # [B, F, T]
    return -(quad + logdet).sum((1, 2))


def _posterior(x, lam, H, eps):
    """Duong et al. 2010 E-step: posterior means ``c_n = Y_n Y⁻¹ x`` and second moments
    ``R_n = c_n c_nᴴ + Y_n − Y_n Y⁻¹ Y_n`` of the images, ``Y_n = λ_nft H_nf``.
    Returns ``Y [B, F, T, M, M]`` and ``R [B, N, F, T, M, M]``."""
    Y = _dense_covariance(lam, H, eps)
    Yinv = torch.linalg.inv(Y)[:, None]  # [B, 1, F, T, M, M]
    Yn = lam[..., None, None].to(H.dtype) * H[:, :, :, None]  # [B, N, F, T, M, M]
    c = Yn @ Yinv @ x.permute(0, 2, 3, 1)[:, None, ..., None]  # [B, N, F, T, M, 1]
    return Y, c @ c.mH + Yn - Yn @ Yinv @ Yn


def _trace(A):
    return A.diagonal(dim1=-2, dim2=-1).sum(-1)


def _reference_em(x, lam, H, eps):
    """Duong et al. 2010 M-step: ``H_nf = (1/T) Σ_t R_nft / λ_nft``, then the free PSDs
    ``λ_nft = tr(H_nf⁻¹ R_nft) / M`` (the posterior power)."""
    M = H.shape[-1]
    _, R = _posterior(x, lam, H, eps)
    H1 = (R / lam[..., None, None]).mean(3)  # [B, N, F, M, M]
    lam1 = _trace(torch.linalg.inv(H1)[:, :, :, None] @ R).real / M  # [B, N, F, T]
    return H1, lam1


def _sqrtm(A):
    w, V = torch.linalg.eigh(A)
    return (V * w.clamp_min(0).sqrt().to(V.dtype)[..., None, :]) @ V.mH


def _mu_stats(x, lam, H, eps):
    """Sawada et al. 2013 majoriser terms ``num = tr(Y⁻¹XY⁻¹H_n)``, ``den = tr(Y⁻¹H_n)``
    ``[B, N, F, T]`` at ``lam``, ``H``."""
    xt = x.permute(0, 2, 3, 1)[..., None]  # [B, F, T, M, 1]
    X = (xt @ xt.mH)[:, None]  # [B, 1, F, T, M, M]
    Hn = H[:, :, :, None]  # [B, N, F, 1, M, M]
    Yinv = torch.linalg.inv(_dense_covariance(lam, H, eps))[:, None]
    return _trace(Yinv @ X @ Yinv @ Hn).real, _trace(Yinv @ Hn).real


def _reference_mu_scm(x, lam, H, eps, load=0.0):
    """Sawada et al. 2013 SCM update ``H ← A⁻¹ # B`` for ``A = Σ_t λ Y⁻¹``,
    ``B = H (Σ_t λ Y⁻¹XY⁻¹) H`` (geometric mean ``A⁻¹ # B = A^-½ (A^½ B A^½)^½ A^-½``);
    ``B`` loaded by ``load · tr(B)/M · I``."""
    xt = x.permute(0, 2, 3, 1)[..., None]  # [B, F, T, M, 1]
    X = (xt @ xt.mH)[:, None]  # [B, 1, F, T, M, M]
    Yinv = torch.linalg.inv(_dense_covariance(lam, H, eps))[:, None]
    w = lam[..., None, None].to(H.dtype)
    A = (w * Yinv).sum(3)  # [B, N, F, M, M]
    Bm = H @ (w * Yinv @ X @ Yinv).sum(3) @ H
    M = H.shape[-1]
    Bm = Bm + (load * _trace(Bm).real / M)[..., None, None] * torch.eye(M, dtype=H.dtype)
    A_half = _sqrtm(A)
    A_mhalf = torch.linalg.inv(A_half)
    return A_mhalf @ _sqrtm(A_half @ Bm @ A_half) @ A_mhalf


def _reference_mu(x, lam, H, eps):
    """Sawada et al. 2013 with free PSDs: ``λ ← λ sqrt(num / den)``, then the SCMs at the
    new ``λ``."""
    num, den = _mu_stats(x, lam, H, eps)
    lam1 = lam * (num / den).sqrt()
    return _reference_mu_scm(x, lam1, H, eps), lam1


def _reference_mu_nmf(x, W, V, H, eps):
    """Sawada et al. 2013 with NMF PSDs ``λ = W V``: ``W ← W sqrt(num Vᵀ / den Vᵀ)``, then
    with fresh statistics ``V ← V sqrt(Wᵀ num / Wᵀ den)``, then the SCMs."""
    num, den = _mu_stats(x, W @ V, H, eps)
    W = W * ((num @ V.mT) / (den @ V.mT)).sqrt()
    num, den = _mu_stats(x, W @ V, H, eps)
    V = V * ((W.mT @ num) / (W.mT @ den)).sqrt()
    return _reference_mu_scm(x, W @ V, H, eps), W @ V


def _load_normalise(H, lam, rel):
    """``H + rel · tr(H)/M · I``, then ``tr H = M`` with the scale moved into ``lam``."""
    M = H.shape[-1]
    H = H + (rel * _trace(H).real / M)[..., None, None] * torch.eye(M, dtype=H.dtype)
    tau = _trace(H).real / M  # [B, N, F]
    return H / tau[..., None, None], lam * tau[..., None]


def _problem(seed=0, B=2, M=3, N=2, F=4, T=6):
    """Sampled data ``x``, PSDs ``lam`` and SCMs ``H`` that differ from the sampled ones."""
    x, _, _, _ = sample_fca(B=B, M=M, N=N, F=F, T=T, seed=seed)
    g = torch.Generator().manual_seed(seed + 100)
    H = random_psd((B, N, F), M, load=0.3, generator=g)
    lam = torch.rand(B, N, F, T, dtype=torch.float64, generator=g) + 0.2
    return x, lam, H


# --- one iteration against the paper formulas ----------------------------------------------


@pytest.mark.parametrize(
    ("cdtype", "floor", "rtol"),
    [(torch.complex128, 1e-10, 1e-9), (torch.complex64, 1e-5, 2e-4)],
)
def test_one_em_iteration_of_fit_fca_matches_duong_formulas(cdtype, floor, rtol):
    """``fit_fca(algorithm="em")``: initial SCMs loaded by 1e-3 · tr/M and normalised, one EM
    iteration (SCMs and free PSDs), the update loaded by 1e-10 (complex128) or 1e-5
    (complex64) · tr/M and normalised; log-likelihood before and after."""
    x, lam, H = _problem(seed=1)
    eps = 1e-2
    H0, lam0 = _load_normalise(H, lam, 1e-3)
    H1, lam1 = _reference_em(x, lam0, H0, eps)
    H1, lam1 = _load_normalise(H1, lam1, floor)
    src = FreePsd(lam.to(_REAL[cdtype]))
    fit = fit_fca(x.to(cdtype), src, H.to(cdtype), n_iter=1, algorithm="em", eps=eps)
    assert torch.allclose(fit.H.to(torch.complex128), H1, rtol=rtol, atol=rtol * 1e-2)
    assert torch.allclose(fit.lam.double(), lam1, rtol=rtol, atol=0)
    ll = torch.stack(
        [
            _dense_log_likelihood(x, _dense_covariance(lam0, H0, eps)),
            _dense_log_likelihood(x, _dense_covariance(lam1, H1, eps)),
        ],
        1,
    )
    assert torch.allclose(fit.log_likelihood.double(), ll, rtol=rtol)


def test_one_mu_iteration_of_fit_fca_matches_sawada_formulas():
    """``fit_fca(algorithm="mu")``: PSD MM step, then the SCM geometric-mean update; the
    update solves ``H A H = B``."""
    x, lam, H = _problem(seed=2)
    eps = 1e-2
    H0, lam0 = _load_normalise(H, lam, 1e-3)
    H1, lam1 = _reference_mu(x, lam0, H0, eps)
    H1, lam1 = _load_normalise(H1, lam1, 1e-10)
    fit = fit_fca(x, FreePsd(lam.clone()), H, n_iter=1, algorithm="mu", eps=eps)
    assert torch.allclose(fit.H, H1, rtol=1e-8, atol=1e-10)
    assert torch.allclose(fit.lam, lam1, rtol=1e-8)
    ll1 = _dense_log_likelihood(x, _dense_covariance(lam1, H1, eps))
    assert torch.allclose(fit.log_likelihood[:, 1], ll1, rtol=1e-10)


def test_one_mu_iteration_with_nmf_psds_matches_sawada_formulas():
    """MNMF: the W step, then the V step with statistics at the updated PSDs, then the SCMs."""
    x, _, H = _problem(seed=21)
    g = torch.Generator().manual_seed(21)
    W = torch.rand(2, 2, 4, 3, dtype=torch.float64, generator=g) + 0.1  # [B, N, F, K]
    V = torch.rand(2, 2, 3, 6, dtype=torch.float64, generator=g) + 0.1  # [B, N, K, T]
    eps = 1e-2
    H0, WV0 = _load_normalise(H, W @ V, 1e-3)
    tau0 = (WV0 / (W @ V))[..., :1]  # [B, N, F, 1]: the initial normalisation, moved into W
    H1, lam1 = _reference_mu_nmf(x, W * tau0, V, H0, eps)
    H1, lam1 = _load_normalise(H1, lam1, 1e-10)
    fit = fit_fca(x, NmfPsd(W.clone(), V.clone()), H, n_iter=1, algorithm="mu", eps=eps)
    assert torch.allclose(fit.H, H1, rtol=1e-8, atol=1e-10)
    assert torch.allclose(fit.lam, lam1, rtol=1e-8)


def test_mu_scm_update_on_a_silent_microphone_is_set_by_the_relative_loading():
    """A silent microphone makes ``B`` singular; the SCM update solves ``H A H = B + δ I``
    with ``δ = finfo.eps · tr(B)/M``, so the silent channel's SCM entry is ``sqrt(δ / A)``
    instead of zero (block-diagonal here: diagonal starting SCMs)."""
    x, lam, _ = _problem(seed=22, N=2, M=3)
    x[:, 2] = 0
    H = torch.eye(3, dtype=x.dtype).expand(2, 2, 4, 3, 3)
    eps = 1e-2
    H0, lam0 = _load_normalise(H, lam, 1e-3)
    num, den = _mu_stats(x, lam0, H0, eps)
    lam1 = lam0 * (num / den).sqrt()
    H1 = _reference_mu_scm(x, lam1, H0, eps, load=torch.finfo(torch.float64).eps)
    H1, lam1 = _load_normalise(H1, lam1, 1e-10)
    fit = fit_fca(x, FreePsd(lam.clone()), H, n_iter=1, algorithm="mu", eps=eps)
    silent = fit.H[..., 2, 2].real  # [B, N, F]
    assert (silent > 1e-9).all() and (silent < 1e-6).all()
    assert torch.allclose(silent, H1[..., 2, 2].real, rtol=1e-6)
    assert torch.allclose(fit.H, H1, rtol=1e-8, atol=1e-12)


def test_em_and_mu_iterations_differ():
    """The algorithm switch picks different updates (the two references differ)."""
    x, lam, H = _problem(seed=3)
    em = fit_fca(x, FreePsd(lam.clone()), H, n_iter=1, algorithm="em", eps=1e-2)
    mu = fit_fca(x, FreePsd(lam.clone()), H, n_iter=1, algorithm="mu", eps=1e-2)
    assert not torch.allclose(em.H, mu.H, rtol=1e-3)


@pytest.mark.parametrize("algorithm", ["em", "mu"])
def test_log_likelihood_never_decreases_and_is_recorded_each_iteration(algorithm):
    """``log_likelihood [B, I + 1]`` starts at the initial model, ends at the fitted one,
    never decreases; ``callback(it, L)`` sees every iteration's value."""
    x, lam, H = _problem(seed=4, T=12)
    seen = []
    fit = fit_fca(
        x, FreePsd(lam.clone()), H, 6, algorithm, 1e-2, lambda it, ll: seen.append((it, ll))
    )
    assert fit.log_likelihood.shape == (2, 7)
    assert [it for it, _ in seen] == list(range(6))
    assert torch.equal(torch.stack([ll for _, ll in seen], 1), fit.log_likelihood[:, 1:])
    final = _dense_log_likelihood(x, _dense_covariance(fit.lam, fit.H, 1e-2))
    assert torch.allclose(fit.log_likelihood[:, -1], final, rtol=1e-10)
    steps = fit.log_likelihood.diff(dim=1)
    assert (steps >= -1e-9 * fit.log_likelihood[:, 1:].abs()).all(), steps.min()
    assert (fit.log_likelihood[:, -1] > fit.log_likelihood[:, 0]).all()


def test_em_update_scm_default_floor_is_zero():
    """``em_update_scm`` without ``eps`` is the EM SCM update of the floor-free model."""
    x, lam, H = _problem(seed=5)
    H1, _ = _reference_em(x, lam, H, 0.0)
    assert torch.allclose(em_update_scm(x, lam, H), H1, rtol=1e-9, atol=1e-12)
    assert torch.equal(em_update_scm(x, lam, H), em_update_scm(x, lam, H, 0.0))


def test_em_update_scm_takes_a_floor_per_batch_item():
    x, lam, H = _problem(seed=6)
    eps = torch.tensor([1e-3, 0.5], dtype=torch.float64)
    both = em_update_scm(x, lam, H, eps)
    for b in range(2):
        H1, _ = _reference_em(x[b : b + 1], lam[b : b + 1], H[b : b + 1], float(eps[b]))
        assert torch.allclose(both[b : b + 1], H1, rtol=1e-9, atol=1e-12)


# --- log-likelihood ------------------------------------------------------------------------


@pytest.mark.parametrize("M", [1, 2, 4])
def test_fca_log_likelihood_matches_direct_sum(M):
    g = torch.Generator().manual_seed(M)
    B, F, T = 2, 3, 5
    Y = random_psd((B, F, T), M, load=0.2, generator=g)
    x = torch.randn(B, M, F, T, dtype=torch.complex128, generator=g)
    assert torch.allclose(fca_log_likelihood(x, Y), _dense_log_likelihood(x, Y), rtol=1e-12)


# --- scale normalisation -------------------------------------------------------------------


def test_normalize_scm_sets_trace_to_m_and_keeps_the_model():
    x, lam, H = _problem(seed=7)
    H = 5.0 * H
    src = FreePsd(lam.clone())
    Hn = normalize_scm(H, src)
    assert torch.allclose(_trace(Hn).real, torch.full((2, 2, 4), 3.0, dtype=torch.float64))
    Y0 = _dense_covariance(lam, H, 0.1)
    assert torch.allclose(_dense_covariance(src.psd(), Hn, 0.1), Y0, rtol=1e-12)


def test_normalize_scm_keeps_a_zero_scm_finite():
    """A source absent in one bin (``H_nf = 0``) stays zero and finite."""
    _, lam, H = _problem(seed=8)
    H[0, 1, 2] = 0
    src = FreePsd(lam.clone())
    Hn = normalize_scm(H, src)
    assert torch.isfinite(Hn).all() and torch.isfinite(src.psd()).all()
    assert torch.equal(Hn[0, 1, 2], torch.zeros_like(Hn[0, 1, 2]))
    assert torch.allclose(_trace(Hn[0, 0]).real, torch.full((4,), 3.0, dtype=torch.float64))


@pytest.mark.parametrize("algorithm", ["em", "mu"])
def test_fitted_scms_have_trace_m(algorithm):
    x, lam, H = _problem(seed=9)
    fit = fit_fca(x, FreePsd(lam.clone()), 7.0 * H, 3, algorithm, 1e-2)
    assert torch.allclose(_trace(fit.H).real, torch.full((2, 2, 4), 3.0, dtype=torch.float64))
    assert torch.allclose(fit.H, fit.H.mH)
    assert (torch.linalg.eigvalsh(fit.H) > 0).all()


# --- fitted model --------------------------------------------------------------------------


def test_fca_result_scm_and_images():
    x, lam, H = _problem(seed=10)
    fit = fit_fca(x, FreePsd(lam.clone()), H, 2, "em", 1e-2)
    assert isinstance(fit, FcaResult)
    assert fit.scm() is fit.H
    Y = _dense_covariance(fit.lam, fit.H, 1e-2)  # [B, F, T, M, M]
    Yn = fit.lam[..., None, None].to(x.dtype) * fit.H[:, :, :, None]  # [B, N, F, T, M, M]
    c = Yn @ torch.linalg.solve(Y, x.permute(0, 2, 3, 1)[..., None])[:, None]  # Wiener
    assert torch.allclose(fit.images(x), c[..., 0].permute(0, 1, 4, 2, 3), rtol=1e-10)
    assert torch.allclose(fit.images(x), wiener_full_rank(x, fit.lam, fit.H, fit.eps))


def test_fit_fca_defaults():
    """``n_iter=100``, ``algorithm="em"``, ``eps=0``."""
    x, lam, H = _problem(seed=11, B=1, M=2, F=2, T=5)
    fit = fit_fca(x, FreePsd(lam.clone()), H)
    ref = fit_fca(x, FreePsd(lam.clone()), H, 100, "em", 0.0)
    assert fit.log_likelihood.shape == (1, 101)
    assert torch.equal(fit.log_likelihood, ref.log_likelihood)
    assert torch.equal(fit.H, ref.H)
    assert torch.equal(fit.eps, torch.zeros(1, dtype=torch.float64))


def test_fit_fca_takes_a_floor_per_batch_item():
    x, lam, H = _problem(seed=12)
    eps = torch.tensor([1e-3, 0.5], dtype=torch.float64)
    both = fit_fca(x, FreePsd(lam.clone()), H, 3, "mu", eps)
    assert torch.equal(both.eps, eps)
    for b in range(2):
        one = fit_fca(x[b : b + 1], FreePsd(lam[b : b + 1].clone()), H[b : b + 1], 3, "mu", eps[b])
        assert torch.allclose(both.log_likelihood[b], one.log_likelihood[0], rtol=1e-10)
        assert torch.allclose(both.H[b], one.H[0], rtol=1e-8, atol=1e-12)


def test_fit_fca_rejects_unknown_algorithm_and_names_the_choices():
    x, lam, H = _problem(seed=13)
    with pytest.raises(VaeAudioError, match=r"unknown FCA algorithm 'gibbs'; use one of em, mu"):
        fit_fca(x, FreePsd(lam), H, 1, "gibbs")


# --- starts --------------------------------------------------------------------------------


def test_initial_scm_identity():
    x, *_ = sample_fca(B=2, M=3, F=4, T=6)
    H, lam = initial_scm(x, 2, "identity")
    assert lam is None
    assert H.shape == (2, 2, 4, 3, 3)
    assert torch.equal(H, torch.eye(3, dtype=x.dtype).expand(2, 2, 4, 3, 3))


def test_initial_scm_random_is_rank_one_plus_identity():
    """``H_nf = a aᴴ + I`` with ``a ~ N_C(0, I)``: Hermitian, ``M − 1`` unit eigenvalues, the
    largest ``1 + ‖a‖²`` (mean ``1 + M``); seeded, shared by the batch items."""
    x, *_ = sample_fca(B=2, M=2, F=64, T=4)
    H, lam = initial_scm(x, 3, "random", seed=5)
    assert lam is None and H.shape == (2, 3, 64, 2, 2)
    assert torch.allclose(H, H.mH, rtol=0, atol=1e-12)
    w = torch.linalg.eigvalsh(H)  # [B, N, F, M] ascending
    assert torch.allclose(w[..., 0], torch.ones_like(w[..., 0]), atol=1e-12)
    assert (w[..., -1] > 1).all()
    assert abs(float((w[..., -1] - 1).mean()) - 2.0) < 0.4
    assert torch.equal(H[0], H[1])
    assert not torch.allclose(H[0, 0], H[0, 1])
    assert torch.equal(H, initial_scm(x, 3, "random", seed=5)[0])
    assert not torch.allclose(H, initial_scm(x, 3, "random", seed=6)[0])
    assert torch.equal(initial_scm(x, 3, "random")[0], initial_scm(x, 3, "random", seed=0)[0])


@pytest.mark.parametrize("n_iter_init", [1, 5, 9])
def test_initial_scm_fastmnmf2_is_a_two_step_fastmnmf2_fit(n_iter_init):
    """``n_iter_init`` FastMNMF2 iterations in all (``twostep``, K = 2; a third of them, at
    least one, in the first stage); ``H = Q⁻¹ diag(g_n) Q⁻ᴴ`` and the fit's PSDs."""
    x, *_ = sample_fca(B=1, M=2, N=2, F=4, T=10, seed=14)
    H, lam = initial_scm(x, 2, "fastmnmf2", seed=3, n_iter_init=n_iter_init)
    first = max(1, n_iter_init // 3)
    fit = fit_fastmnmf(x, 2, 2, n_iter_init - first, init="twostep", n_iter_init=first, seed=3)
    assert torch.allclose(H, jd_scm(fit.Q, fit.g), rtol=1e-10, atol=1e-12)
    assert torch.allclose(lam, fit.lam, rtol=1e-10)
    assert (torch.linalg.eigvalsh(H) > 0).all()


def test_initial_scm_defaults():
    """``init="fastmnmf2"``, ``seed=0``, ``n_iter_init=30``."""
    x, *_ = sample_fca(B=1, M=2, N=2, F=3, T=8, seed=15)
    H, lam = initial_scm(x, 2)
    H_ref, lam_ref = initial_scm(x, 2, "fastmnmf2", 0, 30)
    assert torch.equal(H, H_ref) and torch.equal(lam, lam_ref)


@pytest.mark.parametrize("init", ["identity", "random", "fastmnmf2"])
def test_initial_scm_accepts_init_names_built_at_run_time(init):
    """Names read from a config or the command line are equal, not identical, strings."""
    x, *_ = sample_fca(B=1, M=2, F=3, T=8)
    name = "".join(list(init))
    assert name == init and name is not init
    H, lam = initial_scm(x, 2, name, n_iter_init=2)
    H_ref, lam_ref = initial_scm(x, 2, init, n_iter_init=2)
    assert torch.equal(H, H_ref)
    assert (lam is None and lam_ref is None) or torch.equal(lam, lam_ref)


@pytest.mark.parametrize("algorithm", ["em", "mu"])
def test_fit_fca_accepts_algorithm_names_built_at_run_time(algorithm):
    x, lam, H = _problem(seed=23)
    name = "".join(list(algorithm))
    assert name == algorithm and name is not algorithm
    fit = fit_fca(x, FreePsd(lam.clone()), H, 1, name, 1e-2)
    ref = fit_fca(x, FreePsd(lam.clone()), H, 1, algorithm, 1e-2)
    assert torch.equal(fit.H, ref.H)


@pytest.mark.parametrize("init", ["kmeans", "auto", "fastmnmf", "Identity", "uniform"])
def test_initial_scm_rejects_unknown_init_and_names_the_choices(init):
    x, *_ = sample_fca(B=1, M=2, F=3, T=8)
    with pytest.raises(VaeAudioError, match=f"'{init}'; use one of identity, random, fastmnmf2"):
        initial_scm(x, 2, init, n_iter_init=2)


# --- blind FCA -----------------------------------------------------------------------------


def _power(x):
    return x.abs().square().mean((1, 2, 3))  # [B]


def test_free_fca_random_psd_start_is_uniform_times_the_mean_power():
    """With an SCM-only init the PSDs start from Uniform(0.5, 1.5) · mean|x|² (``H = I`` is
    scaled by 1.001 by the initial loading)."""
    x, *_ = sample_fca(B=2, M=2, N=2, F=8, T=50, seed=16)
    x = x * torch.tensor([30.0, 0.01]).to(x.dtype)[:, None, None, None]
    fit = fit_free_fca(x, 2, n_iter=0, init="identity")
    u = fit.lam / (1.001 * _power(x)[:, None, None, None])
    assert (u >= 0.5).all() and (u <= 1.5).all()
    assert u.min() < 0.52 and u.max() > 1.48
    assert abs(float(u.mean()) - 1.0) < 0.05
    assert torch.allclose(u[0], u[1], rtol=1e-12)  # the batch items share the draw


@pytest.mark.parametrize(("init", "algorithm"), [("identity", "mu"), ("random", "em")])
def test_free_fca_is_scale_equivariant(init, algorithm):
    """Scaling ``x`` by ``s`` scales the PSDs by ``s²``, keeps the SCMs, and shifts the
    log-likelihood by ``−F T M log s²`` (floors and starts are relative to the power)."""
    x, *_ = sample_fca(B=1, M=2, N=2, F=4, T=20, seed=17)
    s = 40.0
    a = fit_free_fca(x, 2, n_iter=4, algorithm=algorithm, init=init)
    b = fit_free_fca(s * x, 2, n_iter=4, algorithm=algorithm, init=init)
    assert torch.allclose(b.lam, s**2 * a.lam, rtol=1e-8)
    assert torch.allclose(b.H, a.H, rtol=1e-8, atol=1e-12)
    assert torch.allclose(b.eps, s**2 * a.eps, rtol=1e-12)
    shift = -4 * 20 * 2 * math.log(s**2)
    assert torch.allclose(b.log_likelihood, a.log_likelihood + shift, rtol=1e-9)


def test_free_fca_floors_are_relative_to_the_mean_power():
    """``eps = eps_rel · mean|x|²`` per item is both the isotropic floor and the PSD floor:
    silent bins end at the floor instead of zero."""
    x, *_ = sample_fca(B=2, M=2, N=2, F=4, T=12, seed=18)
    x[:, :, 1, 3:6] = 0  # silent bins
    fit = fit_free_fca(x, 2, n_iter=3, algorithm="mu", init="identity", eps_rel=1e-4)
    floor = 1e-4 * _power(x)
    assert torch.allclose(fit.eps, floor, rtol=1e-12)
    assert torch.allclose(fit.source.floor.reshape(2), floor, rtol=1e-12)
    assert (fit.lam > 0).all()
    silent = fit.lam[:, :, 1, 3:6] / floor[:, None, None]  # the floor, times tr-normalisation
    assert (silent > 0.5).all() and (silent < 2.0).all()


def test_free_fca_defaults():
    """``n_iter=100``, ``algorithm="em"``, ``init="fastmnmf2"``, ``n_iter_init=30``,
    ``eps_rel=1e-6``, ``seed=0``."""
    x, *_ = sample_fca(B=1, M=2, N=2, F=2, T=6, seed=19)
    fit = fit_free_fca(x, 2)
    ref = fit_free_fca(x, 2, 100, "em", "fastmnmf2", 30, 1e-6, 0)
    assert fit.log_likelihood.shape == (1, 101)
    assert torch.equal(fit.log_likelihood, ref.log_likelihood)
    assert torch.equal(fit.H, ref.H) and torch.equal(fit.lam, ref.lam)
    assert torch.allclose(fit.eps, 1e-6 * _power(x), rtol=1e-12)


def test_free_fca_callback_sees_every_iteration():
    x, *_ = sample_fca(B=1, M=2, N=2, F=3, T=8, seed=20)
    seen = []
    fit = fit_free_fca(x, 2, n_iter=3, init="random", callback=lambda it, ll: seen.append(it))
    assert seen == [0, 1, 2]
    assert fit.log_likelihood.shape == (1, 4)
