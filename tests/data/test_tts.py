import itertools
import shutil

import numpy as np
import pytest
import soundfile as sf

from vae_audio.data import tts_engines
from vae_audio.data.manifest import read_manifest
from vae_audio.data.sentences import sentence_pool
from vae_audio.data.tts_corpus import _heldout, _plan, build_tts_corpus
from vae_audio.data.tts_engines import Voice, discover_voices
from vae_audio.errors import VaeAudioError


def _needs(binary, package=None, how="`make test` installs it"):
    return pytest.mark.skipif(
        shutil.which(binary) is None,
        reason=f"{binary} is not installed (apt-get install {package or binary}; {how})",
    )


def _voices():
    return [Voice("flite", v) for v in ("kal", "awb", "rms", "slt", "kal16")] + [
        Voice("espeak-ng", f"en-us+{v}") for v in tts_engines.ESPEAK_VARIANTS
    ]


def test_plan_balances_speakers_and_holds_out_whole_voices():
    voices = _voices()
    held = _heldout(voices, seed=0, fraction=0.1)
    assert sum(s.startswith("flite") for s in held) == 1  # max(1, round(0.5))
    assert sum(s.startswith("espeak") for s in held) == 1  # round(1.2)
    items = list(itertools.islice(_plan(voices, sentence_pool(), 0, held, 0.05), 2 * 17))
    assert sorted(i["speaker"] for i in items[:17]) == sorted(v.speaker for v in voices)
    assert all(i["split"] == "valid" for i in items if i["speaker"] in held)
    again = list(itertools.islice(_plan(voices, sentence_pool(), 0, held, 0.05), 2 * 17))
    other = list(itertools.islice(_plan(voices, sentence_pool(), 1, held, 0.05), 2 * 17))
    assert items == again and items != other
    assert len({i["text"] for i in items}) == len(items)
    for i in items:
        assert i["relpath"] == f"wav/{i['speaker']}/{i['speaker']}_{i['index']:06d}.wav"


def test_missing_engines_name_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.setattr(tts_engines.shutil, "which", lambda binary: None)
    voices, missing = discover_voices(("flite", "festival"))
    assert voices == []
    assert "apt-get install flite" in missing[0]
    assert "apt-get install festival festvox-kallpc16k" in missing[1]
    with pytest.raises(VaeAudioError, match="no TTS engine available.*apt-get install flite"):
        build_tts_corpus(tmp_path / "c", max_utterances=1, engines=("flite",), progress=False)
    with pytest.raises(VaeAudioError, match="unknown TTS engine"):
        discover_voices(("sam",))


def _check_corpus(out, engine, n):
    entries = [
        e
        for split in ("train", "valid")
        if (out / f"{split}.jsonl").stat().st_size  # a tiny corpus may leave one split empty
        for e in read_manifest(out / f"{split}.jsonl")
    ]
    assert len(entries) == n
    pool = set(sentence_pool())
    for e in entries:
        info = sf.info(e["path"])
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert e["engine"] == engine and e["speaker"].startswith(engine + "_")
        assert e["text"] in pool and e["split"] in ("train", "valid")
        assert e["duration"] == pytest.approx(info.duration, abs=1e-3)
        x, _ = sf.read(e["path"])
        level = 10 * np.log10(np.mean(x**2))
        assert level == pytest.approx(-25.0, abs=0.2) or np.abs(x).max() > 0.98
        frames = np.sqrt(np.mean(x[: len(x) // 400 * 400].reshape(-1, 400) ** 2, axis=1))
        loud = np.flatnonzero(frames > frames.max() * 10 ** (-40 / 20))
        assert loud[0] * 400 <= 0.1 * 16000 and (len(frames) - 1 - loud[-1]) * 400 <= 0.1 * 16000
    return entries


@pytest.mark.tts
@pytest.mark.parametrize("engine", ["flite", "espeak-ng"])
def test_builds_utterances_with_engine(engine, tmp_path):
    if shutil.which(engine) is None:
        pytest.skip(f"{engine} is not installed (apt-get install {engine}; `make test` does)")
    kwargs = dict(max_utterances=3, seed=4, engines=(engine,), progress=False)
    result = build_tts_corpus(tmp_path / "a", **kwargs)
    assert result.n_train + result.n_valid == 3 and result.missing_engines == ()
    first = _check_corpus(tmp_path / "a", engine, 3)
    build_tts_corpus(tmp_path / "b", **kwargs)
    for e, f in zip(first, _check_corpus(tmp_path / "b", engine, 3), strict=True):
        assert (e["speaker"], e["text"]) == (f["speaker"], f["text"])
        np.testing.assert_array_equal(sf.read(e["path"])[0], sf.read(f["path"])[0])


@pytest.mark.tts
@_needs("flite")
def test_rebuild_reuses_grows_and_refuses(tmp_path):
    out = tmp_path / "c"
    kwargs = dict(seed=0, engines=("flite",), progress=False)
    build_tts_corpus(out, max_utterances=2, **kwargs)
    stamp = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    build_tts_corpus(out, max_utterances=3, **kwargs)
    assert all(p.stat().st_mtime_ns == t for p, t in stamp.items())  # reused, not rewritten
    assert len(list(out.rglob("*.wav"))) == 3
    with pytest.raises(VaeAudioError, match="seed differ"):
        build_tts_corpus(out, max_utterances=3, seed=1, engines=("flite",), progress=False)


@pytest.mark.tts
@_needs("flite")
def test_missing_engine_is_skipped_when_another_works(monkeypatch, tmp_path):
    which = shutil.which
    monkeypatch.setattr(
        tts_engines.shutil, "which", lambda b: None if b == "espeak-ng" else which(b)
    )
    result = build_tts_corpus(
        tmp_path / "c", max_utterances=2, engines=("flite", "espeak-ng"), progress=False
    )
    assert result.missing_engines == (tts_engines.missing_engine_message("espeak-ng"),)
    assert "apt-get install espeak-ng" in result.missing_engines[0]
    assert result.n_speakers == 5


@pytest.mark.tts
@_needs(
    "text2wave",
    "festival festvox-kallpc16k",
    "optional: `make test` leaves festival out, its voices would change the default corpus",
)
def test_festival_voice(tmp_path):
    result = build_tts_corpus(
        tmp_path / "f", max_utterances=1, engines=("festival",), progress=False
    )
    _check_corpus(tmp_path / "f", "festival", 1)
    assert result.n_speakers >= 1


@pytest.mark.tts
@_needs("flite")
def test_test_split_is_voice_disjoint_and_leaves_train_unchanged(tmp_path):
    sentences = [
        "Turn left here.",
        "The red cup is full.",
        "Bring me the map.",
        "It rains at noon.",
        "Open the door.",
        "We sang all day.",
        "Five birds flew by.",
    ]
    out = tmp_path / "c"
    kwargs = dict(max_utterances=7, seed=0, engines=("flite",), sentences=sentences)
    result = build_tts_corpus(out, progress=False, **kwargs)
    assert result.heldout_speakers == ("flite_slt",)
    train = read_manifest(out / "train.jsonl", split="train")
    valid = read_manifest(out / "valid.jsonl", split="valid")
    test = read_manifest(out / "test.jsonl", split="test")
    assert {e["speaker"] for e in test} == {"flite_slt"}
    assert not {e["speaker"] for e in test} & {e["speaker"] for e in train}
    # test = valid's lines of the held-out voices, relabelled; valid keeps them
    assert test == [{**e, "split": "test"} for e in valid if e["speaker"] == "flite_slt"]
    assert (result.n_train, result.n_valid, result.n_test) == (5, 2, 1)
    # train as written by the builder before test.jsonl existed (same seed and settings)
    assert [(e["speaker"], e["text"]) for e in train] == [
        ("flite_awb", "The red cup is full."),
        ("flite_kal16", "It rains at noon."),
        ("flite_rms", "Bring me the map."),
        ("flite_awb", "We sang all day."),
        ("flite_rms", "Open the door."),
    ]
    with pytest.raises(VaeAudioError, match="no entries with split 'train'"):
        read_manifest(out / "test.jsonl", split="train")


def test_forced_hold_out_counts_towards_each_engines_share():
    voices = _voices()
    assert _heldout(voices, seed=0, fraction=0.1, forced=frozenset()) == _heldout(
        voices, seed=0, fraction=0.1
    )
    forced = frozenset({"flite_kal", "espeak-ng_en-us+m3", "festival_absent"})
    held = _heldout(voices, seed=0, fraction=0.1, forced=forced)
    assert held == {"flite_kal", "espeak-ng_en-us+m3"}  # each quota (1) filled by the forced
    held = _heldout(voices, seed=0, fraction=0.5, forced=forced)
    espeak = {s for s in held if s.startswith("espeak")}
    assert "espeak-ng_en-us+m3" in espeak and len(espeak) == 6  # topped up to round(0.5 * 12)
    assert "flite_kal" in held and sum(s.startswith("flite") for s in held) == 2


_LISTING = """Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  af              --/M      Afrikaans          gmw/af
 2  en-gb           --/M      English_(GB)       gmw/en
 5  en-us           --/M      English_(US)       gmw/en-US
 5  en              --/M      en-mb              mb/mb-en1
 5  fr-fr           --/M      French             roa/fr
 5  fr-be           --/M      French_Belgium     roa/fr-BE
"""
_VARIANTS = """Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  variant         --/M      Adam               !v/adam
 5  variant         --/M      Male 1             !v/m1
 5  variant         --/M      whisper            !v/whisper
 5  variant         --/F      Female 2           !v/f2
"""


def test_espeak_languages_and_variants_are_chosen_from_its_listing(monkeypatch):
    def fake_run(cmd, what, stdin=None):
        if cmd[1] == "--voices=variant":
            return _VARIANTS
        lines = _LISTING.splitlines()
        return "\n".join(lines if cmd[1] == "--voices" else lines[:1] + lines[2:5]) + "\n"

    monkeypatch.setattr(tts_engines, "_run", fake_run)
    monkeypatch.setattr(tts_engines.shutil, "which", lambda binary: "/usr/bin/" + binary)

    def names(**kw):
        return [v.name for v in discover_voices(("espeak-ng",), **kw)[0]]

    assert names() == [
        f"{lang}+{v}" for lang in ("en-gb", "en-us") for v in tts_engines.ESPEAK_VARIANTS
    ]
    langs = {n.split("+")[0] for n in names(languages="all")}
    assert langs == {"af", "en-gb", "en-us", "fr-fr", "fr-be"}  # the mbrola voice is left out
    assert {n.split("+")[0] for n in names(languages=("all", "-en"))} == {"af", "fr-fr", "fr-be"}
    assert {n.split("+")[0] for n in names(languages=("fr", "en-us"))} == {
        "en-us",
        "fr-fr",
        "fr-be",
    }
    variants = [n.split("+")[1] for n in names(variants="all") if n.startswith("en-gb+")]
    assert variants == [*tts_engines.ESPEAK_VARIANTS, "adam"]  # no whisper, no duplicates
    assert names(languages=("af",), variants=("f2", "adam")) == ["af+f2", "af+adam"]
    with pytest.raises(VaeAudioError, match="unknown espeak-ng variant"):
        names(variants=("m9",))
    with pytest.raises(VaeAudioError, match="no voice for the language"):
        names(languages=("xx",))


@pytest.mark.tts
@_needs("flite")
def test_hold_out_keeps_named_speakers_out_of_train(tmp_path):
    from vae_audio.data.cli import _hold_out

    manifest = tmp_path / "other.jsonl"
    manifest.write_text('{"path": "a.wav", "speaker": "flite_kal"}\n')
    kwargs = dict(max_utterances=10, seed=0, engines=("flite",), progress=False)
    result = build_tts_corpus(tmp_path / "c", hold_out=_hold_out([str(manifest)]), **kwargs)
    assert result.heldout_speakers == ("flite_kal",)  # instead of the default draw, flite_slt
    train = read_manifest(tmp_path / "c" / "train.jsonl")
    assert "flite_kal" not in {e["speaker"] for e in train}
    assert "flite_slt" in {e["speaker"] for e in train}
    assert {e["speaker"] for e in read_manifest(tmp_path / "c" / "test.jsonl")} == {"flite_kal"}
    with pytest.raises(VaeAudioError, match="hold_out differ"):
        build_tts_corpus(tmp_path / "c", **kwargs)  # the record keeps the held-out speakers
