"""Model files, the checks before separating, and separation through the method registry."""

from __future__ import annotations

import pytest
import torch

from vae_audio.audio.stft import StftConfig, istft, stft
from vae_audio.core.checkpoint import save_model
from vae_audio.errors import VaeAudioError
from vae_audio.neural_fca import fit_neural_fca, load_neural_fca, save_neural_fca
from vae_audio.neural_fca.inference import separate_with_model
from vae_audio.separation import separate
from vae_audio.separation.covariance import fca_covariance
from vae_audio.separation.fca import fca_log_likelihood

from .conftest import random_stft, tiny_model

TINY_STFT = StftConfig(sample_rate=16000, n_fft=16, hop_length=4)


@pytest.fixture(scope="module", params=["full", "jd"])
def model_file(request, tmp_path_factory):
    model = tiny_model(4, request.param, seed=2)
    return save_neural_fca(tmp_path_factory.mktemp("nfca") / "model.pt", model)


def test_model_file_round_trips_exactly(model_file):
    a, b = load_neural_fca(model_file), load_neural_fca(model_file)
    x = random_stft(1, 4)
    fa, fb = fit_neural_fca(x, a), fit_neural_fca(x, b)
    torch.testing.assert_close(fa.lam, fb.lam, rtol=0, atol=0)
    assert a.config == b.config and a.stft_config == TINY_STFT


def test_wrong_mic_count_is_refused_with_alternatives(model_file):
    with pytest.raises(VaeAudioError, match=r"M = 4 .*M = 2.*fastmnmf2, fastmnmf, mnmf, fca"):
        load_neural_fca(model_file, n_mics=2)
    mix = torch.randn(2, 800)  # a 2-channel waveform through the registry
    with pytest.raises(VaeAudioError, match=r"M = 4.*fastmnmf2, fastmnmf, mnmf, fca"):
        separate(mix, method=_method(model_file), model=model_file, stft=TINY_STFT)


def test_wrong_stft_is_refused(model_file):
    with pytest.raises(VaeAudioError, match="n_fft=16.*n_fft=512"):
        load_neural_fca(model_file, stft=StftConfig())
    with pytest.raises(VaeAudioError, match="n_fft=16, hop_length=4"):
        separate(torch.randn(4, 1600), method=_method(model_file), model=model_file)


def test_a_rate_the_model_was_not_trained_at_is_refused(model_file):
    """An STFT with the model's settings at another sample rate has the same bins: without the
    check, the 16-kHz model would run on 48-kHz spectra."""
    at_48k = StftConfig(sample_rate=48000, n_fft=16, hop_length=4)
    with pytest.raises(VaeAudioError, match="made for 16000 Hz but the mixture is at sr=48000"):
        separate(
            torch.randn(4, 1600),
            method=_method(model_file),
            model=model_file,
            sr=48000,
            stft=at_48k,
        )
    res = separate(torch.randn(4, 1600), method=_method(model_file), model=model_file,
                   stft=TINY_STFT)  # fmt: skip
    assert res.sources.shape == (2, 4, 1600)


def test_foreign_model_files_are_refused(tmp_path):
    path = save_model(tmp_path / "other.pt", {}, {}, kind="speech-vae")
    with pytest.raises(VaeAudioError, match="'speech-vae' model, expected 'neural-fca'"):
        load_neural_fca(path)
    with pytest.raises(VaeAudioError, match="model=PATH"):
        separate(torch.randn(4, 800), method="neural-fca", stft=TINY_STFT)


@pytest.mark.parametrize("spatial", ["full", "jd"])
@pytest.mark.parametrize("n_iter", [0, 2])
def test_images_sum_to_the_mixture(spatial, n_iter):
    """Wiener property: Σ_n ĉ_n = x − ε Y⁻¹ x, i.e. x for ε → 0 (float64, ε = 1e-12)."""
    model = tiny_model(3, spatial, eps=1e-12).double()
    x = random_stft(2, 3, dtype=torch.complex128) * 50  # raw (not normalised) scale
    fit = fit_neural_fca(x, model, n_iter=n_iter)
    images = fit.images(x)  # [B, N, M, F, T]
    assert images.shape == (2, 3, 3, 9, 24)
    torch.testing.assert_close(images.sum(1), x, rtol=1e-7, atol=1e-7 * float(x.abs().max()))
    assert float((images[:, 0] - x).abs().max()) > 1e-3 * float(x.abs().max())  # not trivial
    assert fit.noise_index.tolist() == [2, 2]


def test_log_likelihood_is_that_of_the_fitted_full_rank_model():
    model = tiny_model(3, eps=1e-6).double()
    x = random_stft(2, 3, dtype=torch.complex128) * 7
    fit = fit_neural_fca(x, model)
    expect = fca_log_likelihood(x, fca_covariance(fit.lam, fit.H, fit.eps))
    torch.testing.assert_close(fit.log_likelihood[:, 0], expect, rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("spatial", ["full", "jd"])
def test_refinement_spatial_steps_never_lower_the_likelihood(spatial):
    """With lr = 0 only the EM (full) / ISS (JD) updates act: both are monotone."""
    model = tiny_model(3, spatial).double()
    x = random_stft(2, 3, dtype=torch.complex128)
    ll = fit_neural_fca(x, model, n_iter=6, lr=0.0).log_likelihood  # [B, 7]
    assert bool((ll.diff(dim=1) >= -1e-7 * ll.abs()[:, 1:]).all())
    assert bool((ll[:, -1] > ll[:, 0]).all())


def test_more_jd_updates_after_the_encoder_raise_the_amortised_likelihood():
    """``jd_iterations`` overrides the model's MM updates of ``Q`` and ``g`` after the
    encoder: each never lowers the likelihood, so more give a higher amortised one; the
    default is the training value, and the full-rank method refuses the option."""
    model = tiny_model(3, "jd", jd_iterations=2).double()
    x = random_stft(2, 3, dtype=torch.complex128)
    ll = [fit_neural_fca(x, model, jd_iterations=k).log_likelihood[:, 0] for k in (0, 2, 8)]
    assert bool((ll[1] > ll[0]).all()) and bool((ll[2] > ll[1]).all())
    torch.testing.assert_close(fit_neural_fca(x, model).log_likelihood[:, 0], ll[1])
    wav = istft(x, model.stft_config)
    with pytest.raises(VaeAudioError, match="jd_iterations applies to .* uses em_iterations"):
        separate(wav, "neural-fca", sr=16000, model=model, stft=model.stft_config, jd_iterations=3)


def test_separate_through_the_registry_with_chunking(model_file):
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(4, 4000, generator=g, dtype=torch.float64)
    res = separate_with_model(
        mix, model_file, chunk_seconds=0.1, overlap_seconds=0.02, dtype=torch.float64
    )
    assert res.sources.shape == (2, 4, 4000) and res.noise.shape == (4, 4000)
    assert res.objective.shape[0] > 1  # several chunks
    total = res.sources.sum(0) + res.noise
    torch.testing.assert_close(total, mix, rtol=0, atol=1e-4)


def test_noise_output_is_the_last_slot(model_file):
    model = load_neural_fca(model_file).double()
    mix = torch.randn(1, 4, 1600, dtype=torch.float64)
    res = separate(
        mix, method=_method(model_file), model=model, stft=TINY_STFT, n_src=2, dtype=torch.float64
    )
    X = stft(mix, TINY_STFT)
    noise = istft(fit_neural_fca(X, model).images(X)[:, -1], TINY_STFT, length=1600)
    torch.testing.assert_close(res.noise, noise)


def _method(path) -> str:
    return "neural-fastfca" if load_neural_fca(path).config.spatial == "jd" else "neural-fca"


def test_full_rank_scms_by_em_on_the_latents_of_a_jd_model():
    """spatial="full" keeps the JD model's PSDs and estimates H by EM from the identity."""
    from vae_audio.neural_fca import estimate_scm

    model = tiny_model(3, "jd", eps=1e-12).double()
    x = random_stft(2, 3, dtype=torch.complex128) * 5
    jd = fit_neural_fca(x, model)
    full = fit_neural_fca(x, model, spatial="full", em_iterations=4)
    torch.testing.assert_close(full.lam, jd.lam)
    assert full.Q is None and full.H.shape == (2, 3, 9, 3, 3)
    xn, scale = model.normalise(x)
    power = scale.square()[:, None, None, None]
    expect = estimate_scm(xn, jd.lam / power, 4, model.config.eps)
    torch.testing.assert_close(full.H, expect)
    images = full.images(x)
    torch.testing.assert_close(images.sum(1), x, rtol=1e-7, atol=1e-7 * float(x.abs().max()))
    refined = fit_neural_fca(x, model, n_iter=3, lr=0.0, spatial="full").log_likelihood
    assert bool((refined.diff(dim=1) >= -1e-7 * refined.abs()[:, 1:]).all())  # EM is monotone


def test_spatial_model_choice_through_the_registry(model_file):
    spatial = load_neural_fca(model_file).config.spatial
    mix = torch.randn(4, 1600, generator=torch.Generator().manual_seed(1))
    res = separate(mix, method="neural-fca", model=model_file, stft=TINY_STFT, n_src=2)
    assert res.sources.shape == (2, 4, 1600)  # any trained model runs with full-rank SCMs
    if spatial == "full":
        with pytest.raises(VaeAudioError, match="no diagonaliser.*neural-fca"):
            separate(mix, method="neural-fastfca", model=model_file, stft=TINY_STFT, n_src=2)


def test_shipped_model_is_the_default_4_mic_neural_fastfca():
    import vae_audio
    from vae_audio._pretrained import pretrained_path

    path = pretrained_path("neural-fca")
    assert path.stat().st_size <= 20 * 2**20
    model = vae_audio.pretrained("neural-fca")
    assert model.n_mics == 4 and model.config.spatial == "jd" and model.config.n_speakers == 2
    assert model.stft_config == StftConfig()  # the default preset's 16 kHz, n_fft 512, hop 128
    with pytest.raises(VaeAudioError, match=r"M = 4 .*M = 6.*fastmnmf2"):
        load_neural_fca(path, n_mics=6)
    x = random_stft(1, 4, F=257, T=40)
    fit = fit_neural_fca(x, model)
    assert bool(torch.isfinite(fit.images(x)).all())


def test_full_rank_refinement_keeps_the_scms_definite(monkeypatch):
    """Refinement repeats the SCMs' EM update without gradients; where round-off leaves an
    update indefinite (made so here by subtracting a rank-1 term from one bin's update), it is
    projected back, so the fitted SCMs stay positive definite and the PSDs finite."""
    from vae_audio.separation import fca

    exact = fca._em_scm

    def broken(mom, lam, H):
        H_new = exact(mom, lam, H).clone()
        w, V = torch.linalg.eigh(H_new[0, 0, 1])
        H_new[0, 0, 1] -= 1.5 * w[-1] * torch.outer(V[:, -1], V[:, -1].conj())
        return H_new

    monkeypatch.setattr(fca, "_em_scm", broken)
    fit = fit_neural_fca(random_stft(1, 4), tiny_model(4, "full", seed=2), n_iter=3)
    assert (torch.linalg.eigvalsh(fit.H) > 0).all()
    assert torch.isfinite(fit.lam).all()
