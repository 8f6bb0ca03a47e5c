"""What `auto` picks for every channel and talker count, and that it says why."""

import pytest

from tests.apps.conftest import tiny_model_config, write_cut
from vae_audio.apps import methods
from vae_audio.apps.methods import AUTO_FALLBACK, SINGLE_CHANNEL, choose_auto
from vae_audio.apps.separate import separate_files
from vae_audio.errors import VaeAudioError

ALL = (SINGLE_CHANNEL, *AUTO_FALLBACK)


@pytest.mark.parametrize("neural", [None, (4, (2,)), (4, (1, 2, 3)), (None, (2, 3))])
@pytest.mark.parametrize("n_mics", range(1, 9))
@pytest.mark.parametrize("n_src", [None, 1, 2, 3, 4, 6])
def test_auto_choice_for_every_mic_and_talker_count(n_mics, n_src, neural):
    if n_mics == 1 and n_src not in (None, 1):
        with pytest.raises(VaeAudioError, match=f"{n_src} talkers cannot be separated from 1"):
            choose_auto(n_mics, n_src, neural, ALL)
        return
    choice = choose_auto(n_mics, n_src, neural, ALL)
    assert f"{n_mics} channel" in choice.reason
    if n_mics == 1:
        assert (choice.method, choice.n_src) == (SINGLE_CHANNEL, 1)
    elif neural is not None and neural[0] in (None, n_mics) and (n_src or 2) in neural[1]:
        assert (choice.method, choice.n_src) == ("neural", n_src or 2)
    else:  # any M >= 2 and any talker count, N >= M included
        assert choice.method == AUTO_FALLBACK[0]
        assert choice.n_src == (2 if n_src is None else n_src)
        assert "takes any" in choice.reason


THREE = (4, (3,))  # (M, talker counts) of a 4-mic model with 3 slots trained on 3 talkers


@pytest.mark.parametrize(
    ("n_src", "expect", "reason"),
    [
        (None, ("neural", 3), "4 channels, 3 talkers: the Neural FCA model made for them"),
        (3, ("neural", 3), "4 channels, 3 talkers: the Neural FCA model made for them"),
        *[
            (
                k,
                (AUTO_FALLBACK[0], k),
                f"4 channels, {k} talker{'s' * (k > 1)}: the Neural FCA model is made for 4 "
                f"channels and 3 talkers; {AUTO_FALLBACK[0]} takes any",
            )
            for k in (1, 2, 4)
        ],
    ],
)
def test_auto_runs_a_model_only_for_its_own_talker_count(n_src, expect, reason):
    """A model with fewer talkers than its slots separates worse than FastMNMF2 (the shipped
    2-talker model on one-talker mixtures: 8.0 against 15.8 dB), so auto does not ask that
    of it; ``--method neural-fastfca --n-src k`` still can."""
    choice = choose_auto(4, n_src, THREE, ALL)
    assert ((choice.method, choice.n_src), choice.reason) == (expect, reason)


def test_a_three_slot_model_is_planned_for_one_to_three_talkers(tmp_path, monkeypatch):
    """As the shipped model, a 3-slot model runs under auto for 3 talkers only; named as the
    method, it takes --n-src 1..3 (a note says where the other slots go); --n-src 4 falls
    back under auto and is refused by the model named with --model."""
    from vae_audio.apps.inputs import InputItem
    from vae_audio.apps.methods import MethodResolver
    from vae_audio.neural_fca import build_neural_fca, save_neural_fca

    path = save_neural_fca(tmp_path / "three.pt", build_neural_fca(tiny_model_config(n_speakers=3)))
    monkeypatch.setattr(methods, "shipped_model_path", lambda: path)
    item = InputItem(tmp_path / "in.wav", "in", channels=4, frames=8000, sample_rate=16000)
    for n_src in (None, 1, 2, 3):
        plan = MethodResolver("auto", n_src=n_src).plan(item)
        fallback = n_src in (1, 2)
        method = AUTO_FALLBACK[0] if fallback else "neural-fastfca"
        assert (plan.method, plan.n_src) == (method, n_src or 3)
        resolver = MethodResolver("neural-fastfca", n_src=n_src)
        plan = resolver.plan(item)
        assert (plan.method, plan.n_src, plan.blend) == ("neural-fastfca", n_src or 3, ())
        inactive = [n for n in resolver.notes if "speaker slots" in n]
        slots = "the 1 most energetic slot" if n_src == 1 else f"the {n_src} most energetic slots"
        assert inactive == (
            [
                f"the shipped Neural FCA model has 3 speaker slots: for --n-src {n_src} it "
                f"returns {slots} and adds the rest to the noise"
            ]
            if fallback
            else []
        )
    plan = MethodResolver("auto", n_src=4).plan(item)
    assert (plan.method, plan.n_src) == (AUTO_FALLBACK[0], 4)
    named = MethodResolver("auto", n_src=4, model=str(path))
    message = "separates 3 speakers at most, but --n-src 4 was given; pass --n-src 1 to 3"
    with pytest.raises(VaeAudioError, match=message):
        named.plan(item)
    assert MethodResolver("neural-fastfca", n_src=2, model=str(path)).plan(item).n_src == 2


@pytest.mark.parametrize(
    ("counts", "n_src", "expect", "reason"),
    [
        ((1, 2, 3), None, ("neural", 2), "2 talkers: the Neural FCA model made for 1 to 3 talkers"),
        ((1, 2, 3), 1, ("neural", 1), "1 talker: the Neural FCA model made for 1 to 3 talkers"),
        ((1, 2, 3), 3, ("neural", 3), "3 talkers: the Neural FCA model made for 1 to 3 talkers"),
        (
            (1, 2, 3),
            4,
            (AUTO_FALLBACK[0], 4),
            "4 talkers: the Neural FCA model is made for 4 channels and 1 to 3 talkers; "
            f"{AUTO_FALLBACK[0]} takes any",
        ),
        ((1, 3), None, ("neural", 3), "3 talkers: the Neural FCA model made for 1 or 3 talkers"),
        (
            (1, 3),
            2,
            (AUTO_FALLBACK[0], 2),
            "2 talkers: the Neural FCA model is made for 4 channels and 1 or 3 talkers; "
            f"{AUTO_FALLBACK[0]} takes any",
        ),
    ],
)
def test_auto_runs_a_model_for_every_talker_count_it_was_trained_on(counts, n_src, expect, reason):
    """A model trained on several talker counts serves each under auto; without --n-src it
    separates 2 talkers when it was trained on 2, else its largest count."""
    choice = choose_auto(4, n_src, (4, counts), ALL)
    assert ((choice.method, choice.n_src), choice.reason) == (expect, f"4 channels, {reason}")


def test_a_shipped_model_trained_on_one_to_three_talkers_is_auto_for_each(tmp_path, monkeypatch):
    from vae_audio.apps.inputs import InputItem
    from vae_audio.apps.methods import MethodResolver
    from vae_audio.neural_fca import build_neural_fca, save_neural_fca

    config = tiny_model_config(n_speakers=3)
    config["model"]["talkers"] = [1, 2, 3]
    path = save_neural_fca(tmp_path / "three.pt", build_neural_fca(config))
    monkeypatch.setattr(methods, "shipped_model_path", lambda: path)
    item = InputItem(tmp_path / "in.wav", "in", channels=4, frames=8000, sample_rate=16000)
    for n_src in (None, 1, 2, 3):
        resolver = MethodResolver("auto", n_src=n_src)
        plan = resolver.plan(item)
        assert (plan.method, plan.n_src) == ("neural-fastfca", n_src or 2)
        assert plan.blend  # averaged with FastMNMF2 as for the 2-talker model
        assert any("made for 1 to 3 talkers" in n for n in resolver.notes)
    assert MethodResolver("auto", n_src=4).plan(item).method == AUTO_FALLBACK[0]
    assert MethodResolver("neural-fastfca").plan(item).n_src == 2


def test_one_talker_from_the_two_slot_model(tiny_model_file, cuts, tmp_path, monkeypatch):
    """--method neural-fastfca --n-src 1 runs the 2-slot model: one talker file, and talker +
    noise sum to the input as the library's separation says."""
    import json

    import numpy as np
    import torch

    from tests.apps.conftest import read
    from vae_audio.neural_fca import load_neural_fca
    from vae_audio.separation import separate

    monkeypatch.setattr(methods, "shipped_model_path", lambda: tiny_model_file)
    out, notes = tmp_path / "out", []
    kw = dict(method="neural-fastfca", n_src=1, iters=1, progress=False, env={}, log=notes.append)
    assert separate_files([cuts[0]], out, **kw).n_separated == 1
    assert any("has 2 speaker slots: for --n-src 1 it returns the 1 most energetic" in n
               for n in notes)  # fmt: skip
    assert sorted(f.name for f in (out / "m0").glob("*.wav")) == ["noise.wav", "src1.wav"]
    record = json.loads((out / "m0" / "separation.json").read_text())
    assert record["settings"]["n_src"] == 1
    data, sr = read(cuts[0])
    ref = separate(
        torch.from_numpy(data.T.copy()), method="neural-fastfca", model=str(tiny_model_file),
        n_src=1, sr=sr, stft=load_neural_fca(tiny_model_file).stft_config, n_iter=1,
    )  # fmt: skip
    talker, noise = read(out / "m0" / "src1.wav")[0], read(out / "m0" / "noise.wav")[0]
    torch.testing.assert_close(torch.from_numpy(talker.T), ref.sources[0], rtol=0, atol=1e-6)
    assert np.abs(talker + noise - data).max() < 1e-3 * np.abs(data).max()


def test_auto_falls_back_in_order_of_preference():
    assert choose_auto(2, 3, None, AUTO_FALLBACK[1:]).method == AUTO_FALLBACK[1]
    with pytest.raises(VaeAudioError, match="available in this installation"):
        choose_auto(2, 3, None, ())
    with pytest.raises(VaeAudioError, match="no single-channel method"):
        choose_auto(1, None, None, AUTO_FALLBACK)


def test_auto_with_more_talkers_than_the_shipped_model_runs_the_fallback(
    tiny_model_file, cuts, tmp_path, monkeypatch
):
    """The shipped model is for 4 mics and 2 talkers; --n-src 3 on 4 mics used to stop."""
    monkeypatch.setattr(methods, "shipped_model_path", lambda: tiny_model_file)
    monkeypatch.setattr(methods, "AUTO_FALLBACK", ("fastmnmf2",))
    notes = []
    summary = separate_files(
        [cuts[0]], tmp_path / "out", n_src=3, iters=1, progress=False, env={}, log=notes.append
    )
    assert summary.n_separated == 1 and summary.n_failed == 0
    assert any("auto: 4 channels, 3 talkers" in n and "fastmnmf2" in n for n in notes)
    assert len(list((tmp_path / "out" / "m0").glob("src*.wav"))) == 3


def test_auto_on_one_channel_with_several_talkers_is_one_line(tmp_path):
    mono = write_cut(tmp_path / "mono.wav", channels=1)
    with pytest.raises(VaeAudioError, match="mono.wav.*2 talkers cannot be separated"):
        separate_files([mono], tmp_path / "out", n_src=2, progress=False, env={})


def test_auto_fallback_averages_several_starts_unless_told(tiny_model_file, cuts, tmp_path,
                                                           monkeypatch):  # fmt: skip
    """Where auto runs FastMNMF2 it averages AUTO_STARTS random starts and then blends them
    with AUTO_FALLBACK_BLEND's fit after WPE (noted, recorded and in the job key, so outputs
    of one start are redone); --starts overrides the starts."""
    import json

    import torch

    from tests.apps.conftest import read
    from vae_audio.separation import separate

    monkeypatch.setattr(methods, "shipped_model_path", lambda: tiny_model_file)
    assert methods.AUTO_STARTS["fastmnmf2"] == 4
    monkeypatch.setitem(methods.AUTO_STARTS, "fastmnmf2", 2)  # the same path, half the time
    assert methods.AUTO_FALLBACK_BLEND["fastmnmf2"] == (
        methods.Blend("fastmnmf2", 4, wpe=True),
        methods.Blend("fastmnmf2", 2, stft_scale=2),
        methods.Blend("fastmnmf2", 2, wpe=True, stft_scale=2),
        methods.Blend("fastmnmf2", 2, stft_scale=4),
    )
    two = (methods.Blend("fastmnmf2", 1, wpe=True), methods.Blend("fastmnmf2", 1, stft_scale=2))
    monkeypatch.setitem(methods.AUTO_FALLBACK_BLEND, "fastmnmf2", two)
    monkeypatch.setattr(methods, "AUTO_REFIT", methods.Refit(2, 0.5))
    out, notes = tmp_path / "out", []
    kw = dict(n_src=3, iters=1, progress=False, env={}, log=notes.append)
    assert separate_files([cuts[0]], out, **kw).n_separated == 1
    assert any("auto: fastmnmf2 averages 2 random starts" in n for n in notes)
    members = "fastmnmf2 (1 start after WPE; 1 start on 2x longer frames)"
    assert any(f"averaged with {members}" in n for n in notes)
    data, sr = read(cuts[0])
    n_fft = 2 * methods.Plan("fastmnmf2", 3).stft_for(sr).n_fft
    blend = [
        {"method": "fastmnmf2", "starts": 1, "wpe": True},
        {"method": "fastmnmf2", "starts": 1, "stft": {"n_fft": n_fft}},
    ]
    record = json.loads((out / "m0" / "separation.json").read_text())
    assert record["job"]["starts"] == 2 and record["settings"]["starts"] == 2
    assert record["job"]["blend"] == blend
    assert record["settings"]["blend"][1]["stft"]["hop_length"] == n_fft // 4
    assert record["label"] == f"fastmnmf2 (2 starts) + {members}, re-fitted by vae-fca"
    assert record["job"]["refit"].items() >= {"n_iter": 2, "weight": 0.5}.items()
    assert record["job"]["refit"]["prior"]["path"] == "speech-vae-conv16"
    assert any("re-fitted from that average for 2 iterations" in n for n in notes)
    ref = separate(
        torch.from_numpy(data.T.copy()), n_src=3, sr=sr, n_iter=1, starts=2, blend=blend,
        refit={"n_iter": 2, "weight": 0.5},
    )  # fmt: skip
    got = torch.from_numpy(read(out / "m0" / "src1.wav")[0].T)
    torch.testing.assert_close(got, ref.sources[0], rtol=0, atol=1e-6)
    assert separate_files([cuts[0]], out, **kw).n_skipped == 1
    assert separate_files([cuts[0]], out, starts=1, **kw).n_separated == 1  # redone
    record = json.loads((out / "m0" / "separation.json").read_text())
    assert "starts" not in record["job"] and record["settings"]["starts"] == 1


def test_a_blend_on_longer_frames_scales_the_plan_stft_at_every_rate():
    """``Blend.stft_scale`` asks for frames that many times the plan's, whatever the file's
    rate: 1024 at 16 kHz, 4096 at 48 kHz; a scale of 1 adds no ``stft`` to the entry."""
    from vae_audio.audio.stft import StftConfig

    blend = (methods.Blend("fastmnmf2", 2, stft_scale=2), methods.Blend("fastmnmf2", 3))
    plan = methods.Plan("fastmnmf2", 2, blend=blend)
    assert plan.blend_entries(16000) == [
        {"method": "fastmnmf2", "starts": 2, "stft": {"n_fft": 1024}},
        {"method": "fastmnmf2", "starts": 3},
    ]
    assert plan.blend_entries(48000)[0]["stft"] == {"n_fft": 4096}
    fixed = methods.Plan("fastmnmf2", 2, stft=StftConfig(n_fft=256, hop_length=64), blend=blend)
    assert fixed.blend_entries(16000)[0]["stft"] == {"n_fft": 512}
    assert (plan.longest_window(16000), plan.longest_window(48000)) == (1024, 4096)
    assert fixed.longest_window(16000) == 512
    assert methods.Plan("fastmnmf2", 2).longest_window(16000) == 512  # no blend
    assert methods.describe_blends(blend) == "fastmnmf2 (2 starts on 2x longer frames; 3 starts)"
    one = (methods.Blend("fastmnmf2", 1, wpe=True, stft_scale=4), methods.Blend("vae-fca", 2))
    assert methods.describe_blends(one) == (
        "fastmnmf2 (1 start after WPE on 4x longer frames) and vae-fca (2 starts)"
    )


def test_auto_averages_the_neural_model_with_fastmnmf2(tiny_model_file, cuts, tmp_path,
                                                       monkeypatch):  # fmt: skip
    """On the model's channel and talker counts auto averages the model's separation with
    AUTO_NEURAL_BLEND's (noted, recorded, in the job key); explicit neural methods do not."""
    import json

    import torch

    from tests.apps.conftest import read
    from vae_audio.neural_fca import load_neural_fca
    from vae_audio.separation import separate

    monkeypatch.setattr(methods, "shipped_model_path", lambda: tiny_model_file)
    assert methods.AUTO_NEURAL_BLEND == (
        methods.Blend("fastmnmf2", 4),
        methods.Blend("fastmnmf2", 4, wpe=True),
        methods.Blend("fastmnmf2", 2, stft_scale=2),
        methods.Blend("fastmnmf2", 2, wpe=True, stft_scale=2),
        methods.Blend("fastmnmf2", 2, stft_scale=4),
    )
    monkeypatch.setattr(methods, "AUTO_NEURAL_BLEND", (methods.Blend("fastmnmf2", 2),))
    out, notes = tmp_path / "out", []
    kw = dict(iters=1, progress=False, env={}, log=notes.append)
    assert separate_files([cuts[0]], out, **kw).n_separated == 1
    assert any("averaged with fastmnmf2 (2 starts)" in n for n in notes)
    record = json.loads((out / "m0" / "separation.json").read_text())
    assert record["job"]["blend"] == [{"method": "fastmnmf2", "starts": 2}]
    assert record["settings"]["blend"][0]["method"] == "fastmnmf2"
    data, sr = read(cuts[0])
    net = load_neural_fca(tiny_model_file)
    ref = separate(
        torch.from_numpy(data.T.copy()), method="neural-fastfca", model=str(tiny_model_file),
        n_src=2, sr=sr, stft=net.stft_config, n_iter=1,
        blend=[{"method": "fastmnmf2", "starts": 2}],
    )  # fmt: skip
    got = torch.from_numpy(read(out / "m0" / "src1.wav")[0].T)
    torch.testing.assert_close(got, ref.sources[0], rtol=0, atol=1e-6)
    # this model's STFT is not the speech prior's: no re-fit, and a note says why
    assert "refit" not in record["job"]
    assert any("no VAE-FCA re-fit at" in n and "n_fft 16" in n for n in notes)
    plain = tmp_path / "plain"
    assert separate_files([cuts[0]], plain, method="neural-fastfca", **kw).n_separated == 1
    job = json.loads((plain / "m0" / "separation.json").read_text())["job"]
    assert "blend" not in job and "refit" not in job


@pytest.mark.parametrize(("channels", "n_src"), [(4, 2), (4, 3), (2, 2), (6, 2)])
def test_auto_refits_wherever_the_prior_fits(channels, n_src):
    """With the shipped models at 16 kHz, both of auto's averages (the model's on 4 mics and
    2 talkers, FastMNMF2's elsewhere) are re-fitted by AUTO_REFIT; at 48 kHz the fallback's
    STFT is not the prior's, so it is not (the model's plan resamples to 16 kHz)."""
    from vae_audio.bench.methods import _Probe

    assert methods.AUTO_REFIT == methods.Refit(10, 0.5)
    resolver = methods.MethodResolver("auto", n_src)
    plan = resolver.plan(_Probe("a.wav", channels, 16000))
    assert plan.refit == methods.AUTO_REFIT and plan.refit_entry() == {"n_iter": 10, "weight": 0.5}
    assert plan.label.endswith("re-fitted by vae-fca")
    assert any("re-fitted from that average" in n for n in resolver.notes)
    resolver = methods.MethodResolver("auto", n_src)
    plan = resolver.plan(_Probe("a.wav", channels, 48000))
    neural = (channels, n_src) == (4, 2)
    assert (plan.refit is not None) == neural
    assert neural or any("no VAE-FCA re-fit at 48000 Hz" in n for n in resolver.notes)
    assert methods.MethodResolver("fastmnmf2").plan(_Probe("a.wav", 4, 16000)).refit is None


def test_each_vae_method_plans_at_the_stft_of_its_own_default_prior(tmp_path, monkeypatch):
    """vae-nmf's default prior is not the other VAE methods': a plan takes the rate and STFT of
    the prior its method runs (here an 8-kHz one for vae-nmf), under auto too."""
    import dataclasses

    from vae_audio.apps.inputs import InputItem
    from vae_audio.apps.methods import MethodResolver
    from vae_audio.audio.stft import StftConfig
    from vae_audio.separation import METHODS
    from vae_audio.speech.model import SpeechVAE, SpeechVAEConfig
    from vae_audio.speech.prior import save_speech_prior

    if "vae-nmf" not in METHODS or "vae-fca" not in METHODS:
        pytest.skip("the VAE methods are not registered")
    stft = StftConfig(sample_rate=8000, n_fft=256, hop_length=64)
    prior = save_speech_prior(tmp_path / "p8k.pt", SpeechVAE(SpeechVAEConfig(n_freq=129), stft))
    spec = dataclasses.replace(METHODS["vae-nmf"], defaults={"prior": str(prior)})
    monkeypatch.setitem(METHODS, "vae-nmf", spec)
    mono = InputItem(tmp_path / "a.wav", "a", channels=1, frames=16000, sample_rate=16000)
    stereo = InputItem(tmp_path / "b.wav", "b", channels=2, frames=16000, sample_rate=16000)
    for method in ("auto", "vae-nmf"):
        resolver = MethodResolver(method)
        plan = resolver.plan(mono)
        assert (plan.method, plan.sample_rate, plan.stft) == ("vae-nmf", 8000, stft)
        assert f"vae-nmf: speech prior {prior} (--model for another)" in resolver.notes
    resolver = MethodResolver("vae-fca")
    plan = resolver.plan(stereo)
    assert (plan.sample_rate, plan.stft.n_fft) == (16000, 512)
    assert resolver.notes == ["vae-fca: speech prior speech-vae-conv16 (--model for another)"]


def test_auto_refits_with_the_default_prior_of_vae_fca(tmp_path, monkeypatch):
    """auto's re-fit is VAE-FCA with that method's default prior: where that prior is made
    for another rate, the plan has no re-fit and says why."""
    import dataclasses

    from vae_audio.apps.inputs import InputItem
    from vae_audio.apps.methods import MethodResolver
    from vae_audio.audio.stft import StftConfig
    from vae_audio.separation import METHODS
    from vae_audio.speech.model import SpeechVAE, SpeechVAEConfig
    from vae_audio.speech.prior import save_speech_prior

    if "vae-fca" not in METHODS:
        pytest.skip("vae-fca is not registered")
    four = InputItem(tmp_path / "a.wav", "a", channels=4, frames=16000, sample_rate=16000)
    resolver = MethodResolver("auto")
    assert resolver.plan(four).refit is not None
    assert any("VAE-FCA (speech prior speech-vae-conv16," in n for n in resolver.notes)
    stft = StftConfig(sample_rate=8000, n_fft=256, hop_length=64)
    prior = save_speech_prior(tmp_path / "p8k.pt", SpeechVAE(SpeechVAEConfig(n_freq=129), stft))
    spec = dataclasses.replace(METHODS["vae-fca"], defaults={"prior": str(prior)})
    monkeypatch.setitem(METHODS, "vae-fca", spec)
    resolver = MethodResolver("auto")
    assert resolver.plan(four).refit is None
    assert any("no VAE-FCA re-fit at 16000 Hz" in n and "made for 8000 Hz" in n
               for n in resolver.notes)  # fmt: skip


def test_a_plan_records_the_speech_prior_each_vae_step_runs(tmp_path, monkeypatch):
    """``Plan.record`` (the key that decides whether finished outputs are reused, and what a
    teacher set is labelled with) names the default prior of a VAE method and of auto's
    re-fit by SHA-256, so changing a default redoes what the old one made; a method without
    defaults records only what it was given, as before."""
    import dataclasses

    from vae_audio._pretrained import pretrained_path
    from vae_audio.apps.inputs import InputItem
    from vae_audio.apps.methods import MethodResolver
    from vae_audio.data.manifest import file_digest
    from vae_audio.separation import METHODS

    if "vae-fca" not in METHODS or "vae-fastfca" not in METHODS:
        pytest.skip("the VAE methods are not registered")
    four = InputItem(tmp_path / "a.wav", "a", channels=4, frames=16000, sample_rate=16000)
    conv16 = {
        "path": "speech-vae-conv16",
        "sha256": file_digest(pretrained_path("speech-vae-conv16")),
    }
    vae = MethodResolver("vae-fastfca").plan(four).record(16000)
    auto = MethodResolver("auto").plan(four).record(16000)
    assert vae["opts"] == {"prior": conv16} and auto["refit"]["prior"] == conv16
    assert MethodResolver("fastmnmf2").plan(four).record(16000)["opts"] == {}
    spec = dataclasses.replace(METHODS["vae-fca"], defaults={"prior": "speech-vae"})
    monkeypatch.setitem(METHODS, "vae-fca", spec)
    changed = MethodResolver("auto").plan(four).record(16000)
    assert changed["refit"]["prior"]["path"] == "speech-vae" and changed != auto
