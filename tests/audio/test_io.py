"""Audio I/O: one clear error per kind of bad input, exact round trips, resampling, safe writes."""

import os

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from vae_audio.audio import audio_info, load_audio, resample, save_audio
from vae_audio.errors import VaeAudioError
from vae_audio.fileio import atomic_write


def _sine(freq: float, sr: int, seconds: float) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("reader", [load_audio, audio_info])
def test_missing_file(tmp_path, reader):
    path = tmp_path / "nope.wav"
    with pytest.raises(VaeAudioError, match=r"nope\.wav' does not exist; check the path"):
        reader(path)


@pytest.mark.parametrize("reader", [load_audio, audio_info])
def test_folder_is_not_audio(tmp_path, reader):
    with pytest.raises(VaeAudioError, match="is a folder"):
        reader(tmp_path)


@pytest.mark.parametrize("reader", [load_audio, audio_info])
def test_text_file_is_not_audio(tmp_path, reader):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n")
    with pytest.raises(VaeAudioError, match=r"notes\.wav' is not a readable audio file.*convert"):
        reader(path)


@pytest.mark.parametrize("reader", [load_audio, audio_info])
def test_zero_length(tmp_path, reader):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros((0, 2), np.float32), 16000, subtype="FLOAT")
    with pytest.raises(VaeAudioError, match=r"empty\.wav' has zero length"):
        reader(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tmp_path, bad):
    path = tmp_path / "broken.wav"
    data = np.zeros((100, 2), np.float32)
    data[37, 1] = bad
    sf.write(path, data, 16000, subtype="FLOAT")
    with pytest.raises(VaeAudioError, match=r"broken\.wav' contains 1 NaN/Inf samples"):
        load_audio(path)


@pytest.mark.parametrize("ext", ["wav", "flac"])
def test_multichannel_round_trip_and_info(tmp_path, ext):
    rng = np.random.default_rng(0)
    if ext == "wav":  # float32 WAV keeps every bit, even values beyond [-1, 1]
        wav = torch.from_numpy(rng.standard_normal((4, 1234)).astype(np.float32))
        subtype = "FLOAT"
    else:  # 16-bit FLAC: exact for values on the 16-bit grid
        wav = torch.from_numpy(rng.integers(-32768, 32767, (3, 999)) / 32768.0).float()
        subtype = "PCM_16"
    path = save_audio(tmp_path / f"x.{ext}", wav, 22050, subtype=subtype)
    back, sr = load_audio(path)
    assert sr == 22050
    assert back.dtype == torch.float32
    assert torch.equal(back, wav)
    info = audio_info(path)
    assert (info.sample_rate, info.channels, info.frames) == (22050, wav.shape[0], wav.shape[1])
    assert info.duration == pytest.approx(wav.shape[1] / 22050)


def test_mono_numpy_saves_as_one_channel(tmp_path):
    x = _sine(440, 16000, 0.1)
    save_audio(tmp_path / "m.wav", x, 16000)
    back, _ = load_audio(tmp_path / "m.wav")
    assert back.shape == (1, x.size)
    np.testing.assert_array_equal(back[0].numpy(), x)


def test_resampled_sine_keeps_its_frequency(tmp_path):
    src_sr, dst_sr, freq = 44100, 16000, 440.0
    x = _sine(freq, src_sr, 1.0)
    path = tmp_path / "sine.wav"
    sf.write(path, np.stack([x, -x], axis=1), src_sr, subtype="FLOAT")
    y, sr = load_audio(path, sr=dst_sr)
    assert sr == dst_sr
    assert y.shape == (2, int(np.ceil(x.size * dst_sr / src_sr)))
    # Same sine sampled directly at the new rate, away from the filter's edge effects.
    expected = _sine(freq, dst_sr, 1.0)
    interior = slice(200, -200)
    np.testing.assert_allclose(y[0, interior].numpy(), expected[interior], atol=5e-4)
    np.testing.assert_allclose(y[1].numpy(), -y[0].numpy(), atol=1e-7)
    # Independent resampler (soxr via librosa) agrees.
    ref = librosa.resample(x, orig_sr=src_sr, target_sr=dst_sr, res_type="soxr_hq")
    np.testing.assert_allclose(y[0, interior].numpy(), ref[interior], atol=5e-4)
    # Spectral peak at 440 Hz (1-s signal: bins are 1 Hz apart).
    peak_hz = np.argmax(np.abs(np.fft.rfft(y[0].numpy()))) * dst_sr / y.shape[1]
    assert abs(peak_hz - freq) <= 1.0


def test_no_resampling_when_rate_matches(tmp_path):
    x = _sine(1000, 16000, 0.05)
    sf.write(tmp_path / "a.wav", x, 16000, subtype="FLOAT")
    y, sr = load_audio(tmp_path / "a.wav", sr=16000)
    assert sr == 16000 and torch.equal(y[0], torch.from_numpy(x))
    assert resample(y, 16000, 16000) is y
    with pytest.raises(VaeAudioError, match="positive integer"):
        load_audio(tmp_path / "a.wav", sr=0)


def test_save_refuses_protected_input(tmp_path):
    src = tmp_path / "input.wav"
    sf.write(src, _sine(440, 16000, 0.1), 16000, subtype="FLOAT")
    before = src.read_bytes()
    other_spelling = tmp_path / "sub" / ".." / "input.wav"
    for target in (src, other_spelling, os.path.relpath(src)):
        with pytest.raises(VaeAudioError, match="refusing to write.*inputs are never overwritten"):
            save_audio(target, torch.zeros(1, 10), 16000, protect=[src])
    link = tmp_path / "link.wav"
    link.symlink_to(src)
    with pytest.raises(VaeAudioError, match="refusing to write"):
        save_audio(link, torch.zeros(1, 10), 16000, protect=[src])
    assert src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input.wav", "link.wav"]


def test_failed_write_leaves_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "out.wav"
    save_audio(target, torch.ones(1, 50) * 0.25, 16000)
    before = target.read_bytes()

    def broken_write(file, data, *args, **kwargs):
        with open(file, "wb") as f:
            f.write(b"RIFF partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(sf, "write", broken_write)
    with pytest.raises(RuntimeError, match="disk full"):
        save_audio(target, torch.zeros(1, 50), 16000)
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]
    assert target.read_bytes() == before  # the previous version is intact


def test_atomic_write_commits_only_on_success(tmp_path):
    target = tmp_path / "a" / "b" / "result.json"  # parents are created
    with atomic_write(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".json"
        tmp.write_text("{}")
        assert not target.exists()
    assert target.read_text() == "{}"
    mode = target.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    with pytest.raises(ValueError), atomic_write(target) as tmp:
        tmp.write_text("half")
        raise ValueError("boom")
    assert target.read_text() == "{}"
    assert [p.name for p in target.parent.iterdir()] == ["result.json"]


def test_save_creates_parents_and_reports_unwritable_folder(tmp_path):
    out = save_audio(tmp_path / "x" / "y" / "z.wav", torch.zeros(2, 10), 8000)
    assert audio_info(out).channels == 2
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(VaeAudioError, match=r"cannot create output folder.*blocker.*writable"):
        save_audio(blocker / "out.wav", torch.zeros(1, 10), 8000)


@pytest.mark.parametrize(
    "wav,kwargs,match",
    [
        (torch.tensor([[0.0, float("nan")]]), {}, "NaN/Inf"),
        (torch.tensor([[0.0, float("inf")]]), {}, "NaN/Inf"),
        (torch.zeros(2, 3, 10), {}, r"must be \[M, S\] or \[S\]"),
        (torch.zeros(1, 0), {}, "zero samples"),
        (torch.full((1, 10), 1.5), {"subtype": "PCM_16"}, "would clip"),
    ],
)
def test_save_rejects_bad_waveforms(tmp_path, wav, kwargs, match):
    with pytest.raises(VaeAudioError, match=match):
        save_audio(tmp_path / "bad.wav", wav, 16000, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_save_rejects_unknown_extension(tmp_path):
    with pytest.raises(VaeAudioError, match=r"unknown audio extension '\.xyz'"):
        save_audio(tmp_path / "out.xyz", torch.zeros(1, 10), 16000)


def test_save_detaches_tensors_that_require_grad(tmp_path):
    # A tensor that requires grad is detached; the file matches its values.
    wav = torch.linspace(-1, 1, 64).reshape(2, 32).requires_grad_(True)
    save_audio(tmp_path / "g.wav", wav * 1.0, 16000)
    back, _ = load_audio(tmp_path / "g.wav")
    assert torch.equal(back, wav.detach())


@pytest.mark.parametrize("subtype,metadata", [("PCM_16", False), ("FLOAT", True)])
def test_truncated_wav_reports_the_frames_its_header_declares(tmp_path, subtype, metadata):
    """A WAV cut short is read by libsndfile without complaint; audio_info compares the
    header's data size with what is there (also past a LIST chunk written before data)."""
    path = tmp_path / "full.wav"
    with sf.SoundFile(path, "w", 8000, 3, subtype=subtype) as fh:
        if metadata:
            fh.title = "odd-length title"  # a LIST chunk ahead of the data chunk
        fh.write(np.zeros((4000, 3), dtype=np.float32))
    assert audio_info(path).missing_frames == 0
    cut = tmp_path / "cut.wav"
    raw = path.read_bytes()
    cut.write_bytes(raw[: len(raw) - 2500 * 3 * (2 if subtype == "PCM_16" else 4)])
    info = audio_info(cut)
    assert info.frames + info.missing_frames == 4000
    assert info.frames == sf.info(cut).frames < 4000
    assert info.missing_seconds == pytest.approx(info.missing_frames / 8000)
    flac = tmp_path / "full.flac"
    sf.write(flac, np.zeros((4000, 3), dtype=np.float32), 8000)
    assert audio_info(flac).missing_frames == 0  # other formats: left to libsndfile


def test_stale_temp_files_of_atomic_write_are_removed(tmp_path):
    """A temp file named as atomic_write names them (what a process killed mid-write leaves
    behind) is removed; other files, dot files included, are kept."""
    from vae_audio.fileio import remove_stale_temps

    names = []
    for target in ("src1.wav", "separation.json", "model"):
        with atomic_write(tmp_path / target) as tmp:
            names.append(tmp.name)
            tmp.write_bytes(b"x")
    keep = ["src1.wav", "separation.json", "model", ".hidden.tmp", ".src1.wav", "a.tmp.wav"]
    for name in keep[3:]:
        (tmp_path / name).write_bytes(b"x")
    for name in names:  # left behind by a killed writer
        (tmp_path / name).write_bytes(b"partial")
    removed = remove_stale_temps(tmp_path)
    assert sorted(p.name for p in removed) == sorted(names)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)
