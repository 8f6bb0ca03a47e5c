"""The memory estimate bounds the measured peak of a separation, and not by much more."""

from __future__ import annotations

import pytest
import torch

from vae_audio.bench.memory import PeakMemory
from vae_audio.separation import separate
from vae_audio.separation.memory import available_bytes, bytes_per_bin, fit_bytes


@pytest.mark.parametrize(
    "method,channels,n_src", [("fastmnmf2", 4, 2), ("fastmnmf2", 6, 3), ("fca", 4, 2)]
)
def test_estimate_bounds_the_measured_peak(method, channels, n_src):
    sr, seconds = 16000, 8
    x = 0.1 * torch.randn(channels, sr * seconds, generator=torch.Generator().manual_seed(0))
    separate(x[:, :sr], method=method, n_src=n_src, n_iter=1)  # load code and libraries first
    with PeakMemory() as mem:
        separate(x, method=method, n_src=n_src, n_iter=2)
    estimate = fit_bytes(method, channels, n_src + 1, x.shape[1], 128, 512) / 2**20
    assert mem.rss_mb <= estimate
    if mem.how == "vmhwm":  # an exact peak: the estimate is not wildly pessimistic either
        assert estimate <= 4 * mem.rss_mb, (mem.rss_mb, estimate)


def test_costs_grow_with_mics_talkers_and_precision():
    assert bytes_per_bin("fca", 8, 3) > 3 * bytes_per_bin("fca", 4, 3)  # ~M² covariances
    assert bytes_per_bin("fastmnmf2", 4, 4) > bytes_per_bin("fastmnmf2", 4, 3)
    assert bytes_per_bin("fca", 4, 3) > bytes_per_bin("fastmnmf2", 4, 3)
    assert bytes_per_bin("fca", 4, 3, torch.float64) == 2 * bytes_per_bin("fca", 4, 3)
    assert bytes_per_bin("some-new-method", 4, 3) >= bytes_per_bin("fca", 4, 3)
    one = fit_bytes("fastmnmf2", 4, 3, 16000 * 10, 128, 512)
    assert fit_bytes("fastmnmf2", 4, 3, 16000 * 20, 128, 512) == pytest.approx(2 * one, rel=1e-3)
    assert fit_bytes("fastmnmf2", 4, 3, 16000 * 10, 128, 512, batch=3) == 3 * one


def test_available_memory_is_read_and_plausible():
    free = available_bytes("cpu")
    assert free is not None and 0 < free < 2**50
