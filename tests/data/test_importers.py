"""`vae-audio corpus import`: manifests of LibriMix, wsj0-2mix, spatialized wsj0-2mix and
SMS-WSJ trees (tiny fake trees in their published layouts), read by `evaluate` and `separate`."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import butter, sosfilt

from vae_audio import cli
from vae_audio.data.importers import import_corpus
from vae_audio.data.manifest import read_manifest
from vae_audio.errors import VaeAudioError

SR = 8000


def _speech(rng, n: int, channels: int) -> np.ndarray:
    """Band-limited noise ``[S, M]`` with RMS 0.1 (speech-like spectrum for BSS Eval)."""
    x = sosfilt(butter(6, 0.6, output="sos"), rng.standard_normal((n, channels)), axis=0)
    return 0.1 * x / x.std()


def _write(path: Path, data: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, SR, subtype="FLOAT")
    return path


def _mix_tree(
    subset: Path, ids, *, mix_names=("mix",), n_src=2, channels=1, noise=False, seconds=0.1, seed=0
) -> None:
    """``subset/{mix..., s1, s2, (noise)}/<id>.wav``: mixtures are the sum of their parts."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    for mid in ids:
        sources = [_speech(rng, n, channels) for _ in range(n_src)]
        noise_wav = 0.01 * rng.standard_normal((n, channels))
        for k, wav in enumerate(sources, 1):
            _write(subset / f"s{k}" / f"{mid}.wav", wav)
        if noise:
            _write(subset / "noise" / f"{mid}.wav", noise_wav)
        for name in mix_names:
            _write(
                subset / name / f"{mid}.wav", sum(sources) + (noise_wav if "both" in name else 0)
            )


def _librimix(root: Path, subsets=("test", "dev")) -> Path:
    base = root / "Libri2Mix" / "wav8k" / "min"
    for i, subset in enumerate(subsets):
        ids = [f"{subset}a_{k}" for k in range(3)]
        _mix_tree(base / subset, ids, mix_names=("mix_clean", "mix_both"), noise=True, seed=i)
    return base


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(["corpus", "import", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_librimix_folders_give_one_manifest_per_subset_with_absolute_paths(tmp_path, capsys):
    base = _librimix(tmp_path / "LibriMix")
    code, out, _ = _run(capsys, "librimix", tmp_path / "LibriMix", tmp_path / "m")
    assert code == 0 and "6 mixtures (dev 3, test 3" in out
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["dev.jsonl", "test.jsonl"]
    lines = [json.loads(x) for x in (tmp_path / "m" / "test.jsonl").read_text().splitlines()]
    assert [e["id"] for e in lines] == ["testa_0", "testa_1", "testa_2"]
    first = lines[0]
    assert first["mix"] == str((base / "test" / "mix_clean" / "testa_0.wav").resolve())
    assert first["sources"] == [
        str((base / "test" / f"s{k}" / "testa_0.wav").resolve()) for k in (1, 2)
    ]
    assert "noise" not in first  # mix_clean holds no noise
    assert (first["split"], first["subset"], first["corpus"]) == ("test", "test", "librimix")
    assert (first["sample_rate"], first["channels"], first["n_speakers"]) == (8000, 1, 2)
    assert first["duration"] == pytest.approx(0.1)
    assert all(Path(p).is_absolute() for e in lines for p in [e["mix"], *e["sources"]])
    dev = read_manifest(tmp_path / "m" / "dev.jsonl", require=("mix", "sources"))
    assert dev[0]["split"] == "valid"
    # the noisy mixtures, with their noise
    import_corpus("librimix", tmp_path / "LibriMix", tmp_path / "both", mix="mix_both")
    both = read_manifest(tmp_path / "both" / "test.jsonl", require=("noise",))
    assert Path(both[0]["mix"]).parent.name == "mix_both"
    assert Path(both[0]["noise"]) == (base / "test" / "noise" / "testa_0.wav").resolve()


def test_files_missing_in_a_source_folder_are_skipped_and_counted(tmp_path, capsys):
    base = _librimix(tmp_path, subsets=("test",))
    (base / "test" / "s2" / "testa_1.wav").unlink()
    code, out, _ = _run(capsys, "librimix", base, tmp_path / "m")
    assert code == 0 and "2 mixtures" in out and "1 skipped: missing in source folder" in out
    assert "testa_1.wav" in out
    ids = [e["id"] for e in read_manifest(tmp_path / "m" / "test.jsonl", require=("mix",))]
    assert ids == ["testa_0", "testa_2"]


@pytest.mark.parametrize(
    "damage,expected",
    [
        ("rename", r"file names in '.*s2' .* match none in '.*mix_clean'"),
        ("no_s1", r"has no 's1/' folder"),
        ("no_mix", r"holds no subset folder with a 'mix_clean/'"),
        ("rate", r"no sample-rate folder 'wav16k/' \(found: 'wav8k'\); .*--sr"),
        ("missing_root", r"corpus root '.*nowhere' does not exist"),
    ],
)
def test_broken_trees_stop_with_one_line_naming_the_path(tmp_path, capsys, damage, expected):
    base = _librimix(tmp_path / "LibriMix", subsets=("test",))
    root, extra = tmp_path / "LibriMix", []
    if damage == "rename":
        for p in (base / "test" / "s2").iterdir():
            p.rename(p.with_name("x" + p.name))
    elif damage == "no_s1":
        for p in (base / "test" / "s1").iterdir():
            p.unlink()
        (base / "test" / "s1").rmdir()
    elif damage == "no_mix":
        (base / "test" / "mix_clean").rename(base / "test" / "mixes")
    elif damage == "rate":
        extra = ["--sr", "16000"]
    else:
        root = tmp_path / "nowhere"
    code, out, err = _run(capsys, "librimix", root, tmp_path / "m", *extra)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert re.search(expected, err), err
    assert not (tmp_path / "m").exists()


def test_librimix_metadata_csv_is_read_and_moved_trees_are_found(tmp_path, capsys):
    base = _librimix(tmp_path / "LibriMix", subsets=("test",))
    old = "/data/gone/Libri2Mix/wav8k/min"  # where the generation scripts wrote the files
    rows = [
        {
            "mixture_ID": mid,
            "mixture_path": f"{old}/test/mix_both/{mid}.wav",
            "source_1_path": f"{old}/test/s1/{mid}.wav",
            "source_2_path": f"{old}/test/s2/{mid}.wav",
            "noise_path": f"{old}/test/noise/{mid}.wav",
            "length": 800,
        }
        for mid in ("testa_2", "testa_0", "lost_9")  # CSV order, one row without files
    ]
    (base / "metadata").mkdir()
    with open(base / "metadata" / "mixture_test_mix_both.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    code, out, _ = _run(capsys, "librimix", base, tmp_path / "m", "--mix", "mix_both")
    assert code == 0 and "1 skipped: listed in the metadata but not on disk" in out
    entries = read_manifest(tmp_path / "m" / "test.jsonl", require=("noise",))
    assert [e["id"] for e in entries] == ["testa_2", "testa_0"]  # the CSV's rows, not the folder
    assert entries[0]["sources"][1] == str((base / "test" / "s2" / "testa_2.wav").resolve())
    # --no-metadata pairs the folders instead: all three mixtures
    import_corpus("librimix", base, tmp_path / "f", mix="mix_both", metadata=False)
    assert len(read_manifest(tmp_path / "f" / "test.jsonl", require=("mix",))) == 3


def test_wsj0_2mix_subsets_map_to_splits(tmp_path):
    base = tmp_path / "wsj0-mix" / "2speakers" / "wav8k" / "min"
    for i, subset in enumerate(("tr", "cv", "tt")):
        _mix_tree(base / subset, [f"{subset}_a_0.5_b_-0.5"], seed=i)
    _mix_tree(tmp_path / "wsj0-mix" / "3speakers" / "wav8k" / "min" / "tt", ["c"], n_src=3)
    with pytest.raises(VaeAudioError, match=r"several talker-count folders .*--speakers"):
        import_corpus("wsj0-2mix", tmp_path / "wsj0-mix", tmp_path / "m")
    result = import_corpus("wsj0-2mix", tmp_path / "wsj0-mix", tmp_path / "m", speakers=2)
    assert result.counts == {"cv": 1, "tr": 1, "tt": 1}
    splits = {
        s: read_manifest(p, require=("mix",))[0]["split"] for s, p in result.manifests.items()
    }
    assert splits == {"tr": "train", "cv": "valid", "tt": "test"}
    three = import_corpus("wsj0-2mix", tmp_path / "wsj0-mix", tmp_path / "m3", speakers=3)
    assert read_manifest(three.manifests["tt"], require=("mix",))[0]["n_speakers"] == 3


def _spatialized(root: Path, variant="reverb", ids=("a_1_b_2", "c_3_d_4"), seconds=0.1) -> Path:
    base = root / f"2speakers_{variant}" / "wav8k" / "max"
    _mix_tree(base / "tt", list(ids), channels=8, seconds=seconds)
    return base


def test_spatialized_wsj0_2mix_prefers_the_reverberant_images(tmp_path):
    _spatialized(tmp_path)
    _spatialized(tmp_path, "anechoic")
    result = import_corpus("spatialized-wsj0-2mix", tmp_path, tmp_path / "m")
    entry = read_manifest(result.manifests["tt"], require=("mix",))[0]
    assert "2speakers_reverb" in entry["mix"] and entry["channels"] == 8
    assert entry["reference"] == "reverberant images at every mic"
    anechoic = import_corpus(
        "spatialized-wsj0-2mix", tmp_path / "2speakers_anechoic", tmp_path / "a"
    )
    entry = read_manifest(anechoic.manifests["tt"], require=("mix",))[0]
    assert "2speakers_anechoic" in entry["mix"] and entry["reference"].startswith("direct-path")


def _sms_wsj(root: Path, *, moved_from: str | None = None, seconds=0.1) -> Path:
    """``root/{observation,early,tail,noise}/<dataset>/<id>(_k).wav`` and ``sms_wsj.json``
    whose paths point at ``moved_from`` (the machine that wrote the database) if given."""
    rng = np.random.default_rng(3)
    n = int(seconds * SR)
    written = moved_from or str(root)
    datasets = {}
    for name, ids in (("test_eval92", ["0_4k0c0301_4k6c030t", "1_4k0c0302_4k6c030u"]),
                      ("cv_dev93", ["0_4k0c0303_4k6c030v"])):  # fmt: skip
        datasets[name] = {}
        for ex_id in ids:
            early = [_speech(rng, n, 6) for _ in range(2)]
            tail = [0.1 * e for e in early]
            noise = 0.01 * rng.standard_normal((n, 6))
            for k in range(2):
                _write(root / "early" / name / f"{ex_id}_{k}.wav", early[k])
                _write(root / "tail" / name / f"{ex_id}_{k}.wav", tail[k])
            _write(root / "noise" / name / f"{ex_id}.wav", noise)
            _write(root / "observation" / name / f"{ex_id}.wav", sum(early) + sum(tail) + noise)
            datasets[name][ex_id] = {
                "audio_path": {
                    "observation": f"{written}/observation/{name}/{ex_id}.wav",
                    "speech_reverberation_early": [
                        f"{written}/early/{name}/{ex_id}_{k}.wav" for k in range(2)
                    ],
                    "speech_reverberation_tail": [
                        f"{written}/tail/{name}/{ex_id}_{k}.wav" for k in range(2)
                    ],
                    "noise_image": f"{written}/noise/{name}/{ex_id}.wav",
                    "speech_source": [f"/wsj/{ex_id}_{k}.wav" for k in range(2)],
                },
                "num_speakers": 2,
                "speaker_id": ["4k0", "4k6"],
            }
    (root / "sms_wsj.json").write_text(json.dumps({"datasets": datasets}))
    return root


def test_sms_wsj_json_is_read_and_its_moved_paths_found(tmp_path, capsys):
    root = _sms_wsj(tmp_path / "sms", moved_from="/net/db/sms_wsj")
    code, out, _ = _run(capsys, "sms-wsj", root / "sms_wsj.json", tmp_path / "m")
    assert code == 0 and "3 mixtures (test_eval92 2, cv_dev93 1" in out and "early" in out
    entries = read_manifest(tmp_path / "m" / "test_eval92.jsonl", require=("noise",))
    first = entries[0]
    assert first["id"] == "0_4k0c0301_4k6c030t" and first["split"] == "test"
    assert first["mix"] == str(root / "observation" / "test_eval92" / f"{first['id']}.wav")
    assert [Path(p).parent.parent.name for p in first["sources"]] == ["early", "early"]
    assert (first["channels"], first["n_speakers"], first["sample_rate"]) == (6, 2, 8000)
    only = import_corpus("sms-wsj", root, tmp_path / "o", subsets=("cv_dev93",))
    assert list(only.manifests) == ["cv_dev93"]
    code, _, err = _run(capsys, "sms-wsj", tmp_path, tmp_path / "x")
    assert code == 2 and "sms_wsj.json' does not exist" in err and err.count("\n") == 1


def test_sms_wsj_without_written_images_is_refused(tmp_path):
    root = _sms_wsj(tmp_path / "sms")
    db = json.loads((root / "sms_wsj.json").read_text())
    for examples in db["datasets"].values():
        for ex in examples.values():
            del ex["audio_path"]["speech_reverberation_early"]
    (root / "sms_wsj.json").write_text(json.dumps(db))
    with pytest.raises(VaeAudioError, match="write_all=True"):
        import_corpus("sms-wsj", root, tmp_path / "m")


@pytest.mark.parametrize("layout", ["folders", "librimix"])
def test_evaluate_pairs_imported_references_with_estimates(tmp_path, capsys, layout):
    """Estimates equal to the references up to 40-dB noise, swapped in order: evaluate pairs
    each reference with its own copy (SDR about 40 dB); a wrong estimate scores low."""
    base = _librimix(tmp_path / "LibriMix", subsets=("test",))
    import_corpus("librimix", tmp_path / "LibriMix", tmp_path / "m")
    entries = read_manifest(tmp_path / "m" / "test.jsonl", require=("mix",))
    est = tmp_path / "est"
    rng = np.random.default_rng(9)
    for e in entries:
        refs = [  # each plus a little noise (40 dB down): identical copies leave SDR undefined
            (w := sf.read(p, dtype="float32")[0]) + 0.01 * w.std() * rng.standard_normal(w.shape)
            for p in e["sources"]
        ]
        if e["id"] == "testa_2":
            refs[0] = _speech(rng, refs[0].shape[0], 1)[:, 0]  # not that talker
        for k, wav in enumerate(reversed(refs), 1):  # swapped: src1 holds s2
            target = (
                est / e["id"] / f"src{k}.wav"
                if layout == "folders"
                else est / f"s{k}" / f"{e['id']}.wav"
            )
            _write(target, wav)
    argv = ["evaluate", "--est", est, "--ref", tmp_path / "m" / "test.jsonl", "--metrics", "sdr"]
    assert cli.main([str(a) for a in argv]) == 0
    capsys.readouterr()
    with open(est / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and [r["source"] for r in rows[:2]] == ["s1", "s2"]
    for row in rows:
        slot = re.match(r"(?:src|s)(\d)", row["est_file"]).group(1)  # src2.wav or s2/<id>.wav
        assert slot == {"s1": "2", "s2": "1"}[row["source"]], row
        good = not (row["id"] == "testa_2" and row["source"] == "s1")
        assert (float(row["sdr"]) > 30) == good, row
    assert base.is_dir()


def test_separate_names_outputs_by_imported_ids(tmp_path, capsys):
    _spatialized(tmp_path, seconds=0.25)
    result = import_corpus("spatialized-wsj0-2mix", tmp_path, tmp_path / "m")
    argv = ["separate", result.manifests["tt"], "-o", tmp_path / "out"]
    code = cli.main([str(a) for a in [*argv, "--method", "fastmnmf2", "--iters", "2", "-q"]])
    assert code == 0 and "2 separated" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_1_b_2", "c_3_d_4"]
    wav, sr = sf.read(tmp_path / "out" / "a_1_b_2" / "src1.wav")
    assert sr == SR and wav.shape == (2000, 8)
