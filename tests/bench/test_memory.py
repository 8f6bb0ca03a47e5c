"""PeakMemory sees NumPy and torch allocations made inside the block, and only those."""

import numpy as np
import pytest
import torch

from vae_audio.bench import PeakMemory


@pytest.mark.parametrize("alloc", ["numpy", "torch"])
def test_peak_counts_a_temporary_allocation(alloc):
    big = None
    with PeakMemory() as mem:
        if alloc == "numpy":
            big = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
        else:
            big = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        del big  # freed before the block ends: only the peak remembers it
    assert mem.how in ("vmhwm", "ru_maxrss")
    if mem.how == "vmhwm":
        assert 60.0 < mem.rss_mb < 100.0
    else:  # lifetime peak: a lower bound
        assert 0.0 <= mem.rss_mb < 100.0


def test_memory_from_before_the_block_is_not_counted():
    keep = np.ones(64 * 2**20 // 8)  # allocated and touched before
    with PeakMemory() as mem:
        keep += 1.0  # in place: no new memory
    assert mem.rss_mb < 20.0
    assert np.isnan(mem.cuda_mb)
