import json

import pytest

from vae_audio.data.manifest import read_manifest, write_manifest
from vae_audio.errors import VaeAudioError


def test_paths_inside_are_relative_outside_absolute(tmp_path):
    inside = tmp_path / "set" / "wav" / "a.wav"
    outside = tmp_path / "elsewhere" / "b.wav"
    manifest = tmp_path / "set" / "m.jsonl"
    write_manifest(
        manifest,
        [
            {"path": str(inside), "speaker": "x"},
            {"path": str(outside), "speaker": "y", "split": "valid"},
        ],
    )
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert lines[0]["path"] == "wav/a.wav"
    assert lines[1]["path"] == str(outside)
    back = read_manifest(manifest)
    assert [e["path"] for e in back] == [str(inside), str(outside)]
    assert [e["speaker"] for e in read_manifest(manifest, split="valid")] == ["y"]
    assert [e["speaker"] for e in read_manifest(manifest, split="train")] == ["x"]


def test_lists_of_paths_round_trip(tmp_path):
    manifest = tmp_path / "m.jsonl"
    srcs = [str(tmp_path / "0" / f"src{k}.wav") for k in (1, 2)]
    write_manifest(manifest, [{"mix": str(tmp_path / "0" / "mix.wav"), "sources": srcs}])
    assert json.loads(manifest.read_text())["sources"] == ["0/src1.wav", "0/src2.wav"]
    assert read_manifest(manifest, require=("mix", "sources"))[0]["sources"] == srcs


@pytest.mark.parametrize(
    "text, match",
    [
        ('{"path": "a.wav"}\nnot json\n', "line 2"),
        ("[1, 2]\n", "line 1"),
        ('{"speaker": "a"}\n', "lacks key"),
        ("\n", "no entries"),
    ],
)
def test_bad_manifests_name_the_line(tmp_path, text, match):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(text)
    with pytest.raises(VaeAudioError, match=match):
        read_manifest(manifest)


def test_missing_manifest_says_how_to_build_one(tmp_path):
    with pytest.raises(VaeAudioError, match="vae-audio corpus"):
        read_manifest(tmp_path / "nope.jsonl")
