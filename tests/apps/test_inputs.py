"""Input discovery, output names and rank sharding of `vae-audio separate`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.apps.conftest import MANIFEST, write_cut
from vae_audio.apps.inputs import (
    InputItem,
    assign_names,
    collect_inputs,
    distributed_env,
    shard,
)
from vae_audio.errors import VaeAudioError


def _names(paths: list[str], keys: list[str] | None = None) -> list[str]:
    items = [
        InputItem(Path(p), k)
        for p, k in zip(paths, keys or [Path(p).stem for p in paths], strict=True)
    ]
    assign_names(items)
    return [i.name for i in items]


def test_colliding_stems_get_the_fewest_parent_folders_that_tell_them_apart():
    assert _names(["/d/a/mix.wav", "/d/b/mix.wav", "/d/b/other.wav"]) == [
        "a_mix",
        "b_mix",
        "other",
    ]
    assert _names(["/x/s1/a/mix.wav", "/x/s2/a/mix.wav"]) == ["s1_a_mix", "s2_a_mix"]
    # an item whose stem is another's prefixed name keeps its own name
    assert _names(["/d/a/rec.wav", "/d/a/sub/rec.wav", "/d/a/sub_rec.wav"]) == [
        "a_rec",
        "a_sub_rec",
        "sub_rec",
    ]
    # names are a function of the whole list, not of the order: same set, same names
    assert _names(["/d/b/mix.wav", "/d/a/mix.wav"]) == ["b_mix", "a_mix"]


def test_equal_names_after_sanitising_are_numbered_in_input_order():
    assert _names(["/d/x.wav", "/d/y.wav"], keys=["a/b", "a b"]) == ["d_a_b", "d_a_b-2"]


def test_folder_input_is_recursive_and_skips_the_output_folder_and_hidden_files(tmp_path):
    root = tmp_path / "data"
    a = write_cut(root / "a" / "mix.wav")
    b = write_cut(root / "b" / "mix.flac")
    write_cut(root / "out" / "old" / "src1.wav")  # a previous run's output
    write_cut(root / "a" / ".mix.tmp.wav")  # a temporary file
    (root / "notes.txt").write_text("not audio")
    items = collect_inputs([root, a], exclude=root / "out")  # `a` twice: separated once
    assert [i.path for i in items] == [a.resolve(), b.resolve()]
    assert [i.name for i in items] == ["a_mix", "b_mix"]


def test_simulated_set_manifest_names_outputs_by_id():
    items = collect_inputs([MANIFEST])
    assert [i.name for i in items] == ["000000"]
    assert items[0].path == (MANIFEST.parent / "000000" / "mix.wav").resolve()


def test_corpus_manifest_uses_the_path_field():
    corpus = MANIFEST.parents[1] / "corpus" / "train.jsonl"
    items = collect_inputs([corpus])
    assert items and all(i.path.is_file() and i.name == i.path.stem for i in items)


def test_missing_input_and_empty_folder_name_the_path(tmp_path):
    with pytest.raises(VaeAudioError, match="nope.wav' does not exist"):
        collect_inputs([tmp_path / "nope.wav"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(VaeAudioError, match="empty' holds no audio file"):
        collect_inputs([tmp_path / "empty"])


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, (0, 1, 0)),
        ({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}, (3, 4, 1)),
        ({"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1"}, (5, 8, 1)),
        ({"RANK": "1", "WORLD_SIZE": "2", "SLURM_PROCID": "0", "SLURM_NTASKS": "1"}, (1, 2, 0)),
    ],
)
def test_rank_variables(env, expected):
    assert distributed_env(env) == expected


@pytest.mark.parametrize(
    "env", [{"RANK": "2", "WORLD_SIZE": "2"}, {"RANK": "x", "WORLD_SIZE": "2"}]
)
def test_bad_rank_variables_are_refused(env):
    with pytest.raises(VaeAudioError, match="RANK"):
        distributed_env(env)


@pytest.mark.parametrize("world", [1, 2, 3, 7])
def test_shards_are_disjoint_and_cover_the_inputs(world):
    items = [InputItem(Path(f"/d/{k}.wav"), str(k)) for k in range(10)]
    shards = [shard(items, r, world) for r in range(world)]
    flat = [i.path for s in shards for i in s]
    assert sorted(flat) == sorted(i.path for i in items) and len(flat) == len(set(flat))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
