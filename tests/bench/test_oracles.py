"""Oracle separators: closed forms on synthetic rank-1 sources, margins on the fixture; the
half-oracles' fits against closed forms, data drawn from the FCA model and scipy's optimum."""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from vae_audio.bench import BenchSettings, oracle_irm, oracle_mwf, oracle_parameters, run_bench
from vae_audio.bench.oracles import fit_psd_given_scm, fit_scm_given_psd


def _rank1_sources(M: int, N: int, F: int = 5, T: int = 40, seed: int = 0):
    """Point sources ``c_nft = a_nf s_nft``: steering ``a [N, F, M]``, signals ``s [N, F, T]``."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(N, F, M, dtype=torch.complex128, generator=g)
    s = torch.randn(N, F, T, dtype=torch.complex128, generator=g)
    C = (a[..., None] * s[:, :, None]).permute(0, 2, 1, 3)  # [N, F, M, T] -> [N, M, F, T]
    return a, s, C


def test_parameters_of_a_point_source_match_the_closed_form():
    # c = a s  =>  λ = |s|² ‖a‖² / M  and  H = M a aᴴ / ‖a‖²  (trace M) at every frequency.
    M = 3
    a, s, C = _rank1_sources(M, 1)
    lam, H = oracle_parameters(C)
    norm2 = a.abs().square().sum(-1)  # [N, F]
    torch.testing.assert_close(lam, s.abs().square() * norm2[..., None] / M)
    expected = M * a[..., :, None] * a[..., None, :].conj() / norm2[..., None, None]
    torch.testing.assert_close(H, expected)


def test_mwf_separates_determined_point_sources_exactly():
    # With rank-1 SCMs and M = N the oracle MWF is the inverse of the mixing: exact images.
    _, _, C = _rank1_sources(M=2, N=2)
    est = oracle_mwf(C.sum(0), C)
    torch.testing.assert_close(est, C, rtol=0, atol=1e-6 * C.abs().max().item())


def test_irm_masks_sum_to_one_and_weight_by_power():
    g = torch.Generator().manual_seed(1)
    C = torch.randn(3, 2, 4, 6, dtype=torch.complex128, generator=g)  # [J, M, F, T]
    x = C.sum(0)
    est = oracle_irm(x, C)
    torch.testing.assert_close(est.sum(0), x)  # the estimates add up to the mixture
    k = (0, 1, 2, 3)  # one bin of component 0, by hand
    power = [C[j, 1, 2, 3].abs() ** 2 for j in range(3)]
    torch.testing.assert_close(est[k], power[0] / sum(power) * x[1, 2, 3])


def _by_method(rows):
    out = {}
    for r in rows:
        out.setdefault(r["method"], {})[r["source"]] = r
    return out


def test_oracles_beat_the_mixture_by_a_wide_margin(fixture_set):
    result = run_bench(fixture_set, "mixture,oracle-mwf,oracle-irm", progress=False)
    rows = _by_method(result.rows)
    for method in ("oracle-mwf", "oracle-irm"):
        for src, row in rows[method].items():
            floor = rows["mixture"][src]
            # 2 talkers in pink noise at 24 dB SNR: the oracles gain 10-16 dB per talker.
            assert row["sdr"] > floor["sdr"] + 9.0, (method, src, row["sdr"], floor["sdr"])
            assert row["si_sdr"] > floor["si_sdr"] + 9.0, (method, src)
            assert row["sir"] > 15.0
    for row in rows["mixture"].values():
        assert abs(row["sdr_i"]) < 1e-9 and abs(row["si_sdr_i"]) < 1e-9  # scored twice


@pytest.mark.parametrize("method, floor_db", [("oracle-irm", 150.0), ("oracle-mwf", 60.0)])
def test_one_noise_free_talker_is_recovered_almost_perfectly(one_talker_set, method, floor_db):
    # IRM: the mask is 1 wherever the talker has energy, so only STFT round-off remains;
    # MWF: Y = λH + εI with a 1e-8 relative loading, so bins far below the mean power lose a bit.
    result = run_bench(one_talker_set, method, BenchSettings(), progress=False)
    (row,) = result.rows
    assert row["sdr"] > floor_db
    assert row["si_sdr"] > floor_db or math.isinf(row["si_sdr"])
    assert row["sar"] > floor_db  # inf when no artefact is left (fast_bss_eval)


# --- half-oracles: oracle-psd (blind SCMs by EM) and oracle-scm (blind free PSDs by MU) ---


def _fca_draw(M: int, J: int, F: int, T: int, diffuse: float = 0.1, seed: int = 0):
    """Images drawn from the FCA model: ``H_jf = a aᴴ + diffuse·I`` scaled to trace M,
    log-normal PSDs ``lam [J, F, T]`` (±2 nepers), ``c_jft ~ N_C(0, λ_jft H_jf)``.
    Returns ``C [J, M, F, T]``, ``lam``, ``H [J, F, M, M]``."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(J, F, M, 1, dtype=torch.complex128, generator=g)
    H = a @ a.mH + diffuse * torch.eye(M, dtype=torch.complex128)  # [J, F, M, M]
    H = M * H / torch.diagonal(H, dim1=-2, dim2=-1).sum(-1).real[..., None, None]
    lam = torch.exp(2 * torch.randn(J, F, T, dtype=torch.float64, generator=g))  # [J, F, T]
    z = torch.randn(J, F, T, M, 1, dtype=torch.complex128, generator=g)
    c = (torch.linalg.cholesky(H)[:, :, None] @ z)[..., 0] * lam[..., None].sqrt()  # [J,F,T,M]
    return c.permute(0, 3, 1, 2), lam, H


def _rel_err(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Mean over slots and frequencies of ``‖A − B‖_F / ‖B‖_F``."""
    return (torch.linalg.matrix_norm(A - B) / torch.linalg.matrix_norm(B)).mean()


def test_scm_em_with_one_source_is_the_sample_scm():
    # N = 1, ε = 0: Y = λH, so E[c cᴴ | x] = x xᴴ and one EM step gives (1/T) Σ_t x xᴴ / λ.
    C, lam, _ = _fca_draw(M=3, J=1, F=3, T=50)
    x = C[0]  # [M, F, T]
    fit = fit_scm_given_psd(x, lam, n_iter=1)
    xt = x.permute(1, 2, 0)  # [F, T, M]
    expected = torch.einsum("ftm,ftk->fmk", xt / lam[0][..., None], xt.conj()) / 50
    torch.testing.assert_close(fit.H[0], expected, rtol=1e-8, atol=0)


@pytest.mark.parametrize("M, J", [(4, 3), (3, 2)])
def test_scm_em_recovers_the_model_scms_and_never_lowers_the_likelihood(M, J):
    C, lam, H = _fca_draw(M, J, F=4, T=400)
    x = C.sum(0)  # [M, F, T]
    errors = [_rel_err(fit_scm_given_psd(x, lam, n).H, H) for n in (0, 5, 50)]
    # From H = I (error ~0.8) to the T = 400 sampling error of the ML SCMs (~0.08).
    assert errors[0] > 0.5 and errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 0.15, errors
    ll = fit_scm_given_psd(x, lam, 50, track=True).log_likelihood  # [51]
    assert (ll.diff() >= -1e-9 * ll.abs().max()).all()
    assert ll[-1] - ll[0] > 1e3  # it moved (nats, sum over F and T)


def test_psd_mu_with_determined_point_sources_reaches_the_closed_form():
    # c_j = a_j s_j, H_j = b_j b_jᴴ with b_j = a_j √(M / ‖a_j‖²), M = J: x = B (s ⊙ ‖a‖/√M),
    # so per bin the ML PSDs are λ_j = |s_j|² ‖a_j‖² / M = ‖c_j‖² / M (the oracle PSDs), and
    # there λ ← sqrt(λ · λ_ML), the MU step, halves the log error at every iteration.
    M = J = 3
    a, s, C = _rank1_sources(M, J, F=4, T=30, seed=3)
    x = C.sum(0)  # [M, F, T]
    scale = a.abs().square().sum(-1) / M  # [J, F]: ‖a‖² / M
    H = a[..., :, None] * a[..., None, :].conj() / scale[..., None, None]  # [J, F, M, M]
    expected = s.abs().square() * scale[..., None]  # [J, F, T]: the images' power ‖c‖² / M
    torch.testing.assert_close(expected, oracle_parameters(C)[0])
    errors = [
        (fit_psd_given_scm(x, H, n).lam / expected).log().abs().max().item() for n in (5, 20, 60)
    ]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-8, errors
    fit = fit_psd_given_scm(x, H, 60)
    assert (fit.log_likelihood.diff() >= -1e-9 * fit.log_likelihood.abs().max()).all()


def _neg_log_lik_bin(lam: np.ndarray, H: np.ndarray, x: np.ndarray) -> float:
    """``log det Y + xᴴ Y⁻¹ x`` of one bin: ``lam [J]``, ``H [J, M, M]``, ``x [M]`` (numpy)."""
    Y = np.einsum("j,jmk->mk", lam, H)
    return float(np.linalg.slogdet(Y)[1] + (x.conj() @ np.linalg.solve(Y, x)).real)


def _neg_log_lik_log_psd(log_lam: np.ndarray, H: np.ndarray, x: np.ndarray) -> float:
    return _neg_log_lik_bin(np.exp(log_lam), H, x)


def test_psd_mu_with_full_rank_scms_climbs_to_the_per_bin_ml():
    # Full-rank SCMs, M = 4 > J = 3: no closed form; each bin is its own ML problem in λ,
    # solved independently by L-BFGS on log λ (scipy) from several starts.
    C, _, H = _fca_draw(M=4, J=3, F=2, T=8, seed=5)
    x = C.sum(0)  # [M, F, T]
    fits = {n: fit_psd_given_scm(x, H, n) for n in (50, 300)}
    ll = fits[300].log_likelihood  # [301]
    assert (ll.diff() >= -1e-9 * ll.abs().max()).all() and ll[-1] - ll[0] > 1.0
    rng = np.random.default_rng(0)
    gaps = {n: [] for n in fits}
    for f, t in [(0, 0), (0, 5), (1, 2), (1, 7)]:
        Hf, xf = H[:, f].numpy(), x[:, f, t].numpy()
        starts = rng.normal(np.log(np.mean(np.abs(xf) ** 2) / 3), 1.0, (5, 3))  # log λ
        best = min(
            minimize(_neg_log_lik_log_psd, v0, args=(Hf, xf), method="L-BFGS-B").fun
            for v0 in starts
        )
        for n, fit in fits.items():
            gaps[n].append(_neg_log_lik_bin(fit.lam[:, f, t].numpy(), Hf, xf) - best)  # nats
    # MU reaches scipy's optimum (measured gaps < 3e-6 nats at 300 iterations); at the
    # benchmark's 50 it is within 1e-3 nats per bin (slow where a λ heads for 0).
    assert max(gaps[300]) < 1e-4 and max(gaps[50]) < 1e-2, gaps


def test_psd_fit_under_fixed_scms_takes_a_vae_source_model_and_climbs():
    """With the speech prior as the source model (z frozen: ``z_steps=0``, so every step is
    an MM step in u, v and the noise NMF) the likelihood under the fixed SCMs never falls,
    and moves; with z free, the PSDs move away from the frozen fit."""
    from vae_audio.separation.priors import load_prior
    from vae_audio.separation.vae_fca import initial_source

    C, _, H = _fca_draw(M=3, J=3, F=257, T=12, seed=2)
    x = C.sum(0)  # [M, F, T]
    net = load_prior(None, x)
    eps = 1e-8 * x.abs().square().mean()
    start = fit_psd_given_scm(x, H, 3, eps)

    def vae_fit(steps: int):
        power = start.images(x)[:-1, 0].abs().square()[None]  # [1, 2, F, T]
        source = initial_source(net, power, start.lam[None], 1, 4, eps, 0, z_steps=steps)
        return fit_psd_given_scm(x, H, 20, eps, source)

    frozen = vae_fit(0)
    ll = frozen.log_likelihood  # [21]
    assert (ll.diff() >= -1e-9 * ll.abs().max()).all() and ll[-1] - ll[0] > 1.0, ll
    assert not torch.allclose(vae_fit(5).lam, frozen.lam, rtol=1e-3)


def test_half_oracles_sit_between_the_mixture_and_around_oracle_mwf(fixture_set):
    methods = "mixture,oracle-psd,oracle-scm,oracle-scm-vae,oracle-mwf"
    result = run_bench(fixture_set, methods, BenchSettings(select="blind"), progress=False)
    rows = _by_method(result.rows)
    for src, mwf in rows["oracle-mwf"].items():
        psd, scm = rows["oracle-psd"][src]["sdr"], rows["oracle-scm"][src]["sdr"]
        vae, floor = rows["oracle-scm-vae"][src]["sdr"], rows["mixture"][src]["sdr"]
        # Measured: mixture 5.0 / -4.7 dB, oracle-psd 17.7 / 13.2, oracle-scm 9.3 / 6.2,
        # oracle-scm-vae 7.9 / 6.2 (VAE-FCA's default prior; 8.4 / 5.2 with speech-vae),
        # oracle-mwf 15.9 / 11.0. All halves clearly separate ...
        assert psd > floor + 9.0 and scm > floor + 3.0, (src, psd, scm, floor)
        assert vae > floor + 2.5 and vae < mwf["sdr"] + 1.0, (src, vae, floor)
        # ... oracle-scm stays below the ceiling, but oracle-psd's ML SCMs beat oracle-mwf's
        # frame-averaged ones (oracles.py docstring): mwf >= psd does not hold on this set.
        assert scm < mwf["sdr"] + 1.0, (src, scm, mwf["sdr"])
        assert psd > mwf["sdr"] - 1.0, (src, psd, mwf["sdr"])
