import numpy as np
import pytest
import yaml

from vae_audio.data.presets import PRESET_DIR, load_preset
from vae_audio.data.scene import array_offsets
from vae_audio.errors import VaeAudioError


def test_default_preset_matches_its_documentation():
    p = load_preset("default")
    assert p.name == "default" and p.sample_rate == 16000
    assert (p.array.kind, p.array.n_mics, p.array.radius) == ("circular", 4, 0.05)
    assert p.room.size_xy == (3.0, 8.0) and p.room.rt60 == (0.15, 0.6)
    assert p.speakers.count == (2, 2) and p.speakers.distance == (0.75, 2.5)
    assert p.noise.snr_db == (5.0, 30.0) and p.noise.n_sources == (16, 32)


def test_user_file_overrides_only_its_keys(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"array": {"kind": "linear", "n_mics": 6}, "length": 3}))
    p = load_preset(path)
    assert p.name == str(path)
    assert (p.array.kind, p.array.n_mics, p.array.spacing) == ("linear", 6, 0.05)
    assert p.length == (3.0, 3.0) and p.room == load_preset("default").room


def test_round_trip_through_dict():
    p = load_preset({"speakers": {"count": [1, 3]}})
    assert load_preset(p.to_dict()) == p


def test_array_geometries():
    circ = array_offsets(load_preset({"array": {"n_mics": 6, "radius": 0.1}}).array)
    np.testing.assert_allclose(np.linalg.norm(circ, axis=1), 0.1)
    lin = array_offsets(load_preset({"array": {"kind": "linear", "n_mics": 3}}).array)
    np.testing.assert_allclose(lin[:, 0], [-0.05, 0.0, 0.05])
    offs = [[0, 0, 0], [0.1, 0, 0], [0, 0.1, 0.02]]
    custom = load_preset({"array": {"kind": "custom", "offsets": offs}})
    assert custom.array.n_mics == 3
    np.testing.assert_allclose(array_offsets(custom.array), offs)


@pytest.mark.parametrize(
    "override, match",
    [
        ({"rooom": {}}, "unknown key 'rooom'"),
        ({"room": {"rt6": 0.3}}, "unknown key 'room.rt6'"),
        ({"room": {"rt60": [0.6, 0.2]}}, "'room.rt60' has low > high"),
        ({"room": {"rt60": "long"}}, "'room.rt60' must be a number"),
        ({"room": 3}, "'room' must be a mapping"),
        ({"array": {"n_mics": 9}}, "'array.n_mics' must be in"),
        ({"array": {"n_mics": 2.5}}, "'array.n_mics' must be an integer"),
        ({"array": {"kind": "spiral"}}, "'array.kind' must be one of"),
        ({"array": {"kind": "custom"}}, "'array.offsets' must be a list"),
        ({"array": {"kind": "custom", "offsets": [[0, 0, 0]]}}, "2-8 microphones"),
        ({"array": {"radius": 0.6}}, "'array.wall_margin' must exceed"),
        ({"speakers": {"count": 5}}, "'speakers.count' must be in"),
        ({"noise": {"kind": "brown"}}, "'noise.kind' must be one of"),
        ({"length": [1, 2, 3]}, "'length' must be a number or"),
        ({"array": {"random_rotation": "no"}}, "'array.random_rotation' must be true or false"),
    ],
)
def test_invalid_presets_name_the_key(override, match):
    with pytest.raises(VaeAudioError, match=match):
        load_preset(override)


def test_bad_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("room: [unclosed\n")
    with pytest.raises(VaeAudioError, match="not valid YAML"):
        load_preset(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(VaeAudioError, match="must be a YAML mapping"):
        load_preset(listing)
    with pytest.raises(VaeAudioError, match="neither a built-in preset"):
        load_preset("no_such_preset")
    assert (PRESET_DIR / "default.yaml").is_file()
