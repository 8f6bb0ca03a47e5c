"""What `auto` picks for every channel and talker count, and that it says why."""

import pytest

from tests.apps.conftest import write_cut
from vae_audio.apps import methods
from vae_audio.apps.methods import AUTO_FALLBACK, SINGLE_CHANNEL, choose_auto
from vae_audio.apps.separate import separate_files
from vae_audio.errors import VaeAudioError

ALL = (SINGLE_CHANNEL, *AUTO_FALLBACK)


@pytest.mark.parametrize("neural", [None, (4, 2)])
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
    elif neural is not None and n_mics == neural[0] and n_src in (None, neural[1]):
        assert (choice.method, choice.n_src) == ("neural", neural[1])
    else:  # any M >= 2 and any talker count, N >= M included
        assert choice.method == AUTO_FALLBACK[0]
        assert choice.n_src == (2 if n_src is None else n_src)
        assert "takes any" in choice.reason


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
    """Where auto runs FastMNMF2 it averages AUTO_STARTS random starts (noted, recorded and
    in the job key, so outputs of one start are redone); --starts overrides it."""
    import json

    import torch

    from tests.apps.conftest import read
    from vae_audio.separation import separate

    monkeypatch.setattr(methods, "shipped_model_path", lambda: tiny_model_file)
    assert methods.AUTO_STARTS["fastmnmf2"] == 4
    monkeypatch.setitem(methods.AUTO_STARTS, "fastmnmf2", 2)  # the same path, half the time
    out, notes = tmp_path / "out", []
    kw = dict(n_src=3, iters=1, progress=False, env={}, log=notes.append)
    assert separate_files([cuts[0]], out, **kw).n_separated == 1
    assert any("auto: fastmnmf2 averages 2 random starts" in n for n in notes)
    record = json.loads((out / "m0" / "separation.json").read_text())
    assert record["job"]["starts"] == 2 and record["settings"]["starts"] == 2
    assert record["label"] == "fastmnmf2 (2 starts)"
    data, sr = read(cuts[0])
    ref = separate(torch.from_numpy(data.T.copy()), n_src=3, sr=sr, n_iter=1, starts=2)
    got = torch.from_numpy(read(out / "m0" / "src1.wav")[0].T)
    torch.testing.assert_close(got, ref.sources[0], rtol=0, atol=1e-6)
    assert separate_files([cuts[0]], out, **kw).n_skipped == 1
    assert separate_files([cuts[0]], out, starts=1, **kw).n_separated == 1  # redone
    record = json.loads((out / "m0" / "separation.json").read_text())
    assert "starts" not in record["job"] and record["settings"]["starts"] == 1


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
    assert methods.AUTO_NEURAL_BLEND == (("fastmnmf2", 4),)
    monkeypatch.setattr(methods, "AUTO_NEURAL_BLEND", (("fastmnmf2", 2),))  # half the time
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
    plain = tmp_path / "plain"
    assert separate_files([cuts[0]], plain, method="neural-fastfca", **kw).n_separated == 1
    assert "blend" not in json.loads((plain / "m0" / "separation.json").read_text())["job"]
