"""`vae-audio separate --layout librimix`: OUTDIR/s<k>/<name>.wav and the record in
OUTDIR/separation/<name>.json, with the skipping, overwriting and cleaning of the default
layout, and `vae-audio evaluate` reading it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.apps.conftest import FAST, MANIFEST, MIXTURE, read
from vae_audio import cli
from vae_audio.apps.outputs import OutputPaths, finished_job
from vae_audio.eval.evaluate import evaluate_dir


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(["separate", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_librimix_layout_holds_the_same_outputs_as_folders(cuts, tmp_path, capsys):
    assert _run(capsys, *cuts, "-o", tmp_path / "f", *FAST)[0] == 0
    code, text, _ = _run(capsys, *cuts, "-o", tmp_path / "l", *FAST, "--layout", "librimix")
    assert code == 0 and "3 separated" in text
    out = tmp_path / "l"
    assert sorted(p.name for p in out.iterdir()) == ["noise", "s1", "s2", "separation"]
    for name in ("m0", "m1", "m2"):
        for slot, folder in (("src1", "s1"), ("src2", "s2"), ("noise", "noise")):
            expected, sr = read(tmp_path / "f" / name / f"{slot}.wav")
            got, rate = read(out / folder / f"{name}.wav")
            assert rate == sr and got.shape == expected.shape == (8000, 4)
            np.testing.assert_array_equal(got, expected)
        record = json.loads((out / "separation" / f"{name}.json").read_text())
        assert record["files"] == [f"../s1/{name}.wav", f"../s2/{name}.wav", f"../noise/{name}.wav"]
        assert finished_job(OutputPaths(out, name, "librimix")) == record["job"]
        assert finished_job(out / name) is None  # nothing in the folders layout


def test_librimix_layout_skips_finished_inputs_and_redoes_the_rest(cuts, tmp_path, capsys):
    out = tmp_path / "out"
    args = [*cuts, "-o", out, *FAST, "--layout", "librimix"]
    assert _run(capsys, *args)[0] == 0
    src = out / "s1" / "m0.wav"
    stamp = src.stat().st_mtime_ns
    code, text, _ = _run(capsys, *args)
    assert code == 0 and "0 separated, 3 skipped" in text and src.stat().st_mtime_ns == stamp
    (out / "s2" / "m1.wav").unlink()  # an output set with a file missing is not finished
    code, text, _ = _run(capsys, *args)
    assert "1 separated, 2 skipped" in text and (out / "s2" / "m1.wav").is_file()
    code, text, _ = _run(capsys, *args, "--overwrite")
    assert "3 separated, 0 skipped" in text and src.stat().st_mtime_ns != stamp
    # another talker count: the record lists the new files and the stale s2/ file goes
    code, text, _ = _run(capsys, cuts[0], "-o", out, *FAST, "--layout", "librimix", "--n-src", "1")
    assert code == 0 and "1 separated" in text
    assert not (out / "s2" / "m0.wav").exists() and (out / "s2" / "m1.wav").is_file()


def test_only_the_inputs_own_temp_files_are_removed(cuts, tmp_path, capsys):
    out = tmp_path / "out"
    mine = [out / "s1" / ".m0.k3j_x9q0.tmp.wav", out / "separation" / ".m0.abcdefgh.tmp.json"]
    other = out / "s1" / ".m9.k3j_x9q0.tmp.wav"  # another job's input, maybe being written
    for path in [*mine, other]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    code, _, err = _run(capsys, cuts[0], "-o", out, *FAST, "--layout", "librimix")
    assert code == 0 and "removed 2 temporary file(s)" in err
    assert not any(p.exists() for p in mine) and other.read_bytes() == b"partial"


def test_streamed_output_and_plot_in_the_librimix_layout(tmp_path, capsys):
    out = tmp_path / "out"
    argv = [MIXTURE, "-o", out, *FAST, "--chunk", "3", "--plot", "--layout", "librimix"]
    assert _run(capsys, *argv)[0] == 0
    record = json.loads((out / "separation" / "mix.json").read_text())
    assert record["settings"]["streamed"]
    assert record["files"][-1] == "../spectrogram/mix.png"
    assert (out / "spectrogram" / "mix.png").read_bytes()[:4] == b"\x89PNG"
    mix, _ = read(MIXTURE)
    total = sum(read(out / f / "mix.wav")[0] for f in ("s1", "s2", "noise"))
    assert np.abs(total - mix).max() < 1e-4 * np.abs(mix).max() + 1e-6
    code, text, _ = _run(capsys, *argv)
    assert "0 separated, 1 skipped" in text


def test_evaluate_reads_the_librimix_layout_as_the_folders_layout(tmp_path, capsys):
    assert _run(capsys, MANIFEST, "-o", tmp_path / "f", *FAST)[0] == 0
    assert _run(capsys, MANIFEST, "-o", tmp_path / "l", *FAST, "--layout", "librimix")[0] == 0
    assert (tmp_path / "l" / "s2" / "000000.wav").is_file()
    folders = evaluate_dir(tmp_path / "f", MANIFEST, metrics=("sdr",))
    librimix = evaluate_dir(tmp_path / "l", MANIFEST, metrics=("sdr",))
    assert librimix.n_mixtures == 1 and len(librimix.rows) == 2
    for a, b in zip(folders.rows, librimix.rows, strict=True):
        assert a["sdr"] == pytest.approx(b["sdr"], abs=1e-9) and np.isfinite(a["sdr"])
        assert b["est_file"] == a["est_file"].replace("src", "s").replace(".wav", "/000000.wav")
    assert not librimix.notes or "match no reference" not in " ".join(librimix.notes)
    (tmp_path / "l" / "s2" / "000000.wav").unlink()
    with pytest.raises(Exception, match=r"s<k>/000000.*1 source file.*2 speakers"):
        evaluate_dir(tmp_path / "l", MANIFEST, metrics=("sdr",))
