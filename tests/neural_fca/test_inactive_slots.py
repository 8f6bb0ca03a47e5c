"""A Neural FCA model with ``n_speakers`` talker slots separates any 1..n_speakers talkers:
the most energetic speaker slots are the talkers, the others join the noise.

The references are computed here from the full fit (all slots returned): the slot energies
``Σ_{m,f,t} |ĉ|²`` per batch item, the chosen slots' images and the sum of the rest.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from vae_audio.audio.stft import StftConfig, istft, stft
from vae_audio.errors import VaeAudioError
from vae_audio.neural_fca import fit_neural_fca, merge_inactive_slots, save_neural_fca
from vae_audio.separation import separate

from .conftest import random_stft, tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_STFT = StftConfig(sample_rate=16000, n_fft=16, hop_length=4)
SPEAKERS = 3  # N = 4 slots, the noise slot last
METHOD = {"full": "neural-fca", "jd": "neural-fastfca"}


def _model(spatial: str):
    return tiny_model(4, spatial, seed=5, n_speakers=SPEAKERS).double()


def _mixture(B: int = 3, S: int = 1600) -> torch.Tensor:
    """Seeded white ``[B, M, S]`` mixtures (M = 4)."""
    g = torch.Generator().manual_seed(7)
    return torch.randn(B, 4, S, generator=g, dtype=torch.float64)


def _reference(images: torch.Tensor, k: int) -> tuple[list[list[int]], torch.Tensor]:
    """Kept speaker slots per item (slot order) and ``[B, k + 1, M, F, T]``, by loops."""
    kept, out = [], []
    for item in images:  # [N, M, F, T]
        power = np.array([float((c.abs() ** 2).sum()) for c in item[:-1]])
        top = sorted(np.argsort(-power)[:k].tolist())
        rest = [n for n in range(len(item) - 1) if n not in top]
        noise = item[-1] + sum((item[n] for n in rest), torch.zeros_like(item[-1]))
        kept.append(top)
        out.append(torch.stack([*(item[n] for n in top), noise]))
    return kept, torch.stack(out)


@pytest.mark.parametrize(("B", "N", "k"), [(1, 2, 1), (2, 4, 1), (2, 4, 2), (3, 5, 3), (2, 4, 3)])
def test_merge_keeps_the_loudest_speaker_slots_and_conserves_the_sum(B, N, k):
    g = torch.Generator().manual_seed(B * 10 + N)
    shape = (B, N, 2, 3, 5)  # [B, N, M, F, T]
    real = torch.float64
    images = torch.complex(
        torch.randn(shape, generator=g, dtype=real), torch.randn(shape, generator=g, dtype=real)
    )
    images = images * torch.rand(B, N, 1, 1, 1, generator=g, dtype=real) * 4  # unequal slots
    merged = merge_inactive_slots(images, k)
    _, expect = _reference(images, k)
    assert merged.shape == (B, k + 1, 2, 3, 5)
    torch.testing.assert_close(merged, expect, rtol=0, atol=1e-12)
    torch.testing.assert_close(merged.sum(1), images.sum(1), rtol=0, atol=1e-12)


def test_merge_picks_by_energy_not_by_position():
    """Slot 1 of 3 speaker slots is the loudest in item 0, slot 2 in item 1: each item keeps
    its own; the noise slot's energy never counts."""
    images = torch.zeros(2, 4, 1, 1, 2, dtype=torch.complex128)  # [B, N, M, F, T]
    images[0, :, 0, 0, 0] = torch.tensor([1.0, 3.0, 2.0, 9.0])
    images[1, :, 0, 0, 0] = torch.tensor([1.0, 2.0, 3j, 9.0])
    merged = merge_inactive_slots(images, 1)
    assert merged[:, 0, 0, 0, 0].tolist() == [3.0, 3j]
    assert merged[:, 1, 0, 0, 0].tolist() == [12.0, 12.0]  # noise + the two other slots
    with pytest.raises(VaeAudioError, match=r"n_talkers must lie in 1\.\.3, got 4"):
        merge_inactive_slots(images, 4)


@pytest.mark.parametrize("spatial", ["full", "jd"])
def test_fit_with_fewer_talkers_returns_the_loudest_slots_of_the_same_fit(spatial):
    model = _model(spatial)
    x = random_stft(3, 4, T=20, seed=2, dtype=torch.complex128)  # [B, M, F, T]
    fit = fit_neural_fca(x, model)
    full = fit.images(x)  # [B, 4, M, F, T]
    chosen = {}
    for k in (1, 2):
        reduced = fit.with_talkers(k)
        kept, expect = _reference(full, k)
        chosen[k] = kept
        torch.testing.assert_close(reduced.images(x), expect, rtol=0, atol=1e-12)
        assert reduced.noise_index.tolist() == [k] * 3 and reduced.scm() is None
        torch.testing.assert_close(reduced.log_likelihood, fit.log_likelihood)
    assert fit.with_talkers(SPEAKERS).scm() is not None  # nothing merged
    torch.testing.assert_close(fit.with_talkers(SPEAKERS).images(x), full, rtol=0, atol=0)
    # the items do not all keep the first slots: the choice is by energy, per item
    assert any(kept != list(range(len(kept))) for k in (1, 2) for kept in chosen[k])
    with pytest.raises(VaeAudioError, match=r"separates 1 to 3 talker\(s\), got n_talkers=0"):
        fit.with_talkers(0)


@pytest.mark.parametrize("spatial", ["full", "jd"])
@pytest.mark.parametrize("k", [1, 2])
def test_separate_with_fewer_talkers_than_slots(spatial, k):
    """``separate(n_src=k)`` returns k talkers: the k most energetic speaker slots of the fit
    with every slot, while talkers + noise still sum to the mixture."""
    model, mix = _model(spatial), _mixture()
    kwargs = dict(method=METHOD[spatial], model=model, stft=TINY_STFT, dtype=torch.float64)
    res = separate(mix, n_src=k, **kwargs)
    assert res.sources.shape == (3, k, 4, 1600) and res.noise.shape == (3, 4, 1600)
    total = res.sources.sum(1) + res.noise
    torch.testing.assert_close(total, mix, rtol=0, atol=1e-4)
    every = separate(mix, n_src=SPEAKERS, **kwargs)  # the same fit, every slot returned
    torch.testing.assert_close(total, every.sources.sum(1) + every.noise, rtol=0, atol=1e-10)
    X = stft(mix, TINY_STFT)
    images = fit_neural_fca(X, model).images(X)  # [B, 4, M, F, T]
    kept, expect = _reference(images, k)
    wav = istft(expect, TINY_STFT, length=1600)  # [B, k + 1, M, S]
    torch.testing.assert_close(res.noise, wav[:, -1], rtol=0, atol=1e-10)
    for b in range(3):  # separate orders talkers by energy, loudest first
        order = wav[b, :-1].square().sum((1, 2)).argsort(descending=True)
        torch.testing.assert_close(res.sources[b], wav[b, order], rtol=0, atol=1e-10)
        for talker in res.sources[b]:  # each returned talker is one of the full fit's
            assert min(float((talker - s).abs().max()) for s in every.sources[b]) < 1e-10


def test_more_talkers_than_slots_is_one_line_naming_the_maximum(tmp_path):
    path = save_neural_fca(tmp_path / "model.pt", tiny_model(4, "jd", n_speakers=SPEAKERS))
    mix = _mixture(1)[0]
    for model, what in ((path, f"Neural FCA model {path}"), (_model("jd"), "the model")):
        with pytest.raises(VaeAudioError) as err:
            separate(mix, method="neural-fastfca", model=model, stft=TINY_STFT, n_src=4)
        assert str(err.value) == (
            f"{what} separates 3 speaker(s) at most plus a noise slot; pass n_src from 1 to 3 "
            "(got n_src=4)"
        )


def test_separate_with_model_and_the_pretrained_wrapper_pass_n_src(tmp_path):
    from vae_audio._pretrained.cards import CARDS
    from vae_audio._pretrained.separator import PretrainedNeuralFCA
    from vae_audio.neural_fca import separate_with_model

    path = save_neural_fca(tmp_path / "model.pt", tiny_model(4, "jd", n_speakers=SPEAKERS))
    wrapper = PretrainedNeuralFCA.from_file(path, CARDS["neural-fca"])
    mix = _mixture(1)[0].float()  # [M, S]
    ref = separate(mix, method="neural-fastfca", model=str(path), stft=TINY_STFT, n_src=2)
    assert separate_with_model(mix, path).sources.shape[0] == SPEAKERS  # default: every slot
    wrapped = wrapper.separate(mix, 16000, n_src=2, n_iter=0)
    for res in (separate_with_model(mix, path, n_src=2), wrapped):
        assert res.settings["n_src"] == 2
        torch.testing.assert_close(res.sources, ref.sources, rtol=0, atol=0)
        torch.testing.assert_close(res.noise, ref.noise, rtol=0, atol=0)
    assert wrapper.separate(mix, 16000, n_iter=0).sources.shape[0] == SPEAKERS
    message = re.escape("separates 3 speaker(s) at most plus a noise slot")
    with pytest.raises(VaeAudioError, match=message):
        wrapper.separate(mix, 16000, n_src=4, n_iter=0)


def test_merge_refuses_a_talker_count_outside_one_to_the_speaker_slots():
    """``merge_inactive_slots`` keeps 1 to N - 1 talkers: none, or every slot, is refused."""
    images = torch.zeros(1, 4, 2, 3, 5, dtype=torch.complex128)
    for bad in (0, 4):
        with pytest.raises(VaeAudioError, match=rf"n_talkers must lie in 1\.\.3, got {bad}"):
            merge_inactive_slots(images, bad)


def test_without_a_noise_slot_every_slot_is_a_talker():
    """``noise_slot=False`` takes the model's every slot as a talker (n_src = N, no noise
    image); any other n_src is refused in one line."""
    model, mix = _model("jd"), _mixture(1)[0]
    kwargs = dict(method="neural-fastfca", model=model, stft=TINY_STFT, dtype=torch.float64)
    res = separate(mix, n_src=SPEAKERS + 1, noise_slot=False, **kwargs)
    assert res.sources.shape == (SPEAKERS + 1, 4, 1600) and res.noise is None
    torch.testing.assert_close(res.sources.sum(0), mix, rtol=0, atol=1e-4)
    for n_src in (SPEAKERS, SPEAKERS + 2):
        with pytest.raises(VaeAudioError, match=rf"with noise_slot=True \(got {n_src} slots"):
            separate(mix, n_src=n_src, noise_slot=False, **kwargs)
