"""Several random starts averaged: ``separate(..., starts=K)`` and ``vae-audio separate
--starts``."""

from __future__ import annotations

import json

import pytest
import soundfile as sf
import torch

from tests.apps.conftest import FAST, MIXTURE, read
from vae_audio import cli
from vae_audio.audio.stft import StftConfig
from vae_audio.errors import VaeAudioError
from vae_audio.separation import separate
from vae_audio.separation.api import _order_by_energy, average_starts, member_stft
from vae_audio.separation.chunking import ChunkOutput, align_to_previous


def _outputs(seed: int, B: int = 2, N: int = 3) -> ChunkOutput:
    g = torch.Generator().manual_seed(seed)
    return ChunkOutput(
        torch.randn(B, N, 4, 200, generator=g), torch.randn(B, 4, 200, generator=g),
        torch.randn(B, 6, generator=g),
    )  # fmt: skip


def test_a_permuted_copy_averages_back_to_the_original():
    """Talkers are matched before averaging: a start that found the same talkers in another
    order (per batch item) changes nothing; the objective is the first start's."""
    a = _outputs(0)
    perms = [[2, 0, 1], [1, 2, 0]]
    shuffled = torch.stack([a.speakers[b, p] for b, p in enumerate(perms)])
    out = average_starts([a, ChunkOutput(shuffled, a.noise.clone(), a.objective + 1)])
    torch.testing.assert_close(out.speakers, a.speakers)
    torch.testing.assert_close(out.noise, a.noise)
    assert torch.equal(out.objective, a.objective)


def test_the_average_is_the_mean_of_the_matched_starts():
    outs = [_outputs(s) for s in range(3)]
    ref = outs[0].speakers
    matched = [ref]
    for out in outs[1:]:
        perm = align_to_previous(ref, out.speakers)
        matched.append(torch.stack([out.speakers[b, p] for b, p in enumerate(perm)]))
    got = average_starts(outs)
    torch.testing.assert_close(got.speakers, torch.stack(matched).mean(0))
    torch.testing.assert_close(got.noise, torch.stack([o.noise for o in outs]).mean(0))
    no_noise = [ChunkOutput(o.speakers, None, o.objective) for o in outs]
    assert average_starts(no_noise).noise is None


def _mixture() -> tuple[torch.Tensor, int]:
    x, sr = sf.read(MIXTURE, dtype="float32")  # [S, M]
    return torch.from_numpy(x.T.copy()), sr


def test_separate_averages_the_seeds_from_its_own():
    """``starts=2`` equals the runs from ``seed`` and ``seed + 1`` matched and averaged;
    ``starts=1`` is the single run; the record says how many starts ran."""
    x, sr = _mixture()
    kw = dict(n_src=2, sr=sr, n_iter=3)
    runs = [separate(x, seed=s, **kw) for s in (5, 6)]
    one = separate(x, seed=5, starts=1, **kw)
    assert torch.equal(one.sources, runs[0].sources) and one.settings["starts"] == 1
    two = separate(x, seed=5, starts=2, **kw)
    a, b = runs[0].sources[None], runs[1].sources[None]  # [1, N, M, S]
    perm = align_to_previous(a, b)[0]
    mean = (a + b[:, perm]) / 2
    torch.testing.assert_close(two.sources, _order_by_energy(mean)[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(two.noise, (runs[0].noise + runs[1].noise) / 2, rtol=0, atol=1e-6)
    assert two.settings["starts"] == 2
    assert not torch.allclose(two.sources, one.sources, atol=1e-4)  # the second start counts


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_starts_must_be_a_positive_integer(bad):
    x, sr = _mixture()
    with pytest.raises(VaeAudioError, match="starts must be a positive integer"):
        separate(x, sr=sr, n_iter=1, starts=bad)


def test_cli_starts_is_passed_on_recorded_and_keyed(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["separate", str(MIXTURE), "-o", str(out), *FAST]) == 0
    assert cli.main(["separate", str(MIXTURE), "-o", str(out), *FAST, "--starts", "2"]) == 0
    assert "1 separated, 0 skipped" in capsys.readouterr().out  # one start before: redone
    record = json.loads((out / "mix" / "separation.json").read_text())
    assert record["job"]["starts"] == 2 and record["settings"]["starts"] == 2
    x, sr = _mixture()
    ref = separate(x, n_src=2, sr=sr, n_iter=2, starts=2)
    got = torch.from_numpy(read(out / "mix" / "src1.wav")[0].T)  # [M, S]
    torch.testing.assert_close(got, ref.sources[0], rtol=0, atol=1e-6)
    assert cli.main(["separate", str(MIXTURE), "-o", str(out), *FAST, "--starts", "2"]) == 0
    assert "0 separated, 1 skipped" in capsys.readouterr().out


def test_blend_averages_other_methods_with_equal_weights():
    """``blend`` runs each listed method (its own starts averaged first) on the same STFT and
    averages the methods' separations with equal weights, talkers matched to the first."""
    x, sr = _mixture()
    kw = dict(n_src=2, sr=sr, seed=3)
    main = separate(x, method="fastmnmf2", n_iter=3, **kw)
    other = separate(x, method="fastmnmf2", n_iter=2, starts=2, init="twostep", **kw)
    got = separate(
        x, method="fastmnmf2", n_iter=3, **kw,
        blend=[{"method": "fastmnmf2", "n_iter": 2, "starts": 2, "init": "twostep"}],
    )  # fmt: skip
    a, b = main.sources[None], other.sources[None]  # [1, N, M, S]
    mean = (a + b[:, align_to_previous(a, b)[0]]) / 2
    torch.testing.assert_close(got.sources, _order_by_energy(mean)[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(got.noise, (main.noise + other.noise) / 2, rtol=0, atol=1e-6)
    assert got.settings["blend"] == [
        {
            "method": "fastmnmf2", "starts": 2, "n_iter": 2, "wpe": None,
            "stft": StftConfig(sample_rate=sr).to_dict(), "init": "twostep",
        }
    ]  # fmt: skip
    assert separate(x, method="fastmnmf2", n_iter=1, **kw).settings["blend"] == []


@pytest.mark.parametrize("main_wpe", [False, True])
def test_a_blend_member_with_its_own_front_end(main_wpe):
    """A blend entry's ``wpe`` sets that member's front end alone: the result is the average
    of the method run with and without WPE; without the key a member keeps the main one's."""
    pytest.importorskip("nara_wpe")
    x, sr = _mixture()
    kw = dict(n_src=2, sr=sr, seed=1, n_iter=3)
    plain = separate(x, method="fastmnmf2", **kw)
    wpe = separate(x, method="fastmnmf2", wpe=True, **kw)
    main, other = (wpe, plain) if main_wpe else (plain, wpe)
    got = separate(
        x, method="fastmnmf2", wpe=main_wpe, **kw,
        blend=[{"method": "fastmnmf2", "n_iter": 3, "wpe": not main_wpe}],
    )  # fmt: skip
    a, b = main.sources[None], other.sources[None]  # [1, N, M, S]
    mean = (a + b[:, align_to_previous(a, b)[0]]) / 2
    torch.testing.assert_close(got.sources, _order_by_energy(mean)[0], rtol=0, atol=1e-6)
    assert (got.settings["wpe"] is not None) == main_wpe
    assert (got.settings["blend"][0]["wpe"] is not None) != main_wpe
    assert "wpe" in got.timings
    inherit = separate(
        x, method="fastmnmf2", wpe=True, **kw, blend=[{"method": "fastmnmf2", "n_iter": 3}]
    )
    assert inherit.settings["blend"][0]["wpe"] == inherit.settings["wpe"]
    torch.testing.assert_close(inherit.sources, wpe.sources, rtol=0, atol=1e-6)  # the same twice


def test_a_blend_member_with_its_own_stft():
    """A blend entry's ``stft`` sets that member's analysis alone: the result is the average
    of the method's separations at both STFT sizes (averaged as waveforms), and ``n_fft``
    alone scales the hop with it."""
    x, sr = _mixture()
    kw = dict(method="fastmnmf2", n_src=2, sr=sr, seed=2, n_iter=3)
    short = separate(x, **kw)
    long_cfg = StftConfig(sample_rate=sr, n_fft=1024, hop_length=256)
    long = separate(x, stft=long_cfg, **kw)
    assert (short.sources - long.sources).abs().max() > 1e-3  # the sizes differ
    got = separate(x, **kw, blend=[{"method": "fastmnmf2", "n_iter": 3, "stft": {"n_fft": 1024}}])
    a, b = short.sources[None], long.sources[None]  # [1, N, M, S]
    mean = (a + b[:, align_to_previous(a, b)[0]]) / 2
    torch.testing.assert_close(got.sources, _order_by_energy(mean)[0], rtol=0, atol=1e-6)
    assert got.settings["stft"] == StftConfig(sample_rate=sr).to_dict()
    assert got.settings["blend"][0]["stft"] == long_cfg.to_dict()
    same = separate(x, **kw, blend=[{"method": "fastmnmf2", "n_iter": 3, "stft": long_cfg}])
    torch.testing.assert_close(same.sources, got.sources, rtol=0, atol=0)


def test_member_stft_keeps_the_overlap_of_the_main_analysis():
    main = StftConfig(sample_rate=8000, n_fft=256, hop_length=64, win_length=200)
    cfg = member_stft(main, {"n_fft": 512})
    assert (cfg.n_fft, cfg.hop_length, cfg.win_length) == (512, 128, 400)
    assert (cfg.sample_rate, cfg.window) == (8000, "hann")
    cfg = member_stft(main, {"n_fft": 512, "hop_length": 100, "window": "hamming"})
    assert (cfg.n_fft, cfg.hop_length, cfg.win_length, cfg.window) == (512, 100, 400, "hamming")
    assert member_stft(main, {}) == main


@pytest.mark.parametrize(
    "entry, message",
    [
        ("fastmnmf2", "each blend entry is a dict with a 'method'"),
        ({"starts": 2}, "each blend entry is a dict with a 'method'"),
        ({"method": "no-such"}, "unknown separation method 'no-such'"),
        ({"method": "fastmnmf2", "starts": 0}, "starts must be a positive integer"),
        ({"method": "fastmnmf2", "n_iter": -1}, "n_iter must be a non-negative"),
        ({"method": "fastmnmf2", "colour": "red"}, "method 'fastmnmf2' has no option"),
        ({"method": "fastmnmf2", "wpe": "yes"}, "wpe must be True, False, None or a dict"),
        ({"method": "fastmnmf2", "stft": 1024}, "a blend entry's 'stft' is a dict"),
        ({"method": "fastmnmf2", "stft": {"hop": 256}}, "unknown STFT settings"),
        ({"method": "fastmnmf2", "stft": {"n_fft": 0}}, "n_fft must be a positive integer"),
        ({"method": "fastmnmf2", "stft": {"sample_rate": 8000}}, "leave sample_rate out"),
    ],
)
def test_bad_blend_entries_are_one_clear_error(entry, message):
    x, sr = _mixture()
    with pytest.raises(VaeAudioError, match=message):
        separate(x, sr=sr, n_iter=1, blend=[entry])
