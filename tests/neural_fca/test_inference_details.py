"""Details of ``fit_neural_fca`` and of the ``neural-fca`` / ``neural-fastfca`` methods.

Refinement is checked against independent computations from the returned model: dense
covariances for the log-likelihood, the closed form of Adam's first step, one EM / ISS+MU
update per step; the registry checks against the messages a user sees.
"""

from __future__ import annotations

import json
import re

import pytest
import torch

from vae_audio.audio.stft import StftConfig, istft, stft
from vae_audio.errors import VaeAudioError
from vae_audio.neural_fca import fit_neural_fca, load_neural_fca, save_neural_fca
from vae_audio.neural_fca.inference import _model_for, separate_with_model
from vae_audio.neural_fca.iss import decorrelated_power, jd_spatial_updates
from vae_audio.neural_fca.objective import full_nll, jd_nll
from vae_audio.separation import separate
from vae_audio.separation.covariance import fca_covariance
from vae_audio.separation.fca import em_update_scm, fca_log_likelihood

from .conftest import random_stft, tiny_model

TINY_STFT = StftConfig(sample_rate=16000, n_fft=16, hop_length=4)
MASKS = ["default", "hidden-speaker-dim"]


def _model(spatial: str, mask: str = "default", **config):
    """Tiny float64 model; ``mask="hidden-speaker-dim"`` masks the last latent dimension of
    every speaker slot (which the speech decoder does read) on top of the noise slot's."""
    model = tiny_model(3, spatial, **config).double()
    if mask == "hidden-speaker-dim":
        model.latent_mask[:-1, -1] = 0
    return model


def _amortised(model, x):
    """Normalised mixture ``[B, M, F, T]``, power ``s² [B]`` and the posterior-mean pass."""
    xn, scale = model.normalise(x)
    with torch.no_grad():
        out = model.eval()(xn, sample=False)
    return xn, scale.square(), out


def _from_runtime(name: str) -> str:
    """``name`` as read from a config file (a fresh string object, not an interned literal)."""
    value = json.loads(json.dumps({"spatial": name}))["spatial"]
    assert value == name and value is not name
    return value


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """``{"full": path, "jd": path}`` of saved tiny models (configs read back from disk)."""
    root = tmp_path_factory.mktemp("nfca-details")
    return {
        spatial: save_neural_fca(root / f"{spatial}.pt", tiny_model(4, spatial, seed=3))
        for spatial in ("full", "jd")
    }


# --- the fitted model ------------------------------------------------------------------


def test_scm_of_a_jd_fit_is_q_inverse_diag_g_q_inverse_hermitian():
    model = _model("jd")
    fit = fit_neural_fca(random_stft(2, 3, dtype=torch.complex128), model, n_iter=1)
    A = torch.linalg.inv(fit.Q)  # [B, F, M, M]
    expect = torch.einsum("bfik,bnfk,bfjk->bnfij", A, fit.g.to(A.dtype), A.conj())
    assert fit.H is None
    torch.testing.assert_close(fit.scm(), expect)
    full = fit_neural_fca(random_stft(2, 3, dtype=torch.complex128), _model("full"))
    assert full.scm() is full.H


@pytest.mark.parametrize("spatial", ["full", "jd"])
def test_refined_log_likelihood_is_that_of_the_returned_model(spatial):
    """Every recorded value after refinement is ``log p(x)`` of the raw mixture under the
    returned PSDs and SCMs, recomputed with dense covariances ``Σ_n λ H_n + ε (QᴴQ)⁻¹``."""
    model = _model(spatial, eps=1e-4)
    x = random_stft(2, 3, T=20, dtype=torch.complex128) * 7  # F = 9 ≠ T, raw scale s² ≫ 1
    fit = fit_neural_fca(x, model, n_iter=2, lr=0.05)
    if spatial == "full":
        Y = fca_covariance(fit.lam, fit.H, fit.eps)  # [B, F, T, M, M]
    else:
        A = torch.linalg.inv(fit.Q)  # [B, F, M, M]
        floor = fit.eps[:, None, None, None, None] * (A @ A.mH)[:, :, None]  # [B, F, 1, M, M]
        Y = fca_covariance(fit.lam, fit.scm()) + floor
    expect = fca_log_likelihood(x, Y)  # [B]
    assert fit.log_likelihood.shape == (2, 3)
    torch.testing.assert_close(fit.log_likelihood[:, -1], expect, rtol=1e-9, atol=1e-6)
    assert bool((fit.log_likelihood[:, -1] != fit.log_likelihood[:, 0]).all())  # it moved


def test_callback_receives_each_recorded_log_likelihood():
    seen = []
    fit = fit_neural_fca(
        random_stft(2, 3, dtype=torch.complex128), _model("full"), n_iter=3, lr=0.1,
        callback=lambda it, ll: seen.append((it, ll.clone())),
    )  # fmt: skip
    assert [it for it, _ in seen] == [0, 1, 2]
    for it, ll in seen:
        torch.testing.assert_close(ll, fit.log_likelihood[:, it + 1], rtol=0, atol=0)
    assert len({float(ll[0]) for _, ll in seen}) == 3  # three different values


@pytest.mark.parametrize("spatial", ["full", "jd"])
@pytest.mark.parametrize("n_iter", [1, 2])
def test_each_refinement_step_makes_one_spatial_update(spatial, n_iter):
    """With lr = 0 the latents stay put and step i applies one EM update of ``H`` (full) or
    one ISS sweep + one MU update of ``Q``, ``g`` (JD) to the amortised spatial model."""
    model = _model(spatial)
    x = random_stft(2, 3, dtype=torch.complex128) * 3
    xn, power, out = _amortised(model, x)
    fit = fit_neural_fca(x, model, n_iter=n_iter, lr=0.0)
    assert fit.log_likelihood.shape == (2, n_iter + 1)
    torch.testing.assert_close(fit.lam, out.lam * power[:, None, None, None])
    eps = model.config.eps
    if spatial == "full":
        H = out.H
        for _ in range(n_iter):
            H = em_update_scm(xn, out.lam, H, eps)
        torch.testing.assert_close(fit.H, H)
    else:
        Q, g = out.Q, out.g
        for _ in range(n_iter):
            Q, g, _ = jd_spatial_updates(xn.transpose(1, 2), out.lam, Q, g, eps, 1)
        torch.testing.assert_close(fit.Q, Q)
        torch.testing.assert_close(fit.g, g)


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("spatial", ["full", "jd"])
def test_first_latent_step_is_adam_on_the_masked_likelihood_gradient(spatial, mask):
    """Adam's first step is ``-lr · ∇/(|∇| + 1e-8)``, with ``∇`` the gradient in ``z`` of the
    FCA negative log-likelihood of ``psd(z ⊙ mask)`` after the first spatial update (gains at
    their amortised values). Masked latent dimensions stay at zero."""
    model = _model(spatial, mask)
    x = random_stft(2, 3, dtype=torch.complex128) * 3
    xn, _, out = _amortised(model, x)
    eps, lr, mask_t = model.config.eps, 0.01, model.latent_mask[:, None]  # [N, 1, D]
    z = out.z.clone().requires_grad_(True)  # [B, N, T, D]
    lam = model.psd(z * mask_t, out.log_gain, out.log_freq_gain)  # [B, N, F, T]
    if spatial == "full":
        loss = full_nll(xn, lam, em_update_scm(xn, out.lam, out.H, eps), eps)
    else:
        xf = xn.transpose(1, 2)  # [B, F, M, T]
        Q, g, _ = jd_spatial_updates(xf, out.lam.detach(), out.Q, out.g, eps, 1)
        loss = jd_nll(decorrelated_power(xf, Q), lam, g, Q, eps)
    (grad,) = torch.autograd.grad(loss.sum(), z)
    expect = out.z - lr * grad / (grad.abs() + 1e-8)
    fit = fit_neural_fca(x, model, n_iter=1, lr=lr)
    torch.testing.assert_close(fit.z, expect, rtol=1e-12, atol=1e-12)
    assert bool((fit.z * (1 - mask_t) == 0).all())
    assert float((fit.z - out.z).abs().max()) == pytest.approx(lr, rel=1e-3)  # it moved


def test_default_refinement_step_size_is_the_published_0_2():
    """Adam's first step moves every latent by ``lr`` (``|∇/|∇|| = 1``): 0.2 by default,
    in ``fit_neural_fca`` and through the registry."""
    model = _model("full")
    x = random_stft(1, 3, dtype=torch.complex128) * 3
    _, _, out = _amortised(model, x)
    fit = fit_neural_fca(x, model, n_iter=1)
    assert float((fit.z - out.z).abs().max()) == pytest.approx(0.2, rel=1e-3)
    torch.testing.assert_close(fit.z, fit_neural_fca(x, model, n_iter=1, lr=0.2).z)
    module = tiny_model(4, "jd", seed=5).double()
    mix = torch.randn(1, 4, 800, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    res = separate(
        mix, method="neural-fastfca", model=module, stft=TINY_STFT, n_src=2, n_iter=1,
        dtype=torch.float64,
    )  # fmt: skip
    X = stft(mix, TINY_STFT)
    images = fit_neural_fca(X, module, n_iter=1, lr=0.2).images(X)  # [B, N, M, F, T]
    torch.testing.assert_close(res.noise, istft(images[:, -1], TINY_STFT, length=800))


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("spatial", ["full", "jd"])
def test_refined_psds_decode_the_returned_masked_latents(spatial, mask):
    """Without gains (``gain: false``) the refined PSDs are the decoders' output for the
    returned latents times the mask, in the power units of the raw mixture."""
    model = _model(spatial, mask, gain=False)
    x = random_stft(2, 3, dtype=torch.complex128) * 5
    fit = fit_neural_fca(x, model, n_iter=2, lr=0.1)
    _, power, out = _amortised(model, x)
    with torch.no_grad():
        expect = model.psd(fit.z * model.latent_mask[:, None]) * power[:, None, None, None]
    torch.testing.assert_close(fit.lam, expect)
    assert not torch.allclose(fit.z, out.z)  # the latents were refined


@pytest.mark.parametrize("n_speakers", [1, 2])
def test_noise_index_is_the_last_slot(n_speakers):
    model = _model("full", n_speakers=n_speakers)
    fit = fit_neural_fca(random_stft(2, 3, dtype=torch.complex128), model)
    assert fit.lam.shape[1] == n_speakers + 1
    assert fit.noise_index.tolist() == [n_speakers, n_speakers]


# --- the spatial option --------------------------------------------------------------


def test_spatial_option_is_compared_by_value():
    """Spatial names that are equal but not the same object (read from a file) work."""
    x = random_stft(1, 3, dtype=torch.complex128)
    full = fit_neural_fca(x, _model("jd"), spatial=_from_runtime("full"))
    assert full.Q is None and full.H.shape == (1, 3, 9, 3, 3)
    with pytest.raises(VaeAudioError, match="no diagonaliser Q; use spatial='full'"):
        fit_neural_fca(x, _model("full"), spatial=_from_runtime("jd"))


def test_jd_is_refused_for_a_full_model_read_from_file(model_files):
    model = load_neural_fca(model_files["full"])
    with pytest.raises(VaeAudioError, match="no diagonaliser Q; use spatial='full'"):
        fit_neural_fca(random_stft(1, 4), model, spatial="jd")


# --- through the method registry -----------------------------------------------------


def test_neural_fastfca_refuses_a_full_model_and_names_it(model_files):
    mix = torch.randn(4, 800, generator=torch.Generator().manual_seed(0))
    path = model_files["full"]
    message = re.escape(f"Neural FCA model {path} has spatial model 'full'")
    with pytest.raises(VaeAudioError, match=message + r".*use method='neural-fca'"):
        separate(mix, method="neural-fastfca", model=path, stft=TINY_STFT, n_src=2)
    module = load_neural_fca(path)
    with pytest.raises(VaeAudioError, match=r"^the model has spatial model 'full'"):
        separate(mix, method="neural-fastfca", model=module, stft=TINY_STFT, n_src=2)


@pytest.mark.parametrize(
    ("n_src", "noise_slot", "got"),
    [(3, True, "(got n_src=3)"), (2, False, "with noise_slot=True (got 2 slots without one)")],
)
def test_wrong_slot_count_is_refused(model_files, n_src, noise_slot, got):
    """More talkers than speaker slots, or too few slots without a noise slot (fewer talkers
    with a noise slot are served: tests/neural_fca/test_inactive_slots.py)."""
    path = model_files["jd"]
    mix = torch.randn(4, 800, generator=torch.Generator().manual_seed(0))
    message = re.escape(
        f"Neural FCA model {path} separates 2 speaker(s) at most plus a noise slot; pass n_src "
        f"from 1 to 2 {got}"
    )
    with pytest.raises(VaeAudioError, match=f"^{message}$"):
        separate(
            mix, method="neural-fastfca", model=path, stft=TINY_STFT, n_src=n_src,
            noise_slot=noise_slot,
        )  # fmt: skip


def test_a_module_of_another_dtype_is_copied_not_converted():
    """A float32 module separates a float64 mixture like its float64 copy, and stays float32."""
    module = tiny_model(4, "full", seed=4)
    mix = torch.randn(4, 1600, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    kwargs = dict(method="neural-fca", stft=TINY_STFT, n_src=2, n_iter=1, dtype=torch.float64)
    res = separate(mix, model=module, **kwargs)
    ref = separate(mix, model=tiny_model(4, "full", seed=4).double(), **kwargs)
    assert next(module.parameters()).dtype == torch.float32
    torch.testing.assert_close(res.sources, ref.sources, rtol=0, atol=0)
    torch.testing.assert_close(res.noise, ref.noise, rtol=0, atol=0)


def test_a_module_on_another_device_is_copied_there():
    """A module separating a mixture of its dtype on another device is copied to the
    mixture's device; the caller's module stays where it was (``meta`` stands in for a GPU)."""
    module = tiny_model(4, "full", seed=4)
    x = torch.zeros(1, 4, 9, 8, dtype=torch.complex64, device="meta")
    net = _model_for(module, x)
    assert {(p.device.type, p.dtype) for p in net.parameters()} == {("meta", torch.float32)}
    assert {(p.device.type, p.dtype) for p in module.parameters()} == {("cpu", torch.float32)}


def test_the_wpe_front_end_of_a_model_module_is_applied():
    """A module trained with WPE separates as if its WPE setting were passed explicitly."""
    pytest.importorskip("nara_wpe")
    wpe = {"taps": 4, "iterations": 1}
    module = tiny_model(2, "jd", seed=6, wpe=wpe)
    mix = torch.randn(2, 1600, generator=torch.Generator().manual_seed(4))
    kwargs = dict(method="neural-fastfca", model=module, stft=TINY_STFT, n_src=2)
    res = separate(mix, **kwargs)
    explicit = separate(mix, wpe=wpe, **kwargs)
    assert res.settings["wpe"] == explicit.settings["wpe"] and res.settings["wpe"]["taps"] == 4
    torch.testing.assert_close(res.noise, explicit.noise, rtol=0, atol=0)
    assert not torch.allclose(res.noise, separate(mix, wpe={"taps": 2}, **kwargs).noise)


def test_separate_with_model_picks_neural_fastfca_for_a_jd_model(model_files):
    model = load_neural_fca(model_files["jd"]).double()
    mix = torch.randn(4, 1600, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    res = separate_with_model(mix, model, dtype=torch.float64)
    kwargs = dict(model=model, stft=TINY_STFT, n_src=2, dtype=torch.float64)
    jd = separate(mix, method="neural-fastfca", **kwargs)
    full = separate(mix, method="neural-fca", **kwargs)
    assert res.method == "neural-fastfca"
    torch.testing.assert_close(res.noise, jd.noise, rtol=0, atol=0)
    assert not torch.allclose(res.noise, full.noise)  # the choice matters


def test_a_model_made_for_another_stft_is_refused_naming_the_model(tmp_path):
    """``separate`` with a Neural FCA model made at one STFT and spectra of another: one line
    that names the model file (or "its model" for a module) and the settings to pass."""
    model = _model("jd")
    path = save_neural_fca(tmp_path / "model.pt", model)
    other = StftConfig(sample_rate=16000, n_fft=32, hop_length=8)
    mix = torch.randn(3, 1600, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    made = f"made with n_fft={model.stft_config.n_fft}"
    for source, what in ((str(path), f"the Neural FCA model {path}"), (model, "its model")):
        with pytest.raises(VaeAudioError) as err:
            separate(mix, method="neural-fastfca", model=source, stft=other)
        assert str(err.value).startswith(f"method 'neural-fastfca' runs {what} {made}")
