"""The Asterisk prompt corpus: G.722 decoding, voice splits, skips and errors.

Most tests build a fake sounds tree by G.722-ENCODING synthetic voiced signals, so a wrong
decoder (bytes read as PCM, the 8-kHz mode, decoder state carried across files) fails them
without the Debian packages; the last test reads the real packages when they are installed.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import correlate

from vae_audio.cli import main
from vae_audio.data.manifest import read_manifest
from vae_audio.data.prompts_corpus import (
    NON_SPEECH,
    SOURCES,
    build_prompts_corpus,
    decode_g722,
)
from vae_audio.errors import VaeAudioError

G722 = pytest.importorskip("G722", reason="pip install g722 (a dependency of vae_audio)")

SR = 16000
CODEC_DELAY = 22  # samples, QMF analysis + synthesis
REAL_SOUNDS = Path("/usr/share/asterisk/sounds")


def _voiced(seconds: float, f0: float = 140.0, pad: float = 0.3, seed: int = 0) -> np.ndarray:
    """Speech-like ``[S]``: 14 harmonics of a vibrato f0 (< 2.5 kHz), syllable-rate AM,
    ``pad`` s of digital silence either side, peak 0.3."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.08 * np.sin(2 * np.pi * 1.3 * t))) / SR
    x = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 15))
    x = x * (0.5 + 0.5 * np.sin(2 * np.pi * 3.1 * t) ** 2)
    zeros = np.zeros(int(pad * SR))
    return np.concatenate([zeros, 0.3 * x / np.abs(x).max(), zeros])


def _write_g722(path: Path, x: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = np.round(x * 32767).astype(np.int16)
    path.write_bytes(G722.G722(SR, 64000).encode(pcm))


def _si_snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    """Scale-invariant SNR (dB) of ``est`` against ``ref`` (same length)."""
    a = np.dot(est, ref) / np.dot(ref, ref)
    return float(10 * np.log10(np.sum((a * ref) ** 2) / np.sum((est - a * ref) ** 2)))


def _aligned_si_snr_db(original: np.ndarray, excerpt: np.ndarray) -> float:
    """SI-SNR of ``excerpt`` against the stretch of ``original`` it matches best."""
    lag = int(np.argmax(correlate(original, excerpt, mode="valid", method="fft")))
    return _si_snr_db(original[lag : lag + len(excerpt)], excerpt)


@pytest.mark.parametrize("f0", [110.0, 210.0])
def test_decode_inverts_the_encoder(tmp_path, f0):
    x = _voiced(1.0, f0=f0)
    _write_g722(tmp_path / "a.g722", x)
    y = decode_g722(tmp_path / "a.g722")
    assert y.dtype == np.float32 and len(y) == 2 * (tmp_path / "a.g722").stat().st_size
    assert len(y) == len(x)  # 16 kHz out: one sample in per sample out
    # 64-kbit/s G.722 keeps a voiced signal below 4 kHz to ~40 dB after its 22-sample delay
    e, r = y[CODEC_DELAY + 100 : -100], x[100 : len(x) - CODEC_DELAY - 100]
    assert _si_snr_db(r, e) > 30.0
    assert np.dot(e, r) / np.dot(r, r) == pytest.approx(1.0, abs=0.02)  # no gain change
    # a fresh decoder per file: decoding again gives the same samples
    np.testing.assert_array_equal(decode_g722(tmp_path / "a.g722"), y)


def _fake_tree(root: Path) -> dict[str, np.ndarray]:
    """Three language folders with speech, a short prompt, a beep and a silence/ file."""
    signals = {
        "en_US_f_Allison/hello": _voiced(1.2, 150.0, seed=1),
        "en_US_f_Allison/digits/1": _voiced(0.9, 160.0, seed=2),
        "en_US_f_Allison/letters/a": _voiced(0.3, 170.0, seed=3),  # too short once trimmed
        "en_US_f_Allison/beep": _voiced(1.0, 1000.0, seed=4),  # non-speech by name
        "en_US_f_Allison/silence/1": _voiced(1.0, 150.0, seed=5),  # skipped by folder
        "es_MX_f_Allison/hola": _voiced(1.1, 150.0, seed=6),
        "fr_CA_f_June/bonjour": _voiced(1.0, 200.0, seed=7),
        "fr_CA_f_June/digits/2": _voiced(0.8, 210.0, seed=8),
    }
    for name, x in signals.items():
        _write_g722(root / f"{name}.g722", x)
    (root / "it_IT_f_Carlo").mkdir()  # another language: must stay out
    _write_g722(root / "it_IT_f_Carlo" / "ciao.g722", _voiced(1.0))
    return signals


def test_builds_voice_splits_from_decoded_prompts(tmp_path):
    signals = _fake_tree(tmp_path / "sounds")
    out = tmp_path / "corpus"
    kwargs = dict(sounds_dir=tmp_path / "sounds", valid_fraction=0.5, progress=False)
    result = build_prompts_corpus(out, **kwargs)
    assert (result.n_train, result.n_valid, result.n_test, result.n_skipped) == (1, 1, 3, 1)
    train = read_manifest(out / "train.jsonl") + read_manifest(out / "valid.jsonl")
    test = read_manifest(out / "test.jsonl", split="test")
    assert {(e["speaker"], e["language"], e["split"]) for e in train} == {
        ("asterisk_allison", "en_US", "train"),
        ("asterisk_allison", "en_US", "valid"),
    }
    assert {(e["speaker"], e["language"]) for e in test} == {
        ("asterisk_allison", "es_MX"),
        ("asterisk_june", "fr_CA"),
    }
    assert sorted(e["text"] for e in train + test) == [
        "bonjour", "digits/1", "digits/2", "hello", "hola"
    ]  # fmt: skip
    for e in train + test:
        folder = next(s.folder for s in SOURCES if s.language == e["language"])
        assert e["engine"] == "recorded" and e["sample_rate"] == SR
        assert e["subfolder"] == (e["text"].split("/")[0] if "/" in e["text"] else "")
        original = signals[f"{folder}/{e['text']}"]
        info = sf.info(e["path"])
        assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16")
        assert e["duration"] == pytest.approx(info.duration, abs=1e-3)
        # the 0.3-s pads are trimmed to 50 ms each, give or take a 32-ms trimming frame
        voiced_s = len(original) / SR - 0.6
        assert voiced_s + 0.1 - 0.01 <= e["duration"] <= voiced_s + 0.1 + 0.07
        y, _ = sf.read(e["path"])
        assert 10 * np.log10(np.mean(y**2)) == pytest.approx(-25.0, abs=0.1)
        assert _aligned_si_snr_db(original, y) > 30.0  # decoded, not garbage
    result_seconds = {k: round(v, 3) for k, v in result.seconds.items()}
    assert result_seconds == {
        (s.speaker, s.language): round(
            sum(e["duration"] for e in train + test if e["language"] == s.language), 3
        )
        for s in SOURCES
    }
    assert "CC BY-SA 3.0" in (out / "CREDITS.txt").read_text()
    # same settings: resumes without rewriting; another seed is refused
    stamp = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    assert build_prompts_corpus(out, **kwargs) == result
    assert all(p.stat().st_mtime_ns == t for p, t in stamp.items())
    with pytest.raises(VaeAudioError, match="seed differ"):
        build_prompts_corpus(out, seed=1, **kwargs)


def test_valid_draw_depends_on_the_seed_only(tmp_path):
    root = tmp_path / "sounds"
    for folder in ("es_MX_f_Allison", "fr_CA_f_June"):
        _write_g722(root / folder / "x.g722", _voiced(0.7))
    for i in range(8):
        _write_g722(root / "en_US_f_Allison" / f"p{i}.g722", _voiced(0.7, seed=i))
    picks = []
    for run, seed in enumerate((0, 0, 1, 2)):
        out = tmp_path / f"c{run}"
        build_prompts_corpus(out, sounds_dir=root, seed=seed, valid_fraction=0.25, progress=False)
        valid = {e["text"] for e in read_manifest(out / "valid.jsonl")}
        train = {e["text"] for e in read_manifest(out / "train.jsonl")}
        assert len(valid) == 2 and valid.isdisjoint(train) and len(train) == 6
        picks.append(valid)
    assert picks[0] == picks[1] and len({frozenset(p) for p in picks}) > 1


def test_missing_language_folder_names_the_packages(tmp_path):
    root = tmp_path / "sounds"
    _write_g722(root / "en_US_f_Allison" / "a.g722", _voiced(1.0))
    _write_g722(root / "es_MX_f_Allison" / "a.g722", _voiced(1.0))
    (root / "fr_CA_f_June").mkdir()
    (root / "fr_CA_f_June" / "a.wav").write_bytes(b"")  # the -wav package, not -g722
    install = (
        "apt-get install asterisk-core-sounds-en-g722 asterisk-core-sounds-es-g722 "
        "asterisk-core-sounds-fr-g722"
    )
    with pytest.raises(VaeAudioError) as err:
        build_prompts_corpus(tmp_path / "c", sounds_dir=root, progress=False)
    message = str(err.value)
    assert "\n" not in message and install in message
    assert str(root / "fr_CA_f_June") in message and "en_US" not in message
    assert not (tmp_path / "c").exists()


def test_missing_codec_says_pip_install(tmp_path, monkeypatch):
    _fake_tree(tmp_path / "sounds")
    monkeypatch.setitem(sys.modules, "G722", None)  # import G722 -> ImportError
    with pytest.raises(VaeAudioError, match="pip install g722"):
        build_prompts_corpus(tmp_path / "c", sounds_dir=tmp_path / "sounds", progress=False)
    assert not (tmp_path / "c").exists()


def test_prompts_command(tmp_path, capsys):
    _fake_tree(tmp_path / "sounds")
    argv = ["corpus", "prompts", str(tmp_path / "c"), "--sounds", str(tmp_path / "sounds")]
    assert main([*argv, "--valid-fraction", "0"]) == 0
    printed = capsys.readouterr().out
    assert "train 2, valid 0, test 3" in printed and "asterisk_june fr_CA 0.0 min" in printed
    assert main(["corpus", "prompts", str(tmp_path / "d"), "--sounds", str(tmp_path)]) == 2
    assert "apt-get install asterisk-core-sounds-en-g722" in capsys.readouterr().err


@pytest.mark.asterisk
@pytest.mark.skipif(
    not all(any((REAL_SOUNDS / s.folder).glob("*.g722")) for s in SOURCES),
    reason="the Asterisk prompts are not installed (apt-get install "
    "asterisk-core-sounds-en-g722 asterisk-core-sounds-es-g722 asterisk-core-sounds-fr-g722; "
    "`make test` installs them)",
)
def test_real_asterisk_packages(tmp_path):
    result = build_prompts_corpus(tmp_path / "c", progress=False)
    assert set(result.seconds) == {(s.speaker, s.language) for s in SOURCES}
    assert all(s > 15 * 60 for s in result.seconds.values())  # ~23-29 min each (1.6.1)
    train = read_manifest(tmp_path / "c" / "train.jsonl")
    test = read_manifest(tmp_path / "c" / "test.jsonl")
    assert {e["speaker"] for e in train} == {"asterisk_allison"}
    assert {e["speaker"] for e in test} == {"asterisk_allison", "asterisk_june"}
    assert all(e["duration"] >= 0.5 and e["sample_rate"] == SR for e in train + test)
    assert not {e["text"] for e in train + test} & NON_SPEECH
    assert not any(e["text"].startswith("silence/") for e in train + test)
    for e in train[::50] + test[::100]:
        info = sf.info(e["path"])
        assert info.samplerate == SR and info.duration == pytest.approx(e["duration"], abs=1e-3)
        y, _ = sf.read(e["path"])
        assert np.abs(y).max() < 0.99 and 10 * np.log10(np.mean(y**2)) > -26.0
