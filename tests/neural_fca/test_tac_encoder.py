"""TAC Neural FastFCA encoder: one model for any M, equivariance to the order of the mics
(derived in :mod:`vae_audio.neural_fca.tac_encoder`: ``x' = P x`` gives ``Q' = P Q Pᵀ``,
``x̃' = P x̃``, ``g'`` permuted over M, the posterior and gains unchanged), model files and
separation through the registry."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vae_audio.audio.stft import StftConfig
from vae_audio.core.checkpoint import load_model_file
from vae_audio.errors import VaeAudioError
from vae_audio.neural_fca import (
    NeuralFCAConfig,
    fit_neural_fca,
    load_neural_fca,
    neural_fca_loss,
    save_neural_fca,
)
from vae_audio.neural_fca.export import export_separator, load_separator
from vae_audio.neural_fca.iss import (
    iss_objective,
    iss_sweep,
    normalise_scale,
    power_order,
    weighted_covariance,
)
from vae_audio.separation import separate

from .conftest import random_stft, tiny_config, tiny_model

TINY_STFT = StftConfig(sample_rate=16000, n_fft=16, hop_length=4)
TAC = {"kind": "tac", "io_channels": 8, "mid_channels": 8, "n_blocks": 3, "n_layers": 2}
TIGHT = {"rtol": 1e-9, "atol": 1e-10}  # float64 round-off (sums over M in another order)


def tac_model(seed: int = 0, n_mics: int | None = None, **model):
    """A random any-M model (F = 9, N = 3, two ISS steps) with non-zero gain heads, so that
    the log-gains and ``log u_nf`` are not trivially invariant."""
    net = tiny_model(n_mics, "jd", seed=seed, encoder=TAC, **model)
    with torch.no_grad():
        for layer in (net.encoder.head.gain, net.encoder.head.freq_gain):
            if layer is not None:
                layer.weight.normal_(0, 0.3)
                layer.bias.normal_(0, 0.3)
    return net


def _permutation(M: int, seed: int) -> torch.Tensor:
    """A random permutation of ``0..M-1`` that moves every index (a derangement)."""
    g = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(M, generator=g)
        if bool((perm != torch.arange(M)).all()):
            return perm


def _permuted_q(Q: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """``P Q Pᵀ`` for ``x' = P x``, i.e. ``Q'[i, j] = Q[π(i), π(j)]``: ``[..., M, M]``."""
    return Q[..., perm, :][..., :, perm]


@pytest.mark.parametrize("M", [2, 4, 6])
def test_one_model_on_any_mic_count_is_equivariant_to_the_mic_order(M):
    model = tac_model(freq_gain=True).double().eval()
    x, _ = model.normalise(random_stft(2, M, seed=M, dtype=torch.complex128))
    perm = _permutation(M, seed=M)
    with torch.no_grad():
        a, b = model.encoder(x), model.encoder(x[:, perm])
    assert a.Q.shape == (2, 9, M, M) and a.xt.shape == (2, 9, M, 24) and a.g.shape == (2, 3, 9, M)
    # the ISS steps did something: Q is far from a scaled identity
    off = a.Q - torch.diag_embed(torch.diagonal(a.Q, dim1=-2, dim2=-1))
    assert float(off.abs().max()) > 0.05
    # outputs as defined: x̃ = |Q x|² (mean 1), g has mean 1 over M
    xf = x.transpose(1, 2)  # [B, F, M, T]
    y = a.Q @ xf  # [B, F, M, T] decorrelated outputs
    torch.testing.assert_close(a.xt, y.abs().square(), **TIGHT)
    torch.testing.assert_close(a.xt.mean((1, 2, 3)), torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(a.g.mean(-1), torch.ones(2, 3, 9, dtype=torch.float64))
    # invariant: posterior, log-gains, frequency responses
    torch.testing.assert_close(b.posterior.mean, a.posterior.mean, **TIGHT)
    torch.testing.assert_close(b.posterior.logvar, a.posterior.logvar, **TIGHT)
    assert float(a.log_gain.abs().max()) > 0.01 and float(a.log_freq_gain.abs().max()) > 0.01
    torch.testing.assert_close(b.log_gain, a.log_gain, **TIGHT)
    torch.testing.assert_close(b.log_freq_gain, a.log_freq_gain, **TIGHT)
    # equivariant: Q' = P Q Pᵀ (rows: decorrelated channels, columns: mics), x̃' = P x̃,
    # the decorrelated outputs Q' x' = P (Q x), g' permuted over M
    torch.testing.assert_close(b.Q, _permuted_q(a.Q, perm), **TIGHT)
    torch.testing.assert_close(b.xt, a.xt[:, :, perm], **TIGHT)
    torch.testing.assert_close(b.Q @ xf[:, :, perm], y[:, :, perm], **TIGHT)
    torch.testing.assert_close(b.g, a.g[..., perm], **TIGHT)
    # Q' = P Q (columns alone) would leave the outputs in the old order: not what happens
    assert not torch.allclose(b.Q, a.Q[..., :, perm])


def test_the_encoder_reads_the_inter_channel_phases():
    """A delay of one mic (a phase ramp over F) changes the latents: the spatial features
    reach the posterior, which is not invariant to everything."""
    model = tac_model().double().eval()
    x, _ = model.normalise(random_stft(1, 3, dtype=torch.complex128))
    ramp = torch.exp(-1j * torch.linspace(0, 3, 9, dtype=torch.float64))[:, None]  # [F, 1]
    delayed = x.clone()
    delayed[:, 1] = x[:, 1] * ramp  # same powers, other phases
    with torch.no_grad():
        a, b = model.encoder(x), model.encoder(delayed)
    assert float((a.posterior.mean - b.posterior.mean).abs().max()) > 1e-3


def test_the_data_ordered_iss_sweep_is_equivariant_and_still_descends():
    """``iss_sweep`` in the fixed order 0..M-1 is not equivariant (its rank-1 updates do not
    commute); in the order of :func:`power_order` it is, and it lowers the ISS objective as
    every ISS sweep does. The default order is unchanged."""
    B, F, M, T = 2, 3, 4, 50
    x = random_stft(B, M, F, T, seed=3, dtype=torch.complex128).transpose(1, 2)  # [B, F, M, T]
    r = torch.rand(B, F, M, T, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    perm = _permutation(M, seed=5)
    Q, xt = normalise_scale(x, torch.eye(M, dtype=x.dtype).expand(B, F, M, M))
    V, Vp = weighted_covariance(x, r), weighted_covariance(x[:, :, perm], r[:, :, perm])
    fixed, fixed_p = iss_sweep(Q, V), iss_sweep(Q, Vp)
    assert float((fixed_p - _permuted_q(fixed, perm)).abs().max()) > 1e-3
    ordered = iss_sweep(Q, V, order=power_order(xt))
    ordered_p = iss_sweep(Q, Vp, order=power_order(xt[:, :, perm]))
    torch.testing.assert_close(ordered_p, _permuted_q(ordered, perm), **TIGHT)
    assert bool((iss_objective(ordered, V) < iss_objective(Q, V) - 1e-6).all())
    natural = torch.arange(M).expand(B, F, M)
    torch.testing.assert_close(iss_sweep(Q, V, order=natural), fixed, rtol=0, atol=0)


def test_refinement_keeps_the_equivariance():
    """The MM updates after the encoder (``jd_iterations``) and the refinement of
    ``fit_neural_fca`` sweep in the data's order for a TAC model: the separation of the
    permuted mixture is the permuted separation."""
    model = tac_model(jd_iterations=1).double()
    x = random_stft(1, 3, seed=7, dtype=torch.complex128) * 4
    perm = _permutation(3, seed=1)
    a, b = fit_neural_fca(x, model, n_iter=2), fit_neural_fca(x[:, perm], model, n_iter=2)
    torch.testing.assert_close(b.lam, a.lam, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(b.log_likelihood, a.log_likelihood, rtol=1e-9, atol=1e-8)
    torch.testing.assert_close(b.Q, _permuted_q(a.Q, perm), rtol=1e-8, atol=1e-9)
    images = a.images(x)  # [B, N, M, F, T]
    torch.testing.assert_close(b.images(x[:, perm]), images[:, :, perm], rtol=1e-7, atol=1e-9)


def test_training_step_reaches_every_weight_on_two_mic_counts():
    model = tac_model()
    for M in (2, 5):
        model.zero_grad()
        x, _ = model.normalise(random_stft(2, M))
        loss = neural_fca_loss(x, model(x), beta=1.0, eps=model.config.eps).loss
        assert torch.isfinite(loss)
        loss.backward()
        for name, p in model.encoder.named_parameters():
            assert p.grad is not None and bool(torch.isfinite(p.grad).all()), name
            if "norm" not in name:
                assert float(p.grad.abs().sum()) > 0, name


@pytest.fixture(scope="module")
def tac_file(tmp_path_factory):
    return save_neural_fca(tmp_path_factory.mktemp("tac") / "model.pt", tac_model(seed=3))


def test_model_file_round_trips_and_takes_any_m(tac_file):
    stored = load_model_file(tac_file, kind="neural-fca")  # torch.load(weights_only=True)
    assert stored["config"]["model"]["n_mics"] is None
    assert stored["config"]["model"]["encoder"]["kind"] == "tac"
    a, b = load_neural_fca(tac_file, n_mics=2), load_neural_fca(tac_file, n_mics=6)
    assert a.config == b.config and a.n_mics is None and a.config.encoder.kind == "tac"
    built = tac_model(seed=3).eval()
    for M in (2, 6):
        x = random_stft(1, M, seed=M)
        fa, fb = fit_neural_fca(x, a), fit_neural_fca(x, built)
        torch.testing.assert_close(fa.lam, fb.lam, rtol=0, atol=0)
        torch.testing.assert_close(fa.Q, fb.Q, rtol=0, atol=0)
    with pytest.raises(VaeAudioError, match="any M >= 2 microphones but the mixture has M = 1"):
        load_neural_fca(tac_file, n_mics=1)
    with pytest.raises(VaeAudioError, match=r"multichannel \(M >= 2\).*M = 1"):
        a.encode(random_stft(1, 1))


def test_fixed_m_models_still_refuse_another_m(tmp_path):
    path = save_neural_fca(tmp_path / "jd.pt", tiny_model(4, "jd"))
    assert load_model_file(path, kind="neural-fca")["config"]["model"]["encoder"]["kind"] == "conv"
    model = load_neural_fca(path, n_mics=4)
    assert model.n_mics == 4 and not model.mic_equivariant
    with pytest.raises(VaeAudioError, match=r"M = 4 .*M = 3.*fastmnmf2"):
        load_neural_fca(path, n_mics=3)
    with pytest.raises(VaeAudioError, match="takes 4-channel STFTs"):
        model.encode(random_stft(1, 3))
    with pytest.raises(VaeAudioError, match=r"M = 4 .*M = 6"):
        separate(torch.randn(6, 800), method="neural-fastfca", model=path, stft=TINY_STFT)
    # a TAC model given an integer n_mics is held to it as well
    fixed_tac = tac_model(n_mics=4)
    with pytest.raises(VaeAudioError, match=r"M = 4 .*M = 3"):
        load_neural_fca(fixed_tac, n_mics=3)


def test_config_errors_name_the_fix():
    def config(**model):
        return NeuralFCAConfig.from_dict({**tiny_config()["model"], **model})

    with pytest.raises(VaeAudioError, match="n_mics=null.*encoder.kind=tac"):
        config(n_mics=None)
    with pytest.raises(VaeAudioError, match="kind=tac.*spatial=jd"):
        config(n_mics=None, spatial="full", encoder=TAC)
    with pytest.raises(VaeAudioError, match="encoder.kind='tca'; use one of conv, tac"):
        config(encoder={**TAC, "kind": "tca"})
    cfg = config(n_mics=None, spatial="jd", encoder=TAC)
    assert NeuralFCAConfig.from_dict(cfg.to_dict()) == cfg
    # an encoder section without `kind` (files written before it existed) is the conv encoder
    assert config(encoder={"io_channels": 8}).encoder.kind == "conv"


@pytest.mark.parametrize("M", [2, 6])
def test_separate_through_the_registry_on_two_and_six_mics(tac_file, M):
    g = torch.Generator().manual_seed(M)
    mix = torch.randn(M, 1200, generator=g, dtype=torch.float64)
    kw = {"method": "neural-fastfca", "model": tac_file, "n_src": 2, "stft": TINY_STFT}
    res = separate(mix, dtype=torch.float64, **kw)
    assert res.sources.shape == (2, M, 1200) and res.noise.shape == (M, 1200)
    torch.testing.assert_close(res.sources.sum(0) + res.noise, mix, rtol=0, atol=1e-4)
    perm = _permutation(M, seed=0)
    res_p = separate(mix[perm], dtype=torch.float64, **kw)
    torch.testing.assert_close(res_p.sources, res.sources[:, perm], rtol=1e-6, atol=1e-8)


def test_export_traces_an_any_m_model_for_the_given_m(tac_file, tmp_path):
    with pytest.raises(VaeAudioError, match="pass n_mics=M"):
        export_separator(tac_file, tmp_path / "none.pt")
    path = export_separator(tac_file, tmp_path / "m3.pt", n_mics=3)
    traced, settings = load_separator(path)
    assert settings["n_mics"] == 3 and settings["model"]["n_mics"] is None
    wav = 0.1 * torch.randn(1, 3, 900, generator=torch.Generator().manual_seed(2))
    kw = {"method": "neural-fastfca", "model": tac_file, "n_src": 2, "stft": TINY_STFT}
    with torch.no_grad():
        images = traced(wav)  # [1, N, M, S], slots in the model's order, noise last
    res = separate(wav, **kw)
    torch.testing.assert_close(images[:, -1], res.noise, rtol=1e-4, atol=1e-6)


@pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no `val_dataloader`")
def test_any_mics_recipe_trains_two_steps_into_an_any_m_model(tmp_path):
    """Smoke run of recipes/neural_fca/any_mics.yaml (tiny sizes, 2 steps on the 4-channel
    fixture mixture): n_mics stays null, and the exported model separates 2 and 5 channels."""
    from vae_audio import cli
    from vae_audio.core.config import load_config

    from .conftest import MIXTURE_MANIFEST

    recipe = Path(__file__).resolve().parents[2] / "recipes" / "neural_fca" / "any_mics.yaml"
    code = cli.main(
        [
            "train", "neural-fca", "--config", str(recipe),
            f"data.train_manifest={MIXTURE_MANIFEST}", "data.valid_manifest=null",
            "data.teacher_set=null", "loss.teacher=0", "prior=null",
            "data.batch_size=1", "data.segment_seconds=0.25",
            "model.encoder={kind: tac, io_channels: 8, mid_channels: 8, n_blocks: 2, n_layers: 1}",
            "model.decoder={latent_dim: 4, hidden: 16}", "model.noise_latent_dim=2",
            f"trainer.out_dir={tmp_path}", "trainer.max_epochs=2", "trainer.max_steps=2",
            "trainer.enable_progress_bar=false", "trainer.num_sanity_val_steps=0",
            "trainer.tensorboard=false", "trainer.log_every_n_steps=1",
        ]
    )  # fmt: skip
    assert code == 0
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 2
    assert load_config(tmp_path / "config.yaml")["model"]["n_mics"] is None
    model = load_neural_fca(tmp_path / "model.pt", n_mics=2)
    assert model.n_mics is None and model.config.encoder.kind == "tac"
    for M in (2, 5):
        wav = 0.1 * torch.randn(M, 4000, generator=torch.Generator().manual_seed(M))
        res = separate(wav, method="neural-fastfca", model=tmp_path / "model.pt", n_src=2)
        assert res.sources.shape == (2, M, 4000) and bool(torch.isfinite(res.sources).all())
