"""`vae-audio separate --wpe`: the WPE front end reaches separate() (whole and streamed),
is recorded, and outputs with and without it are never taken for each other."""

from __future__ import annotations

import json
import sys

import numpy as np
import soundfile as sf
import torch

from tests.apps.conftest import FAST, MIXTURE, read
from vae_audio import cli
from vae_audio.separation import separate


def _run(capsys, *argv) -> tuple[int, str]:
    code = cli.main(["separate", *map(str, argv)])
    return code, capsys.readouterr().out


def test_wpe_flag_is_recorded_and_keyed(tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(capsys, MIXTURE, "-o", out, *FAST)[0] == 0
    code, text = _run(capsys, MIXTURE, "-o", out, *FAST, "--wpe")
    assert code == 0 and "1 separated, 0 skipped" in text  # made without WPE: redone
    record = json.loads((out / "mix" / "separation.json").read_text())
    assert record["job"]["wpe"] is True
    assert record["settings"]["wpe"]["taps"] == 10 and record["timings_s"]["wpe"] > 0
    x, sr = sf.read(MIXTURE, dtype="float32")  # [S, M]
    ref = separate(torch.from_numpy(x.T.copy()), n_src=2, sr=sr, n_iter=2, wpe=True)
    got = torch.from_numpy(read(out / "mix" / "src1.wav")[0].T)  # [M, S]
    torch.testing.assert_close(got, ref.sources[0], rtol=0, atol=1e-6)
    assert "0 separated, 1 skipped" in _run(capsys, MIXTURE, "-o", out, *FAST, "--wpe")[1]
    assert "1 separated, 0 skipped" in _run(capsys, MIXTURE, "-o", out, *FAST)[1]


def test_wpe_flag_runs_in_every_streamed_chunk(tmp_path, capsys):
    data, sr = sf.read(MIXTURE, dtype="float32")
    long = np.concatenate([data, data[::-1]])  # 4 s: 2-s chunks with 1-s overlaps
    path = tmp_path / "long.wav"
    sf.write(path, long, sr, subtype="FLOAT")
    code, _ = _run(capsys, path, "-o", tmp_path / "out", *FAST, "--chunk", "2", "--wpe")
    assert code == 0
    ref = separate(torch.from_numpy(long.T.copy()), n_src=2, sr=sr, n_iter=2, chunk_seconds=2.0,
                   wpe=True)  # fmt: skip
    folder = tmp_path / "out" / "long"
    record = json.loads((folder / "separation.json").read_text())
    assert record["settings"]["streamed"] and record["settings"]["wpe"]["delay"] == 3
    got = torch.from_numpy(read(folder / "src1.wav")[0].T)
    torch.testing.assert_close(got, ref.sources[0], rtol=0, atol=1e-6)


def test_wpe_without_nara_wpe_stops_before_anything_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "nara_wpe", None)
    monkeypatch.setitem(sys.modules, "nara_wpe.torch_wpe", None)
    code = cli.main(["separate", str(MIXTURE), "-o", str(tmp_path / "out"), *FAST, "--wpe"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not (tmp_path / "out" / "mix").exists()
    assert len(err.splitlines()) == 1 and "pip install 'vae_audio[wpe]'" in err
