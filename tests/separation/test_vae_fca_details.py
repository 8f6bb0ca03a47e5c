"""Details of VAE-FCA that the main tests leave open: the documented start (the latents of the
``"separation"`` and ``"mixture"`` starts, the gains ``v``, the seeded noise NMF and the
floors, checked through the initial log-likelihood of a dense computation), the defaults,
scale equivariance, options given as strings built at run time, what ``callback`` gets, the
one-speech-slot refusal and the per-frame log-likelihoods that the MH step samples with; the
result's SCMs, the SCM update ``algorithm`` selects, and the messages of two refusals."""

from __future__ import annotations

import math

import pytest
import torch

import vae_audio
from vae_audio.errors import VaeAudioError
from vae_audio.separation import fit_vae_fca
from vae_audio.separation import vae_fca as vae_fca_module
from vae_audio.separation.fastmnmf import noise_first_stage
from vae_audio.separation.priors import load_prior, prior_level
from vae_audio.separation.vae_fca import _full_frame_loglik, _jd_frame_loglik
from vae_audio.separation.wiener import wiener_jd

from .conftest import random_psd, sample_jd

G_EPS = 1e-2  # off-diagonal g of the circular first-stage start (Sekiguchi's default)
X_FLOOR = 1e-6  # the FastMNMF observation floor (fit_fastmnmf's default)


def _runtime(s: str) -> str:
    """``s`` as a new string object, as read from a config file or the command line."""
    return "".join(list(s))


@pytest.fixture(scope="module")
def prior():
    return vae_audio.pretrained("speech-vae")


@pytest.fixture(scope="module")
def mix():
    """Two channels, 257 bins (the shipped prior's), 10 frames, three JD-model sources;
    ``mean |x|²`` is about 0.5 (not 1, so that a floor not scaled by it shows)."""
    return sample_jd(M=2, N=3, F=257, T=10, seed=3)[0]  # [1, 2, 257, 10] complex128


def _dense_log_likelihood(x, lam, H, eps):
    """``−Σ_ft [xᴴ Y⁻¹ x + log det(π Y)]``, ``Y = Σ_n λ_nft H_nf + ε I`` -> ``[B]``."""
    M = H.shape[-1]
    Y = (lam[..., None, None].to(H.dtype) * H[:, :, :, None]).sum(1)  # [B, F, T, M, M]
    Y = Y + eps.reshape(-1, 1, 1, 1, 1) * torch.eye(M, dtype=H.dtype)
    xt = x.permute(0, 2, 3, 1)[..., None]  # [B, F, T, M, 1]
    quad = (xt.mH @ torch.linalg.solve(Y, xt))[..., 0, 0].real  # [B, F, T]
    return -(quad + torch.linalg.slogdet(math.pi * Y)[1]).sum((1, 2))


# --- the start ------------------------------------------------------------------------------


def test_separation_start_encodes_the_first_stage_images_at_mic_0(prior, mix):
    """``z`` starts at the encoder mean of each speaker slot's first-stage Wiener image power
    at mic 0, brought to the prior's level; the slots start apart."""
    x = mix
    power = x.abs().square().mean((1, 2, 3))
    Q, g, eps, lam0 = noise_first_stage(x, 3, 2, 4, 1e-6 * power, G_EPS, X_FLOOR)
    spec = wiener_jd(x, lam0[:, :2], g[:, :2], Q, eps)[:, :, 0]  # [1, 2, F, T]
    net = load_prior(prior, x)
    want = net.encode(prior_level(spec.abs().square(), net)).mean  # [1, 2, T, D]
    for spatial in ("full", "jd"):
        fit = fit_vae_fca(x, 3, n_iter=0, n_iter_init=4, spatial=spatial, prior=prior)
        torch.testing.assert_close(fit.source.z.detach(), want, rtol=1e-9, atol=1e-12)
        assert not torch.allclose(want[:, 0], want[:, 1], atol=1e-3)


def test_mixture_start_gives_every_speaker_slot_the_mixture_latent(prior, mix):
    """``z_init="mixture"``: every speaker slot starts from the encoding of the mixture's
    mic-0 power."""
    x = mix
    net = load_prior(prior, x)
    want = net.encode(prior_level(x[:, 0].abs().square(), net)).mean  # [1, T, D]
    for z_init in ("mixture", _runtime("mixture")):
        fit = fit_vae_fca(x, 3, n_iter=0, n_iter_init=2, spatial="jd", z_init=z_init, prior=prior)
        z = fit.source.z.detach()  # [1, 2, T, D]
        torch.testing.assert_close(z, want[:, None].expand_as(z), rtol=1e-9, atol=1e-12)
    sep = fit_vae_fca(x, 3, n_iter=0, n_iter_init=2, spatial="jd", prior=prior)
    assert not torch.allclose(sep.source.z[:, 0], want, atol=1e-3)


@pytest.mark.parametrize(("kwargs", "seed", "K"), [({}, 0, 8), ({"seed": 5, "n_basis": 3}, 5, 3)])
def test_full_start_has_the_documented_likelihood(prior, mix, kwargs, seed, K):
    """The first log-likelihood entry is ``L`` of the documented start, computed densely:
    SCMs ``H = Q⁻¹ diag(g_n) Q⁻ᴴ`` of the first stage loaded by ``10⁻³ tr(H)/M``; speech
    ``λ = v_nt g_f(z_nt)`` with ``v_nt = Σ_f λ⁰_nft / Σ_f g_f(z_nt)``; noise
    ``Σ_k W_fk H_kt`` with ``W_fk = w_f (r_fk + ½)/K``, ``H_kt = r'_kt + ½`` from a
    Uniform(0, 1) draw seeded by ``seed`` (``W`` first). The floor ``ε = 10⁻⁶ mean |x|²``
    (the default ``eps_rel``) is the isotropic one and is added to the noise PSD after the
    scale normalisation (``tr H_nf = M``, the scale in the PSDs)."""
    x = mix
    B, M, F, T = x.shape
    power = x.abs().square().mean((1, 2, 3))
    eps = 1e-6 * power
    Q, g, eps_jd, lam0 = noise_first_stage(x, 3, 2, 3, eps, G_EPS, X_FLOOR)
    fit = fit_vae_fca(x, 3, n_iter=0, n_iter_init=3, prior=prior, **kwargs)
    assert fit.log_likelihood.shape == (1, 1) and fit.Q is None and fit.g is None
    # SCMs, then normalised: the scale tau goes into the PSDs
    A = torch.linalg.inv(Q)[:, None]  # [1, 1, F, M, M]
    H = (A * g.to(A.dtype)[..., None, :]) @ A.mH  # [1, 3, F, M, M]
    load = 1e-3 * H.diagonal(0, -2, -1).sum(-1).real / M  # [1, 3, F]
    H = H + load[..., None, None] * torch.eye(M, dtype=H.dtype)
    tau = H.diagonal(0, -2, -1).sum(-1).real / M  # [1, 3, F]
    H = H / tau[..., None, None]
    # speech PSDs
    net = load_prior(prior, x)
    gz = net.decode(fit.source.z.detach())  # [1, 2, F, T]
    v = lam0[:, :2].sum(2) / gz.sum(2)  # [1, 2, T]
    speech = v[:, :, None, :] * gz
    # noise PSD
    gen = torch.Generator().manual_seed(seed)
    r_w = torch.rand(F, K, generator=gen, dtype=torch.float64)
    r_h = torch.rand(K, T, generator=gen, dtype=torch.float64)
    assert torch.allclose(lam0[:, 2], lam0[:, 2, :, :1].expand(-1, F, T))  # stationary: w_f
    W = lam0[:, 2, :, :1] * (r_w + 0.5) / K  # [1, F, K]
    noise = (W @ (r_h + 0.5))[:, None]  # [1, 1, F, T]
    lam = torch.cat([speech, noise], 1) * tau[..., None]
    lam[:, 2] += eps[:, None, None]
    want = _dense_log_likelihood(x, lam, H, eps)
    # (the first stage's Q is ill-conditioned at a few bins: round-off of 1e-10 in H)
    torch.testing.assert_close(fit.log_likelihood[:, 0], want, rtol=1e-8, atol=0)
    torch.testing.assert_close(fit.lam, lam, rtol=1e-9, atol=0)
    torch.testing.assert_close(fit.H, H, rtol=0, atol=1e-9)  # tr H = M
    torch.testing.assert_close(fit.eps, eps, rtol=1e-15, atol=0)


def test_noise_floor_is_eps_in_the_full_model_only(mix):
    """``eps_rel · mean |x|²`` is the isotropic floor and, in the full model only, the noise
    NMF's PSD floor; the spatial model may be named by a string built at run time."""
    x = mix
    power = x.abs().square().mean((1, 2, 3))
    kw = {"n_iter": 1, "n_iter_init": 2, "eps_rel": 1e-4}
    full = fit_vae_fca(x, 3, spatial="full", **kw)
    torch.testing.assert_close(full.eps, 1e-4 * power, rtol=1e-15, atol=0)
    torch.testing.assert_close(
        full.source.noise.floor.reshape(-1), 1e-4 * power, rtol=1e-15, atol=0
    )
    jd = fit_vae_fca(x, 3, spatial="jd", **kw)
    assert float(jd.source.noise.floor) == 0.0
    built = fit_vae_fca(x, 3, spatial=_runtime("full"), **kw)
    assert built.H is not None and built.Q is None
    assert torch.equal(built.source.noise.floor, full.source.noise.floor)
    assert torch.equal(built.log_likelihood, full.log_likelihood)
    built = fit_vae_fca(x, 3, spatial=_runtime("jd"), **kw)
    assert float(built.source.noise.floor) == 0.0
    assert torch.equal(built.log_likelihood, jd.log_likelihood)


# --- defaults, equivariance, callback, refusals ---------------------------------------------


def test_defaults(mix):
    """``n_iter=100``, ``z_steps=5``, ``n_iter_init=30``, ``seed=0`` (and the others as
    documented): the defaults give bitwise the fit with them spelt out, and each matters."""
    x = mix
    long = fit_vae_fca(x, 3, spatial="jd", n_iter_init=1, z_steps=0)
    assert long.log_likelihood.shape == (1, 101) and long.log_prior.shape == (1, 101)

    base = {"n_iter": 2, "spatial": "jd"}
    default = fit_vae_fca(x, 3, **base)
    spelt = {
        "algorithm": None,
        "n_noise": 1,
        "n_basis": 8,
        "z_update": "adam",
        "z_steps": 5,
        "z_lr": 0.05,
        "mh_std": 0.1,
        "z_init": "separation",
        "n_iter_init": 30,
        "eps_rel": 1e-6,
        "seed": 0,
    }
    explicit = fit_vae_fca(x, 3, **base, **spelt)
    assert torch.equal(default.log_likelihood, explicit.log_likelihood)
    assert torch.equal(default.log_prior, explicit.log_prior)
    assert torch.equal(default.lam, explicit.lam)
    for change in ({"z_steps": 4}, {"n_iter_init": 29}, {"n_iter_init": 31}, {"seed": 1}):
        other = fit_vae_fca(x, 3, **base, **{**spelt, **change})
        assert not torch.equal(other.lam, default.lam), change


@pytest.mark.parametrize("spatial", ["full", "jd"])
def test_scale_equivariance(mix, spatial):
    """``x → s x`` (``s`` a power of two, far below the data's scale) scales the PSDs and the
    floors by ``s²`` and shifts ``L`` by ``−F T M log s²``; ``z`` and the prior term do not
    move: every floor follows ``mean |x|²``."""
    x = mix
    B, M, F, T = x.shape
    s = 2.0**-12
    a = fit_vae_fca(x, 3, n_iter=3, n_iter_init=3, spatial=spatial)
    b = fit_vae_fca(s * x, 3, n_iter=3, n_iter_init=3, spatial=spatial)
    torch.testing.assert_close(b.lam, s**2 * a.lam, rtol=1e-12, atol=0)
    torch.testing.assert_close(b.eps, s**2 * a.eps, rtol=1e-12, atol=0)
    torch.testing.assert_close(b.source.z, a.source.z, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(b.log_prior, a.log_prior, rtol=1e-12, atol=0)
    shift = -F * T * M * math.log(s**2)
    torch.testing.assert_close(b.log_likelihood, a.log_likelihood + shift, rtol=1e-12, atol=0)


@pytest.mark.parametrize("spatial", ["full", "jd"])
def test_callback_gets_every_new_log_likelihood(mix, spatial):
    seen = []
    fit = fit_vae_fca(
        mix,
        3,
        n_iter=3,
        n_iter_init=2,
        spatial=spatial,
        callback=lambda i, ll: seen.append((i, ll)),
    )
    assert [i for i, _ in seen] == [0, 1, 2]
    for i, ll in seen:
        assert torch.equal(ll, fit.log_likelihood[:, i + 1])
    assert len({float(ll) for _, ll in seen}) == 3


def test_one_speech_slot_is_needed(mix):
    with pytest.raises(
        VaeAudioError, match=r"at least one speech slot, got n_src=1 slots with n_noise=1"
    ):
        fit_vae_fca(mix, 1, n_iter=1)
    with pytest.raises(VaeAudioError, match=r"n_src=0 slots with n_noise=0"):
        fit_vae_fca(mix, 0, n_iter=1, n_noise=0)
    one = fit_vae_fca(mix, 1, n_iter=1, n_iter_init=2, n_noise=0)  # one talker, no noise slot
    assert one.lam.shape == (1, 1, 257, 10) and one.noise_index is None
    two = fit_vae_fca(mix, 2, n_iter=1, n_iter_init=2)  # one talker and the noise
    assert two.lam.shape == (1, 2, 257, 10) and int(two.noise_index[0]) == 1


# --- the per-frame log-likelihoods (the MH step's target) -----------------------------------


def test_full_frame_loglik_is_the_frame_share_of_L(mix):
    """``−Σ_f [xᴴ Y⁻¹ x + log det Y]`` per frame (the ``π`` constant left out), at any λ; at
    the fitted state the frames add up to ``L``."""
    x = mix[:, :, :20]  # [1, 2, 20, 10]
    B, M, F, T = x.shape
    gen = torch.Generator().manual_seed(0)
    H = random_psd((B, 3, F), M, load=0.1, generator=gen)
    lam = torch.rand(B, 3, F, T, generator=gen, dtype=torch.float64) + 0.1
    eps = torch.tensor([0.05], dtype=torch.float64)
    got = _full_frame_loglik(x.transpose(1, 2), H, eps)(lam)  # [1, T]
    assert got.shape == (B, T)
    Y = (lam[..., None, None].to(H.dtype) * H[:, :, :, None]).sum(1) + 0.05 * torch.eye(
        M, dtype=H.dtype
    )
    xt = x.permute(0, 2, 3, 1)[..., None]  # [B, F, T, M, 1]
    quad = (xt.mH @ torch.linalg.solve(Y, xt))[..., 0, 0].real  # [B, F, T]
    want = -(quad + torch.linalg.slogdet(Y)[1]).sum(1)  # [B, T]
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)

    fit = fit_vae_fca(mix, 3, n_iter=2, n_iter_init=2, spatial="full")
    frames = _full_frame_loglik(mix.transpose(1, 2), fit.H, fit.eps)(fit.lam)
    F, T = mix.shape[2:]
    total = frames.sum(-1) - F * T * M * math.log(math.pi)
    torch.testing.assert_close(total, fit.log_likelihood[:, -1], rtol=1e-11, atol=0)


def test_jd_frame_loglik_is_the_frame_share_of_L(mix):
    """``−Σ_fm [x̃_ftm / ŷ_ftm + log ŷ_ftm]``, ``ŷ = Σ_n λ_nft g_nm + ε_f``, per frame; at the
    fitted state, with ``x̃ = |Q x|² + δ_f ‖q_fm‖²``, the frames plus ``T Σ_f log |det Q_f|²``
    add up to ``L``."""
    B, M, F, T = mix.shape
    gen = torch.Generator().manual_seed(1)
    xt = torch.rand(B, 20, M, T, generator=gen, dtype=torch.float64) * 3  # [B, F, M, T]
    g = torch.rand(B, 3, 1, M, generator=gen, dtype=torch.float64) + 0.1
    lam = torch.rand(B, 3, 20, T, generator=gen, dtype=torch.float64) + 0.1
    eps = torch.rand(B, 20, generator=gen, dtype=torch.float64) * 0.1
    got = _jd_frame_loglik(xt, g, eps)(lam)
    y = torch.einsum("bnm,bnft->bfmt", g[:, :, 0], lam) + eps[..., None, None]
    torch.testing.assert_close(got, -(xt / y + y.log()).sum((1, 2)), rtol=1e-12, atol=0)

    fit = fit_vae_fca(mix, 3, n_iter=2, n_iter_init=2, spatial="jd")
    xf = mix.transpose(1, 2)  # [B, F, M, T]
    delta = X_FLOOR * xf.abs().square().mean((2, 3))  # [B, F]
    rows = fit.Q.abs().square().sum(-1)  # [B, F, M]
    xq = (fit.Q @ xf).abs().square() + delta[..., None, None] * rows[..., None]
    frames = _jd_frame_loglik(xq, fit.g, fit.eps)(fit.lam)  # [B, T]
    logdet = torch.linalg.slogdet(fit.Q)[1].sum(-1)  # [B]: Σ_f log |det Q_f|
    total = frames.sum(-1) + 2 * T * logdet - F * T * M * math.log(math.pi)
    torch.testing.assert_close(total, fit.log_likelihood[:, -1], rtol=1e-11, atol=0)


# --- the SCMs of the result; options at run time; the refusals' messages ------------------


@pytest.mark.parametrize("spatial", ["full", "jd"])
def test_scm_is_h_or_the_jd_product(mix, spatial):
    """``scm()``: the fitted ``H`` of the full model; for the JD model ``Q_f⁻¹ diag(g_n) Q_f⁻ᴴ``
    (here with ``Q_f⁻¹`` from a linear solve)."""
    fit = fit_vae_fca(mix, 3, n_iter=1, n_iter_init=2, spatial=spatial, z_steps=0)
    H = fit.scm()
    assert H.shape == (1, 3, 257, 2, 2)
    if spatial == "full":
        assert torch.equal(H, fit.H)
        return
    eye = torch.eye(2, dtype=fit.Q.dtype).expand_as(fit.Q)
    A = torch.linalg.solve(fit.Q, eye)[:, None]  # [1, 1, F, M, M]: Q_f⁻¹
    want = A @ torch.diag_embed(fit.g.to(A.dtype).expand(1, 3, 257, 2)) @ A.mH
    scale = want.abs().amax((-2, -1), keepdim=True)
    assert ((H - want).abs() <= 1e-9 * scale).all()


def test_runtime_strings_select_the_jd_refusal_and_the_separation_start(mix):
    """``spatial`` and ``z_init`` named by strings built at run time act as the literals:
    ``"jd"`` refuses an FCA algorithm, ``"separation"`` is the default start."""
    with pytest.raises(VaeAudioError, match="full' only"):
        fit_vae_fca(mix, 3, n_iter=1, spatial=_runtime("jd"), algorithm="em")
    kw = {"n_iter": 0, "n_iter_init": 2, "spatial": "jd"}
    ref = fit_vae_fca(mix, 3, **kw)
    got = fit_vae_fca(mix, 3, z_init=_runtime("separation"), **kw)
    assert torch.equal(got.source.z, ref.source.z)
    mixture = fit_vae_fca(mix, 3, z_init="mixture", **kw)
    assert not torch.allclose(mixture.source.z, ref.source.z, atol=1e-3)


@pytest.mark.parametrize("algorithm", ["em", "mu"])
def test_full_model_runs_the_chosen_scm_update(mix, monkeypatch, algorithm):
    """``algorithm="em"`` updates the SCMs by FCA's EM step, ``"mu"`` by its MU step, once per
    iteration (the name may be built at run time)."""
    calls = []

    def spy(name):
        step = getattr(vae_fca_module, name)

        def counted(*args):
            calls.append(name)
            return step(*args)

        return counted

    for name in ("_em_step", "_mu_step"):
        monkeypatch.setattr(vae_fca_module, name, spy(name))
    fit_vae_fca(mix, 3, n_iter=2, n_iter_init=2, algorithm=_runtime(algorithm), z_steps=0)
    assert calls == [f"_{algorithm}_step"] * 2


def test_no_speech_slot_with_a_noise_slot_is_refused(mix):
    """``n_src=0`` with the noise slot leaves no speech slot (nor the noise slot itself): the
    package's error, not an arithmetic failure further in."""
    with pytest.raises(VaeAudioError, match=r"n_src=0 slots with n_noise=1"):
        fit_vae_fca(mix, 0, n_iter=1)


def test_bin_mismatch_names_the_shipped_prior(mix):
    """A spectrogram with other than the prior's 257 bins is refused naming the prior: without
    one given, the default ``speech-vae-conv16``."""
    match = r"^speech prior speech-vae-conv16 was trained .* has 129 bins"
    with pytest.raises(VaeAudioError, match=match):
        fit_vae_fca(mix[:, :, :129], 3, n_iter=1)
