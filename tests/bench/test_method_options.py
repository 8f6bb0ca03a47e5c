"""Method names of `vae-audio bench`: NAME@N:key=value, and `auto` as a method."""

import pytest
import torch

from vae_audio.bench.methods import (
    _stft_config,
    candidates,
    load_mixture,
    parse_method,
    resolve_methods,
)
from vae_audio.errors import VaeAudioError
from vae_audio.eval.matching import load_references


def test_parse_method_reads_iterations_and_typed_options():
    assert parse_method("fastmnmf2") == ("fastmnmf2", None, {})
    assert parse_method("fastmnmf2@50:init=twostep:n_fft=1024") == (
        "fastmnmf2", 50, {"init": "twostep", "n_fft": 1024},
    )  # fmt: skip
    with pytest.raises(VaeAudioError, match="':key=value'"):
        parse_method("fastmnmf2:init")
    with pytest.raises(VaeAudioError, match="iteration count"):
        parse_method("fastmnmf2@x")


@pytest.mark.parametrize(
    "name, message",
    [
        ("fastmnmf2:bogus=1", "takes no option 'bogus'"),
        ("oracle-mwf:n_fft=1024", "takes no option 'n_fft'"),
        ("pra-ilrma:init=noise", "takes no option 'init'"),
        ("mixture@3", "have none"),
    ],
)
def test_bad_options_are_refused_before_anything_runs(name, message):
    with pytest.raises(VaeAudioError, match=message):
        resolve_methods(name)


def test_accepted_names():
    names = "auto,auto@0,fastmnmf2:n_fft=1024,pra-ilrma:n_fft=1024:hop=512,fastmnmf2@5:init=noise"
    assert resolve_methods(names) == tuple(names.split(","))
    cfg = _stft_config(16000, {"n_fft": 1024})
    assert (cfg.n_fft, cfg.hop_length) == (1024, 256)
    assert _stft_config(16000, {}).n_fft == 512


def test_options_reach_the_method(fixture_set):
    data = load_mixture(load_references(fixture_set)[0])
    default, _ = candidates("fastmnmf2@3", data, 2)
    noise, _ = candidates("fastmnmf2@3:init=noise", data, 2)  # fastmnmf2's default start
    twostep, _ = candidates("fastmnmf2@3:init=twostep", data, 2)
    long_window, _ = candidates("fastmnmf2@3:n_fft=1024", data, 2)
    assert torch.equal(default, noise)
    assert not torch.allclose(default, twostep, atol=1e-4)
    assert not torch.allclose(default, long_window, atol=1e-4)
    assert default.shape == twostep.shape == long_window.shape == (3, *data.mix.shape)
