"""Neural FCA / FastFCA forward and backward passes, the loss and one training step."""

from __future__ import annotations

import importlib

import pytest
import torch

from vae_audio.core.optim import OPTIM_DEFAULTS, build_optimizer
from vae_audio.data.datasets import MixtureDataset
from vae_audio.errors import VaeAudioError
from vae_audio.neural_fca import NeuralFCAConfig, neural_fca_loss
from vae_audio.neural_fca.task import NeuralFCATask, permute_mics

from .conftest import MIXTURE_MANIFEST, random_stft, tiny_config, tiny_model


@pytest.mark.parametrize("spatial", ["full", "jd"])
@pytest.mark.parametrize("n_mics", [2, 4, 6])
def test_backward_reaches_every_encoder_weight(n_mics, spatial):
    model = tiny_model(n_mics, spatial)
    x, _ = model.normalise(random_stft(2, n_mics))
    out = model(x)
    loss = neural_fca_loss(x, out, beta=1.0, eps=model.config.eps)
    assert torch.isfinite(loss.loss)
    loss.loss.backward()
    grads = {n: p.grad for n, p in model.encoder.named_parameters()}
    missing = [n for n, g in grads.items() if g is None]
    assert not missing, missing
    assert all(bool(torch.isfinite(g).all()) for g in grads.values())
    assert all(float(g.abs().sum()) > 0 for n, g in grads.items() if "norm" not in n)
    assert model.prior.decoder.net[0].weight.grad is not None  # fine-tuned by default


@pytest.mark.parametrize("channels", [384, 7, 1])  # one block; blocks of 2 rows; of 1 row
def test_gated_time_mean_in_blocks_is_the_mean_of_the_gated_powers(channels, monkeypatch):
    """The JD encoders' gains ``mean_t sigmoid(head(h))_knt · x̃_kt``, block by block, against
    the whole gate tensor at once; gradients reach the head and the powers."""
    encoder = importlib.import_module("vae_audio.neural_fca.encoder")
    monkeypatch.setattr(encoder, "_GATE_CHANNELS", channels)
    gen = torch.Generator().manual_seed(0)
    B, C, K, N, T = 2, 5, 9, 3, 11
    head = torch.nn.Conv1d(C, K * N, 1)
    h = torch.randn(B, C, T, generator=gen)
    xt = torch.rand(B, K, T, generator=gen, requires_grad=True)
    got = encoder.gated_time_mean(head, h, xt)
    gates = torch.sigmoid(head(h)).reshape(B, K, N, T)
    expected = (gates * xt[:, :, None]).mean(-1)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)
    got.sum().backward()
    assert float(head.weight.grad.abs().sum()) > 0 and float(xt.grad.abs().sum()) > 0


@pytest.mark.parametrize("spatial", ["full", "jd"])
def test_frequency_response_starts_at_one_and_learns(spatial):
    """freq_gain: λ = u_nf a_nt g_f(z); u starts at 1 (same PSDs as without it), gets a
    gradient, and the refinement moves it."""
    from vae_audio.neural_fca import fit_neural_fca

    plain, with_u = tiny_model(3, spatial, seed=4), tiny_model(3, spatial, seed=4, freq_gain=True)
    state = {k: v for k, v in with_u.state_dict().items() if "freq_gain" not in k}
    assert plain.load_state_dict(state, strict=True)
    x, _ = plain.normalise(random_stft(2, 3))
    plain.eval(), with_u.eval()
    a, b = plain(x, sample=False), with_u(x, sample=False)
    torch.testing.assert_close(a.lam, b.lam)
    assert b.log_freq_gain.shape == (2, 3, 9) and not b.log_freq_gain.any()
    neural_fca_loss(x, with_u(x), beta=1.0, eps=1e-6).loss.backward()
    assert float(with_u.encoder.head.freq_gain.weight.grad.abs().sum()) > 0
    x64 = random_stft(2, 3, dtype=torch.complex128)
    fit = fit_neural_fca(x64, with_u.double(), n_iter=3)
    ratio = fit.lam / fit_neural_fca(x64, plain.double(), n_iter=3).lam
    assert float(ratio.std(dim=2).max()) > 1e-4  # a per-frequency factor was refined


def test_gradient_through_em_changes_the_encoder_gradient():
    """Detaching H (no back-propagation through the EM) must give a different gradient."""
    model = tiny_model(3)
    x, _ = model.normalise(random_stft(1, 3))

    def encoder_grad(detach: bool) -> torch.Tensor:
        model.zero_grad()
        torch.manual_seed(1)
        out = model(x)
        if detach:
            out.H = out.H.detach()
        neural_fca_loss(x, out, eps=model.config.eps).loss.backward()
        return model.encoder.inp.weight.grad.clone()

    through, detached = encoder_grad(False), encoder_grad(True)
    assert float((through - detached).norm()) > 1e-3 * float(through.norm())


def test_frozen_decoder_gets_no_gradient_and_noise_dims_carry_no_kl():
    model = tiny_model(2, freeze_decoder=True)
    assert not any(p.requires_grad for p in model.prior.parameters())
    x, _ = model.normalise(random_stft(1, 2))
    out = model(x)
    # The noise slot reads noise_latent_dim = 2 of D = 4 dims: the rest are zero, KL-free.
    assert bool((out.z[:, -1, :, 2:] == 0).all()) and bool((out.z[:, 0] != 0).any())
    full_kl = out.posterior.kl().sum((1, 2))
    unused = out.posterior.kl_per_dim()[:, -1, :, 2:].sum((1, 2))
    torch.testing.assert_close(out.kl, full_kl - unused)


def test_config_errors_name_the_key():
    with pytest.raises(VaeAudioError, match="model.spatial"):
        NeuralFCAConfig(n_mics=4, spatial="diag")
    with pytest.raises(VaeAudioError, match="n_mics"):
        NeuralFCAConfig(n_mics=1)
    with pytest.raises(VaeAudioError, match="noise_latent_dim"):
        NeuralFCAConfig.from_dict({"n_mics": 2, "noise_latent_dim": 99})
    for talkers in ([], [0, 2], [3], 2, [True]):
        with pytest.raises(VaeAudioError, match=r"model.talkers=.* in 1..2 \(model.n_speakers\)"):
            NeuralFCAConfig.from_dict({"n_mics": 2, "talkers": talkers})


def test_talker_counts_round_trip_and_default_to_the_slot_count():
    cfg = NeuralFCAConfig.from_dict({"n_mics": 2, "n_speakers": 3, "talkers": [3, 1, 3]})
    assert cfg.talkers == cfg.talker_counts == (1, 3) and cfg.default_talkers == 3
    again = NeuralFCAConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.to_dict()["talkers"] == [1, 3]
    old = NeuralFCAConfig.from_dict({"n_mics": 2, "n_speakers": 3})
    assert (old.talkers, old.talker_counts, old.default_talkers) == (None, (3,), 3)


def test_mic_permutation_permutes_each_item():
    x = torch.arange(3 * 5, dtype=torch.float32).reshape(3, 5, 1, 1).expand(3, 5, 2, 2)
    y = permute_mics(x)
    for b in range(3):
        assert sorted(y[b, :, 0, 0].tolist()) == x[b, :, 0, 0].tolist()
        assert bool((y[b] == y[b, :, :1, :1]).all())  # whole channels moved


@pytest.mark.parametrize("spatial", ["full", "jd"])
def test_one_optimiser_step_lowers_the_loss_on_a_fixture_batch(spatial):
    config = tiny_config(4, spatial)
    config["stft"] = {"sample_rate": 16000, "n_fft": 512, "hop_length": 128}
    config["model"]["decoder"] = {"latent_dim": 4, "hidden": 16}
    config["augment"] = {"mic_permutation": False}
    config["trainer"] = {"seed": 3}
    task = NeuralFCATask(config)
    mix = MixtureDataset(MIXTURE_MANIFEST, 1.0, random_crop=False)[0]["mix"][None]  # [1, 4, S]

    def loss() -> torch.Tensor:
        torch.manual_seed(7)  # same z sample before and after the step
        return task.compute_loss({"mix": mix}, "train").loss

    optim = build_optimizer(task.parameters(), {**OPTIM_DEFAULTS, "lr": 1e-3})
    before = loss()
    before.backward()
    optim.step()
    with torch.no_grad():
        after = loss()
    assert after.item() < before.detach().item() - 1e-4


@pytest.mark.parametrize("spatial", ["full", "jd"])
def test_training_loss_is_nll_plus_beta_times_the_closed_form_kl(spatial):
    """The task's training loss = FCA NLL + β · KL, with the KL of the used latent dims from
    torch.distributions, summed over slots, frames and dims and divided by B F T."""
    from torch.distributions import Normal, kl_divergence

    config = tiny_config(4, spatial)
    config["stft"] = {"sample_rate": 16000, "n_fft": 512, "hop_length": 128}
    config["model"]["decoder"] = {"latent_dim": 4, "hidden": 16}
    config["augment"] = {"mic_permutation": False}
    config["loss"] = {"beta": 0.7, "beta_unit": "step"}
    task = NeuralFCATask(config)
    mix = MixtureDataset(MIXTURE_MANIFEST, 1.0, random_crop=False)[0]["mix"][None]  # [1, 4, S]
    captured = {}
    forward = task.model.forward

    def spy(*args, **kwargs):
        captured["out"] = out = forward(*args, **kwargs)
        return out

    task.model.forward = spy
    result = task.compute_loss({"mix": mix}, "train")
    out = captured["out"]
    q = out.posterior
    kl = kl_divergence(Normal(q.mean, (0.5 * q.logvar).exp()), Normal(0.0, 1.0))  # [B, N, T, D]
    used = task.model.latent_mask[:, None]  # [N, 1, D]: the noise slot reads fewer dims
    F, T = out.lam.shape[-2:]
    expected_kl = (kl * used).sum((1, 2, 3)).mean() / (F * T)
    assert float(expected_kl.detach()) > 1e-3  # a KL that matters to the loss
    torch.testing.assert_close(result.logs["kl"], expected_kl, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(result.loss, result.logs["nll"] + 0.7 * expected_kl)


@pytest.mark.parametrize("spatial", ["full", "jd"])
def test_loss_defaults_are_the_elbo_at_the_models_default_floor(spatial):
    """``neural_fca_loss(x, out)``: β = 1 (the negative ELBO) and the model's default ε."""
    model = tiny_model(3, spatial)
    x, _ = model.normalise(random_stft(2, 3))
    out = model(x, sample=False)
    default = neural_fca_loss(x, out)
    explicit = neural_fca_loss(x, out, beta=1.0, eps=NeuralFCAConfig(n_mics=3).eps)
    torch.testing.assert_close(default.loss, explicit.loss)
    torch.testing.assert_close(default.loss, default.nll + default.kl)
    assert not torch.allclose(default.nll, neural_fca_loss(x, out, eps=1.0).nll)


def test_a_model_trained_with_wpe_applies_it_wherever_it_separates(tmp_path):
    """``model.wpe`` is stored in the model file; the training step dereverberates its
    mixtures and `separate` with the model runs WPE unless told otherwise."""
    pytest.importorskip("nara_wpe")
    from vae_audio.neural_fca import load_neural_fca, save_neural_fca
    from vae_audio.neural_fca.inference import separate_with_model

    config = tiny_config(2, spatial="jd")
    config["model"]["wpe"] = {"taps": 4, "iterations": 1}
    task = NeuralFCATask(config)
    assert task.wpe is not None and task.wpe.taps == 4
    wav = torch.randn(2, 2, 4000, generator=torch.Generator().manual_seed(0))
    calls = []
    task.stft.register_forward_hook(lambda module, args, out: calls.append(args[0]))
    assert torch.isfinite(task.compute_loss(wav, "train").loss)
    assert calls[0].shape == wav.shape and not torch.allclose(calls[0], wav)  # dereverberated
    path = save_neural_fca(tmp_path / "model.pt", task.model)
    assert load_neural_fca(path).config.wpe == {"taps": 4, "iterations": 1}
    res = separate_with_model(wav[0], path, n_iter=0)
    assert res.settings["wpe"]["taps"] == 4 and "wpe" in res.timings
    plain = separate_with_model(wav[0], path, n_iter=0, wpe={"taps": 2})
    assert plain.settings["wpe"]["taps"] == 2  # the caller's setting wins
    from vae_audio.errors import VaeAudioError
    from vae_audio.neural_fca.export import export_separator

    with pytest.raises(VaeAudioError, match="WPE"):  # the traced graph has no WPE
        export_separator(path, tmp_path / "model.ts.pt")
    assert not (tmp_path / "model.ts.pt").exists()
