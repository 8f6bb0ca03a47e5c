"""`vae-audio demo` end to end, small settings (2.5-s mixture, 3 iterations)."""

from __future__ import annotations

import json
import math

import mir_eval
import numpy as np
import pytest

from tests.apps.conftest import read
from vae_audio import cli
from vae_audio.apps import methods
from vae_audio.apps.demo import run_demo
from vae_audio.separation import METHODS


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_demo_cli_prints_the_table_and_writes_its_files(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(methods, "shipped_model_path", lambda: None)
    monkeypatch.setattr(methods, "AUTO_FALLBACK", ("fastmnmf2",))
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--fast", "--iters", "3", "--baselines", "fastmnmf2"]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    auto = (
        "auto: fastmnmf2 (4 starts) + fastmnmf2 (4 starts after WPE; 2 starts on 2x longer "
        "frames; 2 starts after WPE on 2x longer frames; 2 starts on 4x longer frames), "
        "re-fitted by vae-fca"
    )
    assert "| mixture (unprocessed, mic 0)" in text and f"| {auto}" in text
    assert "demo finished in" in text
    for path in ("sim/manifest.jsonl", "sim/demo/mix.wav", "fastmnmf2/demo/src2.wav",
                 "fastmnmf2/demo/spectrogram.png", "fastmnmf2/summary.json", "spectrograms.png",
                 "results.md"):  # fmt: skip
        assert (out / path).is_file(), path
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [r["method"] for r in rows] == [
        "mixture (unprocessed, mic 0)",
        auto,
    ]
    assert all(math.isfinite(r[c]) for r in rows for c in ("sdr", "sir", "sar", "si_sdr"))
    # the mixture row against mir_eval directly: mic 0 of the mixture as each talker's estimate
    mix, sr = read(out / "sim" / "demo" / "mix.wav")
    refs = np.stack([read(out / "sim" / "demo" / f"src{k}.wav")[0][:, 0] for k in (1, 2)])
    assert mix.shape == (int(2.5 * sr), 4)
    sdr, sir, sar, _ = mir_eval.separation.bss_eval_sources(refs, np.stack([mix[:, 0]] * 2), False)
    assert np.isclose(rows[0]["sdr"], sdr.mean(), atol=1e-3)
    assert np.isclose(rows[0]["sir"], sir.mean(), atol=1e-3)


def test_demo_with_a_shipped_neural_model_adds_the_default_baselines(
    tiny_model_file, tmp_path, monkeypatch
):
    monkeypatch.setattr(methods, "shipped_model_path", lambda: tiny_model_file)
    result = run_demo(tmp_path / "demo", fast=True, iters=2, log=lambda *_: None)
    expected = [
        "mixture (unprocessed, mic 0)",
        "auto: neural-fastfca (shipped model) + fastmnmf2 (4 starts; 4 starts after WPE; 2 "
        "starts on 2x longer frames; 2 starts after WPE on 2x longer frames; 2 starts on 4x "
        "longer frames)",
        "fastmnmf2",
    ]
    if "vae-fastfca" in METHODS:
        expected.append("vae-fastfca (speech prior speech-vae-conv16)")
    assert [r["method"] for r in result.rows] == expected
    assert all(math.isfinite(r["sdr"]) for r in result.rows)
    wav, _ = read(tmp_path / "demo" / "neural-fastfca" / "demo" / "src1.wav")
    assert wav.shape == (int(2.5 * 16000), 4)
