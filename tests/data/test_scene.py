import math

import numpy as np
import pytest

from vae_audio.data.presets import load_preset
from vae_audio.data.scene import sample_scene
from vae_audio.errors import VaeAudioError


@pytest.mark.parametrize("seed", range(8))
def test_default_scene_meets_every_constraint(seed):
    p = load_preset("default")
    s = sample_scene(p, np.random.default_rng(seed))
    dim = s.room_dim
    assert 3 <= dim[0] <= 8 and 3 <= dim[1] <= 8 and 2.5 <= dim[2] <= 3.5
    assert 0.15 <= s.rt60 <= 0.6 and 0 < s.absorption < 1
    c = s.array_centre
    assert np.all(c[:2] >= 0.5) and np.all(c[:2] <= dim[:2] - 0.5) and 1.0 <= c[2] <= 1.5
    np.testing.assert_allclose(np.linalg.norm(s.mic_positions - c, axis=1), 0.05, atol=1e-12)
    # mic 0 sits at the drawn rotation angle
    first = s.mic_positions[0] - c
    assert math.isclose(
        math.degrees(math.atan2(first[1], first[0])) % 360, s.array_rotation_deg % 360, abs_tol=1e-6
    )
    assert len(s.source_positions) == 2 and len(s.noise_positions) in range(16, 33)
    horiz = np.linalg.norm(s.source_positions[:, :2] - c[:2], axis=1)
    np.testing.assert_allclose(horiz, s.source_distance)
    assert np.all((horiz >= 0.75) & (horiz <= 2.5))
    az = np.degrees(np.arctan2(*(s.source_positions[:, :2] - c[:2]).T[::-1])) % 360
    np.testing.assert_allclose(az, s.source_azimuth_deg % 360, atol=1e-6)
    gap = abs(az[0] - az[1]) % 360
    assert min(gap, 360 - gap) >= 20.0
    for pos in np.concatenate([s.source_positions, s.noise_positions]):
        assert np.all(pos > 0) and np.all(pos < dim)
    assert np.all(np.linalg.norm(s.noise_positions - c, axis=1) >= 0.5)


def test_same_generator_state_same_scene():
    p = load_preset("default")
    a = sample_scene(p, np.random.default_rng([3, 1]))
    b = sample_scene(p, np.random.default_rng([3, 1]))
    c = sample_scene(p, np.random.default_rng([3, 2]))
    assert a.to_meta() == b.to_meta() != c.to_meta()


def test_impossible_geometry_is_reported():
    p = load_preset({"room": {"size_xy": 3.0}, "speakers": {"distance": 2.9}})
    with pytest.raises(VaeAudioError, match="cannot place 2 talkers"):
        sample_scene(p, np.random.default_rng(0))
