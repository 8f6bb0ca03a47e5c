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
