"""YAML config loading, overrides and saving."""

import pytest
import yaml

from vae_audio.core.config import apply_overrides, load_config, save_config
from vae_audio.errors import VaeAudioError

RECIPE = """
model:
  latent_dim: 16
  hidden: [128]
optim:
  lr: 0.001
  weight_decay: 1e-5
trainer:
  max_epochs: 10
  out_dir: runs/x
"""


@pytest.fixture
def recipe(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE)
    return path


def test_overrides_nested_and_typed(recipe):
    config = load_config(
        recipe,
        [
            "optim.lr=2e-4",
            "trainer.max_epochs=3",
            "model.hidden=[64, 32]",
            "trainer.precision=bf16-mixed",
            "model.new.deep=true",
            "trainer.out_dir='007'",
            "model.latent_dim=null",
        ],
    )
    assert config["optim"]["lr"] == 2e-4 and isinstance(config["optim"]["lr"], float)
    assert config["optim"]["weight_decay"] == 1e-5  # YAML 1.2 float, a string in plain PyYAML
    assert config["trainer"]["max_epochs"] == 3
    assert config["model"]["hidden"] == [64, 32]
    assert config["trainer"]["precision"] == "bf16-mixed"
    assert config["model"]["new"] == {"deep": True}
    assert config["trainer"]["out_dir"] == "007"
    assert config["model"]["latent_dim"] is None


def test_default_sections_can_be_overridden_when_absent():
    out = apply_overrides({"model": {}}, ["trainer.max_epochs=2", "optim.lr=1e-4"])
    assert out["trainer"] == {"max_epochs": 2} and out["optim"] == {"lr": 1e-4}


def test_overrides_do_not_modify_input():
    base = {"a": {"b": 1}}
    out = apply_overrides(base, ["a.b=2"])
    assert base == {"a": {"b": 1}} and out == {"a": {"b": 2}}


@pytest.mark.parametrize(
    "override, match",
    [
        ("optim.lr", "malformed override 'optim.lr'"),
        ("=3", "malformed override"),
        ("optim..lr=3", "malformed override"),
        ("optm.lr=3", "no top-level section 'optm'"),
        ("optim.lr.x=3", "optim.lr in .* is a float"),
        ("optim.lr=[1, 2", "not valid YAML"),
    ],
)
def test_bad_override_messages(recipe, override, match):
    with pytest.raises(VaeAudioError, match=match):
        load_config(recipe, [override])


def test_missing_and_bad_files(tmp_path):
    with pytest.raises(VaeAudioError, match="does not exist"):
        load_config(tmp_path / "nope.yaml", [])
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  a: [1, 2\n")
    with pytest.raises(VaeAudioError, match=r"bad.yaml is not valid YAML at line"):
        load_config(bad, [])
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(VaeAudioError, match="not a mapping"):
        load_config(listing)


def test_save_config_round_trip(recipe, tmp_path):
    config = load_config(recipe, ["model.path=" + str(tmp_path)])
    config["model"]["where"] = tmp_path  # a Path is written as a string
    out = save_config(config, tmp_path / "out" / "config.yaml")
    loaded = yaml.safe_load(out.read_text())
    assert loaded["model"]["where"] == str(tmp_path)
    assert loaded["optim"] == config["optim"]
    assert list(loaded) == list(config)  # key order kept
    assert not list((tmp_path / "out").glob(".*tmp"))  # no temporary left behind
    with pytest.raises(VaeAudioError, match="cannot save the config"):
        save_config({"x": object()}, tmp_path / "c.yaml")
