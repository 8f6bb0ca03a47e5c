"""``augment.mic_subset``: a model for any M trained on random sub-arrays of the batch's mics.

The draw (:func:`~vae_audio.neural_fca.task.draw_mic_subset`) is checked against its law (k
uniform in ``[min, min(max, M)]``, then a uniform k-subset: every mic is kept with
probability ``E[k] / M``); the task against the channels it feeds the model (the chosen mics
of the batch, in their original order, on training steps only); the recipe end to end,
including the exact resume of a run that draws sub-arrays.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from vae_audio import cli
from vae_audio.core.config import load_config
from vae_audio.errors import VaeAudioError
from vae_audio.neural_fca import load_neural_fca
from vae_audio.neural_fca.task import NeuralFCATask, draw_mic_subset, mic_subset_range

from .conftest import FIXTURES, MIXTURE_MANIFEST, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "neural_fca"
TAC = {"kind": "tac", "io_channels": 8, "mid_channels": 8, "n_blocks": 2, "n_layers": 2}


@pytest.mark.parametrize("M, low, high", [(6, 2, None), (4, 2, None), (6, 3, 4), (5, 2, 9)])
def test_subset_sizes_are_uniform_on_the_range_and_every_mic_equally_likely(M, low, high):
    n = 3000
    torch.manual_seed(0)
    draws = [draw_mic_subset(M, low, high) for _ in range(n)]
    top = M if high is None else min(high, M)
    sizes = torch.tensor([len(d) for d in draws])
    counts = torch.bincount(sizes, minlength=M + 1)
    assert set(sizes.tolist()) == set(range(low, top + 1))  # the whole range, nothing else
    p = 1 / (top - low + 1)
    sd = math.sqrt(n * p * (1 - p))
    assert (counts[low : top + 1].double() - n * p).abs().max() < 5 * sd
    for d in draws:  # distinct mics of the array, in ascending (original) order
        assert d.dtype == torch.int64 and bool((d.diff() > 0).all()) and 0 <= d[0] and d[-1] < M
    kept = torch.zeros(M)
    for d in draws:
        kept[d] += 1
    q = sizes.double().mean().item() / M  # P(mic m kept) = E[k] / M for every m
    assert (kept.double() - n * q).abs().max() < 5 * math.sqrt(n * q * (1 - q))


def test_subset_draw_follows_the_global_generator_and_refuses_too_few_mics():
    torch.manual_seed(7)
    a = [draw_mic_subset(8, 2) for _ in range(5)]
    torch.manual_seed(7)
    b = [draw_mic_subset(8, 2) for _ in range(5)]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert torch.equal(draw_mic_subset(3, 3), torch.arange(3))  # k = M = min: all of them
    with pytest.raises(VaeAudioError, match="M = 3 microphones, fewer than .*min = 4"):
        draw_mic_subset(3, 4)


def test_subset_option_is_checked():
    assert mic_subset_range(None) is None and mic_subset_range(False) is None
    assert mic_subset_range(True) == mic_subset_range({}) == {"min": 2, "max": None}
    assert mic_subset_range({"max": 4}) == {"min": 2, "max": 4}
    for bad, what in [
        ({"min": 1}, "min must be an integer >= 2"),
        ({"min": 3, "max": 2}, "max must be null or an integer >= min = 3"),
        ({"mn": 2}, "unknown augment.mic_subset key"),
        ("2", "must be null or"),
    ]:
        with pytest.raises(VaeAudioError, match=what):
            mic_subset_range(bad)


def _any_m_task(**augment) -> NeuralFCATask:
    config = tiny_config(None, "jd", encoder=TAC)
    config["augment"] = {"mic_permutation": False, **augment}
    return NeuralFCATask(config)


def test_subset_is_refused_for_a_model_of_fixed_m():
    config = tiny_config(4, "jd")
    config["augment"] = {"mic_subset": {"min": 2}}
    with pytest.raises(VaeAudioError, match="augment.mic_subset needs a model for any M") as err:
        NeuralFCATask(config)
    assert "\n" not in str(err.value) and "takes M = 4" in str(err.value)


def test_subset_for_a_fixed_m_recipe_is_one_line_at_the_cli(tmp_path, capsys):
    code = cli.main(
        [
            "train",
            "neural-fca",
            "--config",
            str(RECIPES / "cpu.yaml"),
            f"data.train_manifest={MIXTURE_MANIFEST}",
            "data.valid_manifest=null",
            "data.batch_size=1",
            "augment.mic_subset={min: 2}",
            f"trainer.out_dir={tmp_path}",
        ]
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert "augment.mic_subset needs a model for any M" in lines[0]


def _spy(task: NeuralFCATask) -> dict[str, torch.Tensor]:
    """Record the STFT the task normalises and the batch the model's forward receives."""
    seen: dict[str, torch.Tensor] = {}
    normalise, forward = task.model.normalise, task.model.forward

    def spy_normalise(x):
        seen["x"] = x
        return normalise(x)

    def spy_forward(x, *args, **kwargs):
        seen["fed"] = x
        return forward(x, *args, **kwargs)

    task.model.normalise, task.model.forward = spy_normalise, spy_forward
    return seen


def test_training_batch_is_a_sub_array_of_the_batch_in_its_original_order():
    """On training steps the model gets k of the M channels, the same for every item, in the
    original order (channel j of the sub-array is mic ``mics[j]``, ``mics`` ascending),
    normalised over the sub-array; the mics are those the step's seed draws. Validation
    steps get all M."""
    M, low = 6, 2
    task = _any_m_task(mic_subset={"min": low})
    g = torch.Generator().manual_seed(1)
    wav = torch.randn(2, M, 400, generator=g)  # [B, M, S]: every channel distinct
    X = task.stft(wav)  # [B, M, F, T]
    seen = _spy(task)
    sizes = set()
    for step in range(40):
        torch.manual_seed(step)  # what the training step's reseeding does
        expected = draw_mic_subset(M, low)
        torch.manual_seed(step)
        out = task.compute_loss({"mix": wav}, "train")
        assert torch.isfinite(out.loss)
        mics = expected.tolist()
        sizes.add(len(mics))
        assert seen["x"].shape == (2, len(mics), *X.shape[2:])
        torch.testing.assert_close(seen["x"], X[:, mics], rtol=1e-5, atol=1e-6)
        for j, m in enumerate(mics):  # channel j is mic m and no other
            err = (seen["x"][:, j : j + 1] - X).abs().flatten(2).amax(-1).amax(0)  # [M]
            assert int(err.argmin()) == m and sorted(err.tolist())[1] > 1e-2
        torch.testing.assert_close(seen["fed"], task.model.normalise(seen["x"])[0])
    assert sizes == set(range(low, M + 1))
    task.compute_loss({"mix": wav}, "val")
    torch.testing.assert_close(seen["x"], X)


def _mixture_manifest(path: Path, copies: int) -> Path:
    """``copies`` entries naming the fixture mixture (absolute paths)."""
    (entry,) = [json.loads(line) for line in MIXTURE_MANIFEST.open()]
    root = FIXTURES / "mixture"
    lines = []
    for k in range(copies):
        e = dict(entry, id=f"copy{k}", mix=str(root / entry["mix"]))
        e.update(
            sources=[str(root / s) for s in entry["sources"]], noise=str(root / entry["noise"])
        )
        e.pop("meta", None)
        lines.append(json.dumps(e))
    path.write_text("\n".join(lines) + "\n")
    return path


def _weights(run: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 4
    state = dict(ckpt["state_dict"])
    for k, opt in enumerate(ckpt["optimizer_states"]):
        for key, values in opt["state"].items():
            state.update({f"optim{k}.{key}.{n}": v for n, v in values.items()})
    return state


def test_any_mics_recipe_trains_on_sub_arrays_and_resumes_exactly(tmp_path, capsys):
    """The any-M recipe (mic_subset on) on the 4-mic fixture: 2 steps, then continued to 4,
    ends bitwise where an uninterrupted 4-step run does (the sub-arrays are drawn from the
    step's seed, as the other draws)."""
    config = load_config(RECIPES / "any_mics.yaml")
    assert config["augment"]["mic_subset"] == {"min": 2, "max": None}
    config["prior"], config["loss"]["teacher"] = None, 0.0  # no teacher set here
    config["data"].update(
        teacher_set=None,
        train_manifest=str(_mixture_manifest(tmp_path / "train.jsonl", 4)),
        valid_manifest=str(MIXTURE_MANIFEST),
        segment_seconds=0.25,
        batch_size=1,
    )
    config["stft"].update(n_fft=64, hop_length=16)
    config["model"].update(
        noise_latent_dim=2,
        noise_hidden=8,
        encoder={**TAC, "n_layers": 1},
        decoder={"arch": "mlp", "latent_dim": 4, "hidden": 8, "layers": 1},
    )
    config["validation"]["examples"] = 0
    config["optim"]["lr"] = 1e-2
    config["trainer"].update(
        accelerator="cpu", devices=1, max_epochs=-1, max_steps=4, enable_progress_bar=False,
        log_every_n_steps=1, tensorboard=False, export="last",
    )  # fmt: skip
    path = tmp_path / "any.yaml"
    path.write_text(yaml.safe_dump(config))

    def train(out: str, *extra: str) -> None:
        args = ["train", "neural-fca", "--config", str(path), f"trainer.out_dir={tmp_path / out}"]
        assert cli.main([*args, *extra]) == 0

    train("split", "trainer.max_steps=2")
    assert "M = any (trained on 2-4 of 4)" in capsys.readouterr().out
    model = load_neural_fca(tmp_path / "split" / "model.pt")
    assert model.n_mics is None and model.takes_mics(2) and model.takes_mics(6)
    saved = load_config(tmp_path / "split" / "config.yaml")
    assert saved["augment"]["mic_subset"] == {"min": 2, "max": None}
    train("split", "--resume")
    train("full")
    split, full = _weights(tmp_path / "split"), _weights(tmp_path / "full")
    assert split.keys() == full.keys()
    for name, value in split.items():
        assert torch.equal(value, full[name]), name
