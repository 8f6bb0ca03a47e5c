"""Method names of `vae-audio bench`: NAME@N:key=value, and `auto` as a method."""

import pytest
import torch

from vae_audio.bench.methods import (
    candidates,
    load_mixture,
    parse_method,
    resolve_methods,
    stft_config,
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
    cfg = stft_config(16000, {"n_fft": 1024})
    assert (cfg.n_fft, cfg.hop_length) == (1024, 256)
    assert stft_config(16000, {}).n_fft == 512


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


def test_neural_methods_take_the_shipped_model_and_its_refinement_by_default(fixture_set):
    """As `vae-audio separate` does: no --model runs the shipped Neural FastFCA model, with
    200 refinement steps unless @N says otherwise. On the fixture mixture (4 mics, 2 TTS
    talkers) it measured SDRi 8.2 / 11.2 dB after 60 steps, 2.4 / 4.5 dB amortised."""
    from vae_audio.apps.methods import NEURAL_REFINE_ITERATIONS, shipped_model_path

    if shipped_model_path() is None:
        pytest.skip("no shipped Neural FCA model in this installation")
    from vae_audio.bench import BenchSettings, run_bench
    from vae_audio.bench.methods import method_iterations

    assert method_iterations("neural-fastfca", None) == NEURAL_REFINE_ITERATIONS == 200
    assert method_iterations("neural-fastfca@0", None) == 0
    methods = "mixture,neural-fastfca@0,neural-fastfca@60"
    result = run_bench(fixture_set, methods, BenchSettings(select="blind"), progress=False)
    sdr_i = {m: [r["sdr_i"] for r in result.rows if r["method"] == m] for m in methods.split(",")}
    assert min(sdr_i["neural-fastfca@60"]) > 6.0  # both talkers well separated
    assert sum(sdr_i["neural-fastfca@60"]) > sum(sdr_i["neural-fastfca@0"]) + 4.0  # refinement
    assert sum(sdr_i["neural-fastfca@0"]) / 2 > 1.5


def test_wpe_option_runs_the_front_end_per_method(fixture_set):
    """``NAME:wpe=1`` (and the run-wide ``wpe``) dereverberate the mixture first: the same
    candidates as separate(wpe=True); the oracles and the floor refuse it."""
    from vae_audio.separation import separate

    assert resolve_methods("fastmnmf2,fastmnmf2:wpe=1,pra-ilrma:wpe=1,auto:wpe=1")
    for name, message in (("oracle-mwf:wpe=1", "takes no option 'wpe'"),
                          ("mixture:wpe=1", "takes no option 'wpe'"),
                          ("fastmnmf2:wpe=2", "wpe is 1 or 0")):  # fmt: skip
        with pytest.raises(VaeAudioError, match=message):
            resolve_methods(name)
    data = load_mixture(load_references(fixture_set)[0])
    with_wpe, _ = candidates("fastmnmf2@2:wpe=1", data, 2)
    run_wide, _ = candidates("fastmnmf2@2", data, 2, wpe=True)
    plain, _ = candidates("fastmnmf2@2", data, 2)
    ref = separate(data.mix, n_src=2, sr=data.sr, n_iter=2, wpe=True)
    assert torch.equal(with_wpe, run_wide)
    assert torch.equal(with_wpe[:2], ref.sources) and torch.equal(with_wpe[2], ref.noise)
    assert not torch.allclose(with_wpe, plain, atol=1e-4)
    floor, _ = candidates("mixture", data, 2, wpe=True)  # the floor stays the mixture
    assert torch.equal(floor[0], data.mix)


def test_bench_starts_option(fixture_set):
    """``NAME:starts=K`` runs separate(starts=K) for our methods and ``auto``; the peers, the
    oracles and the floor refuse it, and K must be a positive integer."""
    assert resolve_methods("fastmnmf2:starts=2,auto:starts=2")
    for name, message in (("pra-ilrma:starts=2", "takes no option 'starts'"),
                          ("oracle-mwf:starts=2", "takes no option 'starts'"),
                          ("fastmnmf2:starts=0", "starts is a positive integer")):  # fmt: skip
        with pytest.raises(VaeAudioError, match=message):
            resolve_methods(name)
    data = load_mixture(load_references(fixture_set)[0])
    got, _ = candidates("fastmnmf2@2:starts=2", data, 2)
    from vae_audio.separation import separate

    ref = separate(data.mix, n_src=2, sr=data.sr, n_iter=2, starts=2)
    assert torch.equal(got[:2], ref.sources) and torch.equal(got[2], ref.noise)


class _Stop(Exception):
    """Raised by the recording stand-in of ``separate`` once it has seen its arguments."""


def _model_given(monkeypatch, data, method: str, model: str | None) -> object:
    """The ``model`` (or ``prior``) option ``candidates`` passes to ``separate`` for
    ``method`` (a sentinel when it passes neither)."""
    import vae_audio.separation

    seen = {}

    def record(mix, method, **kwargs):
        seen.update(kwargs)
        raise _Stop

    monkeypatch.setattr(vae_audio.separation, "separate", record)
    with pytest.raises(_Stop):
        candidates(method, data, 2, model=model)
    return seen.get("model", seen.get("prior", "no model option"))


def test_each_method_gets_its_own_model_and_priors_never_get_a_neural_model(
    fixture_set, monkeypatch
):
    """``NAME:model=PATH`` reaches that method only; the run-wide ``--model`` goes to the
    methods that take a ``model`` (Neural FCA), never to a speech-prior method as its prior;
    without either, Neural FCA gets the shipped model, as `vae-audio separate` does."""
    from vae_audio.apps.methods import shipped_model_path

    data = load_mixture(load_references(fixture_set)[0])
    given = _model_given(monkeypatch, data, "neural-fastfca:model=a.pt", "b.pt")
    assert given == "a.pt"  # the method's own beats the run-wide one
    assert _model_given(monkeypatch, data, "neural-fastfca", "b.pt") == "b.pt"
    assert _model_given(monkeypatch, data, "vae-fastfca", "b.pt") == "no model option"
    assert _model_given(monkeypatch, data, "fastmnmf2", "b.pt") == "no model option"
    if shipped_model_path() is not None:
        shipped = _model_given(monkeypatch, data, "neural-fastfca", None)
        assert str(shipped) == str(shipped_model_path())


def test_method_record_names_the_files_that_shape_a_method(tmp_path, monkeypatch):
    """A method's record holds every file its defaults and options name, by SHA-256: the
    default speech prior of a VAE method, a named model (which changes when the file does),
    auto's plan record; nothing for a method that reads no file."""
    import dataclasses

    from vae_audio._pretrained import pretrained_path
    from vae_audio.bench.methods import auto_plan, method_record
    from vae_audio.data.manifest import file_digest
    from vae_audio.separation import METHODS

    assert method_record("fastmnmf2@50:starts=4", 4, 16000, 2) == {}
    assert method_record("pra-ilrma", 4, 16000, 2) == method_record("oracle-mwf", 4, 16000, 2)
    prior = METHODS["vae-fastfca"].defaults["prior"]
    want = {"prior": {"path": prior, "sha256": file_digest(pretrained_path(prior))}}
    assert method_record("vae-fastfca", 4, 16000, 2) == want
    named = method_record("vae-fastfca:prior=speech-vae", 4, 16000, 2)
    assert (
        named["prior"]["sha256"]
        == file_digest(pretrained_path("speech-vae"))
        != (want["prior"]["sha256"])
    )
    model = tmp_path / "model.pt"
    model.write_bytes(b"one")
    first = method_record(f"neural-fastfca@0:model={model}", 4, 16000, 2)
    model.write_bytes(b"two")
    assert first != method_record(f"neural-fastfca@0:model={model}", 4, 16000, 2)
    assert first["model"] == {"path": str(model), "sha256": first["model"]["sha256"]}
    assert method_record("auto", 6, 16000, 3) == auto_plan(6, 16000, 3).record(16000)
    spec = dataclasses.replace(METHODS["vae-fastfca"], defaults={"prior": "speech-vae"})
    monkeypatch.setitem(METHODS, "vae-fastfca", spec)
    assert method_record("vae-fastfca", 4, 16000, 2) == named
