"""Hermitian PSD helpers against torch.linalg / scipy closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from vae_audio.separation import linalg

from .conftest import random_psd

DTYPES = [torch.complex64, torch.complex128, torch.float64]


def _tol(dtype):
    return 2e-4 if dtype in (torch.complex64, torch.float32) else 1e-10


def _psd(shape, M, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    if dtype.is_complex:
        return random_psd(shape, M, dtype, load=0.1, generator=g)
    a = torch.randn(*shape, M, M, dtype=dtype, generator=g)
    return a @ a.mT / M + 0.1 * torch.eye(M, dtype=dtype)


def test_hermitian_trace_eps_load():
    A = torch.randn(3, 4, 4, dtype=torch.complex128)
    H = linalg.hermitian(A)
    assert torch.allclose(H, H.mH)
    assert torch.allclose(linalg.trace(A), torch.einsum("bii->b", A))
    P = _psd((3,), 4, torch.complex128)
    rel = linalg.eps_load(P, 0.1)
    expected = P + 0.1 * (linalg.trace(P).real / 4)[:, None, None] * torch.eye(4)
    assert torch.allclose(rel, expected)
    assert torch.allclose(linalg.eps_load(P, 0.5, relative=False), P + 0.5 * torch.eye(4))


def test_relative_eps_load_on_two_batch_axes():
    """The relative load is ``eps · tr(A)/M · I`` per matrix, with any number of batch axes
    (here 2 x 5 matrices of size 3) and a per-matrix ``eps``."""
    P = _psd((2, 5), 3, torch.complex128)
    eps = torch.rand(2, 5, dtype=torch.float64)
    load = (eps * torch.einsum("...ii->...", P).real / 3)[..., None, None]
    assert torch.allclose(linalg.eps_load(P, eps), P + load * torch.eye(3))


@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 5), (2, 4, 3, 5)])
def test_real_form_acts_on_stacked_rows_as_the_complex_matrix(shape):
    """``real_form(A) @ stack_real(x)`` is ``stack_real(A @ x)``, for ``x`` with 0, 1 or 2
    batch axes."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(*shape, dtype=torch.complex128, generator=g)
    A = torch.randn(*shape[:-2], 4, shape[-2], dtype=torch.complex128, generator=g)
    assert linalg.stack_real(x).shape == (*shape[:-2], 2 * shape[-2], shape[-1])
    got = linalg.real_form(A) @ linalg.stack_real(x)
    assert torch.allclose(got, linalg.stack_real(A @ x))


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_floor_psd_fixes_only_matrices_below_the_floor(dtype):
    """Definite matrices come back bit for bit; an indefinite one and one whose smallest
    eigenvalue is under ``rel · tr/M`` get their eigenvalues raised to ``rel`` times the mean
    absolute eigenvalue, with the eigenvectors of ``numpy.linalg.eigh`` kept."""
    rel, M = 1e-3, 5
    A = _psd((2, 3), M, dtype)
    w, V = np.linalg.eigh(A[0, 1].numpy().astype(np.complex128))
    broken = {
        (0, 1): np.array([-2.0, 1e-7, 0.5, 1.0, 3.0]),  # indefinite
        (0, 2): np.array([1e-6, 1e-5, 0.5, 1.0, 3.0]),  # definite, smallest under the floor
        (1, 1): np.array([-5.0, 0.1, 0.2, 0.3, 0.4]),  # negative trace
    }
    for index, w_in in broken.items():
        A[index] = torch.from_numpy((V * w_in) @ V.conj().T).to(dtype)
    A[1, 2] = 0.0
    out = linalg.floor_psd(A, rel)
    for index in ((0, 0), (1, 0)):
        assert torch.equal(out[index], A[index])
    for index, w_in in broken.items():
        expected = (V * np.maximum(w_in, rel * np.abs(w_in).mean())) @ V.conj().T
        assert np.allclose(out[index].numpy(), expected, atol=50 * _tol(dtype))
    assert (torch.linalg.eigvalsh(out) > 0).all()  # the zero matrix too


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M", [1, 2, 4, 6, 9])
def test_inverse_logdet_solve(dtype, M):
    A = _psd((5, 7), M, dtype)
    tol = _tol(dtype)
    inv, logdet = linalg.inv_logdet_psd(A)
    ref_inv = torch.linalg.inv(A)
    assert torch.allclose(inv, ref_inv, rtol=tol, atol=tol * ref_inv.abs().max())
    assert torch.allclose(logdet, torch.linalg.slogdet(A)[1], rtol=tol, atol=tol * M)
    assert torch.allclose(linalg.inv_psd(A), ref_inv, rtol=tol, atol=tol * ref_inv.abs().max())
    assert torch.allclose(linalg.logdet_psd(A), torch.linalg.slogdet(A)[1], atol=tol * M)
    one = A[0, 0]  # no batch axis
    assert torch.allclose(linalg.logdet_psd(one), torch.linalg.slogdet(one)[1], atol=tol * M)
    b = torch.randn(5, 7, M, 2, dtype=dtype)
    ref = torch.linalg.solve(A, b)
    assert torch.allclose(linalg.solve_psd(A, b), ref, rtol=tol, atol=tol * ref.abs().max())


def test_singular_matrix_falls_back_to_jitter():
    a = torch.randn(10, 4, 1, dtype=torch.complex128)
    A = a @ a.mH  # rank 1: Cholesky fails
    A[0] = torch.eye(4)  # a healthy one in the same batch keeps its exact inverse
    inv, logdet = linalg.inv_logdet_psd(A)
    assert torch.isfinite(inv).all() and torch.isfinite(logdet).all()
    assert torch.allclose(inv[0], torch.eye(4, dtype=inv.dtype))
    L = linalg.cholesky_psd(A)
    assert torch.isfinite(L).all()


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex64])
def test_cholesky_jitter_is_the_documented_load_on_the_failed_matrices_only(dtype):
    """A matrix whose factorisation fails gets ``jitter · tr(A)/M · I`` (1e-10 in double,
    1e-5 in single precision), a zero matrix ``jitter · I``; the others in the batch none."""
    jitter = 1e-10 if dtype == torch.float64 else 1e-5
    A = torch.zeros(3, 3, 3, dtype=dtype)
    A[0] = torch.diag(torch.tensor([300.0, 0.0, 0.0], dtype=dtype))  # tr/M = 100
    A[1] = torch.diag(torch.tensor([1.0, 2.0, 6.0], dtype=dtype))  # healthy
    L = linalg.cholesky_psd(A)
    LL = L @ L.mH
    want = torch.full((2,), 100 * jitter, dtype=LL.real.dtype)  # jitter · tr/M
    assert torch.allclose(LL[0].diagonal()[1:].real, want, rtol=1e-3)
    assert torch.allclose(LL[1], A[1]) and torch.equal(L[1], torch.linalg.cholesky(A[1]))
    assert torch.allclose(LL[2], jitter * torch.eye(3, dtype=dtype), rtol=1e-3)


@pytest.mark.parametrize(("depth", "loads"), [(3e-10, 2), (3e-9, 3)])
def test_cholesky_jitter_grows_tenfold_until_the_factorisation_succeeds(depth, loads):
    """A matrix that a load leaves indefinite gets the next one ten times larger, computed
    on the loaded matrix, up to three loads in all."""
    A = torch.diag(torch.tensor([1.0, 1.0, -depth], dtype=torch.float64))
    want, jitter = A, 1e-10
    for _ in range(loads):
        assert torch.linalg.cholesky_ex(want)[1] > 0  # still indefinite: another load
        want = want + jitter * (linalg.trace(want) / 3) * torch.eye(3, dtype=A.dtype)
        jitter *= 10
    L = linalg.cholesky_psd(A)
    assert torch.allclose(L @ L.mT, want, rtol=1e-9, atol=0)


def test_outer_planes_in_blocks_of_single_rows(monkeypatch):
    """With a block budget below one row, :func:`outer_hermitian_planes` fills one row at a
    time and still gives every row's packed ``x xᴴ``."""
    x = torch.randn(5, 3, 7, dtype=torch.complex128)
    want = linalg.outer_hermitian_planes(x.real, x.imag)
    monkeypatch.setattr(linalg, "_OUTER_BLOCK", 1)
    assert torch.equal(linalg.outer_hermitian_planes(x.real, x.imag), want)


def test_inverse_is_differentiable():
    A = _psd((3,), 4, torch.complex128).requires_grad_(True)

    def f(A):
        inv, logdet = linalg.inv_logdet_psd(linalg.hermitian(A))
        return inv.abs().sum() + logdet.sum()

    assert torch.autograd.gradcheck(f, (A,))


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_sqrtm_geometric_mean_riccati(dtype):
    A = _psd((6,), 4, dtype, seed=1)
    B = _psd((6,), 4, dtype, seed=2)
    tol = 1e-3 if dtype == torch.complex64 else 1e-9
    S = linalg.sqrtm_psd(A)
    assert torch.allclose(S @ S, A, atol=tol * A.abs().max())
    ref_sqrt = np.stack([scipy.linalg.sqrtm(a) for a in A.numpy().astype(np.complex128)])
    assert np.allclose(S.numpy(), ref_sqrt, atol=tol * 10)
    # A # B solves G A⁻¹ G = B, is symmetric in its arguments, and matches Bhatia's formula
    G = linalg.geometric_mean(A, B)
    assert torch.allclose(G @ torch.linalg.inv(A) @ G, B, atol=tol * 10 * B.abs().max())
    assert torch.allclose(G, linalg.geometric_mean(B, A), atol=tol * 10 * G.abs().max())
    a = A.numpy().astype(np.complex128)
    b = B.numpy().astype(np.complex128)
    ref = []
    for ai, bi in zip(a, b, strict=True):
        r = scipy.linalg.sqrtm(ai)
        ri = np.linalg.inv(r)
        ref.append(r @ scipy.linalg.sqrtm(ri @ bi @ ri) @ r)
    assert np.allclose(G.numpy(), np.stack(ref), atol=tol * 10 * np.abs(ref).max())
    # H A H = B, H = A⁻¹ # B, positive definite
    H = linalg.riccati_psd(A, B)
    assert torch.allclose(H @ A @ H, B, atol=tol * 10 * B.abs().max())
    assert torch.allclose(H, linalg.geometric_mean(torch.linalg.inv(A), B), atol=tol * 10)
    assert (torch.linalg.eigvalsh(H) > 0).all()


@pytest.mark.parametrize("shape", [(2, 3, 4, 9), (3, 9), (2, 3, 9)])
def test_outer_planes_under_autograd_are_the_in_place_fill(shape):
    """With inputs that require gradients the packed outer products are built out of place
    (autograd through the in-place fill copies the whole gradient once per write); both
    paths give the same coordinates, and the gradient is right, with 0 to 2 batch axes."""
    g = torch.Generator().manual_seed(4)
    x = torch.randn(*shape, dtype=torch.complex128, generator=g)
    re, im = x.real.contiguous(), x.imag.contiguous()
    plain = linalg.outer_hermitian_planes(re, im)
    re_g, im_g = re.clone().requires_grad_(True), im.clone().requires_grad_(True)
    assert torch.allclose(linalg.outer_hermitian_planes(re_g, im_g), plain, rtol=1e-14)
    assert torch.autograd.gradcheck(linalg.outer_hermitian_planes, (re_g, im_g))


@pytest.mark.parametrize("shape", [(3, 7), (2, 3, 7), (2, 2, 3, 7)])
def test_weighted_covariances_of_outer_real_are_the_weighted_sums(shape):
    """``weighted_covariances(outer_real(x), w)`` is ``(1/T) Σ_t w_kt x_t x_tᴴ`` for ``x``
    with 0 to 2 batch axes."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(*shape, dtype=torch.complex128, generator=g)
    w = torch.rand(*shape[:-2], 4, shape[-1], dtype=torch.float64, generator=g)
    want = torch.einsum("...kt,...it,...jt->...kij", w.to(x.dtype), x, x.conj()) / shape[-1]
    got = linalg.weighted_covariances(linalg.outer_real(x), w)
    assert got.shape == (*shape[:-2], 4, shape[-2], shape[-2])
    assert torch.allclose(got, want)


@pytest.mark.parametrize(
    ("F", "per_bin", "budget", "n_blocks"),
    [(257, 100, 10**6, 1), (257, 1000, 30_000, 9), (10, 7, 20, 4), (5, 100, 1, 5), (1, 3, 2, 1)],
)
def test_frequency_blocks_cover_every_bin_once_within_the_budget(F, per_bin, budget, n_blocks):
    """``ceil(F · per_bin / budget)`` blocks (at least 1, at most F) of near-equal size that
    tile ``range(F)`` in order, with plain-int bounds."""
    blocks = linalg.frequency_blocks(F, per_bin, budget)
    assert len(blocks) == n_blocks
    assert [i for b in blocks for i in range(F)[b]] == list(range(F))
    sizes = [b.stop - b.start for b in blocks]
    assert max(sizes) == -(-F // n_blocks) and min(sizes) >= 1
    assert all(type(b.start) is int and type(b.stop) is int and b.step is None for b in blocks)


@pytest.mark.parametrize("dtype", [torch.float32, torch.complex128])
def test_mean_power_floors_silence_at_eps_squared_only(dtype):
    """``mean |x|²`` over the given axes, floored at ``eps²`` of the real dtype: a silent
    input gets exactly the floor, a quiet one (power between ``eps²`` and ``eps``) its own
    power."""
    eps = torch.finfo(torch.empty((), dtype=dtype).real.dtype).eps
    x = torch.zeros(2, 3, 4, dtype=dtype)
    x[1] = (1e3 * eps**2) ** 0.5 * (0.6 + 0.8j if dtype.is_complex else 1.0)  # power 1e3 eps²
    got = linalg.mean_power(x, (1, 2))
    assert got[0].item() == eps**2
    assert got[1].item() == pytest.approx(1e3 * eps**2, rel=1e-5, abs=0)
    assert got.dtype == x.real.dtype
