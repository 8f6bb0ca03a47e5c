import numpy as np
import pyroomacoustics as pra
import pytest
import torch

from vae_audio.data.mixing import mix_images, spatialise
from vae_audio.data.presets import load_preset
from vae_audio.data.rirs import compute_rirs
from vae_audio.data.scene import sample_scene

from .conftest import tiny_preset


@pytest.fixture(scope="module")
def rir_set():
    preset = load_preset(tiny_preset())
    scene = sample_scene(preset, np.random.default_rng(0))
    return compute_rirs(scene, preset.sample_rate)


def test_direct_path_arrives_at_the_geometric_delay(rir_set):
    scene, fs = rir_set.scene, rir_set.sample_rate
    c = pra.constants.get("c")
    bulk = pra.constants.get("frac_delay_length") // 2  # pyroomacoustics' filter delay
    for s, src in enumerate(scene.source_positions):
        for m, mic in enumerate(scene.mic_positions):
            expected = np.linalg.norm(src - mic) / c * fs + bulk
            assert abs(np.argmax(np.abs(rir_set.rirs[s, m])) - expected) <= 1.0


def test_tail_cut_keeps_all_but_60_db_of_energy(rir_set):
    scene = rir_set.scene
    room = pra.ShoeBox(
        scene.room_dim,
        fs=rir_set.sample_rate,
        materials=pra.Material(scene.absorption),
        max_order=scene.max_order,
    )
    for pos in np.concatenate([scene.source_positions, scene.noise_positions]):
        room.add_source(pos)
    room.add_microphone_array(scene.mic_positions.T)
    room.compute_rir()
    ours = np.concatenate([rir_set.rirs, rir_set.noise_rirs])  # [N + K, M, L]
    for m in range(len(scene.mic_positions)):
        for s in range(len(ours)):
            full = np.asarray(room.rir[m][s], dtype=np.float64)
            kept = ours[s, m, : len(full)].astype(np.float64)
            np.testing.assert_allclose(kept, full[: len(kept)], atol=1e-7)
            lost = (full**2).sum() - (full[: len(kept)] ** 2).sum()
            assert lost <= 1e-6 * (full**2).sum()


def test_spatialise_matches_numpy_convolution():
    g = torch.Generator().manual_seed(0)
    src = torch.randn(2, 3, 400, generator=g)  # [B, N, S]
    rirs = torch.randn(2, 3, 4, 50, generator=g)  # [B, N, M, L]
    out = spatialise(src, rirs)
    assert out.shape == (2, 3, 4, 400)
    for b in range(2):
        for n in range(3):
            for m in range(4):
                ref = np.convolve(src[b, n].numpy(), rirs[b, n, m].numpy())[:400]
                np.testing.assert_allclose(out[b, n, m].numpy(), ref, atol=1e-4)


def _power_db(x):
    return 10 * torch.log10(x.pow(2).mean(-1))


def test_mix_images_sets_levels_and_snr_exactly():
    g = torch.Generator().manual_seed(1)
    images = torch.randn(3, 2, 4, 8000, generator=g) * torch.tensor([1.0, 0.1])[:, None, None]
    noise = torch.randn(3, 4, 8000, generator=g) * 5
    level = torch.tensor([[0.0, 4.0], [0.0, -3.0], [2.0, 2.0]])
    snr = torch.tensor([5.0, 20.0, -2.0])
    out = mix_images(images, noise, level, snr, speech_level_dbfs=-30.0)
    rel = _power_db(out.images[:, 1, 0]) - _power_db(out.images[:, 0, 0])
    torch.testing.assert_close(rel, level[:, 1] - level[:, 0], atol=1e-3, rtol=0)
    speech = out.images.sum(1)[:, 0]
    torch.testing.assert_close(
        _power_db(speech) - _power_db(out.noise[:, 0]), snr, atol=1e-3, rtol=0
    )
    torch.testing.assert_close(_power_db(speech), torch.full((3,), -30.0), atol=1e-3, rtol=0)
    torch.testing.assert_close(out.mix, out.images.sum(1) + out.noise)
    assert torch.all(out.gain == 1.0)


def test_clip_guard_scales_everything_together():
    g = torch.Generator().manual_seed(2)
    images = torch.randn(1, 2, 2, 4000, generator=g)
    noise = torch.randn(1, 2, 4000, generator=g)
    out = mix_images(images, noise, torch.zeros(1, 2), torch.tensor([0.0]), speech_level_dbfs=-1)
    assert out.gain.item() < 1.0
    peak = max(out.mix.abs().max(), out.images.abs().max(), out.noise.abs().max())
    assert peak == pytest.approx(0.99, abs=1e-6)
    speech = out.images.sum(1)[:, 0]
    assert (_power_db(speech) - _power_db(out.noise[:, 0])).item() == pytest.approx(0.0, abs=1e-3)
    torch.testing.assert_close(out.mix, out.images.sum(1) + out.noise)
