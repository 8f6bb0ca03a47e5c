"""Shared data for the separation tests: mixtures sampled from the models themselves and a
small speech-like multichannel mixture."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vae_audio.separation.covariance import fca_covariance


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """The fits are many small ops: one thread is faster and steadier on a loaded machine."""


def random_psd(shape, M, dtype=torch.complex128, rank=None, load=0.0, generator=None):
    """Random Hermitian PSD matrices ``[*shape, M, M]`` (``a aᴴ`` sums) plus ``load · I``."""
    rank = M if rank is None else rank
    a = torch.randn(*shape, M, rank, dtype=dtype, generator=generator)
    return a @ a.mH / rank + load * torch.eye(M, dtype=dtype)


def sample_fca(B=1, M=4, N=2, F=24, T=200, load=0.02, seed=0, dtype=torch.complex128):
    """Data from the FCA model: near-rank-1 distinct SCMs, sparse frame activity.

    Returns ``x [B, M, F, T]``, images ``c [B, N, M, F, T]``, ``lam [B, N, F, T]``,
    ``H [B, N, F, M, M]``.
    """
    g = torch.Generator().manual_seed(seed)
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    H = random_psd((B, N, F), M, dtype, rank=1, load=load, generator=g)
    on = (torch.rand(B, N, 1, T, generator=g) < 0.5).to(real)
    level = -torch.log(torch.rand(B, N, F, T, generator=g, dtype=real))  # Exp(1)
    lam = on * level * 10 + 0.01
    L = torch.linalg.cholesky(lam[..., None, None].to(dtype) * H[:, :, :, None])
    z = torch.randn(B, N, F, T, M, 1, dtype=dtype, generator=g)
    c = (L @ z)[..., 0].permute(0, 1, 4, 2, 3)  # [B, N, M, F, T]
    return c.sum(1), c, lam, H


def sample_jd(B=1, M=3, N=2, F=16, T=120, seed=0, dtype=torch.complex128):
    """Data from the JD (FastMNMF2) model: images ``c_n = Q⁻¹ y_n`` with independent
    ``y_nm ~ N_C(0, λ_n g_nm)``. Returns ``x [B, M, F, T]``, ``c [B, N, M, F, T]``,
    ``Q [B, F, M, M]``, ``g [B, N, 1, M]``, ``lam [B, N, F, T]``."""
    gen = torch.Generator().manual_seed(seed)
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    Q = torch.randn(B, F, M, M, dtype=dtype, generator=gen) + 2 * torch.eye(M, dtype=dtype)
    g = 0.02 * torch.rand(B, N, 1, M, generator=gen, dtype=real)
    g[:, torch.arange(N), 0, torch.arange(N) % M] += 1.0  # source n dominates channel n
    on = (torch.rand(B, N, 1, T, generator=gen) < 0.6).to(real)
    lam = -torch.log(torch.rand(B, N, F, T, generator=gen, dtype=real)) * (on + 0.02)
    std = (lam[..., None] * g[:, :, :, None, :]).sqrt()  # [B, N, F, T, M]
    y = torch.randn(B, N, F, T, M, dtype=dtype, generator=gen) * std  # [B, N, F, T, M]
    c = torch.linalg.solve(Q[:, None, :, None], y[..., None])[..., 0]  # [B, N, F, T, M]
    c = c.permute(0, 1, 4, 2, 3)  # [B, N, M, F, T]
    return c.sum(1), c, Q, g, lam


def speech_like(M=3, seconds=1.0, sr=8000, seed=0, snr_db=30.0):
    """Two harmonic 'talkers' with syllabic envelopes, spatialised by random decaying FIRs,
    plus white noise. Returns ``mix [M, S]`` and ``images [2, M, S]`` (float64 numpy)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    images = []
    for f0, rate in ((110.0, 3.0), (185.0, 4.5)):
        pitch = f0 * (1 + 0.08 * np.sin(2 * math.pi * 0.7 * t + rng.uniform(0, 6)))
        phase = 2 * math.pi * np.cumsum(pitch) / sr
        wave = sum(np.sin(k * phase) / k for k in range(1, 15))
        env = np.clip(np.sin(2 * math.pi * rate * t + rng.uniform(0, 6)), 0, None) ** 1.5
        dry = wave * env
        taps = rng.standard_normal((M, 48)) * np.exp(-np.arange(48) / 6.0)
        images.append(np.stack([np.convolve(dry, h)[: len(t)] for h in taps]))
    images = np.stack(images)
    mix = images.sum(0)
    noise = rng.standard_normal(mix.shape) * np.sqrt(mix.var() / 10 ** (snr_db / 10))
    return mix + noise, images


def covariance(lam, H, eps=0.0):
    return fca_covariance(lam, H, eps)


def tf_sdr(est: torch.Tensor, ref: torch.Tensor) -> float:
    """Plain SDR in dB over all mics and TF bins: ``10 log10(‖c‖² / ‖c − ĉ‖²)``, averaged
    over sources after solving the permutation. ``est``/``ref`` ``[N, M, F, T]``."""
    N = ref.shape[0]
    best = -math.inf
    for perm in __import__("itertools").permutations(range(N)):
        vals = [
            10 * torch.log10(ref[n].abs().square().sum() / (ref[n] - est[p]).abs().square().sum())
            for n, p in enumerate(perm)
        ]
        best = max(best, float(sum(vals) / N))
    return best
