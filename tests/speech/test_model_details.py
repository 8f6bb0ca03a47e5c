"""Speech VAE details: config defaults and validation, encoder input, conv receptive field,
residual blocks, posterior clamp and decoder PSD."""

import dataclasses
import math

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from vae_audio.audio.stft import StftConfig
from vae_audio.errors import VaeAudioError
from vae_audio.speech.model import SpeechVAE, SpeechVAEConfig

ARCHS = ("mlp", "conv")
_STFT = StftConfig(n_fft=16, hop_length=4)  # F = 9


def _model(**kw) -> SpeechVAE:
    torch.manual_seed(0)
    cfg = dict(n_freq=9, latent_dim=3, hidden=8)
    cfg.update(kw)
    return SpeechVAE(SpeechVAEConfig(**cfg), _STFT)


# --- config -----------------------------------------------------------------------------


def test_config_defaults_are_the_documented_ones():
    cfg = SpeechVAEConfig()
    assert cfg.to_dict() == {
        "arch": "mlp",
        "n_freq": 257,
        "latent_dim": 16,
        "hidden": 128,
        "layers": 1,
        "kernel_size": 5,
        "log_eps": 1e-6,
        "psd_floor": 1e-6,
    }
    # Default model on the default STFT: F = 257 -> 128 tanh -> D = 16.
    model = SpeechVAE(cfg)
    assert model.latent_dim == 16
    post = model.encode(torch.rand(2, 257, 3))
    assert post.mean.shape == (2, 3, 16)


def test_config_is_immutable():
    cfg = SpeechVAEConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.latent_dim = 4


@pytest.mark.parametrize("kernel_size", [2, 4, 8])
def test_even_kernel_size_is_refused(kernel_size):
    with pytest.raises(VaeAudioError, match=f"odd, got {kernel_size}"):
        SpeechVAEConfig(arch="conv", kernel_size=kernel_size)


@pytest.mark.parametrize("kernel_size", [1, 3, 7])
def test_odd_kernel_size_is_accepted(kernel_size):
    assert SpeechVAEConfig(arch="conv", kernel_size=kernel_size).kernel_size == kernel_size


def test_unknown_arch_is_refused():
    with pytest.raises(VaeAudioError, match="'lstm'.*mlp, conv"):
        SpeechVAEConfig(arch="lstm")


def test_from_dict_round_trips():
    cfg = SpeechVAEConfig(arch="conv", n_freq=9, latent_dim=3, hidden=8, layers=2, kernel_size=3)
    assert SpeechVAEConfig.from_dict(cfg.to_dict()) == cfg
    assert SpeechVAEConfig.from_dict({"latent_dim": 4}) == SpeechVAEConfig(latent_dim=4)


def test_from_dict_names_unknown_keys():
    with pytest.raises(VaeAudioError, match=r"\['depth', 'width'\]") as err:
        SpeechVAEConfig.from_dict({"latent_dim": 4, "width": 3, "depth": 2})
    assert "latent_dim" in str(err.value)  # listed among the known settings


@pytest.mark.parametrize("n_fft", [16, 64])  # 9 bins below, 33 bins above the model's 17
def test_stft_with_other_n_freq_is_refused(n_fft):
    with pytest.raises(VaeAudioError, match=f"n_freq=17 .*n_fft={n_fft}"):
        SpeechVAE(SpeechVAEConfig(n_freq=17), StftConfig(n_fft=n_fft, hop_length=4))


# --- architecture -----------------------------------------------------------------------


def test_arch_selects_the_encoder():
    mlp, conv = _model(arch="mlp"), _model(arch="conv")
    assert not any(isinstance(m, nn.Conv1d) for m in mlp.encoder.modules())
    assert any(isinstance(m, nn.Conv1d) for m in conv.encoder.modules())
    # The MLP encoder is frame-wise: changing frame 2 changes only the posterior of frame 2.
    power = torch.rand(1, 9, 6)
    bumped = power.clone()
    bumped[..., 2] += 3.0
    diff = (mlp.encode(bumped).mean - mlp.encode(power).mean).abs().sum(-1)[0]  # [T]
    assert diff[2] > 0 and torch.count_nonzero(diff) == 1


@pytest.mark.parametrize("arch", ARCHS)
def test_arch_read_from_a_recipe_selects_the_encoder(arch):
    # Recipes and checkpoints give strings built at run time, not the source literals.
    cfg = SpeechVAEConfig.from_dict(yaml.safe_load(f"arch: {arch}\nn_freq: 9\nhidden: 8"))
    model = SpeechVAE(cfg, _STFT)
    has_conv = any(isinstance(m, nn.Conv1d) for m in model.encoder.modules())
    assert has_conv == (arch == "conv")


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_layer_counts(layers):
    mlp, conv = _model(arch="mlp", layers=layers), _model(arch="conv", layers=layers)
    # Decoder: `layers` hidden Linear+tanh, then the output Linear.
    dec = [m for m in mlp.decoder.modules() if isinstance(m, nn.Linear)]
    assert [lin.out_features for lin in dec] == [8] * layers + [9]
    # Conv encoder: input 1x1, one dilated conv per residual block, 1x1 head.
    convs = [m for m in conv.encoder.modules() if isinstance(m, nn.Conv1d)]
    assert len(convs) == layers + 2


def test_zero_layers_means_one_hidden_layer():
    for arch in ARCHS:
        zero, one = _model(arch=arch, layers=0), _model(arch=arch, layers=1)
        shapes0 = {k: v.shape for k, v in zero.state_dict().items()}
        shapes1 = {k: v.shape for k, v in one.state_dict().items()}
        assert shapes0 == shapes1


# --- encoder ----------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
def test_encoder_reads_log_power_plus_eps(arch):
    model = _model(arch=arch, log_eps=1e-3)
    seen = []
    model.encoder.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    power = torch.rand(2, 9, 5) * 4
    power[0, :, 1] = 0.0  # silent frame: the floor keeps the log finite
    model.encode(power)
    ref = np.log(power.double().numpy() + 1e-3)
    np.testing.assert_allclose(seen[0].double().numpy(), ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("arch", ARCHS)
def test_logvar_is_clamped_to_minus_12_and_8(arch):
    model = _model(arch=arch, latent_dim=4)
    head = model.encoder.head
    bias = torch.tensor([0.5, -1.0, 2.0, 0.0, -100.0, -11.5, 7.5, 100.0])  # μ (4), log σ² (4)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(bias)
    post = model.encode(torch.rand(2, 9, 5))
    expected = torch.tensor([-12.0, -11.5, 7.5, 8.0]).expand(2, 5, 4)
    torch.testing.assert_close(post.logvar, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(post.mean, bias[:4].expand(2, 5, 4), rtol=0, atol=1e-6)


def test_conv_encoder_handles_leading_axes_item_by_item():
    model = _model(arch="conv", layers=2, kernel_size=3)
    power = torch.rand(2, 3, 9, 7)  # [B, M, F, T]
    post = model.encode(power)
    assert post.mean.shape == (2, 3, 7, 3)
    for b in range(2):
        for m in range(3):
            one = model.encode(power[b, m])  # [F, T] -> [T, D]
            torch.testing.assert_close(post.mean[b, m], one.mean, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(post.logvar[b, m], one.logvar, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("layers", "kernel_size"), [(1, 5), (2, 3), (3, 3), (3, 5)])
def test_conv_encoder_keeps_the_frame_count(layers, kernel_size):
    model = _model(arch="conv", layers=layers, kernel_size=kernel_size)
    for n_frames in (1, 4, 11):
        assert model.encode(torch.rand(2, 9, n_frames)).mean.shape == (2, n_frames, 3)


@pytest.mark.parametrize(("layers", "kernel_size"), [(1, 5), (2, 3), (3, 3)])
def test_conv_path_reaches_exactly_the_documented_receptive_field(layers, kernel_size):
    """Receptive field ``1 + (k−1)(2^L − 1)`` frames from dilations ``2**i``.

    The blocks' GroupNorm pools statistics over all frames, so it is taken out here to
    expose the reach of the dilated convolutions and residual paths alone.
    """
    model = _model(arch="conv", layers=layers, kernel_size=kernel_size)
    for block in model.encoder.blocks:
        block.norm = nn.Identity()
    half = (kernel_size - 1) * (2**layers - 1) // 2
    n_frames, t0 = 2 * half + 11, half + 5
    power = torch.rand(1, 9, n_frames) + 0.1
    bumped = power.clone()
    bumped[..., t0] *= 5.0
    post, post2 = model.encode(power), model.encode(bumped)
    diff = (post2.mean - post.mean).abs().sum(-1)[0] + (post2.logvar - post.logvar).abs().sum(-1)[0]
    reached = torch.nonzero(diff > 1e-7).flatten().tolist()
    assert reached == list(range(t0 - half, t0 + half + 1))


def test_residual_block_is_identity_when_its_conv_is_zero():
    model = _model(arch="conv", layers=2, kernel_size=3)
    h = torch.randn(2, 8, 6)  # [B', C, T]
    for block in model.encoder.blocks:
        with torch.no_grad():
            block.conv.weight.zero_()
            block.conv.bias.zero_()
        torch.testing.assert_close(block(h), h)


def test_residual_block_adds_its_branch():
    model = _model(arch="conv", layers=1, kernel_size=3)
    block = model.encoder.blocks[0]
    shift = torch.tensor([1.5, -2.0, 0.5, -0.5, 3.0, 0.0, -1.0, 2.0])  # [C]
    with torch.no_grad():
        block.conv.weight.zero_()
        block.conv.bias.zero_()
        block.norm.bias.copy_(shift)  # a zero conv output normalises to the norm's bias
    slope = block.act.weight.detach()  # PReLU slope per channel
    branch = torch.where(shift > 0, shift, slope * shift)[:, None]  # [C, 1]
    h = torch.randn(2, 8, 6)
    torch.testing.assert_close(block(h), h + branch)


def test_residual_branch_normalises_over_all_channels():
    model = _model(arch="conv", layers=1, kernel_size=3)
    block = model.encoder.blocks[0]
    offset = torch.tensor([0.0, 1.0, 2.0, 3.0, 10.0, 20.0, 30.0, 40.0])  # [C]
    with torch.no_grad():
        block.conv.weight.zero_()
        block.conv.bias.copy_(offset)  # conv output constant over time
        block.act.weight.fill_(1.0)  # PReLU with unit slope: identity
    # Layer norm across the C channels (affine at its initial 1, 0).
    ref = (offset - offset.mean()) / torch.sqrt(offset.var(unbiased=False) + block.norm.eps)
    h = torch.randn(2, 8, 6)  # [B', C, T]
    torch.testing.assert_close(block(h), h + ref[:, None], rtol=1e-5, atol=1e-5)


# --- decoder ----------------------------------------------------------------------------


def test_decoded_psd_is_exp_of_clamped_output_plus_floor():
    model = _model(psd_floor=1e-3)
    last = model.decoder.net[-1]
    logits = torch.tensor([-200.0, -3.0, 0.0, 1.5, 10.0, 29.0, 30.0, 45.0, 200.0])  # [F]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(logits)
    psd = model.decode(torch.randn(2, 4, 3))  # [B, T, D] -> [B, F, T]
    expected = torch.tensor([math.exp(min(o, 30.0)) + 1e-3 for o in logits.tolist()])
    torch.testing.assert_close(psd, expected[:, None].expand(2, 9, 4), rtol=1e-6, atol=0)
    assert psd.min().item() == pytest.approx(1e-3)  # the floor bounds the PSD away from zero
