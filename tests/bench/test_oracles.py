"""Oracle separators: closed forms on synthetic rank-1 sources, margins on the fixture."""

import math

import numpy as np
import pytest
import torch

from vae_audio.bench import BenchSettings, oracle_irm, oracle_mwf, oracle_parameters, run_bench


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
        assert row["sdr_i"] == 0.0 and row["si_sdr_i"] == 0.0


@pytest.mark.parametrize("method, floor_db", [("oracle-irm", 150.0), ("oracle-mwf", 60.0)])
def test_one_noise_free_talker_is_recovered_almost_perfectly(one_talker_set, method, floor_db):
    # IRM: the mask is 1 wherever the talker has energy, so only STFT round-off remains;
    # MWF: Y = λH + εI with a 1e-8 relative loading, so bins far below the mean power lose a bit.
    result = run_bench(one_talker_set, method, BenchSettings(), progress=False)
    (row,) = result.rows
    assert row["sdr"] > floor_db
    assert row["si_sdr"] > floor_db or math.isinf(row["si_sdr"])
    assert np.isfinite(row["sar"]) and row["sar"] > floor_db
