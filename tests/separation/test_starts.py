"""Start selection (``init="auto"``): the likelihood rule keeps the better start per item, the
SNR rule fits one start, the returned fit carries the chosen start's history, images and
noise slot, and the cost record counts what was run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vae_audio.audio import StftConfig
from vae_audio.audio import stft as stft_transform
from vae_audio.errors import VaeAudioError
from vae_audio.separation import METHODS, separate
from vae_audio.separation.api import diffuseness_rank
from vae_audio.separation.starts import (
    SelectedFit,
    choose_by_likelihood,
    estimate_snr,
    selecting_fit,
)

from .conftest import random_psd, sample_jd, speech_like

SR = 8000
CFG = StftConfig(sample_rate=SR, n_fft=256, hop_length=64)


@pytest.fixture(scope="module")
def mix():
    return speech_like(M=3, seconds=0.75, sr=SR, seed=3, snr_db=20)[0]  # [M, S] float64


# ---- the selection logic, on stub fits with known likelihoods ------------------------------


class StubFit:
    """A fitted model with a known history ``[B, I + 1]`` ending at ``final [B]``, images that
    tag the start (slot n of item b is ``code · (n + 1) · x_b``), SCMs with one isotropic slot
    (``diffuse``) and, for the noise start, ``noise_index`` = the last slot."""

    def __init__(self, start, final, n_iter, N, M, F, diffuse, code):
        ramp = torch.linspace(0.0, 1.0, n_iter + 1, dtype=torch.float64)
        self.log_likelihood = final[:, None] - 10.0 * (1 - ramp)  # [B, I + 1]
        self.code, self.N = code, N
        B = final.shape[0]
        self.noise_index = torch.full((B,), N - 1) if start == "noise" else None
        gen = torch.Generator().manual_seed(code)
        H = random_psd((B, N, F), M, rank=1, load=1e-3, generator=gen)  # point sources
        H[:, diffuse] = torch.eye(M, dtype=H.dtype)
        self.H = H

    def images(self, x):  # x [B, M, F, T] -> [B, N, M, F, T]
        w = self.code * torch.arange(1, self.N + 1, dtype=x.real.dtype)
        return w[None, :, None, None, None] * x[:, None]

    def scm(self):
        return self.H


def stub_method(finals: dict[str, list[float]], diffuse: int = 0):
    """A ``MethodSpec.fit`` whose fits end at ``finals[init][b]`` for the items they get
    (item identity read from ``x[b, 0, 0, 0]``), and a log of the calls it got."""
    calls = []

    def fit(x, n_slots, n_iter, seed, callback, init="twostep", **opts):
        items = x[:, 0, 0, 0].real.round().long()  # [B']: the batch indices, tagged in x
        final = torch.tensor(finals[init], dtype=torch.float64)[items]
        calls.append((init, items.tolist(), opts))
        for it in range(n_iter):
            if callback is not None:
                callback(it, final - (n_iter - 1 - it))
        code = {"noise": 1, "twostep": 2}[init]
        M, F = x.shape[1], x.shape[2]
        return StubFit(init, final, n_iter, n_slots, M, F, diffuse, code)

    return fit, calls


def tagged_batch(B, M=3, F=8, T=40, seed=0):
    """``x [B, M, F, T]`` with ``x[b, 0, 0, 0] = b`` (so stubs know the item)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(B, M, F, T, dtype=torch.complex128, generator=gen)
    x[:, 0, 0, 0] = torch.arange(B, dtype=torch.float64)
    return x


@pytest.mark.parametrize(
    ("final", "expected"),
    [
        ({"noise": [1.0, 5.0], "twostep": [2.0, 3.0]}, ["twostep", "noise"]),
        ({"noise": [2.0], "twostep": [2.0]}, ["noise"]),  # tie: the first start
        ({"noise": [math.nan], "twostep": [-1e9]}, ["twostep"]),  # NaN never wins
        ({"noise": [-3.0], "twostep": [math.nan]}, ["noise"]),
    ],
)
def test_choose_by_likelihood(final, expected):
    final = {k: torch.tensor(v, dtype=torch.float64) for k, v in final.items()}
    assert choose_by_likelihood(final) == expected


def test_likelihood_rule_keeps_the_better_start_per_item():
    """Item 0: noise ends higher; item 1: twostep. Both starts are fitted on both items, and
    the returned history, images, noise slot and record are those of each item's winner."""
    finals = {"noise": [-100.0, -250.0], "twostep": [-120.0, -200.0]}
    fit, calls = stub_method(finals, diffuse=1)
    seen = []
    model = selecting_fit(fit, "jd")(
        tagged_batch(2), 3, 4, 0, lambda it, ll: seen.append((it, ll.clone())), init="auto"
    )
    assert isinstance(model, SelectedFit)
    assert model.record.chosen == ("noise", "twostep")
    assert [c[:2] for c in calls] == [("noise", [0, 1]), ("twostep", [0, 1])]
    assert model.log_likelihood.shape == (2, 5)
    assert model.log_likelihood[:, -1].tolist() == [-100.0, -200.0]
    # noise start: its named slot (2); twostep: the most diffuse slot of its SCMs (1)
    assert model.noise_index.tolist() == [2, 1]
    x = tagged_batch(2)
    images = model.images(x)  # [2, 3, M, F, T]
    assert torch.equal(images[0, 1], 1 * 2 * x[0]) and torch.equal(images[1, 1], 2 * 2 * x[1])
    assert torch.equal(model.scm()[0], model.candidates["noise"][0].H[0])
    assert torch.equal(model.scm()[1], model.candidates["twostep"][0].H[1])
    # cost: two fits per item, every iteration of both reported to the callback
    assert model.record.fits.tolist() == [2, 2]
    assert model.record.iterations == {"noise": 4 + 10, "twostep": 4 + 10}  # + n_iter_init
    assert len(seen) == 2 * 4 and all(ll.shape == (2,) for _, ll in seen)
    assert model.record.final_log_likelihood["twostep"].tolist() == finals["twostep"]


def test_noise_index_is_left_to_separate_when_no_chosen_start_names_one():
    fit, _ = stub_method({"noise": [-5.0], "twostep": [-1.0]}, diffuse=0)
    model = selecting_fit(fit, "jd")(tagged_batch(1), 3, 2, 0, None, init="auto")
    assert model.record.chosen == ("twostep",) and model.noise_index is None


def test_plain_inits_pass_through_and_start_options_need_auto():
    fit, calls = stub_method({"noise": [0.0], "twostep": [0.0]})
    wrapped = selecting_fit(fit, "jd")
    model = wrapped(tagged_batch(1), 3, 2, 0, None, init="noise", n_basis=4)
    assert isinstance(model, StubFit) and calls == [("noise", [0], {"n_basis": 4})]
    assert isinstance(wrapped(tagged_batch(1), 3, 2, 0, None), StubFit)  # fit's own default
    with pytest.raises(VaeAudioError, match="init='auto'"):
        wrapped(tagged_batch(1), 3, 2, 0, None, init="twostep", start_rule="snr")
    with pytest.raises(VaeAudioError, match="start_rule"):
        wrapped(tagged_batch(1), 3, 2, 0, None, init="auto", start_rule="bic")


# ---- the SNR rule -------------------------------------------------------------------------


def sparse_speech_plus_noise(snr_db, M=4, F=129, T=200, seed=0):
    """Speech-like bins (active in 60 % of frames, spectrally coloured) plus white noise,
    scaled so that total speech power / total noise power = ``snr_db`` -> ``[1, M, F, T]``."""
    gen = torch.Generator().manual_seed(seed)
    on = (torch.rand(1, 1, 1, T, generator=gen) < 0.6).double()
    colour = torch.linspace(3.0, 0.2, F, dtype=torch.float64)[None, None, :, None]
    s = torch.randn(1, M, F, T, dtype=torch.complex128, generator=gen) * (on * colour).sqrt()
    n = torch.randn(1, M, F, T, dtype=torch.complex128, generator=gen)
    ps, pn = s.abs().square().mean(), n.abs().square().mean()
    return s * (10 ** (snr_db / 20) * (pn / ps).sqrt()) + n


def test_estimate_snr_reads_the_constructed_snr():
    true = torch.tensor([0.0, 10.0, 25.0])
    x = torch.cat([sparse_speech_plus_noise(float(s), seed=i) for i, s in enumerate(true)])
    est = estimate_snr(x)  # [3]
    assert (est - true).abs().max() < 3.0, est
    assert (est[:2] < 15).all() and est[2] > 15  # on the right side of the default threshold


def test_snr_rule_fits_one_start_per_item():
    """Item 0 at 0 dB -> noise, item 1 at 25 dB -> twostep, each fitted once on its own
    item; the callback reports [B] with NaN for the item a fit does not cover."""
    x = torch.cat([sparse_speech_plus_noise(0.0, M=3), sparse_speech_plus_noise(25.0, M=3)])
    x[:, 0, 0, 0] = torch.arange(2, dtype=torch.float64)
    fit, calls = stub_method({"noise": [-1.0, -1.0], "twostep": [-9.0, -9.0]})
    seen = []
    model = selecting_fit(fit, "jd")(
        x, 3, 3, 0, lambda it, ll: seen.append(ll.clone()), init="auto", start_rule="snr"
    )
    assert model.record.chosen == ("noise", "twostep")
    assert [c[:2] for c in calls] == [("noise", [0]), ("twostep", [1])]
    assert model.record.fits.tolist() == [1, 1]
    assert model.noise_index.tolist()[0] == 2
    assert len(seen) == 2 * 3 and torch.isnan(seen[0][1]) and torch.isnan(seen[-1][0])
    # the twostep item does not win on likelihood (-9 < -1): the SNR decided
    assert model.log_likelihood[:, -1].tolist() == [-1.0, -9.0]
    fit, calls = stub_method({"noise": [0.0, 0.0], "twostep": [0.0, 0.0]})
    model = selecting_fit(fit, "jd")(x, 3, 3, 0, None, init="auto", start_rule="snr",
                                     snr_threshold_db=40.0)  # fmt: skip
    assert model.record.chosen == ("noise", "noise") and len(calls) == 1


# ---- real fits ----------------------------------------------------------------------------


def jd_with_noise(seed=2, level=0.1):
    """JD-model data (2 sources, M = 3) plus white noise ``[1, 3, 16, 120]``."""
    x = sample_jd(B=1, M=3, N=2, F=16, T=120, seed=seed)[0]
    gen = torch.Generator().manual_seed(seed + 100)
    return x + level * torch.randn(x.shape, dtype=x.dtype, generator=gen)


@pytest.mark.parametrize(
    ("method", "data", "n_iter", "winner"),
    [
        ("fastmnmf2", "jd", 5, "noise"),
        ("fastmnmf2", "jd", 20, "twostep"),
        ("mnmf", "speech", 4, "fastmnmf2"),
        ("fca", "speech", 4, "noise"),
    ],
)
def test_real_fits_choose_the_higher_likelihood(mix, method, data, n_iter, winner):
    """``init="auto"`` equals the plain fit of whichever start ends higher, including its
    history and noise slot; both outcomes occur."""
    if data == "jd":
        x = jd_with_noise()
    else:
        x = stft_transform(torch.as_tensor(mix)[None], CFG)  # [1, M, F, T] complex128
    fit = METHODS[method].fit
    other = "twostep" if method.startswith("fast") else "fastmnmf2"
    plain = {s: fit(x, 3, n_iter, 0, None, init=s) for s in ("noise", other)}
    final = {s: float(m.log_likelihood[0, -1]) for s, m in plain.items()}
    assert max(final, key=final.get) == winner, final  # the fixture exercises this branch
    n_calls = []
    auto = fit(x, 3, n_iter, 0, lambda it, ll: n_calls.append(it), init="auto")
    assert auto.record.chosen == (winner,)
    assert torch.equal(auto.log_likelihood, plain[winner].log_likelihood)
    assert torch.equal(auto.images(x), plain[winner].images(x))
    named = getattr(plain[winner], "noise_index", None)
    if named is not None:
        assert torch.equal(auto.noise_index, named)
    else:
        assert auto.noise_index is None  # separate() ranks diffuseness, as for the plain fit
    assert len(n_calls) == 2 * n_iter and auto.record.fits.tolist() == [2]


def test_separate_with_auto_matches_the_chosen_plain_start(mix):
    kw = {"n_src": 2, "sr": SR, "stft": CFG, "n_iter": 4, "dtype": torch.float64}
    auto = separate(mix, "fca", init="auto", **kw)
    assert auto.settings["chosen_start"] == [["noise"]]
    plain = separate(mix, "fca", init="noise", **kw)
    assert torch.equal(auto.sources, plain.sources) and torch.equal(auto.noise, plain.noise)
    assert torch.equal(auto.objective, plain.objective)
    assert "chosen_start" not in plain.settings


def test_mnmf_noise_start_scms_come_from_the_noise_start():
    """MNMF's ``init="noise"`` starts from FastMNMF2 noise-start SCMs: with 0 iterations the
    last slot is the most diffuse on data with a loud isotropic noise."""
    x = sample_jd(B=1, M=3, N=2, F=16, T=120, seed=0)[0]
    gen = torch.Generator().manual_seed(7)
    x = x + 0.7 * torch.randn(x.shape, dtype=x.dtype, generator=gen)
    model = METHODS["mnmf"].fit(x, 3, 0, 0, None, init="noise")
    assert int(diffuseness_rank(model.scm()).argmin()) == 2


def test_separate_rejects_start_options_without_auto(mix):
    with pytest.raises(VaeAudioError, match="init='auto'"):
        separate(mix, "fastmnmf2", sr=SR, stft=CFG, n_iter=1, start_rule="snr")


def test_float32_mix_runs(mix):
    res = separate(mix.astype(np.float32), "fastmnmf2", sr=SR, stft=CFG, n_iter=2, init="auto")
    assert torch.isfinite(res.sources).all() and res.objective.shape == (1, 3)
