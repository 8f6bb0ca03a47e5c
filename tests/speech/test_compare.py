"""Held-out comparison of speech priors (vae_audio.speech.compare) on the fixture corpus."""

from pathlib import Path

import pytest

from vae_audio._pretrained import pretrained_path
from vae_audio.speech.compare import compare_priors, main, markdown, select_entries
from vae_audio.speech.prior import load_speech_prior
from vae_audio.speech.recipe import load_utterances
from vae_audio.speech.report import mean_psd, score_prior

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"


def test_select_entries_caps_each_speaker_then_the_set():
    entries = select_entries(FIXTURES / "train.jsonl", per_speaker=1)
    speakers = [e["speaker"] for e in entries]
    assert len(speakers) == len(set(speakers)) > 1
    assert len(select_entries(FIXTURES / "train.jsonl", per_speaker=None, limit=3)) == 3


def test_rows_are_the_report_scores_of_each_prior_on_each_set(tmp_path):
    shipped = str(pretrained_path("speech-vae"))
    sets = [("train", str(FIXTURES / "train.jsonl")), ("valid", str(FIXTURES / "valid.jsonl"))]
    rows = compare_priors([("a", shipped), ("b", shipped)], sets, per_speaker=None, limit=None)
    prior = load_speech_prior(shipped)
    for row, (_, manifest) in zip(rows, sets, strict=True):
        waves = load_utterances(manifest, 16000, -25.0)
        want = score_prior(prior, waves, mean_psd(prior, waves))
        assert row["utterances"] == len(waves) and row["frames"] == want.n_frames
        assert row["is:a"] == row["is:b"] == pytest.approx(want.is_div_vae, rel=1e-6)
        assert row["is:gain-adapted mean PSD"] == pytest.approx(want.is_div_fixed_gain, rel=1e-6)
        assert row["is:a"] < row["is:gain-adapted mean PSD"]
    table = markdown(rows)
    assert (
        table.splitlines()[0]
        == "| set | utterances | voices | frames | gain-adapted mean PSD | a | b |"
    )
    assert f"{rows[1]['is:b']:.1f}" in table.splitlines()[3]
    out = tmp_path / "cmp"
    assert (
        main(["--prior", f"s={shipped}", "--set", sets[1][0] + "=" + sets[1][1], "--out", str(out)])
        == 0
    )
    assert out.with_suffix(".md").read_text().count("\n") == 3
    assert main(["--prior", shipped, "--set", sets[1][1]]) == 2  # NAME= missing
