import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from vae_audio.data.datasets import MixtureDataset, SpeechSegmentDataset
from vae_audio.data.dynamic import DynamicMixer, DynamicMixingDataset
from vae_audio.data.manifest import read_manifest
from vae_audio.data.rir_bank import RirBank, build_rir_bank
from vae_audio.errors import VaeAudioError

from .conftest import FIXTURES, tiny_preset


def _db(x):
    return 10 * torch.log10(x.double().pow(2).mean())


def test_speech_segments_shapes_level_and_crops(corpus_manifest):
    whole = SpeechSegmentDataset(corpus_manifest, None, 16000, target_dbfs=-30.0)
    entries = read_manifest(corpus_manifest)
    assert len(whole) == len(entries) == 6
    for i, e in enumerate(entries):
        x = whole[i]
        assert x.dtype == torch.float32 and x.shape == (int(round(e["duration"] * 16000)),)
        assert _db(x).item() == pytest.approx(-30.0, abs=0.01)
    half = SpeechSegmentDataset(corpus_manifest, 0.5, 16000, random_offset=False, seed=3)
    again = SpeechSegmentDataset(corpus_manifest, 0.5, 16000, random_offset=False, seed=3)
    for i in range(len(half)):
        seg, full = half[i].numpy(), SpeechSegmentDataset(corpus_manifest, None)[i].numpy()
        assert seg.shape == (8000,)
        np.testing.assert_array_equal(seg, again[i].numpy())
        starts = [s for s in np.flatnonzero(full == seg[0]) if s + 8000 <= len(full)]
        assert any(np.array_equal(full[s : s + 8000], seg) for s in starts)
    padded = SpeechSegmentDataset(corpus_manifest, 3.0, 8000)[0]  # longer than any utterance
    n = int(round(entries[0]["duration"] * 8000))
    assert padded.shape == (24000,) and not padded[n + 1 :].any() and padded[:n].abs().max() > 0
    batch = next(iter(DataLoader(half, batch_size=4)))
    assert batch.shape == (4, 8000)


def test_mixture_dataset_chunks_keep_the_sum(simulated_set):
    ds = MixtureDataset(simulated_set / "manifest.jsonl", 0.5, with_sources=True)
    item = ds[1]
    assert item["id"] == "000001" and item["mix"].shape == (4, 8000)
    assert item["sources"].shape == (2, 4, 8000) and item["noise"].shape == (4, 8000)
    torch.testing.assert_close(
        item["mix"], item["sources"].sum(0) + item["noise"], atol=1e-5, rtol=0
    )
    full = MixtureDataset(simulated_set / "manifest.jsonl", None)[0]["mix"]
    ref, _ = sf.read(simulated_set / "000000" / "mix.wav", dtype="float32")
    np.testing.assert_array_equal(full.numpy(), ref.T)
    long = MixtureDataset(simulated_set / "manifest.jsonl", 1.5, sr=8000)[0]["mix"]
    assert long.shape == (4, 12000) and not long[:, 8001:].any()
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["mix"].shape == (2, 4, 8000) and batch["sources"].shape == (2, 2, 4, 8000)


def test_committed_mixture_fixture_loads():
    ds = MixtureDataset(FIXTURES / "mixture" / "manifest.jsonl", None, with_sources=True)
    item = ds[0]
    assert item["mix"].shape == (4, 32000) and item["sources"].shape == (2, 4, 32000)
    # 16-bit PCM fixture: the sum holds to about three quantisation steps
    torch.testing.assert_close(
        item["mix"], item["sources"].sum(0) + item["noise"], atol=1e-4, rtol=0
    )


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    preset = tiny_preset(speakers={"level_db": [-2.0, 2.0]}, noise={"snr_db": [8.0, 9.0]})
    bank = build_rir_bank(preset, 2, seed=1, noise_sources=3, progress=False)
    path = bank.save(tmp_path_factory.mktemp("bank") / "bank.pt")
    return path


def test_rir_bank_round_trip(bank, tmp_path):
    loaded = RirBank.load(bank)
    assert loaded.rirs.dtype == torch.float16 and loaded.rirs.shape[:3] == (2, 2, 4)
    assert loaded.noise_rirs.shape[:3] == (2, 3, 4) and loaded.n_noise.tolist() == [3, 3]
    assert loaded.sample_rate == 16000 and loaded.seed == 1
    assert torch.all((loaded.rt60 >= 0.15) & (loaded.rt60 <= 0.2))
    raw = torch.load(bank, weights_only=True)
    torch.testing.assert_close(raw["rirs"], loaded.rirs)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(VaeAudioError, match="not an RIR bank"):
        RirBank.load(tmp_path / "other.pt")
    with pytest.raises(VaeAudioError, match="does not exist"):
        RirBank.load(tmp_path / "missing.pt")


def test_dynamic_mixing_renders_exact_sums_and_snr(bank, corpus_manifest):
    ds = DynamicMixingDataset(
        corpus_manifest, bank, segment_seconds=0.5, epoch_size=3, render=True, seed=5
    )
    assert len(ds) == 3
    for i in range(3):
        item = ds[i]
        assert item["sources"].shape == (2, 8000) and item["noise"].shape == (3, 8000)
        assert item["mix"].shape == (4, 8000) and item["images"].shape == (2, 4, 8000)
        torch.testing.assert_close(
            item["mix"], item["images"].sum(0) + item["noise_image"], atol=1e-5, rtol=0
        )
        speech = item["images"].sum(0)[0]
        snr = _db(speech) - _db(item["noise_image"][0])
        assert 8.0 <= item["snr_db"] <= 9.0 and snr.item() == pytest.approx(item["snr_db"], abs=0.5)
        rel = _db(item["images"][1, 0]) - _db(item["images"][0, 0])
        assert rel.item() == pytest.approx(item["level_db"][1].item(), abs=0.5)
        torch.testing.assert_close(ds[i]["mix"], item["mix"])  # seeded: same item again


def test_dynamic_mixer_on_a_batch_matches_per_item_rendering(bank, corpus_manifest):
    kwargs = dict(segment_seconds=0.5, epoch_size=2, seed=9)
    dry = DynamicMixingDataset(corpus_manifest, bank, **kwargs)
    wet = DynamicMixingDataset(corpus_manifest, bank, render=True, **kwargs)
    batch = next(iter(DataLoader(dry, batch_size=2)))
    assert batch["sources"].shape == (2, 2, 8000) and batch["rir_index"].shape == (2,)
    out = DynamicMixer(RirBank.load(bank))(batch)
    assert out.mix.shape == (2, 4, 8000) and out.images.shape == (2, 2, 4, 8000)
    for b in range(2):
        torch.testing.assert_close(out.mix[b], wet[b]["mix"], atol=1e-6, rtol=1e-5)


def _speech_span(x: torch.Tensor) -> int:
    """Samples from the first to the last non-zero sample of ``x [S]``."""
    nz = torch.nonzero(x).flatten()
    return int(nz[-1] - nz[0] + 1)


def test_dynamic_mixing_joins_short_utterances_to_the_presets_min_speech(tmp_path, corpus_manifest):
    """With ``speakers.min_speech_s`` in the bank's preset, each talker's window holds several
    utterances of the same speaker 0.2 s apart, longer than any one fixture utterance
    (1.2-1.8 s); without it, one utterance, as before."""
    longest = max(e["duration"] for e in read_manifest(corpus_manifest)) * 16000
    spans = {}
    for min_speech in (0.0, 2.5):
        preset = tiny_preset(speakers={"min_speech_s": min_speech})
        path = build_rir_bank(preset, 1, seed=1, noise_sources=1, progress=False).save(
            tmp_path / f"bank{min_speech}.pt"
        )
        ds = DynamicMixingDataset(corpus_manifest, path, segment_seconds=4.0, epoch_size=4, seed=3)
        spans[min_speech] = [_speech_span(ds[i]["sources"][k]) for i in range(4) for k in (0, 1)]
    assert max(spans[0.0]) <= longest
    assert min(spans[2.5]) >= 2.5 * 16000 - 0.2 * 16000 and min(spans[2.5]) > longest
    # the gap between joined utterances is silent
    item = ds[0]["sources"][0]
    nz = torch.nonzero(item).flatten()
    assert (nz.diff() >= round(0.2 * 16000)).any()


def test_an_empty_utterance_is_a_one_line_error(tmp_path):
    """(Joining a talker's utterances to ``speakers.min_speech_s`` relies on it: a speaker
    whose files were all empty would otherwise loop for ever.)"""
    from vae_audio.data.simulate_set import load_mono

    sf.write(tmp_path / "empty.wav", np.zeros(0), 16000)
    with pytest.raises(VaeAudioError, match="empty.wav.* has zero length"):
        load_mono(str(tmp_path / "empty.wav"), 16000)


def test_unseeded_dynamic_mixing_changes_every_access(bank, corpus_manifest):
    ds = DynamicMixingDataset(corpus_manifest, bank, segment_seconds=0.25, n_speakers=1)
    a, b = ds[0], ds[0]
    assert a["sources"].shape == (1, 4000)
    assert not torch.equal(a["noise"], b["noise"])
    with pytest.raises(VaeAudioError, match="n_speakers must be"):
        DynamicMixingDataset(corpus_manifest, bank, n_speakers=3)
