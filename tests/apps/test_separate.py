"""`vae-audio separate`: outputs, skipping, manifests and folders, bad inputs, sharding,
batching, Neural FCA models and the `auto` method."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import soundfile as sf

from tests.apps.conftest import FAST, MANIFEST, MIXTURE, read, write_cut
from vae_audio import cli
from vae_audio.apps import methods
from vae_audio.apps.separate import separate_files


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(["separate", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_fixture_mixture_gives_images_that_sum_to_it(tmp_path, capsys):
    code, out, _ = _run(capsys, MIXTURE, "-o", tmp_path / "out", *FAST, "--plot")
    assert code == 0
    assert "1 separated, 0 skipped (outputs exist), 0 failed" in out and "real-time factor" in out
    folder = tmp_path / "out" / "mix"
    mix, sr = read(MIXTURE)
    wavs = {n: read(folder / f"{n}.wav") for n in ("src1", "src2", "noise")}
    for wav, rate in wavs.values():
        assert rate == sr == 16000 and wav.shape == mix.shape == (32000, 4)
    # Wiener-filtered images (and the noise image) sum back to the mixture (ISTFT precision),
    # so these are separations of this input, not arbitrary signals of the right shape.
    total = sum(w for w, _ in wavs.values())
    assert np.abs(total - mix).max() < 1e-4 * np.abs(mix).max() + 1e-6
    energy = [float(np.square(wavs[n][0]).sum()) for n in ("src1", "src2")]
    assert energy[0] >= energy[1] > 0  # loudest first
    assert (folder / "spectrogram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads((folder / "separation.json").read_text())
    assert record["method"] == "fastmnmf2" and record["settings"]["n_iter"] == 2
    assert sorted(record["files"]) == sorted(
        p.name for p in folder.iterdir() if p.suffix != ".json"
    )


def test_finished_outputs_are_skipped_unless_overwrite(cuts, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(capsys, cuts[0], "-o", out, *FAST)[0] == 0
    src = out / "m0" / "src1.wav"
    src.write_bytes(src.read_bytes())  # same content, new mtime we can compare
    stamp = src.stat().st_mtime_ns
    code, text, _ = _run(capsys, cuts[0], cuts[1], "-o", out, *FAST)
    assert code == 0 and "1 separated, 1 skipped" in text
    assert src.stat().st_mtime_ns == stamp
    code, text, _ = _run(capsys, cuts[0], "-o", out, *FAST, "--overwrite")
    assert code == 0 and "1 separated, 0 skipped" in text and src.stat().st_mtime_ns != stamp
    # a folder without its separation.json (interrupted run) is redone, not skipped
    (out / "m1" / "separation.json").unlink()
    code, text, _ = _run(capsys, cuts[1], "-o", out, *FAST)
    assert "1 separated, 0 skipped" in text
    # outputs made with other settings are redone, with a note
    code, text, err = _run(capsys, cuts[0], "-o", out, *FAST, "--iters", "3")
    assert "1 separated, 0 skipped" in text and "other settings" in err


def test_outputs_are_bound_to_the_input_that_made_them(tmp_path, capsys):
    """Another file with the same output name, or the same file changed in place, is redone
    (not skipped as finished), and separation.json names the input that made the outputs."""
    out = tmp_path / "out"
    a = write_cut(tmp_path / "a" / "mix.wav", offset=0)
    b = write_cut(tmp_path / "b" / "mix.wav", offset=4000)
    assert _run(capsys, a, "-o", out, *FAST)[0] == 0
    record = json.loads((out / "mix" / "separation.json").read_text())
    assert record["input"] == str(a.resolve()) == record["job"]["input"]["path"]
    code, text, err = _run(capsys, b, "-o", out, *FAST)
    assert code == 0 and "1 separated, 0 skipped" in text and "another input file" in err
    record = json.loads((out / "mix" / "separation.json").read_text())
    assert record["input"] == str(b.resolve())
    first = read(out / "mix" / "src1.wav")[0]
    write_cut(b, offset=8000)  # same path and size, new samples
    assert "1 separated, 0 skipped" in _run(capsys, b, "-o", out, *FAST)[1]
    assert not np.array_equal(read(out / "mix" / "src1.wav")[0], first)
    assert "0 separated, 1 skipped" in _run(capsys, b, "-o", out, *FAST)[1]


def test_a_retrained_model_redoes_its_outputs(tiny_model_file, cuts, tmp_path, capsys):
    model = tmp_path / "model.pt"
    model.write_bytes(tiny_model_file.read_bytes())
    args = [cuts[0], "-o", tmp_path / "out", "--method", "neural-fastfca", "--model", model, "-q"]
    assert "1 separated" in _run(capsys, *args)[1]
    assert "1 skipped" in _run(capsys, *args)[1]
    import torch

    state = torch.load(model, weights_only=True)
    state["meta"] = {**state.get("meta", {}), "retrained": True}
    torch.save(state, model)
    assert "1 separated, 0 skipped" in _run(capsys, *args)[1]


def test_manifest_input_writes_folders_named_by_id_for_evaluate(tmp_path, capsys):
    from vae_audio.eval.evaluate import evaluate_dir

    assert _run(capsys, MANIFEST, "-o", tmp_path / "out", *FAST)[0] == 0
    assert (tmp_path / "out" / "000000" / "src2.wav").is_file()
    result = evaluate_dir(tmp_path / "out", MANIFEST, metrics=("si-sdr",))
    assert result.n_mixtures == 1 and len(result.rows) == 2


def test_separate_then_evaluate_cli_writes_finite_scores(tmp_path, capsys):
    assert _run(capsys, MANIFEST, "-o", tmp_path / "out", *FAST)[0] == 0
    argv = ["evaluate", "--est", str(tmp_path / "out"), "--ref", str(MANIFEST)]
    assert cli.main([*argv, "--out", str(tmp_path / "report")]) == 0
    with open(tmp_path / "report" / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2
    for row in rows:
        values = [float(row[k]) for k in ("sdr", "sir", "sar", "si_sdr", "sdr_i", "si_sdr_i")]
        assert all(math.isfinite(v) for v in values)


def test_folder_input_with_colliding_stems(tmp_path, capsys):
    for sub in ("a", "b"):
        write_cut(tmp_path / "in" / sub / "mix.wav")
    code, text, _ = _run(capsys, tmp_path / "in", "-o", tmp_path / "in" / "sep", *FAST)
    assert code == 0 and "2 separated" in text
    assert sorted(p.name for p in (tmp_path / "in" / "sep").iterdir()) == ["a_mix", "b_mix"]
    # re-running on the same folder does not pick up its own outputs under in/sep
    code, text, _ = _run(capsys, tmp_path / "in", "-o", tmp_path / "in" / "sep", *FAST)
    assert "0 separated, 2 skipped" in text


def _bad_inputs(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("this is a text file renamed .wav\n")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 4), dtype=np.float32), 16000, subtype="FLOAT")
    nan = write_cut(tmp_path / "nan.wav")
    data, sr = sf.read(nan, dtype="float32")
    data[100, 2] = np.nan
    sf.write(nan, data, sr, subtype="FLOAT")
    return {
        "missing": (tmp_path / "missing.wav", "does not exist"),
        "text": (text, "not a readable audio file"),
        "empty": (empty, "zero length"),
        "nan": (nan, "NaN"),
    }


@pytest.mark.parametrize("kind", ["missing", "text", "empty", "nan"])
def test_bad_input_stops_the_job_before_anything_is_written(kind, cuts, tmp_path, capsys):
    path, what = _bad_inputs(tmp_path)[kind]
    out = tmp_path / "out"
    code, _, err = _run(capsys, cuts[0], path, cuts[1], "-o", out, *FAST)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vae-audio: error:")
    assert str(path) in lines[0] and what in lines[0]
    assert not out.exists() or not any(out.rglob("*"))  # the good inputs were not separated


def test_too_short_input_and_output_inside_the_input_set_are_refused(tmp_path, capsys):
    short = write_cut(tmp_path / "short.wav", seconds=0.01)
    code, _, err = _run(capsys, short, "-o", tmp_path / "out", *FAST)
    assert code == 2 and "short.wav" in err and "160 samples" in err
    # auto averages members on frames 4x longer (n_fft 2048): 1600 samples are too few for it
    mid = write_cut(tmp_path / "mid.wav", seconds=0.1)
    code, _, err = _run(capsys, mid, "-o", tmp_path / "out", "--method", "auto", "-q")
    assert code == 2 and "mid.wav" in err and "(2048 samples)" in err
    assert not (tmp_path / "out").exists()
    # `-o` on the simulated set itself would put src1.wav over its reference images
    ref_root = tmp_path / "sim"
    write_cut(ref_root / "000000" / "mix.wav")
    (ref_root / "manifest.jsonl").write_text(json.dumps({"id": "000000", "mix": "000000/mix.wav"}))
    code, _, err = _run(capsys, ref_root / "manifest.jsonl", "-o", ref_root, *FAST)
    assert code == 2 and "holds input files" in err
    assert sorted(p.name for p in (ref_root / "000000").iterdir()) == ["mix.wav"]


def test_rank_shards_separate_disjoint_inputs_that_cover_the_job(cuts, tmp_path):
    out = tmp_path / "out"
    runs = [
        separate_files(
            cuts,
            out,
            method="fastmnmf2",
            iters=1,
            progress=False,
            env={"RANK": str(r), "WORLD_SIZE": "2", "LOCAL_RANK": "0"},
        )
        for r in range(2)
    ]
    assert [s.n_separated for s in runs] == [2, 1]
    assert "rank 1/2:" in runs[1].line()
    inputs = {json.loads((d / "separation.json").read_text())["input"] for d in out.iterdir()}
    assert inputs == {str(c.resolve()) for c in cuts}


def test_batched_separation_equals_one_by_one(cuts, tmp_path):
    kw = dict(method="fastmnmf2", iters=3, progress=False, env={})
    separate_files(cuts, tmp_path / "one", batch_size=1, **kw)
    separate_files(cuts, tmp_path / "batch", batch_size=3, **kw)
    record = json.loads((tmp_path / "batch" / "m1" / "separation.json").read_text())
    assert record["batch_size"] == 3
    for c in cuts:
        for name in ("src1.wav", "src2.wav", "noise.wav"):
            a, _ = read(tmp_path / "one" / c.stem / name)
            b, _ = read(tmp_path / "batch" / c.stem / name)
            # identical in float64; float32 rounding (batched BLAS calls) carried through the
            # iterative fit (noise-slot start included) leaves up to 3 % of the signal norm on
            # these 0.5-s cuts
            assert np.linalg.norm(a - b) < 5e-2 * np.linalg.norm(a)


def test_a_failure_while_writing_leaves_no_partial_output(cuts, tmp_path, capsys, monkeypatch):
    import vae_audio.audio.io as audio_io

    real_save = audio_io.save_audio

    def failing_save(path, *args, **kwargs):
        if path.name == "noise.wav":
            raise audio_io.VaeAudioError(f"cannot write '{path}': disk full")
        return real_save(path, *args, **kwargs)

    monkeypatch.setattr(audio_io, "save_audio", failing_save)
    code, text, err = _run(capsys, cuts[0], "-o", tmp_path / "out", *FAST)
    assert code == 1 and "0 separated, 0 skipped (outputs exist), 1 failed" in text
    assert "m0.wav" in err and "disk full" in err
    assert list((tmp_path / "out" / "m0").iterdir()) == []


def test_neural_model_file_and_its_microphone_count(tiny_model_file, cuts, tmp_path, capsys):
    args = ["--method", "neural-fastfca", "--model", tiny_model_file, "-q"]
    code, text, _ = _run(capsys, cuts[0], "-o", tmp_path / "out", *args)
    assert code == 0, text
    wav, _ = read(tmp_path / "out" / "m0" / "src2.wav")
    assert wav.shape == (8000, 4)
    two_ch = write_cut(tmp_path / "two.wav", channels=2)
    code, _, err = _run(capsys, two_ch, "-o", tmp_path / "out2", *args)
    assert code == 2 and "two.wav" in err and "M = 4" in err and "fastmnmf2" in err
    code, _, err = _run(capsys, cuts[0], "-o", tmp_path / "out3", *args, "--n-src", "3")
    assert code == 2 and "separates 2 speakers" in err


def test_neural_fca_runs_full_rank_em_on_a_jd_model(tiny_model_file, cuts, tmp_path, capsys):
    labels = {}
    for method in ("neural-fca", "neural-fastfca"):
        out = tmp_path / method
        args = ["--method", method, "--model", tiny_model_file, "-q"]
        code, text, _ = _run(capsys, cuts[0], "-o", out, *args)
        assert code == 0, text
        record = json.loads((out / "m0" / "separation.json").read_text())
        labels[method] = record["label"]
        assert record["settings"]["n_iter"] == record["job"]["iters"] == 200  # as published
        assert read(out / "m0" / "src1.wav")[0].shape == (8000, 4)
    assert labels == {
        "neural-fca": "neural-fca (model.pt)",
        "neural-fastfca": "neural-fastfca (model.pt)",
    }
    a, _ = read(tmp_path / "neural-fca" / "m0" / "src1.wav")
    b, _ = read(tmp_path / "neural-fastfca" / "m0" / "src1.wav")
    assert not np.allclose(a, b)  # a different spatial model, not a renamed run


def test_auto_uses_the_shipped_model_for_its_channel_count(
    tiny_model_file, cuts, tmp_path, monkeypatch
):
    monkeypatch.setattr(methods, "shipped_model_path", lambda: tiny_model_file)
    monkeypatch.setattr(methods, "AUTO_FALLBACK", ("fastmnmf2",))
    two_ch = write_cut(tmp_path / "two.wav", channels=2)
    separate_files([cuts[0], two_ch], tmp_path / "out", iters=1, progress=False, env={})
    label = {
        d.name: json.loads((d / "separation.json").read_text())["label"]
        for d in (tmp_path / "out").iterdir()
    }
    blend = (
        "4 starts after WPE; 2 starts on 2x longer frames; 2 starts after WPE on 2x longer "
        "frames; 2 starts on 4x longer frames"
    )
    assert label == {
        "m0": f"neural-fastfca (shipped model) + fastmnmf2 (4 starts; {blend})",
        "two": f"fastmnmf2 (4 starts) + fastmnmf2 ({blend}), re-fitted by vae-fca",
    }  # the tiny model's STFT is not the speech prior's: its plan is not re-fitted


def test_neural_method_without_any_model_says_what_to_pass(cuts, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(methods, "shipped_model_path", lambda: None)
    monkeypatch.setattr("vae_audio._pretrained.SHIPPED", {"speech-vae": "speech_vae.pt"})
    code, _, err = _run(capsys, cuts[0], "-o", tmp_path / "out", "--method", "neural-fca")
    assert code == 2 and "--model PATH" in err
    monkeypatch.setattr(methods, "shipped_model_path", lambda: None)
    monkeypatch.setattr(methods, "AUTO_FALLBACK", ("fastmnmf2",))
    code, _, err = _run(capsys, cuts[0], "-o", tmp_path / "out", "--method", "auto", "-q")
    assert code == 0  # auto falls back to a method without a model


def test_single_channel_input_under_auto(tmp_path, capsys):
    from vae_audio.separation import METHODS

    mono = write_cut(tmp_path / "mono.wav", channels=1)
    code, _, err = _run(capsys, mono, "-o", tmp_path / "out", "--iters", "1", "-q")
    if "vae-nmf" in METHODS:
        assert code == 0
    else:
        assert code == 2 and "mono.wav" in err and "1 channel" in err


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0, 0.0, 1.5])
def test_chunk_values_that_cannot_work_are_refused_by_the_api(value, tmp_path):
    """The command line refuses them at parse time (tests/test_cli_values.py); the Python
    entry point checks them too, before anything is written."""
    from vae_audio.errors import VaeAudioError

    with pytest.raises(VaeAudioError, match="--chunk must be a finite number of seconds, at lea"):
        separate_files([MIXTURE], tmp_path / "out", chunk=value, progress=False)
    assert not (tmp_path / "out").exists()


def test_truncated_input_is_named_with_its_missing_duration(tmp_path, capsys):
    full = write_cut(tmp_path / "full.wav", seconds=1.0)
    cut = tmp_path / "cut.wav"
    raw = full.read_bytes()
    cut.write_bytes(raw[: len(raw) - 4000 * 4 * 4])  # drop the last 0.25 s of float32 x 4 mics
    code, text, err = _run(capsys, cut, "-o", tmp_path / "out", *FAST)
    assert code == 0 and "1 separated" in text
    warning = [line for line in err.splitlines() if "truncated" in line]
    assert len(warning) == 1 and str(cut.resolve()) in warning[0]
    assert "declares 1.00 s but the file holds 0.75 s (0.25 s missing)" in warning[0]
    code, _, err = _run(capsys, full, "-o", tmp_path / "out2", *FAST)
    assert code == 0 and "truncated" not in err


def test_temp_files_left_by_a_killed_run_are_removed(cuts, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(capsys, cuts[0], "-o", out, *FAST)[0] == 0
    stale = [out / "m0" / ".src1.k3j_x9q0.tmp.wav", out / "m1" / ".separation.abcdefgh.tmp.json"]
    for path in stale:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"partial")
    mine = out / "m0" / "notes.txt"
    mine.write_text("user file")
    code, text, err = _run(capsys, cuts[0], cuts[1], "-o", out, *FAST)
    assert code == 0 and "1 separated, 1 skipped" in text
    assert "removed 2 temporary file(s)" in err
    assert not any(p.exists() for p in stale) and mine.read_text() == "user file"
