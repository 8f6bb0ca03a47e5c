"""Wiener filters: images add up to the mixture, and the oracle filter separates."""

from __future__ import annotations

import torch

from vae_audio.separation.wiener import wiener_full_rank, wiener_jd

from .conftest import sample_fca, sample_jd, tf_sdr


def test_full_rank_images_sum_to_mixture():
    x, c, lam, H = sample_fca(B=2, M=3, N=3, F=5, T=30, seed=0)
    images = wiener_full_rank(x, lam, H)  # [B, N, M, F, T]
    assert images.shape == (2, 3, 3, 5, 30)
    assert torch.allclose(images.sum(1), x, atol=1e-9)
    assert tf_sdr(images[0], c[0]) > 10.0


def test_jd_images_sum_to_mixture():
    x, c, Q, g, lam = sample_jd(B=2, M=3, N=2, F=5, T=30, seed=1)
    images = wiener_jd(x, lam, g, Q, torch.zeros(2, 5, dtype=torch.float64))
    assert images.shape == (2, 2, 3, 5, 30)
    assert torch.allclose(images.sum(1), x, atol=1e-9)
    assert tf_sdr(images[0], c[0]) > 10.0


def test_jd_filter_blocks_shared_gains_and_gradients(monkeypatch):
    """Split into frequency blocks, with gains shared over F (FastMNMF2's ``g [B, N, 1, M]``),
    the JD filter equals the full-rank one on ``Q⁻¹ diag(g) Q⁻ᴴ``; and it is differentiable
    in ``λ`` and ``Q`` (its gradient matches finite differences)."""
    from vae_audio.separation import wiener
    from vae_audio.separation.fastmnmf import jd_scm

    x, _, Q, g, lam = sample_jd(B=1, M=3, N=2, F=5, T=7, seed=2)
    g = g[:, :, :1]  # [B, N, 1, M]
    monkeypatch.setattr(wiener, "_BLOCK", 2 * 3 * 7 * 2)  # two bins per block: 3 blocks
    eps = torch.full((1, 5), 1e-3, dtype=torch.float64)
    H = jd_scm(Q, g.expand(-1, -1, 5, -1))  # [B, N, F, M, M]
    # ŷ's floor ε adds ε Q⁻¹Q⁻ᴴ, not ε I: compare without it, then check the gradients with it
    torch.testing.assert_close(wiener_jd(x, lam, g, Q, 0 * eps), wiener_full_rank(x, lam, H))
    lam = lam.clone().requires_grad_()
    Q = Q.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: wiener_jd(x, a, g, b, eps).abs().sum(), (lam, Q))
