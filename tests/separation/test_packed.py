"""Packed Hermitian planes against dense algebra (torch.linalg, einsum)."""

from __future__ import annotations

import pytest
import torch

from vae_audio.separation import linalg, packed

from .test_linalg import _psd, _tol


def _planes(A):
    """Packed Hermitian planes ``[..., M², T]`` of ``A [..., T, M, M]``."""
    return packed.pack_hermitian(A).mT


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("M", [1, 2, 3, 4, 6])
def test_packed_hermitian_planes_against_dense_algebra(dtype, M):
    """Packing round-trips, and the inverse, log-determinant, matrix-vector product, trace
    inner product and weighted sum on packed planes agree with torch.linalg on the dense
    matrices."""
    A = _psd((3, 11), M, dtype)  # [B, T, M, M]
    tol = _tol(dtype)
    assert torch.allclose(linalg.unpack_hermitian(packed.pack_hermitian(A)), A, atol=tol)
    inv, logdet = packed.inv_logdet_packed(_planes(A))  # [B, M², T], [B, T]
    ref = torch.linalg.inv(A)
    got = linalg.unpack_hermitian(inv.mT)
    assert torch.allclose(got, ref, rtol=tol, atol=tol * ref.abs().max())
    assert torch.allclose(logdet, torch.linalg.slogdet(A)[1], rtol=tol, atol=tol * M)
    x = torch.randn(3, 11, M, dtype=dtype, generator=torch.Generator().manual_seed(1))
    ur, ui = packed.packed_matvec(_planes(A), x.real.mT, x.imag.mT)  # [B, M, T]
    Ax = (A @ x[..., None])[..., 0]  # [B, T, M]
    assert torch.allclose(torch.complex(ur, ui).mT, Ax, rtol=tol, atol=tol * Ax.abs().max())
    H = _psd((3, 2), M, dtype, seed=3)  # [B, K, M, M]
    inner = packed.packed_inner(_planes(A), H)  # [B, K, T]
    ref_inner = torch.einsum("btij,bkji->bkt", A, H).real
    assert torch.allclose(inner, ref_inner, rtol=tol, atol=tol * ref_inner.abs().max())
    w = torch.rand(3, 2, 11, dtype=A.real.dtype, generator=torch.Generator().manual_seed(2))
    ref_sum = torch.einsum("bkt,btij->bkij", w.to(dtype), A)
    got_sum = packed.packed_weighted_sum(w, _planes(A))
    assert torch.allclose(got_sum, ref_sum, rtol=tol, atol=tol * ref_sum.abs().max())
    xx = linalg.outer_hermitian_planes(x.real.mT, x.imag.mT)  # [B, M², T]
    outer = x[..., :, None] * x.conj()[..., None, :]
    assert torch.allclose(linalg.unpack_hermitian(xx.mT), outer, atol=tol * outer.abs().max())


def test_packed_inverse_falls_back_to_jitter_where_a_pivot_fails():
    a = torch.randn(6, 4, 1, dtype=torch.complex128, generator=torch.Generator().manual_seed(0))
    A = a @ a.mH  # rank 1: the unrolled Cholesky meets a zero pivot
    A[0] = 2 * torch.eye(4)  # a healthy one keeps its exact inverse
    inv, logdet = packed.inv_logdet_packed(_planes(A[None]))
    ref_inv, ref_logdet = linalg.inv_logdet_psd(A)  # the jittered dense path
    assert torch.isfinite(inv).all() and torch.isfinite(logdet).all()
    assert torch.allclose(linalg.unpack_hermitian(inv[0].mT), ref_inv)
    assert torch.allclose(logdet[0], ref_logdet)
    assert torch.allclose(linalg.unpack_hermitian(inv[0, :, 0]), 0.5 * torch.eye(4, dtype=A.dtype))
    # the failed unrolled factorisation leaves nothing in the graph: finite gradients
    for dtype in (torch.float64, torch.float32):
        planes = _planes(A[None]).to(dtype).requires_grad_(True)
        inv, logdet = packed.inv_logdet_packed(planes)
        (inv.sum() + logdet.sum()).backward()
        assert torch.isfinite(planes.grad).all()


def test_packed_inverse_is_differentiable():
    A = _planes(_psd((1, 3), 3, torch.complex128)).requires_grad_(True)

    def f(A):
        inv, logdet = packed.inv_logdet_packed(A)
        return inv.square().sum() + logdet.sum()

    assert torch.autograd.gradcheck(f, (A,))


@pytest.mark.parametrize("M", [2, 3, 4, 6])
def test_unrolled_inverses_are_exact_without_their_fallback(M):
    """On diagonally dominant matrices no pivot fails, so the unrolled factorisations, dense
    and packed, give the inverse themselves: no jittered fallback (which takes the whole batch
    on the dense path) can hide an error in them."""
    A = _psd((4, 5), M, torch.complex128) + M * torch.eye(M, dtype=torch.complex128)
    ref_inv, ref_logdet = torch.linalg.inv(A), torch.linalg.slogdet(A)[1]
    inv, logdet, bad = linalg._inv_logdet_unrolled(A)
    assert not bad.any()
    assert torch.allclose(inv, ref_inv, rtol=1e-10, atol=1e-12)
    assert torch.allclose(logdet, ref_logdet, rtol=1e-12)
    packed_inv, packed_logdet, bad = packed._inv_logdet_packed_unrolled(_planes(A))
    assert not bad.any()
    assert torch.allclose(linalg.unpack_hermitian(packed_inv.mT), ref_inv, rtol=1e-10, atol=1e-12)
    assert torch.allclose(packed_logdet, ref_logdet, rtol=1e-12)


def test_pack_hermitian_takes_real_symmetric_matrices():
    A = _psd((2, 3), 4, torch.float64)  # two batch axes: the packed axis is the last
    p = packed.pack_hermitian(A)  # diagonal, upper triangle, zero imaginary parts
    assert p.shape == (2, 3, 16) and not p[..., 10:].any()
    back = linalg.unpack_hermitian(p)
    assert torch.allclose(back.real, A) and not back.imag.any()


@pytest.mark.parametrize("M", [2, 3, 4])
def test_unrolled_factorisations_flag_every_non_positive_pivot(M):
    """A Hermitian matrix that is not positive definite is flagged by both unrolled
    factorisations, whichever pivot fails (the first, or a later one: the coupled pair (a, b)
    with |A_ab| = 2 has the pivot 1 - 4 < 0) and whether it is negative or exactly zero (a
    singular matrix), and only that matrix of the batch."""
    A = torch.eye(M, dtype=torch.complex128).repeat(6, 1, 1)  # [6, M, M], item 0 stays I
    A[1, 0, 0] = -0.5  # the first pivot, negative
    A[2, 0, 0] = 0.0  # the first pivot, zero
    A[3, 0, M - 1], A[3, M - 1, 0] = 2.0, 2.0  # the last pivot, negative
    A[4, M - 2, M - 1], A[4, M - 1, M - 2] = 2j, -2j  # a later pivot, complex coupling
    A[5, 0, 1], A[5, 1, 0] = 1.0, 1.0  # the second pivot, zero
    lowest = torch.linalg.eigvalsh(A)[:, 0]
    assert lowest[0] > 0 and (lowest[[1, 3, 4]] < 0).all() and (lowest[[2, 5]].abs() < 1e-12).all()
    expected = torch.tensor([False, True, True, True, True, True])
    assert torch.equal(linalg._inv_logdet_unrolled(A)[2], expected)
    assert torch.equal(packed._inv_logdet_packed_unrolled(_planes(A[None]))[2][0], expected)
