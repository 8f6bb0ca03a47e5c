"""Teacher targets for the Neural FCA warm start: the divergence, the permutation, the set."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from vae_audio.audio.stft import STFT, StftConfig
from vae_audio.errors import VaeAudioError
from vae_audio.neural_fca.teacher import (
    SETTINGS_NAME,
    TeacherDataset,
    TeacherSets,
    distillation_loss,
    scale_invariant_is,
)


def _positive(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g, dtype=torch.float64) * 3 + 0.05


def test_scale_invariant_is_is_the_is_divergence_at_the_best_scale():
    p, lam = _positive(2, 5, 7), _positive(2, 5, 7, seed=1)
    got = scale_invariant_is(p.log(), lam)  # [2]
    scales = torch.logspace(-2, 2, 20001, dtype=torch.float64)  # brute-force minimum over c
    r = (p / lam).flatten(1)[:, None] / scales[None, :, None]  # [2, C, FT]
    brute = (r - r.log() - 1).mean(-1).min(-1).values
    torch.testing.assert_close(got, brute, rtol=1e-6, atol=1e-8)
    zero = scale_invariant_is((7.5 * lam).log(), lam)  # proportional PSDs: 0
    torch.testing.assert_close(zero, torch.zeros(2, dtype=torch.float64), rtol=0, atol=1e-12)


def test_distillation_loss_matches_speakers_by_the_best_permutation():
    lam = _positive(3, 4, 6, 8)  # B = 3, N = 3 speakers + noise
    target = _positive(3, 4, 6, 8, seed=2).log()
    losses = []
    for perm in itertools.permutations(range(3)):
        order = [*perm, 3]
        losses.append(float(distillation_loss(lam, target[:, order])))
    assert max(losses) - min(losses) < 1e-12  # invariant to the teacher's speaker order
    per_item = []
    for b in range(3):  # best permutation per item, noise fixed, summed over slots
        costs = [
            sum(float(scale_invariant_is(target[b, p[i]], lam[b, i])) for i in range(3))
            for p in itertools.permutations(range(3))
        ]
        per_item.append(min(costs) + float(scale_invariant_is(target[b, 3], lam[b, 3])))
    assert losses[0] == pytest.approx(sum(per_item) / 3, rel=1e-10)
    swapped = distillation_loss(lam, target[:, [0, 1, 3, 2]])  # noise is not permuted
    assert float(swapped) != pytest.approx(losses[0])


def _brute_assigned(lam, target, k):
    """Brute force of one item: every injective assignment of its k talkers to the model's
    speaker slots; the unassigned slots' PSDs added to the noise slot's."""
    n_spk = lam.shape[0] - 1
    costs = []
    for slots in itertools.permutations(range(n_spk), k):
        talk = sum(float(scale_invariant_is(target[i], lam[s])) for i, s in enumerate(slots))
        rest = [s for s in range(n_spk) if s not in slots]
        noise = lam[-1] + sum((lam[s] for s in rest), torch.zeros_like(lam[-1]))
        costs.append(talk + float(scale_invariant_is(target[-1], noise)))
    return min(costs)


def test_distillation_loss_with_fewer_talkers_than_slots_merges_the_inactive_ones():
    lam = _positive(4, 4, 6, 8)  # B = 4, 3 speaker slots + noise
    target = _positive(4, 3, 6, 8, seed=2).log()  # 2 talkers + noise
    got = float(distillation_loss(lam, target))
    per_item = [_brute_assigned(lam[b], target[b, [0, 1, 2]], 2) for b in range(4)]
    assert got == pytest.approx(sum(per_item) / 4, rel=1e-10)
    # an inactive slot that carries the noise's own shape costs nothing on the noise term
    lam2 = lam.clone()
    lam2[:, 2] = target[:, 2].exp()  # slot 2 = the teacher's noise
    lam2[:, 3] = 1e-9 * lam2[:, 3]  # the noise slot silent
    lam2[:, 0], lam2[:, 1] = target[:, 0].exp(), 3.0 * target[:, 1].exp()
    assert float(distillation_loss(lam2, target)) == pytest.approx(0.0, abs=1e-6)


def test_distillation_loss_mixes_talker_counts_in_one_batch():
    lam = _positive(3, 4, 6, 8)  # 3 speaker slots + noise
    target = _positive(3, 4, 6, 8, seed=5).log()  # rows: 3 talkers + noise
    target[1, 2] = float("nan")  # item 1 has 2 talkers (a padded row)
    target[2, 1:3] = float("nan")  # item 2 has 1
    got = float(distillation_loss(lam, target))
    brute = [
        _brute_assigned(lam[0], target[0], 3),
        _brute_assigned(lam[1], target[1, [0, 1, 3]], 2),
        _brute_assigned(lam[2], target[2, [0, 3]], 1),
    ]
    assert got == pytest.approx(sum(brute) / 3, rel=1e-10)
    with pytest.raises(VaeAudioError, match="model.n_speakers >= 3"):
        distillation_loss(lam[:, [0, 1, 3]], target)  # 2 speaker slots, 3 talkers


def _fake_set(root, n=3, seconds=0.5, stft=None, talkers=2):
    """A hand-made teacher set: log-PSDs = log of the mic-averaged mixture periodogram."""
    cfg = StftConfig(sample_rate=16000, n_fft=64, hop_length=16) if stft is None else stft
    root.mkdir()
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(n, 2, int(seconds * 16000), generator=g) * 0.1
    X = STFT(cfg)(mix)  # [n, M, F, T]
    power = X.abs().square().mean(1, keepdim=True)  # [n, 1, F, T]
    log_psd = (power.expand(-1, talkers + 1, -1, -1) + 1e-6).log()
    torch.save({"mix": mix.half(), "log_psd": log_psd.half()}, root / "shard_00000.pt")
    record = {"stft": cfg.to_dict(), "n": n}
    (root / f"{SETTINGS_NAME}.json").write_text(json.dumps(record), encoding="utf-8")
    return cfg


def test_crops_start_on_frame_boundaries_so_their_stft_is_the_stored_frames(tmp_path):
    cfg = _fake_set(tmp_path / "set")
    data = TeacherDataset(tmp_path / "set", segment_seconds=0.2)
    torch.manual_seed(3)
    for i in range(len(data)):
        item = data[i]
        X = STFT(cfg)(item["mix"][None])  # [1, M, F, T']
        assert X.shape[-1] == item["teacher_log_psd"].shape[-1] == 201
        got = (X.abs().square().mean(1) + 1e-6).log()[0]
        # interior frames (the crop's edge frames see zero padding instead of signal)
        stored = item["teacher_log_psd"][0]
        torch.testing.assert_close(got[:, 2:-2], stored[:, 2:-2], rtol=0, atol=0.05)  # float16
        assert float((got[:, 3:-2] - stored[:, 2:-3]).abs().mean()) > 0.5  # one hop off: far


def test_a_folder_without_a_teacher_record_is_refused(tmp_path):
    with pytest.raises(VaeAudioError, match="not a teacher set.*vae-audio teacher-set"):
        TeacherDataset(tmp_path, 1.0)


def test_teacher_sets_pad_fewer_talkers_with_absent_rows_and_refuse_other_stfts(tmp_path):
    cfg = _fake_set(tmp_path / "two", n=3, talkers=2)
    _fake_set(tmp_path / "one", n=2, seconds=0.4, stft=cfg, talkers=1)
    data = TeacherSets([tmp_path / "two", tmp_path / "one"], segment_seconds=0.2)
    assert len(data) == 5 and data.n_talkers == 2 and data.n_mics == 2
    one = TeacherDataset(tmp_path / "one", segment_seconds=0.2)
    padded, plain = data[3]["teacher_log_psd"], one[0]["teacher_log_psd"]  # item 0 of "one"
    assert padded.shape[0] == 3 and plain.shape[0] == 2
    assert bool(padded[1].isnan().all()) and not bool(padded[[0, 2]].isnan().any())
    torch.testing.assert_close(padded[[0, 2]], plain, rtol=0, atol=0)  # talker, then noise
    batch = torch.utils.data.default_collate([data[0], data[3]])  # 2 and 1 talkers at once
    lam = torch.rand(2, 3, *batch["teacher_log_psd"].shape[2:], dtype=torch.float64) + 0.1
    assert torch.isfinite(distillation_loss(lam, batch["teacher_log_psd"].double()))
    _fake_set(tmp_path / "other", stft=StftConfig(sample_rate=16000, n_fft=32, hop_length=8))
    with pytest.raises(VaeAudioError, match="other' has STFT .*same STFT and array"):
        TeacherSets([tmp_path / "two", tmp_path / "other"], segment_seconds=0.2)


def test_a_three_slot_model_trains_on_two_and_three_talker_sets_in_one_batch(tmp_path):
    from vae_audio.neural_fca.recipe import build_datasets
    from vae_audio.neural_fca.task import NeuralFCATask

    cfg = StftConfig(sample_rate=16000, n_fft=16, hop_length=4)
    _fake_set(tmp_path / "three", stft=cfg, talkers=3)
    _fake_set(tmp_path / "two", stft=cfg, talkers=2)
    config = _teacher_config(tmp_path / "three", teacher=1.0)
    config["data"]["teacher_set"] = [str(tmp_path / "three"), str(tmp_path / "two")]
    config["model"]["n_speakers"] = 3
    train_set, *_ = build_datasets(config)
    task = NeuralFCATask(config)
    batch = torch.utils.data.default_collate([train_set[0], train_set[3]])  # 3 and 2 talkers
    assert bool(batch["teacher_log_psd"][1, 2].isnan().all())
    loss = task.compute_loss(batch, "train")
    assert torch.isfinite(loss.loss) and float(loss.logs["distil"]) > 0
    loss.loss.backward()
    grads = [p.grad for p in task.parameters() if p.grad is not None]
    assert grads and all(bool(torch.isfinite(g).all()) for g in grads)


def test_recipe_refuses_a_teacher_set_with_more_talkers_than_speaker_slots(tmp_path):
    from vae_audio.neural_fca.recipe import train_from_config

    _fake_set(
        tmp_path / "set", stft=StftConfig(sample_rate=16000, n_fft=16, hop_length=4), talkers=3
    )
    config = _teacher_config(tmp_path / "set", teacher=1.0)
    config["trainer"]["out_dir"] = str(tmp_path / "run")
    with pytest.raises(VaeAudioError, match="has 3 talkers but model.n_speakers=2"):
        train_from_config(config)


def test_the_model_file_records_the_talker_counts_it_was_trained_on(tmp_path):
    """A 3-slot model trained on a 3-talker and a 1-talker set records talkers [1, 3]: auto
    runs it for those counts only; a count given in the recipe is kept as given."""
    from vae_audio.neural_fca import load_neural_fca
    from vae_audio.neural_fca.recipe import train_from_config

    cfg = StftConfig(sample_rate=16000, n_fft=16, hop_length=4)
    _fake_set(tmp_path / "three", stft=cfg, talkers=3)
    _fake_set(tmp_path / "one", stft=cfg, talkers=1)
    for given, expect in ((None, (1, 3)), ([3, 2], (2, 3))):
        config = _teacher_config(tmp_path / "three", teacher=1.0)
        config["data"]["teacher_set"] = [str(tmp_path / "three"), str(tmp_path / "one")]
        config["model"].update(n_speakers=3, talkers=given)
        config["trainer"].update(out_dir=str(tmp_path / f"run{expect}"), max_steps=1)
        result = train_from_config(config)
        net = load_neural_fca(result.model_path)
        assert net.config.talkers == net.config.talker_counts == expect
        assert net.config.default_talkers == (2 if 2 in expect else 3)


def _teacher_config(root, **loss) -> dict:
    from .conftest import tiny_config

    config = tiny_config(n_mics=2, spatial="jd")
    config["data"] = {"teacher_set": str(root), "segment_seconds": 0.1, "batch_size": 2}
    config["loss"] = {"beta": 0.0, **loss}
    config["trainer"] = {"seed": 0}
    return config


def test_recipe_serves_the_teacher_set_and_the_warm_start_fits_the_teacher(tmp_path):
    from vae_audio.core.optim import OPTIM_DEFAULTS, build_optimizer
    from vae_audio.neural_fca.recipe import build_datasets
    from vae_audio.neural_fca.task import NeuralFCATask

    _fake_set(tmp_path / "set", stft=StftConfig(sample_rate=16000, n_fft=16, hop_length=4))
    config = _teacher_config(tmp_path / "set", teacher=1.0)
    train_set, _, _, bank, n_mics = build_datasets(config)
    assert isinstance(train_set, TeacherSets) and bank is None and n_mics == 2
    task = NeuralFCATask(config)
    batch = torch.utils.data.default_collate([train_set[0], train_set[1]])
    params = [p for p in task.parameters() if p.requires_grad]
    optim = build_optimizer(params, {**OPTIM_DEFAULTS, "lr": 3e-3})
    first = task.compute_loss(batch, "train")
    for _ in range(30):
        optim.zero_grad()
        task.compute_loss(batch, "train").loss.backward()
        optim.step()
    last = task.compute_loss(batch, "train")
    assert float(last.logs["distil"]) < 0.8 * float(first.logs["distil"])
    # the total is the FCA loss plus the weighted distillation term
    expect = float(last.logs["nll"].detach()) + float(last.logs["distil"])
    assert float(last.loss.detach()) == pytest.approx(expect, rel=1e-5)


def test_teacher_weight_without_targets_and_stft_mismatch_are_refused(tmp_path):
    from vae_audio.neural_fca.recipe import build_datasets
    from vae_audio.neural_fca.task import NeuralFCATask

    _fake_set(tmp_path / "set")  # labelled with n_fft 64
    config = _teacher_config(tmp_path / "set", teacher=1.0)
    with pytest.raises(VaeAudioError, match="teacher set .* labelled with STFT"):
        build_datasets(config)
    task = NeuralFCATask(config)
    with pytest.raises(VaeAudioError, match="loss.teacher > 0 needs teacher targets"):
        task.compute_loss({"mix": torch.randn(2, 2, 800)}, "train")


def test_teacher_set_command_labels_dynamic_mixtures_and_resumes(tmp_path, capsys):
    from vae_audio import cli
    from vae_audio.data.dynamic import DynamicMixingDataset
    from vae_audio.neural_fca.teacher import teacher_log_psd

    from .conftest import FIXTURES
    from .test_recipe import _tiny_bank

    corpus = FIXTURES / "corpus" / "train.jsonl"
    bank = _tiny_bank(tmp_path / "bank.pt")
    out = tmp_path / "teacher"
    args = ["teacher-set", str(out), "--corpus", str(corpus), "--rir-bank", str(bank)]
    args += ["--n", "3", "--seconds", "0.25", "--iters", "2", "--split", "train"]
    assert cli.main(args) == 0
    assert "3 teacher-labelled mixtures" in capsys.readouterr().out
    shard = torch.load(out / "shard_00000.pt", weights_only=True)
    assert sorted(shard) == ["log_psd", "mix"]  # mixtures and teacher PSDs, no references
    assert shard["mix"].shape == (3, 3, 4000) and shard["log_psd"].shape == (3, 3, 257, 32)
    data = DynamicMixingDataset(
        corpus, bank, segment_seconds=0.25, n_speakers=2, epoch_size=3, split="train",
        render=True, seed=0,
    )  # fmt: skip
    mix = torch.stack([data[i]["mix"] for i in range(3)])
    torch.testing.assert_close(shard["mix"].float(), mix, rtol=1e-3, atol=1e-4)
    expect = teacher_log_psd(STFT(StftConfig())(mix), 2, n_iter=2)
    torch.testing.assert_close(shard["log_psd"].float(), expect, rtol=0, atol=0.02)
    stamp = (out / "shard_00000.pt").stat().st_mtime_ns
    assert cli.main(args) == 0  # finished shards are kept
    assert (out / "shard_00000.pt").stat().st_mtime_ns == stamp
    assert cli.main([*args[:-6], "--n", "3", "--seconds", "0.25", "--iters", "3"]) == 2
    assert "different settings (n_iter differ" in capsys.readouterr().err
    fresh = tmp_path / "three_talkers"
    assert cli.main([args[0], str(fresh), *args[2:], "--n-speakers", "3"]) == 2
    assert "n_speakers must be 1..2" in capsys.readouterr().err
    assert not fresh.exists()  # refused before the folder is claimed


def _tiny_teacher_args(tmp_path, *extra):
    from .conftest import FIXTURES
    from .test_recipe import _tiny_bank

    corpus = FIXTURES / "corpus" / "train.jsonl"
    bank = _tiny_bank(tmp_path / "bank.pt")
    args = ["teacher-set", str(tmp_path / "teacher"), "--corpus", str(corpus)]
    args += ["--rir-bank", str(bank), "--n", "2", "--seconds", "0.25", *extra]
    return args, corpus, bank


def _rendered(corpus, bank, n):
    from vae_audio.data.dynamic import DynamicMixingDataset

    data = DynamicMixingDataset(
        corpus, bank, segment_seconds=0.25, n_speakers=2, epoch_size=n, split="train",
        render=True, seed=0,
    )  # fmt: skip
    return torch.stack([data[i]["mix"] for i in range(n)])  # [n, M, S]


def _log_power(images):
    """``log(mean_m |STFT|² + 1e-3 · slot mean)`` of images ``[N, M, S]`` -> ``[N, F, T]``."""
    spec = STFT(StftConfig())(images)  # [N, M, F, T]
    power = spec.abs().square().mean(1)
    return (power + 1e-3 * power.mean((1, 2), keepdim=True)).log()


def test_any_separation_method_can_be_the_teacher(tmp_path, capsys):
    """``--teacher fastmnmf2@2:starts=2``: each stored log-PSD is that of the images which
    ``separate(mix, "fastmnmf2", n_iter=2, starts=2)`` returns for the rendered mixture
    (talkers, then its noise image), at the set's STFT; the teacher is part of the set's
    settings, so labelling an existing set with another teacher is refused."""
    from vae_audio import cli
    from vae_audio.separation import separate

    args, corpus, bank = _tiny_teacher_args(tmp_path, "--teacher", "fastmnmf2@2:starts=2")
    assert cli.main(args) == 0
    shard = torch.load(tmp_path / "teacher" / "shard_00000.pt", weights_only=True)
    assert shard["log_psd"].shape == (2, 3, 257, 32)
    for i, mix in enumerate(_rendered(corpus, bank, 2)):
        res = separate(mix, "fastmnmf2", n_src=2, n_iter=2, starts=2, seed=0)
        expect = _log_power(torch.cat([res.sources, res.noise[None]]))
        torch.testing.assert_close(shard["log_psd"][i].float(), expect, rtol=0, atol=0.02)
    record = json.loads((tmp_path / "teacher" / f"{SETTINGS_NAME}.json").read_text())
    assert record["teacher"] == "fastmnmf2@2:starts=2"
    capsys.readouterr()
    assert cli.main(args[:-2] + ["--teacher", "fastmnmf2@3:starts=2"]) == 2
    assert "different settings (teacher differ" in capsys.readouterr().err


def test_a_teacher_without_a_noise_slot_labels_the_rest_of_the_mixture_as_noise(tmp_path):
    """With ``noise_slot=0`` the method returns talkers only; the noise target is the
    log-PSD of the mixture minus the talkers."""
    from vae_audio.neural_fca.teacher import method_log_psd
    from vae_audio.separation import separate

    _, corpus, bank = _tiny_teacher_args(tmp_path)
    mix = _rendered(corpus, bank, 1)
    got = method_log_psd(mix, "fastmnmf2@2:noise_slot=0", 2, StftConfig())[0]  # [3, F, T]
    res = separate(mix[0], "fastmnmf2", n_src=2, n_iter=2, noise_slot=False)
    assert res.noise is None
    rest = mix[0] - res.sources.sum(0)
    expect = _log_power(torch.cat([res.sources, rest[None]]))
    torch.testing.assert_close(got, expect, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("teacher", ["nope", "vae-nmf", "fastmnmf2:starts"])
def test_an_unknown_teacher_is_one_line_and_exit_2(tmp_path, capsys, teacher):
    """Before any mixture is rendered: an unregistered name, a single-channel method, a
    malformed option."""
    from vae_audio import cli

    args, _, _ = _tiny_teacher_args(tmp_path, "--teacher", teacher)
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and teacher.split(":")[0] in err
    assert not (tmp_path / "teacher").exists()


def test_auto_as_teacher_labels_what_separate_auto_writes(tmp_path, monkeypatch):
    """``--teacher auto[:model=PATH]``: each mixture goes through what ``vae-audio separate
    --method auto`` runs (:func:`~vae_audio.bench.methods.auto_images`, here replaced by a
    recorder that returns known images), with the spec's model, starts and seed; its talkers
    then its noise image are the targets. Other options are refused."""
    from vae_audio.bench import methods
    from vae_audio.neural_fca.teacher import method_log_psd, parse_teacher

    _, corpus, bank = _tiny_teacher_args(tmp_path)
    mix = _rendered(corpus, bank, 2)  # [2, M, S]
    calls = []

    def fake(wav, sr, n_src, n_iter, seed, model, device, wpe, starts):
        calls.append((sr, n_src, n_iter, seed, model, wpe, starts))
        k = len(calls)  # a different split of every mixture: talker k, the rest, the noise
        return torch.stack([wav / (k + 1), wav / 4, wav * (1 - 1 / (k + 1) - 1 / 4)]), 2

    monkeypatch.setattr(methods, "auto_images", fake)
    got = method_log_psd(mix, "auto@7:model=m.pt:starts=3", 2, StftConfig(), seed=5)
    assert calls == [(16000, 2, 7, 5, "m.pt", False, 3)] * 2
    for i in range(2):
        k = i + 1
        wav = mix[i]
        expect = _log_power(torch.stack([wav / (k + 1), wav / 4, wav * (1 - 1 / (k + 1) - 0.25)]))
        torch.testing.assert_close(got[i], expect, rtol=1e-5, atol=1e-5)
    calls.clear()
    method_log_psd(mix[:1], "auto", 2, StftConfig())
    assert calls == [(16000, 2, None, 0, None, False, None)]  # the plan's own iterations, starts
    assert parse_teacher("auto:model=m.pt") == ("auto", None, {"model": "m.pt"})
    with pytest.raises(VaeAudioError, match="auto takes model, starts and wpe"):
        method_log_psd(mix[:1], "auto:n_fft=1024", 2, StftConfig())


def test_an_auto_teacher_set_records_what_auto_runs_and_is_not_grown_by_another(
    tmp_path, monkeypatch, capsys
):
    """A set labelled by ``--teacher auto`` records auto's plan for its mixtures (method,
    members, re-fit, iterations; ``Plan.record``). Resumed after ``auto`` changed (here its
    re-fit dropped), the same command is refused rather than mixing two teachers' labels."""
    from vae_audio import cli
    from vae_audio.apps import methods as app_methods
    from vae_audio.bench import methods
    from vae_audio.bench.methods import auto_plan

    def fake(wav, *args):  # known images instead of a fit: only the record is under test
        return torch.stack([wav / 2, wav / 4, wav / 4]), 2

    monkeypatch.setattr(methods, "auto_images", fake)
    args, _, _ = _tiny_teacher_args(tmp_path, "--teacher", "auto")
    assert cli.main(args) == 0
    M = torch.load(tmp_path / "teacher" / "shard_00000.pt", weights_only=True)["mix"].shape[1]
    record = json.loads((tmp_path / "teacher" / f"{SETTINGS_NAME}.json").read_text())
    plan = record["teacher_plan"]
    auto = auto_plan(M, 16000, 2)
    assert plan == {**auto.record(16000), "stft": auto.stft_for(16000).to_dict()}
    assert plan["refit"].items() >= app_methods.AUTO_REFIT.entry().items() and plan["blend"]
    assert plan["refit"]["prior"]["path"] == "speech-vae-conv16"  # the re-fit's prior, by hash
    monkeypatch.setattr(app_methods, "AUTO_REFIT", None)
    capsys.readouterr()
    assert cli.main(args) == 2
    assert "different settings (teacher_plan differ" in capsys.readouterr().err
