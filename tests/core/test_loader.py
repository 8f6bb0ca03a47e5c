"""ResumableLoader / EpochSampler / epoch_rng: seeded order, rank split, mid-epoch position,
per-item draws that depend on (seed, epoch, index) only."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import ConcatDataset, Dataset

from vae_audio.core import loader as loader_module
from vae_audio.core.draws import DrawKey, current_draw, epoch_rng
from vae_audio.core.loader import EpochSampler, ResumableLoader


class _Crops(Dataset):
    """Item i: (i, a random integer drawn by epoch_rng) as a float tensor ``[2]``."""

    def __init__(self, n: int, seed: int = 7) -> None:
        self.n, self.seed = n, seed

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index):
        draw = epoch_rng(self.seed, index).integers(1 << 30)
        return torch.tensor([float(index), float(draw)], dtype=torch.float64)


def _epoch(loader: ResumableLoader, epoch: int) -> torch.Tensor:
    loader.set_epoch(epoch)
    return torch.cat(list(loader))  # [n, 2]


def test_order_is_a_seeded_permutation_per_epoch():
    a, b = ResumableLoader(_Crops(10), 5, seed=3), ResumableLoader(_Crops(10), 5, seed=3)
    e0, e1 = _epoch(a, 0), _epoch(a, 1)
    assert torch.equal(e0, _epoch(b, 0)) and torch.equal(e1, _epoch(b, 1))
    for e in (e0, e1):
        assert sorted(e[:, 0].tolist()) == list(range(10))
    assert not torch.equal(e0[:, 0], e1[:, 0])  # new order
    # the same item draws anew in another epoch, the same in the same epoch
    by_index = [dict(zip(e[:, 0].tolist(), e[:, 1].tolist(), strict=True)) for e in (e0, e1)]
    assert all(by_index[0][i] != by_index[1][i] for i in range(10))
    assert not torch.equal(_epoch(ResumableLoader(_Crops(10), 5, seed=4), 0), e0)


def test_validation_loader_keeps_order_and_fixed_items():
    val = ResumableLoader(_Crops(6), 4, shuffle=False)
    first, again = _epoch(val, 0), _epoch(val, 5)
    assert first[:, 0].tolist() == list(range(6)) and torch.equal(first, again)
    direct = torch.stack([_Crops(6)[i] for i in range(6)])  # epoch 0 draws at index i
    assert torch.equal(first, direct)


def test_draws_ignore_the_process_and_the_global_generators(monkeypatch):
    reference = _epoch(ResumableLoader(_Crops(8), 4, seed=1), 2)
    monkeypatch.setattr(os, "getpid", lambda: 4242)
    torch.manual_seed(99)
    np.random.seed(99)
    assert torch.equal(_epoch(ResumableLoader(_Crops(8), 4, seed=1), 2), reference)


def test_worker_processes_deliver_the_same_batches():
    single = _epoch(ResumableLoader(_Crops(12), 3, seed=5), 1)
    workers = ResumableLoader(_Crops(12), 3, seed=5, num_workers=2, persistent_workers=True)
    assert torch.equal(_epoch(workers, 1), single)
    assert torch.equal(_epoch(workers, 0), _epoch(ResumableLoader(_Crops(12), 3, seed=5), 0))


def test_repeated_parts_of_a_concat_dataset_draw_differently():
    part = _Crops(4)
    loader = ResumableLoader(ConcatDataset([part, part]), 8, seed=0)
    batch = _epoch(loader, 0)  # [8, 2]: each local index twice
    for i in range(4):
        draws = batch[batch[:, 0] == i, 1]
        assert len(draws) == 2 and draws[0] != draws[1]


def test_draw_key_is_set_only_while_fetching():
    seen = []

    class _Probe(_Crops):
        def __getitem__(self, index):
            seen.append(current_draw())
            return super().__getitem__(index)

    list(ResumableLoader(_Probe(3), 3, seed=2))
    assert sorted(k.index for k in seen) == [0, 1, 2]
    assert all(isinstance(k, DrawKey) and k.seed == 2 and k.epoch == 0 for k in seen)
    assert current_draw() is None


@pytest.mark.parametrize("drop_last", [True, False])
def test_state_resumes_mid_epoch_and_rolls_over_at_the_end(drop_last):
    full = ResumableLoader(_Crops(11), 2, seed=8, drop_last=drop_last)
    expected = _epoch(full, 3)
    loader = ResumableLoader(_Crops(11), 2, seed=8, drop_last=drop_last)
    loader.set_epoch(3)
    it = iter(loader)
    head = [next(it) for _ in range(2)]
    state = loader.state_dict()
    assert state == {"epoch": 3, "batches": 2, "length": len(full)}

    resumed = ResumableLoader(_Crops(11), 2, seed=8, drop_last=drop_last)
    resumed.load_state_dict(state)
    resumed.set_epoch(3)  # the same epoch: the position holds
    rest = list(resumed)
    assert torch.equal(torch.cat(head + rest), expected)
    assert resumed.state_dict()["batches"] == len(full)

    finished = ResumableLoader(_Crops(11), 2, seed=8, drop_last=drop_last)
    finished.load_state_dict(resumed.state_dict())  # epoch 3 done: epoch 4 from its start
    assert torch.equal(torch.cat(list(finished)), _epoch(full, 4))


@pytest.mark.parametrize("size, world", [(10, 2), (11, 2), (7, 3), (2, 4)])
def test_ranks_take_disjoint_shares_that_cover_the_epoch(monkeypatch, size, world):
    sampler = EpochSampler(size, seed=1)
    shares = []
    for rank in range(world):
        monkeypatch.setattr(loader_module, "_rank_world", lambda rank=rank: (rank, world))
        shares.append([key.index for key in sampler])
        assert len(shares[-1]) == len(sampler) == -(-size // world)
    flat = [i for share in shares for i in share]
    assert sorted(set(flat)) == list(range(size))
    assert len(flat) - len(set(flat)) == len(flat) - size  # only the padding repeats
    if size % world == 0:
        assert len(set(flat)) == len(flat)
    monkeypatch.setattr(loader_module, "_rank_world", lambda: (0, 1))
    assert [k.index for k in sampler] == sampler.order(0).tolist()


def _tiny_bank(path):
    """A hand-made 2-room bank: decaying random RIRs (32 taps), 2 talkers, 1 noise source."""
    from vae_audio.data.presets import load_preset
    from vae_audio.data.rir_bank import RirBank

    g = torch.Generator().manual_seed(0)
    decay = torch.exp(-torch.arange(32) / 8.0)
    rirs = (torch.randn(2, 2, 3, 32, generator=g) * decay).half()
    noise = (torch.randn(2, 1, 3, 32, generator=g) * decay).half()
    bank = RirBank(
        rirs, noise, torch.tensor([1, 1]), torch.tensor([0.2, 0.2]), 16000,
        load_preset("default").to_dict(), 0,
    )  # fmt: skip
    return bank.save(path)


def test_unseeded_dynamic_mixing_follows_the_loader_seed_and_epoch(tmp_path):
    from vae_audio.data.dynamic import DynamicMixingDataset

    corpus = Path(__file__).resolve().parents[1] / "fixtures" / "corpus" / "train.jsonl"
    data = DynamicMixingDataset(
        corpus, _tiny_bank(tmp_path / "bank.pt"), segment_seconds=0.1, epoch_size=4
    )

    def epoch(seed, e):
        loader = ResumableLoader(data, 4, seed=seed)
        loader.set_epoch(e)
        (batch,) = list(loader)
        return torch.cat([batch["sources"].flatten(1), batch["noise"].flatten(1)], 1)

    assert torch.equal(epoch(0, 1), epoch(0, 1))
    assert not torch.equal(epoch(0, 1), epoch(0, 2))
    assert not torch.equal(epoch(0, 1), epoch(1, 1))
