"""`vae-audio evaluate` and `evaluate_dir` end to end on a tiny fake set written to disk."""

import csv
import json
import math

import numpy as np
import pytest
import soundfile as sf

from vae_audio import cli
from vae_audio.errors import VaeAudioError
from vae_audio.eval import evaluate_dir, perceptual


@pytest.fixture(autouse=True)
def _no_perceptual(monkeypatch):
    # Same behaviour whether or not the optional packages are installed on this machine.
    monkeypatch.setattr(
        perceptual, "unavailable", lambda: {"pesq": "PESQ not computed: no pesq", "stoi": "STOI?"}
    )


def _read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_cli_end_to_end(fake_set, tmp_path, capsys):
    out = tmp_path / "report"
    argv = ["evaluate", "--est", str(fake_set.est), "--ref", str(fake_set.ref), "--out", str(out)]
    code = cli.main(argv)
    assert code == 0
    rows = _read_csv(out / "results.csv")
    assert len(rows) == 2 * len(fake_set.ids)
    for row in rows:
        assert row["est_file"] == fake_set.truth[row["id"]][row["source"]]
        assert row["dropped"].split(";") == fake_set.dropped[row["id"]]
        values = {k: float(row[k]) for k in ("sdr", "sir", "sar", "si_sdr", "sdr_i", "si_sdr_i")}
        assert all(math.isfinite(v) for v in values.values())
        assert values["sdr"] > 15 and values["si_sdr"] > 15  # estimates = images + 1 % noise
        assert float(row["sdr_i"]) == pytest.approx(float(row["sdr"]) - float(row["sdr_mix"]))
        assert "pesq" not in row and "stoi" not in row
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_mixtures"] == len(fake_set.ids) and summary["n_sources"] == len(rows)
    sdr = [float(r["sdr"]) for r in rows]
    assert summary["summary"]["sdr"]["mean"] == pytest.approx(np.mean(sdr))
    assert summary["summary"]["sdr"]["median"] == pytest.approx(np.median(sdr))
    md = (out / "summary.md").read_text()
    assert "PESQ not computed" in md and "| SDR " in md
    printed = capsys.readouterr()
    assert "| SDR " in printed.out and f"SDR {np.mean(sdr):.2f} dB" in printed.out
    assert "PESQ not computed" in printed.out and printed.err == ""


def test_reports_default_to_the_estimate_folder_and_manifest_path_works(fake_set):
    manifest = fake_set.ref / "manifest.jsonl"
    argv = ["evaluate", "--est", str(fake_set.est), "--ref", str(manifest), "--metrics", "si-sdr"]
    assert cli.main(argv) == 0
    rows = _read_csv(fake_set.est / "results.csv")
    assert "sdr" not in rows[0] and float(rows[0]["si_sdr"]) > 15
    assert (fake_set.est / "summary.md").is_file() and (fake_set.est / "summary.json").is_file()


def test_reference_folder_without_manifest_is_scanned(fake_set):
    (fake_set.ref / "manifest.jsonl").unlink()
    result = evaluate_dir(fake_set.est, fake_set.ref, metrics=("si-sdr",))
    assert sorted({r["id"] for r in result.rows}) == fake_set.ids


def test_missing_estimate_folder_exits_2_with_one_line(tmp_path, fake_set, capsys):
    code = cli.main(["evaluate", "--est", str(tmp_path / "nope"), "--ref", str(fake_set.ref)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "nope' does not exist" in err
    assert err.startswith("vae-audio: error:")


def test_partly_missing_estimates_fail_unless_allowed(fake_set, capsys):
    missing = fake_set.ids[0]
    for f in (fake_set.est / missing).iterdir():
        f.unlink()
    (fake_set.est / missing).rmdir()
    code = cli.main(["evaluate", "--est", str(fake_set.est), "--ref", str(fake_set.ref)])
    assert code == 2 and f"'{missing}'" in capsys.readouterr().err
    result = evaluate_dir(fake_set.est, fake_set.ref, metrics=("si-sdr",), allow_missing=True)
    assert result.missing == [missing] and result.n_mixtures == len(fake_set.ids) - 1
    assert any("without estimates were skipped" in n for n in result.notes)


def test_no_matching_folder_is_an_error(fake_set):
    for d in fake_set.est.iterdir():
        d.rename(d.with_name("other_" + d.name))
    with pytest.raises(VaeAudioError, match="no folder in .* matches a mixture id"):
        evaluate_dir(fake_set.est, fake_set.ref, metrics=("si-sdr",))


def test_fewer_estimates_than_speakers_is_an_error(make_fake_set):
    fs = make_fake_set(n_mix=1, extra=0)
    (fs.est / fs.ids[0] / "src2.wav").unlink()
    with pytest.raises(VaeAudioError, match="1 source file.*2 speakers"):
        evaluate_dir(fs.est, fs.ref, metrics=("si-sdr",))


def _rewrite(path, fn):
    data, sr = sf.read(path, always_2d=True)
    data, sr = fn(data, sr)
    sf.write(path, data, sr, subtype="FLOAT")


def test_small_length_mismatch_is_fitted_large_is_an_error(make_fake_set):
    fs = make_fake_set(n_mix=1, extra=0)
    folder = fs.est / fs.ids[0]
    _rewrite(folder / "src1.wav", lambda x, sr: (x[:-80], sr))  # 10 ms short: zero-padded
    _rewrite(folder / "src2.wav", lambda x, sr: (np.pad(x, ((0, 40), (0, 0))), sr))  # trimmed
    result = evaluate_dir(fs.est, fs.ref, metrics=("si-sdr",))
    assert all(r["si_sdr"] > 15 for r in result.rows)
    assert any("zero-padded" in n for n in result.notes)
    assert any("trimmed" in n for n in result.notes)
    _rewrite(folder / "src1.wav", lambda x, sr: (x[:2000], sr))  # 0.25 s short
    with pytest.raises(VaeAudioError, match=r"src1\.wav' has 2000 samples.*4000"):
        evaluate_dir(fs.est, fs.ref, metrics=("si-sdr",))


def test_estimates_at_another_rate_are_resampled_with_a_note(make_fake_set):
    import librosa

    fs = make_fake_set(n_mix=1, extra=0, est_noise=0.001)
    for f in (fs.est / fs.ids[0]).glob("src*.wav"):
        _rewrite(f, lambda x, sr: (librosa.resample(x.T, orig_sr=sr, target_sr=16000).T, 16000))
    result = evaluate_dir(fs.est, fs.ref, metrics=("si-sdr",))
    assert any("resampled from 16000 Hz" in n for n in result.notes)
    assert all(r["si_sdr"] > 15 for r in result.rows)


def test_silent_estimate_is_reported_as_undefined(make_fake_set):
    fs = make_fake_set(n_mix=1, extra=0)
    _rewrite(fs.est / fs.ids[0] / "src1.wav", lambda x, sr: (0 * x, sr))
    result = evaluate_dir(fs.est, fs.ref, metrics=("sdr", "si-sdr"))
    assert result.summary["sdr"].undefined == 1 and result.summary["sdr"].count == 1
    assert any("undefined (NaN)" in n for n in result.notes)
    from vae_audio.eval.report import one_line_summary

    assert "1 source(s) with undefined metrics, left out of these means" in one_line_summary(
        result
    ) and f"{fs.ids[0]}/src" in one_line_summary(result)  # the talker the silence was matched to


def test_undefined_metrics_fail_the_command_unless_allowed(make_fake_set, capsys):
    fs = make_fake_set(n_mix=2, extra=0)
    _rewrite(fs.est / fs.ids[1] / "src2.wav", lambda x, sr: (0 * x, sr))
    argv = ["evaluate", "--est", str(fs.est), "--ref", str(fs.ref), "--metrics", "sdr"]
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert "1 source(s) have undefined metrics" in err and len(err.strip().splitlines()) == 1
    assert f"{fs.ids[1]}/src" in out and f"{fs.ids[0]}/src" not in out.split("undefined")[-1]
    assert cli.main([*argv, "--allow-undefined"]) == 0


def test_images_mode_adds_isr(make_fake_set):
    fs = make_fake_set(n_mix=1, extra=0, n_samples=2000)
    result = evaluate_dir(fs.est, fs.ref, metrics=("sdr",), images=True)
    assert "isr" in result.columns and all(r["isr"] > 15 for r in result.rows)


def test_parallel_jobs_give_the_same_rows(make_fake_set):
    fs = make_fake_set(n_mix=2, n_samples=2000)
    serial = evaluate_dir(fs.est, fs.ref, metrics=("si-sdr",))
    parallel = evaluate_dir(fs.est, fs.ref, metrics=("si-sdr",), jobs=2)
    assert len(parallel.rows) == len(serial.rows)
    for a, b in zip(parallel.rows, serial.rows, strict=True):
        assert a.keys() == b.keys()
        for key, value in a.items():
            assert value == (pytest.approx(b[key]) if isinstance(value, float) else b[key])
