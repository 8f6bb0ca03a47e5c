"""Chunked processing: chunk layout, permutation alignment with an oracle separator, and
chunked vs unchunked separation of a stationary mixture."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vae_audio.audio import StftConfig
from vae_audio.errors import VaeAudioError
from vae_audio.eval.metrics import bss_eval
from vae_audio.separation import separate
from vae_audio.separation.chunking import ChunkOutput, chunk_bounds, separate_in_chunks

from .conftest import speech_like


@pytest.mark.parametrize("S", [50, 100, 101, 149, 150, 151, 999, 1000, 1234])
@pytest.mark.parametrize(("chunk", "overlap"), [(100, 0), (100, 20), (100, 50)])
def test_chunk_bounds_cover_with_pairwise_overlaps(S, chunk, overlap):
    bounds = chunk_bounds(S, chunk, overlap)
    assert bounds[0][0] == 0 and bounds[-1][1] == S
    for (s0, e0), (s1, _) in zip(bounds, bounds[1:], strict=False):
        assert e0 - s1 == overlap  # consecutive chunks overlap by exactly `overlap`
        assert s1 > s0
    for i in range(len(bounds) - 2):
        assert bounds[i][1] <= bounds[i + 2][0]  # never three chunks at one sample
    assert all(e - s <= 1.5 * chunk for s, e in bounds)
    assert len(bounds) == 1 or all(e - s >= chunk / 2 for s, e in bounds)


def test_chunk_bounds_rejects_large_overlap():
    with pytest.raises(VaeAudioError, match="overlap"):
        chunk_bounds(1000, 100, 60)


def test_alignment_undoes_random_permutations_exactly():
    """An oracle separator that returns the true images in a random order per chunk: the
    joined output equals the truth under one global permutation."""
    gen = torch.Generator().manual_seed(0)
    B, N, M, S = 2, 3, 2, 1000
    images = torch.randn(B, N, M, S, generator=gen, dtype=torch.float64)
    noise = torch.randn(B, M, S, generator=gen, dtype=torch.float64)
    bounds = iter(chunk_bounds(S, 240, 60))

    def oracle(chunk: torch.Tensor) -> ChunkOutput:
        start, end = next(bounds)
        assert chunk.shape[-1] == end - start
        perm = torch.stack([torch.randperm(N, generator=gen) for _ in range(B)])  # [B, N]
        spk = images[torch.arange(B)[:, None], perm][..., start:end]
        return ChunkOutput(spk, noise[..., start:end], torch.zeros(B, 3))

    out = separate_in_chunks(images.sum(1) + noise, oracle, 240, 60)
    assert out.objective.shape == (B, len(out.bounds), 3)
    assert torch.allclose(out.noise, noise)
    for b in range(B):
        # the first chunk's order is kept: find it from the first samples
        order = [
            int((images[b, :, :, :10] - out.speakers[b, n, :, :10]).abs().sum((1, 2)).argmin())
            for n in range(N)
        ]
        assert sorted(order) == list(range(N))
        assert torch.allclose(out.speakers[b], images[b, order], atol=1e-12)


def test_one_chunk_equals_unchunked_exactly():
    mix, _ = speech_like(M=2, seconds=0.6, sr=8000, seed=2)
    cfg = StftConfig(sample_rate=8000, n_fft=256, hop_length=64)
    kw = {"n_src": 2, "sr": 8000, "stft": cfg, "n_iter": 5}
    whole = separate(mix, **kw)
    chunked = separate(mix, chunk_seconds=1.0, overlap_seconds=0.2, **kw)
    assert torch.equal(whole.sources, chunked.sources)
    assert torch.equal(whole.noise, chunked.noise)


def test_chunked_matches_unchunked_on_stationary_mixture():
    """Fixed spatial filters and stationary talkers: 1-s chunks give (nearly) what the
    4-s whole-signal fit gives."""
    mix, images = speech_like(M=3, seconds=4.0, sr=8000, seed=0, snr_db=30)
    cfg = StftConfig(sample_rate=8000, n_fft=256, hop_length=64)
    kw = {"n_src": 2, "sr": 8000, "stft": cfg, "n_iter": 40, "noise_slot": False}
    whole = separate(mix.astype(np.float32), **kw)
    chunked = separate(mix.astype(np.float32), chunk_seconds=1.0, overlap_seconds=0.25, **kw)
    assert chunked.objective.shape[0] == 5
    sdr_whole = bss_eval(images[:, 0], whole.sources[:, 0].numpy()).sdr
    sdr_chunked = bss_eval(images[:, 0], chunked.sources[:, 0].numpy()).sdr
    assert (sdr_whole > 15).all() and (sdr_chunked > sdr_whole - 2).all(), (sdr_whole, sdr_chunked)
    agreement = bss_eval(whole.sources[:, 0].numpy(), chunked.sources[:, 0].numpy()).sdr
    assert (agreement > 15).all(), agreement
