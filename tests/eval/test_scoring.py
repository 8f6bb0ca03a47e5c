"""Scores of one mixture: improvement columns, subset selection, perceptual metrics."""

import warnings

import numpy as np
import pytest
import torch
from mir_eval import separation

from vae_audio.errors import VaeAudioError
from vae_audio.eval import perceptual, score_mixture, si_sdr
from vae_audio.eval.scoring import metric_columns, resolve_metrics

SR, S = 8000, 4000


@pytest.fixture
def mixture():
    gen = torch.Generator().manual_seed(0)
    ref = torch.randn(2, 2, S, generator=gen, dtype=torch.float64)  # [K, M, S]
    noise = 0.1 * torch.randn(2, S, generator=gen, dtype=torch.float64)  # [M, S]
    mix = ref.sum(0) + noise  # [M, S]
    est = torch.stack([noise, ref[1], ref[0]]) + 0.05 * torch.randn(3, 2, S, generator=gen)
    return ref, est, mix


def test_improvements_are_estimate_minus_mixture_scores(mixture):
    ref, est, mix = mixture
    scores = score_mixture(ref, est, mix, SR)
    v = scores.values
    np.testing.assert_array_equal(scores.perm, [2, 1])
    assert scores.dropped == (0,)
    ref0, mix0 = ref[:, 0].numpy(), mix[0].numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        sdr_est = separation.bss_eval_sources(ref0, est[[2, 1], 0].numpy(), False)[0]
        sdr_mix = separation.bss_eval_sources(ref0, np.stack([mix0, mix0]), False)[0]
    np.testing.assert_allclose(v["sdr"], sdr_est, atol=1e-9)
    np.testing.assert_allclose(v["sdr_mix"], sdr_mix, atol=1e-9)
    np.testing.assert_allclose(v["sdr_i"], sdr_est - sdr_mix, atol=1e-9)
    si_est = si_sdr(ref[:, 0], est[[2, 1], 0]).numpy()
    si_mix = si_sdr(ref[:, 0], mix[0].expand(2, S)).numpy()
    np.testing.assert_allclose(v["si_sdr_i"], si_est - si_mix, atol=1e-9)
    assert (v["sdr_i"] > 10).all() and (v["si_sdr_i"] > 10).all()  # separation helps a lot


def test_si_sdr_only_matches_by_si_sdr_and_skips_sdr_columns(mixture):
    ref, est, mix = mixture
    scores = score_mixture(ref, est, mix, SR, metrics=("si-sdr",), criterion="si-sdr")
    assert set(scores.values) == {"si_sdr", "si_sdr_mix", "si_sdr_i"}
    np.testing.assert_array_equal(scores.perm, [2, 1])
    assert metric_columns(("si-sdr",), False) == ["si_sdr", "si_sdr_mix", "si_sdr_i"]


def test_resolve_metrics_defaults_to_installed_perceptual(monkeypatch):
    monkeypatch.setattr(perceptual, "unavailable", lambda: {"pesq": "PESQ missing", "stoi": "x"})
    chosen, notes = resolve_metrics(None)
    assert chosen == ("sdr", "si-sdr") and notes == ["PESQ missing", "x"]
    with pytest.raises(VaeAudioError, match="needs the 'pesq' package.*pip install pesq"):
        resolve_metrics(("sdr", "pesq"))
    with pytest.raises(VaeAudioError, match=r"unknown metric\(s\) \['snr'\]"):
        resolve_metrics(("snr",))


def test_perceptual_metrics_match_the_libraries(mixture):
    pesq = pytest.importorskip("pesq", reason="optional package 'pesq' not installed")
    pystoi = pytest.importorskip("pystoi", reason="optional package 'pystoi' not installed")
    import librosa

    ref, est, mix = mixture
    scores = score_mixture(ref, est, mix, SR, metrics=("si-sdr", "pesq", "stoi"))
    r, e = ref[0, 0].numpy(), est[2, 0].numpy()
    r16, e16 = (librosa.resample(x, orig_sr=SR, target_sr=16000) for x in (r, e))
    assert scores.values["pesq"][0] == pytest.approx(pesq.pesq(16000, r16, e16, "wb"), abs=0.05)
    assert scores.values["stoi"][0] == pytest.approx(pystoi.stoi(r, e, SR), abs=1e-6)
