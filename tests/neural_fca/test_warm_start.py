"""Recipe key ``init``: a run starts from another Neural FCA model's weights."""

from __future__ import annotations

import pytest
import torch

from vae_audio.core.checkpoint import save_model
from vae_audio.errors import VaeAudioError
from vae_audio.neural_fca.modelfile import KIND
from vae_audio.neural_fca.task import NeuralFCATask

from .conftest import tiny_config, tiny_model


def test_init_loads_the_weights_of_a_model_file(tmp_path):
    trained = tiny_model(spatial="jd", seed=1)
    path = save_model(tmp_path / "round0.pt", trained.state_dict(), {"model": {}}, kind=KIND)
    fresh = NeuralFCATask(tiny_config(spatial="jd")).model
    started = NeuralFCATask({**tiny_config(spatial="jd"), "init": str(path)}).model
    for name, weight in trained.state_dict().items():
        torch.testing.assert_close(started.state_dict()[name], weight)
    differs = [
        n for n, w in trained.state_dict().items() if not torch.equal(fresh.state_dict()[n], w)
    ]
    assert differs  # without init the weights are the fresh draw


def test_init_refuses_another_architecture_and_other_kinds(tmp_path):
    full = save_model(tmp_path / "full.pt", tiny_model(spatial="full").state_dict(), {}, kind=KIND)
    with pytest.raises(VaeAudioError, match="does not fit this recipe's model"):
        NeuralFCATask({**tiny_config(spatial="jd"), "init": str(full)})
    prior = save_model(tmp_path / "prior.pt", {}, {}, kind="speech-vae")
    with pytest.raises(VaeAudioError, match="expected 'neural-fca'"):
        NeuralFCATask({**tiny_config(spatial="jd"), "init": str(prior)})
