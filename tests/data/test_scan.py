import numpy as np
import pytest
import soundfile as sf

from vae_audio.data.manifest import read_manifest
from vae_audio.data.scan import scan_corpus
from vae_audio.errors import VaeAudioError


def _wav(path, sr=16000, seconds=0.1):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(sr * seconds)) / sr
    sf.write(path, 0.1 * np.sin(2 * np.pi * 220 * t), sr)


@pytest.fixture()
def tree(tmp_path):
    root = tmp_path / "corpora"
    libri = root / "LibriSpeech"
    _wav(libri / "train-clean-100/19/198/19-198-0001.flac")
    _wav(libri / "train-clean-100/19/198/19-198-0002.flac")
    (libri / "train-clean-100/19/198/19-198.trans.txt").write_text(
        "19-198-0001 NORTHANGER ABBEY\n19-198-0002 CHAPTER ONE\n"
    )
    _wav(libri / "dev-clean/84/121123/84-121123-0000.flac")
    vctk = root / "VCTK"
    _wav(vctk / "wav48_silence_trimmed/p225/p225_001_mic1.flac", sr=48000)
    (vctk / "txt/p225").mkdir(parents=True)
    (vctk / "txt/p225/p225_001.txt").write_text("Please call Stella.\n")
    _wav(vctk / "wav48/p226/p226_002.wav", sr=48000)
    _wav(root / "wsj0/si_tr_s/011/011c0201.wav")
    _wav(root / "wsj0/si_dt_05/050/050a0501.wav")
    arctic = root / "cmu_us_bdl_arctic"
    _wav(arctic / "wav/arctic_a0001.wav")
    (arctic / "etc").mkdir()
    (arctic / "etc/txt.done.data").write_text(
        '( arctic_a0001 "Author of the danger trail, Philip Steels, etc." )\n'
    )
    _wav(root / "misc/alice/take1.wav")
    _wav(root / "misc/bob/low.wav", sr=8000)
    (root / "misc/broken.wav").write_bytes(b"RIFF not really a wave file")
    (root / "misc/notes.txt").write_text("not audio")
    return root


def test_every_layout_is_recognised(tree, tmp_path):
    manifest = tmp_path / "out" / "corpus.jsonl"
    result = scan_corpus(tree, manifest, sr=16000, valid_percent=0.0, progress=False)
    assert result.n_files == 11
    assert dict(result.layouts) == {
        "librispeech": 3,
        "vctk": 2,
        "wsj0": 2,
        "arctic": 1,
        "generic": 1,
    }
    assert [p for p, _ in result.unreadable] == [str(tree / "misc/broken.wav")]
    assert result.low_rate == [str(tree / "misc/bob/low.wav")]
    assert "1 unreadable skipped" in result.summary() and "1 below" in result.summary()
    by_name = {e["path"].split("/")[-1]: e for e in read_manifest(manifest)}
    expected = {
        "19-198-0001.flac": ("librispeech", "19", "NORTHANGER ABBEY", "train"),
        "19-198-0002.flac": ("librispeech", "19", "CHAPTER ONE", "train"),
        "84-121123-0000.flac": ("librispeech", "84", "", "valid"),
        "p225_001_mic1.flac": ("vctk", "p225", "Please call Stella.", "train"),
        "p226_002.wav": ("vctk", "p226", "", "train"),
        "011c0201.wav": ("wsj0", "011", "", "train"),
        "050a0501.wav": ("wsj0", "050", "", "valid"),
        "arctic_a0001.wav": (
            "arctic",
            "bdl",
            "Author of the danger trail, Philip Steels, etc.",
            "train",
        ),
        "take1.wav": ("generic", "alice", "", "train"),
    }
    assert set(by_name) == set(expected)
    for name, (layout, speaker, text, split) in expected.items():
        e = by_name[name]
        assert (e["corpus"], e["speaker"], e["text"], e["split"]) == (layout, speaker, text, split)
    assert by_name["p225_001_mic1.flac"]["sample_rate"] == 48000
    assert set(result.split_manifests) == {"train", "valid"}
    valid = read_manifest(tmp_path / "out" / "corpus.valid.jsonl")
    assert sorted(e["path"].split("/")[-1] for e in valid) == [
        "050a0501.wav",
        "84-121123-0000.flac",
    ]
    assert len(read_manifest(result.split_manifests["train"])) == 7
    assert by_name["take1.wav"]["duration"] == pytest.approx(0.1)


def test_hash_split_and_rate_threshold(tree, tmp_path):
    manifest = tmp_path / "all.jsonl"
    result = scan_corpus(tree, manifest, sr=0, valid_percent=100.0, progress=False)
    assert result.low_rate == [] and sum(result.layouts.values()) == 10
    splits = {e["path"].split("/")[-1]: e["split"] for e in read_manifest(manifest)}
    assert splits["low.wav"] == splits["take1.wav"] == splits["p226_002.wav"] == "valid"
    assert splits["19-198-0001.flac"] == "train"  # the subset folder wins


def test_scan_errors(tmp_path):
    with pytest.raises(VaeAudioError, match="does not exist"):
        scan_corpus(tmp_path / "nope", tmp_path / "m.jsonl", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(VaeAudioError, match="no .wav/.flac"):
        scan_corpus(tmp_path / "empty", tmp_path / "m.jsonl", progress=False)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.wav").write_bytes(b"junk")
    with pytest.raises(VaeAudioError, match="none of the 1 audio files"):
        scan_corpus(tmp_path / "bad", tmp_path / "m.jsonl", progress=False)
