"""VAE-FCA re-fitted from an earlier separation: the start's parameters
(``image_parameters``), ``refit_vae_fca`` and ``separate(..., refit=...)``."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from vae_audio.audio import StftConfig, istft, stft
from vae_audio.errors import VaeAudioError
from vae_audio.eval.metrics import bss_eval
from vae_audio.separation import separate
from vae_audio.separation.covariance import image_parameters
from vae_audio.separation.vae_fca import PRIOR, refit_vae_fca
from vae_audio.separation.wiener import wiener_full_rank

from .test_vae_fca import model_mix, prior, speech_mix  # noqa: F401 (fixtures)

CFG = StftConfig()


def _snr(ref: torch.Tensor, est: torch.Tensor) -> float:
    """Mean SNR (dB) of spectrograms ``est [K, F, T]`` against ``ref [K, F, T]``, talker k
    against talker k (no permutation is searched, unlike BSS Eval)."""
    err = (ref - est).abs().square().sum((1, 2)) / ref.abs().square().sum((1, 2))
    return float(-10 * err.log10().mean())


def test_image_parameters_against_the_formula():
    """``λ = ‖c‖²/M`` and ``H_f`` the mean of ``c cᴴ/λ`` over the frames where the image is
    not silent, by a plain loop; a bin silent at every frame gets the identity."""
    gen = torch.Generator().manual_seed(0)
    C = torch.randn(2, 3, 4, 5, 6, generator=gen, dtype=torch.complex128)  # [B, J, M, F, T]
    C[0, 1, :, 2, 1:4] = 0  # silent frames
    C[1, 0, :, 3] = 0  # a bin silent throughout
    lam, H = image_parameters(C)
    assert lam.shape == (2, 3, 5, 6) and H.shape == (2, 3, 5, 4, 4)
    c = C.numpy()
    for b, j, f in np.ndindex(2, 3, 5):
        frames = [c[b, j, :, f, t] for t in range(6) if np.any(c[b, j, :, f, t])]
        want = np.eye(4) if not frames else np.mean(
            [np.outer(v, v.conj()) / (np.linalg.norm(v) ** 2 / 4) for v in frames], 0
        )  # fmt: skip
        np.testing.assert_allclose(H[b, j, f].numpy(), want, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(
            lam[b, j, f].numpy(), np.square(np.abs(c[b, j, :, f])).mean(0), rtol=1e-12
        )
    assert torch.allclose(H.diagonal(dim1=-2, dim2=-1).sum(-1).real, torch.tensor(4.0).double())


def test_refit_starts_from_the_images_it_is_given(prior, model_mix):  # noqa: F811
    """Before its first iteration the re-fit holds the SCMs that the talker images and the
    rest of the mixture imply, and each talker slot's latents are the prior's encoder mean
    of that talker's mic-0 power."""
    from vae_audio.separation.priors import prior_level

    x, c, _, _ = model_mix
    fit = refit_vae_fca(x, c[:, :2], n_iter=0, prior=prior)
    _, H = image_parameters(torch.cat([c[:, :2], (x - c[:, :2].sum(1))[:, None]], 1))
    assert float((fit.H - H).norm() / H.norm()) < 5e-3  # up to the start's diagonal loading
    net = copy.deepcopy(prior).double()
    with torch.no_grad():
        z = net.encode(prior_level(c[:, :2, 0].abs().square(), net)).mean  # [1, 2, T, D]
    assert torch.allclose(fit.source.z.detach(), z, atol=1e-6)
    assert fit.log_likelihood.shape == (1, 1)


def test_refit_keeps_the_talkers_it_starts_from(prior, model_mix):  # noqa: F811
    """Started from the true talker images of a mixture drawn from the model, the re-fit
    separates near the oracle Wiener filter and keeps the start's talker order: started from
    the same images in the other order, its slots come out swapped. Its MAP objective never
    decreases."""
    x, c, lam, H = model_mix
    fit = refit_vae_fca(x, c[:, :2], n_iter=10, prior=prior)
    images = fit.images(x)[0, :, 0]  # [3, F, T] mic 0
    oracle = _snr(c[0, :2, 0], wiener_full_rank(x, lam, H)[0, :2, 0])
    assert _snr(c[0, :2, 0], images[:2]) > oracle - 3
    objective = fit.log_likelihood + fit.log_prior  # [1, 11]
    assert bool((objective.diff(dim=1) >= -1e-9 * objective[:, 1:].abs()).all())
    assert int(fit.noise_index[0]) == 2 and fit.lam.shape[1] == 3
    swapped = refit_vae_fca(x, c[:, [1, 0]], n_iter=10, prior=prior).images(x)[0, :, 0]
    assert _snr(c[0, :2, 0], swapped[[1, 0]]) > oracle - 3
    assert _snr(c[0, :2, 0], swapped[:2]) < 1
    assert _snr(c[0, :2, 0], x[0, :1].expand(2, -1, -1)) < oracle - 8  # the mixture


def test_refit_improves_a_poor_start(prior, model_mix):  # noqa: F811
    """From a start that is half the truth and half the other talker, the re-fit (with the
    prior the mixture was drawn from) separates better than the start."""
    x, c, _, _ = model_mix
    start = 0.6 * c[:, :2] + 0.4 * c[:, [1, 0]]  # [1, 2, M, F, T]
    before = _snr(c[0, :2, 0], start[0, :, 0])
    after = _snr(c[0, :2, 0], refit_vae_fca(x, start, n_iter=15, prior=prior).images(x)[0, :2, 0])
    assert after > before + 3, (after, before)


def test_separate_averages_the_refit_with_its_start(speech_mix):  # noqa: F811
    """``separate(..., refit=...)``: the talkers are the mean of the plain separation's and of
    ``refit_vae_fca`` started from them; talkers and noise still add up to the mixture."""
    mix, refs = speech_mix
    plain = separate(mix, "fastmnmf2", n_iter=30, seed=1)
    res = separate(mix, "fastmnmf2", n_iter=30, seed=1, refit={"n_iter": 4})
    assert res.settings["refit"] == {"n_iter": 4, "weight": 0.5, "prior": PRIOR}
    assert plain.settings["refit"] is None
    assert "refit" in res.timings
    X = stft(torch.as_tensor(mix)[None], CFG)  # [1, M, F, T]
    talkers = stft(plain.sources[None], CFG)  # [1, 2, M, F, T]
    own = istft(refit_vae_fca(X, talkers, n_iter=4, seed=1).images(X), CFG, length=mix.shape[1])
    # the refit's images as separate() orders them: the start's order, then by energy
    order = torch.argsort(((plain.sources + own[0, :2]) / 2).square().sum((1, 2)), descending=True)
    want = ((plain.sources + own[0, :2]) / 2)[order]
    assert _snr(want.flatten(1)[:, None], res.sources.flatten(1)[:, None]) > 40  # round-off
    assert _snr(plain.sources.flatten(1)[:, None], res.sources.flatten(1)[:, None]) < 30
    total = res.sources.sum(0) + res.noise
    assert float((total - torch.as_tensor(mix)).square().sum() / np.square(mix).sum()) < 1e-4
    sdr = bss_eval(refs[:, 0], res.sources[:, 0].numpy()).sdr.mean()
    base = bss_eval(refs[:, 0], np.stack([mix[0], mix[0]])).sdr.mean()
    assert sdr > base + 6


def test_refit_prior_defaults_to_the_registry_entry_of_vae_fca(speech_mix, monkeypatch):  # noqa: F811
    """The re-fit runs ``vae-fca``'s default prior as the registry states it, the one that
    ``vae-audio separate`` records, and names it in ``settings["refit"]``."""
    import dataclasses

    from vae_audio.separation import METHODS

    mix, _ = speech_mix
    run = {"method": "fastmnmf2", "n_iter": 10, "seed": 1}
    default = separate(mix, **run, refit={"n_iter": 2})
    spec = dataclasses.replace(METHODS["vae-fca"], defaults={"prior": "speech-vae"})
    monkeypatch.setitem(METHODS, "vae-fca", spec)
    changed = separate(mix, **run, refit={"n_iter": 2})
    named = separate(mix, **run, refit={"n_iter": 2, "prior": "speech-vae"})
    assert changed.settings["refit"]["prior"] == "speech-vae" != PRIOR
    assert torch.equal(changed.sources, named.sources)
    assert not torch.allclose(changed.sources, default.sources, atol=1e-4)


def test_refit_weight_mixes_the_two(speech_mix):  # noqa: F811
    """``weight`` 0 gives the plain separation, 1 the re-fit alone, ½ their mean."""
    mix = speech_mix[0]
    out = {
        w: separate(mix, "fastmnmf2", n_iter=10, refit={"n_iter": 3, "weight": w}).sources
        for w in (0.0, 0.5, 1.0)
    }
    plain = separate(mix, "fastmnmf2", n_iter=10).sources
    assert torch.equal(out[0.0], plain)
    assert not torch.allclose(out[1.0], plain, atol=1e-3)
    # each output is ordered by energy: compare as sets of talkers
    mean = (plain + out[1.0]) / 2
    if _snr(mean[:1].flatten(1)[:, None], out[0.5][:1].flatten(1)[:, None]) < 40:
        mean = (plain + out[1.0].flip(0)) / 2
    assert _snr(mean.flatten(1)[:, None], out[0.5].flatten(1)[:, None]) > 40


@pytest.mark.parametrize(
    ("refit", "stft_config", "match"),
    [
        ({"n_iters": 3}, None, "refit is a dict of"),
        ([3], None, "refit is a dict of"),
        ({"n_iter": -1}, None, "non-negative"),
        ({"weight": 1.5}, None, r"in \[0, 1\]"),
        ({}, StftConfig(n_fft=1024, hop_length=256), "n_fft=512"),
    ],
)
def test_bad_refit_is_refused(speech_mix, refit, stft_config, match):  # noqa: F811
    with pytest.raises(VaeAudioError, match=match):
        separate(speech_mix[0], "fastmnmf2", n_iter=1, stft=stft_config, refit=refit)


def test_refit_runs_on_every_chunk(speech_mix):  # noqa: F811
    """With ``chunk_seconds`` every chunk is re-fitted from its own separation: the talkers of
    a chunked run with the re-fit differ from those without, and talkers and noise still add
    up to the mixture."""
    mix = speech_mix[0]
    kw = dict(n_iter=10, chunk_seconds=0.6, overlap_seconds=0.2)
    plain = separate(mix, "fastmnmf2", **kw)
    res = separate(mix, "fastmnmf2", refit={"n_iter": 2}, **kw)
    assert res.sources.shape == plain.sources.shape and torch.isfinite(res.sources).all()
    assert not torch.allclose(res.sources, plain.sources, atol=1e-3)
    total = res.sources.sum(0) + res.noise
    assert float((total - torch.as_tensor(mix)).square().sum() / np.square(mix).sum()) < 1e-3


def test_refit_batched_equals_one_by_one(prior):  # noqa: F811
    """Each item of a batch is re-fitted as it would be alone (complex128)."""
    from .test_vae_fca import sample_model

    x, c, _, _ = sample_model(prior, B=2, T=24, seed=1)
    both = refit_vae_fca(x, c[:, :2], n_iter=3).images(x)
    for b in range(2):
        one = refit_vae_fca(x[b : b + 1], c[b : b + 1, :2], n_iter=3).images(x[b : b + 1])
        assert torch.allclose(both[b], one[0], rtol=1e-6, atol=1e-9 * float(one.abs().max()))
