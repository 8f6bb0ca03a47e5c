"""SI-SDR against closed forms, numpy and torchmetrics; BSS Eval against mir_eval itself."""

import warnings

import numpy as np
import pytest
import torch
from mir_eval import separation
from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio

from vae_audio.errors import VaeAudioError
from vae_audio.eval import bss_eval, mixture_baseline, pairwise_scores, pairwise_sdr, si_sdr

SR, S = 8000, 4000  # 0.5 s: mir_eval's 512-tap projections stay fast


def _mir(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return fn(*args, **kwargs)


def _numpy_si_sdr(ref: np.ndarray, est: np.ndarray) -> float:
    ref = ref - ref.mean()
    est = est - est.mean()
    target = (est @ ref) / (ref @ ref) * ref
    return 10 * np.log10((target @ target) / ((est - target) @ (est - target)))


@pytest.fixture
def signals():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((3, S))  # [K, S]
    est = ref + 0.1 * rng.standard_normal((3, S)) + 0.05 * ref[[1, 2, 0]]  # [N, S]
    return ref, est


def test_si_sdr_of_scaled_copy_is_unbounded():
    ref = torch.randn(2, S, generator=torch.Generator().manual_seed(1))
    value = si_sdr(ref, -3.5 * ref + 0.0)
    assert torch.all(value > 150)  # float64 round-off only (or +inf)


def test_si_sdr_with_orthogonal_noise_has_the_closed_form():
    rng = np.random.default_rng(2)
    ref = rng.standard_normal(S)
    ref -= ref.mean()
    noise = rng.standard_normal(S)
    noise -= noise.mean()
    noise -= (noise @ ref) / (ref @ ref) * ref  # orthogonal to ref, still zero-mean
    for gain, noise_gain in [(1.0, 0.1), (0.3, 1.0), (2.0, 5.0)]:
        est = gain * ref + noise_gain * noise + 0.7  # a DC offset is removed first
        expected = 10 * np.log10(gain**2 * (ref @ ref) / (noise_gain**2 * (noise @ noise)))
        assert float(si_sdr(ref, est)) == pytest.approx(expected, abs=1e-9)


def test_si_sdr_matches_numpy_and_torchmetrics(signals):
    ref, est = signals
    ours = si_sdr(torch.from_numpy(ref), torch.from_numpy(est)).numpy()  # [K]
    direct = [_numpy_si_sdr(r, e) for r, e in zip(ref, est, strict=True)]
    np.testing.assert_allclose(ours, direct, atol=1e-9)
    tm = scale_invariant_signal_distortion_ratio(
        torch.from_numpy(est), torch.from_numpy(ref), zero_mean=True
    )
    np.testing.assert_allclose(ours, tm.numpy(), atol=1e-6)


def test_si_sdr_broadcasts_to_pairwise_and_batches(signals):
    ref, est = signals
    pair = si_sdr(torch.from_numpy(ref)[:, None], torch.from_numpy(est)[None])  # [K, N]
    assert pair.shape == (3, 3)
    for k in range(3):
        for n in range(3):
            assert float(pair[k, n]) == pytest.approx(_numpy_si_sdr(ref[k], est[n]), abs=1e-9)
    np.testing.assert_allclose(pairwise_scores(ref, est, "si-sdr"), pair.numpy())
    batch = si_sdr(torch.from_numpy(np.stack([ref, ref])), torch.from_numpy(np.stack([est, est])))
    assert batch.shape == (2, 3)


def test_si_sdr_is_nan_for_silent_signals():
    x = torch.randn(S, generator=torch.Generator().manual_seed(3))
    assert torch.isnan(si_sdr(torch.zeros(S), x))
    assert torch.isnan(si_sdr(x, torch.zeros(S)))
    assert torch.isnan(si_sdr(x, torch.full((S,), 0.3)))  # constant: zero after mean removal


def test_si_sdr_keeps_the_device_and_accepts_float32(signals):
    ref, est = signals
    out = si_sdr(torch.from_numpy(ref).float(), torch.from_numpy(est).float())
    assert out.device == torch.device("cpu")
    np.testing.assert_allclose(out.numpy(), si_sdr(ref, est).numpy(), atol=1e-4)


def test_bss_eval_agrees_with_mir_eval_on_shuffled_estimates(signals):
    ref, est = signals
    ref, est = ref[:2], est[:2]
    shuffled = est[[1, 0]]
    ours = bss_eval(ref, shuffled)
    sdr, sir, sar, perm = _mir(separation.bss_eval_sources, ref, shuffled)
    np.testing.assert_array_equal(ours.perm, [1, 0])
    np.testing.assert_array_equal(ours.perm, perm)
    np.testing.assert_allclose(ours.sdr, sdr, atol=1e-9)
    np.testing.assert_allclose(ours.sir, sir, atol=1e-9)
    np.testing.assert_allclose(ours.sar, sar, atol=1e-9)
    assert ours.dropped == ()
    my_sdr, my_sir, my_sar, my_perm = ours  # unpacks like mir_eval's tuple
    assert my_sdr is ours.sdr and my_perm is ours.perm
    # the pairwise SDR used for matching is the SDR of the joint evaluation
    np.testing.assert_allclose(pairwise_sdr(ref, shuffled)[[0, 1], [1, 0]], sdr, atol=1e-9)


def test_bss_eval_with_extra_estimate_uses_the_best_subset(signals):
    ref, est = signals
    rng = np.random.default_rng(4)
    extra = rng.standard_normal(S)  # unrelated signal, e.g. a noise slot
    est3 = np.stack([est[1], extra, est[0]])  # [N=3, S]
    ours = bss_eval(ref[:2], est3)
    np.testing.assert_array_equal(ours.perm, [2, 0])
    assert ours.dropped == (1,)
    sdr, sir, sar, _ = _mir(
        separation.bss_eval_sources, ref[:2], est3[[2, 0]], compute_permutation=False
    )
    np.testing.assert_allclose(ours.sdr, sdr, atol=1e-9)
    np.testing.assert_allclose(ours.sir, sir, atol=1e-9)
    np.testing.assert_allclose(ours.sar, sar, atol=1e-9)
    assert bss_eval(ref[:2], est3, criterion="si-sdr").perm.tolist() == [2, 0]


def test_bss_eval_images_agrees_with_mir_eval():
    rng = np.random.default_rng(5)
    ref = rng.standard_normal((2, 2, 2000))  # [K, M, S]
    est = ref[[1, 0]] + 0.1 * rng.standard_normal((2, 2, 2000))
    ours = bss_eval(ref, est, images=True)
    sdr, isr, sir, sar, perm = _mir(
        separation.bss_eval_images, ref.transpose(0, 2, 1), est.transpose(0, 2, 1)
    )
    np.testing.assert_array_equal(ours.perm, perm)
    for mine, theirs in [(ours.sdr, sdr), (ours.isr, isr), (ours.sir, sir), (ours.sar, sar)]:
        np.testing.assert_allclose(mine, theirs, atol=1e-9)


def test_bss_eval_silences_mir_eval_deprecation_warning(signals):
    ref, est = signals
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bss_eval(ref[:2], est[:2])
    assert not [w for w in caught if issubclass(w.category, FutureWarning)]


def test_silent_reference_is_an_error(signals):
    ref, est = signals
    ref = ref[:2].copy()
    ref[1] = 0.0
    with pytest.raises(VaeAudioError, match=r"reference source\(s\) \[2\] are silent"):
        bss_eval(ref, est[:2])


def test_silent_estimate_gets_nan_and_leaves_the_others_exact(signals):
    ref, est = signals
    ref, est = ref[:2], est[:2].copy()
    est[1] = 0.0
    ours = bss_eval(ref, est, perm=np.array([0, 1]))
    assert np.isnan([ours.sdr[1], ours.sir[1], ours.sar[1]]).all()
    filler = np.stack([est[0], np.random.default_rng(6).standard_normal(S)])
    sdr, sir, sar, _ = _mir(separation.bss_eval_sources, ref, filler, compute_permutation=False)
    assert (ours.sdr[0], ours.sir[0], ours.sar[0]) == pytest.approx((sdr[0], sir[0], sar[0]))
    # with a spare estimate, the silent one is never chosen
    assert bss_eval(ref, np.stack([est[1], est[0], ref[1] + 0.3 * ref[0]])).dropped == (0,)


def test_mixture_baseline_is_the_mixture_used_for_every_source(signals):
    ref, _ = signals
    mix = ref.sum(axis=0)  # [S]
    base = mixture_baseline(ref, mix)
    sdr, _, _, _ = _mir(
        separation.bss_eval_sources, ref, np.stack([mix] * 3), compute_permutation=False
    )
    np.testing.assert_allclose(base.sdr, sdr, atol=1e-9)
    np.testing.assert_allclose(base.si_sdr, [_numpy_si_sdr(r, mix) for r in ref], atol=1e-9)
    assert mixture_baseline(ref, mix, criteria=("si-sdr",)).sdr is None
