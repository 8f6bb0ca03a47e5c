"""Model files: round trip, weights_only loading, and the errors users see."""

import pytest
import torch
from torch import nn

from vae_audio.core.checkpoint import FORMAT, check_kind, load_model_file, save_model
from vae_audio.errors import VaeAudioError


@pytest.fixture
def saved(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    config = {"model": {"hidden": [4], "path": tmp_path}, "optim": {"lr": 1e-3}}
    meta = {"global_step": 12, "stats": {"mean": [0.1, 0.2]}}
    path = save_model(tmp_path / "model.pt", model.state_dict(), config, meta, kind="speech-vae")
    return path, model


def test_round_trip_with_weights_only(saved, tmp_path):
    path, model = saved
    raw = torch.load(path, weights_only=True, map_location="cpu")  # no code needed
    assert raw["format"] == FORMAT and raw["kind"] == "speech-vae"
    data = load_model_file(path, kind="speech-vae")
    for name, value in model.state_dict().items():
        assert torch.equal(data["state_dict"][name], value)
    assert data["config"]["model"] == {"hidden": [4], "path": str(tmp_path)}
    assert data["meta"]["stats"]["mean"] == [0.1, 0.2]
    clone = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    clone.load_state_dict(data["state_dict"])
    assert not list(tmp_path.glob(".*.tmp"))


def test_kind_from_meta_and_check_kind(tmp_path):
    path = save_model(tmp_path / "m.pt", {"w": torch.ones(2)}, {}, {"kind": "image-vae"})
    data = load_model_file(path)
    assert data["kind"] == "image-vae"
    check_kind(data, ["image-vae", "cvae"])
    with pytest.raises(
        VaeAudioError, match=r"m.pt holds a 'image-vae' model, expected 'speech-vae'"
    ):
        load_model_file(path, kind="speech-vae")


def test_corrupt_file_message_names_file_and_fix(saved):
    path, _ = saved
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VaeAudioError, match=r"model.pt cannot be read as a model file.*re-train"):
        load_model_file(path)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "cannot be read"),
        (b"\x80\x02garbage" * 50, "cannot be read"),
        (b"plain text, not a model", "cannot be read"),
    ],
)
def test_non_pytorch_files(tmp_path, content, match):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(VaeAudioError, match=match):
        load_model_file(path)


class _Custom:
    pass


def test_foreign_pytorch_files(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"weights": torch.ones(2)}, path)
    with pytest.raises(VaeAudioError, match="not a vae_audio model file"):
        load_model_file(path)
    torch.save({"pytorch-lightning_version": "2.6.0", "state_dict": {}}, path)
    with pytest.raises(VaeAudioError, match="Lightning training checkpoint"):
        load_model_file(path)
    torch.save({"format": FORMAT, "obj": _Custom()}, path)
    with pytest.raises(VaeAudioError, match="objects that need code"):
        load_model_file(path)
    torch.save(
        {
            "format": FORMAT,
            "format_version": 99,
            "kind": "k",
            "state_dict": {},
            "config": {},
            "meta": {},
        },
        path,
    )
    with pytest.raises(VaeAudioError, match="upgrade vae_audio"):
        load_model_file(path)


def test_missing_file(tmp_path):
    with pytest.raises(VaeAudioError, match=r"nope.pt does not exist"):
        load_model_file(tmp_path / "nope.pt")


def test_failed_save_keeps_previous_file(saved):
    path, _ = saved
    with pytest.raises(VaeAudioError, match="cannot export the model"):
        save_model(path, {"w": torch.ones(1)}, {}, {"bad": object()})
    assert load_model_file(path)["kind"] == "speech-vae"
