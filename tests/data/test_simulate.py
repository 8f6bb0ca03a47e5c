import json

import numpy as np
import pytest
import soundfile as sf

from vae_audio.data.manifest import read_manifest
from vae_audio.data.presets import load_preset
from vae_audio.data.simulate import simulate_mixture
from vae_audio.data.simulate_set import simulate_dataset
from vae_audio.errors import VaeAudioError

from .conftest import tiny_preset


def _read(path):
    data, sr = sf.read(path, dtype="float32", always_2d=True)  # [S, M]
    return data.T.astype(np.float64), sr


def _db(x):
    return 10 * np.log10(np.mean(x**2))


def test_files_read_back_obey_mix_equals_sources_plus_noise(simulated_set):
    entries = read_manifest(simulated_set / "manifest.jsonl", require=("mix", "sources", "noise"))
    assert [e["id"] for e in entries] == ["000000", "000001"]
    for e in entries:
        mix, sr = _read(e["mix"])
        srcs = [_read(p)[0] for p in e["sources"]]
        noise, _ = _read(e["noise"])
        assert sr == e["sample_rate"] == 16000 and mix.shape == (4, 16000)
        assert sf.info(e["mix"]).subtype == "FLOAT" and len(srcs) == e["n_speakers"] == 2
        np.testing.assert_allclose(mix, sum(srcs) + noise, rtol=0, atol=1e-5)
        assert np.abs(mix).max() <= 0.99 + 1e-6


def test_requested_snr_and_level_come_out(simulated_set):
    for e in read_manifest(simulated_set / "manifest.jsonl", require=("mix",)):
        srcs = [_read(p)[0][0] for p in e["sources"]]  # reference mic 0
        noise = _read(e["noise"])[0][0]
        assert _db(sum(srcs)) - _db(noise) == pytest.approx(12.0, abs=0.5)
        assert _db(srcs[1]) - _db(srcs[0]) == pytest.approx(3.0, abs=0.5)
        meta = json.loads(open(e["meta"]).read())
        assert meta["snr_db"] == 12.0 and meta["seed"] == [7, int(e["id"])]
        assert len(meta["utterances"]) == 2
        assert meta["utterances"][0]["speaker"] != meta["utterances"][1]["speaker"]
        assert len(meta["mic_positions"]) == 4 and 0.15 <= meta["rt60"] <= 0.2


def test_same_seed_same_files_any_jobs_other_seed_differs(tmp_path, corpus_manifest, simulated_set):
    preset = tiny_preset(speakers={"level_db": 3.0})
    again = simulate_dataset(
        corpus_manifest, tmp_path / "a", 2, preset=preset, seed=7, jobs=2, progress=False
    )
    other = simulate_dataset(
        corpus_manifest, tmp_path / "b", 1, preset=preset, seed=8, progress=False
    )
    # compare samples: float WAV headers carry a PEAK chunk with a timestamp
    for name in ("mix.wav", "src1.wav", "src2.wav", "noise.wav"):
        for i in ("000000", "000001"):
            assert np.array_equal(
                _read(again.out / i / name)[0], _read(simulated_set / i / name)[0]
            )
        assert not np.allclose(
            _read(other.out / "000000" / name)[0], _read(simulated_set / "000000" / name)[0]
        )
    meta = (again.out / "000001" / "meta.json").read_text()
    assert meta == (simulated_set / "000001" / "meta.json").read_text()


def test_rebuild_resumes_grows_or_refuses(tmp_path, corpus_manifest):
    preset = tiny_preset()
    first = simulate_dataset(corpus_manifest, tmp_path / "s", 1, preset=preset, progress=False)
    grown = simulate_dataset(corpus_manifest, tmp_path / "s", 2, preset=preset, progress=False)
    assert (first.n_reused, grown.n_reused, grown.n_mixtures) == (0, 1, 2)
    with pytest.raises(VaeAudioError, match="seed differ"):
        simulate_dataset(corpus_manifest, tmp_path / "s", 2, preset=preset, seed=1, progress=False)
    (tmp_path / "stranger").mkdir()
    (tmp_path / "stranger" / "notes.txt").write_text("x")
    with pytest.raises(VaeAudioError, match="not empty"):
        simulate_dataset(corpus_manifest, tmp_path / "stranger", 1, preset=preset, progress=False)


def test_too_few_speakers_is_an_error(tmp_path, corpus_manifest):
    valid = corpus_manifest.parent / "valid.jsonl"  # 2 speakers
    with pytest.raises(VaeAudioError, match="distinct talkers"):
        simulate_dataset(
            valid,
            tmp_path / "s",
            1,
            split="valid",
            preset=tiny_preset(speakers={"count": 3}),
            progress=False,
        )


@pytest.mark.parametrize("kind", ["babble", "mixed", "white", "none"])
def test_noise_kinds(kind):
    rng = np.random.default_rng(0)
    talk = [np.sin(np.arange(12000) * f) * 0.1 for f in (0.05, 0.11)]
    pool = [rng.standard_normal(5000) for _ in range(3)]
    preset = load_preset(tiny_preset(noise={"kind": kind}, speakers={"count": 2}))
    sim = simulate_mixture(talk, preset, np.random.default_rng(1), babble_pool=pool)
    assert sim.mix.shape == (4, 16000) and sim.images.shape == (2, 4, 16000)
    np.testing.assert_allclose(sim.mix, sim.images.sum(0) + sim.noise, atol=1e-6)
    if kind == "none":
        assert not sim.noise.any() and sim.meta["snr_db"] is None
    else:
        snr = _db(sim.images.sum(0)[0]) - _db(sim.noise[0])
        assert snr == pytest.approx(12.0, abs=0.01)
        assert set(sim.meta["noise_source_kinds"]) <= {"pink", "babble", "white"}


def test_babble_without_utterances_is_an_error():
    preset = load_preset(tiny_preset(noise={"kind": "babble"}))
    with pytest.raises(VaeAudioError, match="babble"):
        simulate_mixture([np.ones(100), np.ones(100)], preset, np.random.default_rng(0))


def test_babble_noise_uses_other_speakers(tmp_path, corpus_manifest):
    preset = tiny_preset(noise={"kind": "babble", "n_sources": 2})
    result = simulate_dataset(corpus_manifest, tmp_path / "b", 1, preset=preset, progress=False)
    entry = read_manifest(result.manifest, require=("mix",))[0]
    meta = json.loads(open(entry["meta"]).read())
    assert meta["noise_source_kinds"] == ["babble", "babble"]
    mix, _ = _read(entry["mix"])
    noise, _ = _read(entry["noise"])
    srcs = [_read(p)[0] for p in entry["sources"]]
    np.testing.assert_allclose(mix, sum(srcs) + noise, rtol=0, atol=1e-5)
    assert _db(sum(srcs)[0]) - _db(noise[0]) == pytest.approx(12.0, abs=0.5)
