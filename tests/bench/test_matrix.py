"""The condition matrix: its file, its designs, simulation of its cells and its reports."""

import math
from pathlib import Path

import pytest
import yaml

from vae_audio.bench.matrix import AXES, Cell, MatrixSets, load_matrix, simulate_cells
from vae_audio.bench.matrix_report import cell_table, matrix_markdown, means, target_check
from vae_audio.bench.runner import BenchResult
from vae_audio.data.presets import load_preset
from vae_audio.errors import VaeAudioError

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "bench" / "matrix.yaml"
CORPUS = ROOT / "tests" / "fixtures" / "corpus" / "train.jsonl"


def _differences(a: Cell, b: Cell) -> int:
    return sum(x != y for x, y in zip(a.levels, b.levels, strict=True))


def test_the_shipped_matrix_covers_every_level_one_factor_at_a_time():
    spec = load_matrix(RECIPE)
    small, full = spec.cells("small"), spec.cells("full")
    sizes = {a: len(spec.axes[a]) for a in AXES}
    assert sizes == {"talkers": 2, "snr": 3, "rt60": 3, "array": 4, "noise": 2, "speech": 2}
    assert len(full) == math.prod(sizes.values()) == len(set(full))
    assert set(small) <= set(full)
    bases = [Cell(tuple((a, b[a]) for a in AXES)) for b in spec.bases]
    # every small cell is a base or differs from one base in exactly one axis
    assert all(min(_differences(c, b) for b in bases) <= 1 for c in small)
    for axis in AXES:  # every level of every axis is run
        assert {c.level(axis) for c in small} == set(spec.axes[axis])
    assert len(small) == len(bases) * (1 + sum(sizes[a] - 1 for a in spec.vary))


def test_cell_presets_are_valid_and_seeds_depend_on_the_cell_only():
    spec = load_matrix(RECIPE)
    for cell in spec.cells("small"):
        preset = load_preset(spec.preset(cell))
        assert preset.speakers.count == (spec.talkers(cell),) * 2
        assert list(preset.noise.snr_db) == list(spec.axes["snr"][cell.level("snr")])
        assert list(preset.room.rt60) == list(spec.axes["rt60"][cell.level("rt60")])
        assert preset.array.n_mics == spec.axes["array"][cell.level("array")]["n_mics"]
        assert preset.speakers.min_speech_s == spec.min_speech_s
    a, b = spec.cells("small")[:2]
    assert spec.cell_seed(a) != spec.cell_seed(b)
    assert spec.cell_seed(a) == load_matrix(RECIPE).cell_seed(a)
    assert spec.cell_seed(a, seed=1) != spec.cell_seed(a)


def _write(tmp_path, **changes) -> Path:
    raw = yaml.safe_load(RECIPE.read_text())
    for key, value in changes.items():
        raw[key] = value
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"peers": ["pra-ilrma", "nope"]}, "'peers' must name methods"),
        ({"length": [5.0, 4.0]}, "'length' must be a band"),
        ({"reference": "fca"}, "'reference' must be one of the methods"),
        ({"typo": 1}, "'typo' is not a matrix key"),
        ({"design": {"bases": [{"talkers": "2"}], "vary": []}}, "must name a level of each"),
        ({"mixtures_per_cell": 0}, "'mixtures_per_cell' must be a positive integer"),
    ],
)
def test_bad_matrix_files_get_one_line(tmp_path, changes, message):
    with pytest.raises(VaeAudioError, match=message):
        load_matrix(_write(tmp_path, **changes))


def test_bad_levels_get_one_line(tmp_path):
    raw = yaml.safe_load(RECIPE.read_text())
    raw["axes"]["snr"]["0-10"] = [10, 0]
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(VaeAudioError, match="'axes.snr.0-10' must be a band"):
        load_matrix(path)


def test_cells_are_simulated_and_cells_beyond_the_corpus_voices_are_skipped(tmp_path):
    from vae_audio.data.manifest import read_manifest, write_manifest

    lines = read_manifest(CORPUS)
    two = sorted({e["speaker"] for e in lines})[:2]
    corpus = write_manifest(tmp_path / "two.jsonl", [e for e in lines if e["speaker"] in two])
    raw = yaml.safe_load(RECIPE.read_text())
    raw["axes"]["speech"] = {"tts": {"corpus": str(corpus), "split": "train"}}
    raw["axes"]["talkers"] = {"2": 2, "3": 3}
    raw["design"] = {
        "bases": [{"talkers": "2", "snr": "20-30", "rt60": "0.15-0.3", "array": "pair2",
                   "noise": "point", "speech": "tts"}],
        "vary": ["talkers"],
    }  # fmt: skip
    raw["length"], raw["min_speech_s"] = [1.5, 1.5], 1.4
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(raw))
    spec = load_matrix(path)
    cells = spec.cells()
    sets = simulate_cells(spec, tmp_path / "out", cells, 1, progress=False)
    assert [c.name for c in sets.cells] == [cells[0].name]
    assert sets.skipped == {cells[1].name: "3 talkers, but the speech corpus has 2 voices"}

    (entry,) = read_manifest(sets.manifest, require=("id", "mix", "cell"))
    assert entry["id"].startswith(cells[0].name + "/") and entry["channels"] == 2
    meta = yaml.safe_load(Path(entry["meta"]).read_text())
    assert meta["snr_db"] >= 20 and 0.1 <= meta["rt60"] <= 0.4
    # the fixture utterances last 1.2-1.8 s: min_speech_s 1.4 joins a second one to the short
    assert all("paths" in u for u in meta["utterances"] if _duration(u["path"]) < 1.4)
    again = simulate_cells(spec, tmp_path / "out", cells, 1, progress=False)  # reused
    assert again.manifest.read_text() == sets.manifest.read_text()


def test_simulate_only_builds_the_cells_and_runs_nothing(tmp_path, capsys):
    from vae_audio import cli
    from vae_audio.data.manifest import read_manifest

    raw = yaml.safe_load(RECIPE.read_text())
    raw["axes"]["speech"] = {"tts": {"corpus": str(CORPUS), "split": "train"}}
    raw["design"] = {
        "bases": [{"talkers": "2", "snr": "20-30", "rt60": "0.15-0.3", "array": "pair2",
                   "noise": "point", "speech": "tts"}],
        "vary": ["snr"],
    }  # fmt: skip
    raw["length"], raw["min_speech_s"], raw["mixtures_per_cell"] = [1.5, 1.5], 0.0, 1
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "out"
    argv = ["bench", "--matrix", str(path), "--simulate-only", "--out", str(out), "-q"]
    assert cli.main([*argv, "--seed", "5"]) == 0
    entries = read_manifest(out / "manifest.jsonl", require=("id", "mix", "cell"))
    cells = load_matrix(path).cells()
    assert sorted(e["cell"] for e in entries) == sorted(c.name for c in cells)  # 1 per cell
    assert all(Path(e["mix"]).is_file() for e in entries)
    assert not (out / "per_file.csv").exists() and not (out / "matrix.md").exists()
    assert f"{len(cells)} cells x 1 mixtures" in capsys.readouterr().out
    assert cli.main([*argv, "--methods", "mixture"]) == 2
    assert "--simulate-only runs no method" in capsys.readouterr().err


def _duration(path: str) -> float:
    import soundfile as sf

    return sf.info(path).duration


def _result(values: dict[tuple[str, str], list[float]]) -> tuple[BenchResult, MatrixSets]:
    """A bench result: per (mixture id, method) the SDRs of its talkers."""
    rows, cell_of = [], {}
    cells = {}
    for (mix_id, method), sdrs in values.items():
        cell_name = mix_id.split("/")[0]
        talkers = len(sdrs)
        cell = cells.setdefault(
            cell_name,
            Cell((("talkers", str(talkers)), ("snr", cell_name), ("rt60", "a"), ("array", "b"),
                  ("noise", "c"), ("speech", "d"))),
        )  # fmt: skip
        cell_of[mix_id] = cell
        for k, v in enumerate(sdrs):
            scores = {"sdr": v, "si_sdr": v - 1, "sdr_i": v + 1}
            cost = {"seconds": 2.0, "audio_seconds": 4.0}
            rows.append({"id": mix_id, "method": method, "source": f"src{k}", **scores, **cost})
    methods = tuple(dict.fromkeys(m for _, m in values))
    result = BenchResult(rows, [], methods, len(cell_of), {})
    return result, MatrixSets(Path("m.jsonl"), list(cells.values()), cell_of, {})


class _Spec:
    peers = ("p1", "p2")
    reference = "auto"

    @staticmethod
    def talkers(cell):
        return int(cell.level("talkers"))


def test_cell_table_means_and_deltas_against_hand_computed_values():
    result, sets = _result({
        ("x/0", "auto"): [6.0, 8.0], ("x/1", "auto"): [4.0, float("nan")],
        ("x/0", "p1"): [1.0, 3.0], ("x/1", "p1"): [3.0, 5.0],
        ("x/0", "p2"): [2.0, 2.0], ("x/1", "p2"): [2.0, 2.0],
        ("y/0", "auto"): [1.0, 1.0, 1.0], ("y/0", "p1"): [0.0, 0.0, 0.0],
        ("y/0", "p2"): [2.0, 2.0, 2.0],
    })  # fmt: skip
    table = cell_table(result, sets, _Spec)
    row = {(r["snr"], r["method"]): r for r in table.rows}  # snr holds the test cell name
    # cell x: auto = mean(7, 4) (the NaN talker is left out of its mixture's mean)
    assert row["x", "auto"]["sdr"] == pytest.approx(5.5)
    assert row["x", "p1"]["sdr"] == pytest.approx(3.0) and row["x", "p2"]["sdr"] == 2.0
    assert row["x", "auto"]["best_peer"] == 3.0 and row["x", "auto"]["delta"] == 2.5
    assert row["x", "auto"]["si_sdr"] == pytest.approx(4.5) and row["x", "auto"]["rtf"] == 0.5
    assert row["y", "auto"]["delta"] == pytest.approx(-1.0)  # p2 is the best peer there
    m = means(table)["auto"]
    assert m["sdr"] == pytest.approx((5.5 + 1.0) / 2) and m["worst"] == pytest.approx(-1.0)
    assert means(table, 2)["auto"]["delta"] == pytest.approx(2.5)
    checks = {what: (value, ok) for what, value, _, ok in target_check(table)}
    assert checks["2-talker mean"] == (pytest.approx(2.5), False)  # target +3 dB
    assert checks["3-talker mean"] == (pytest.approx(-1.0), False)
    assert checks["worst cell"] == (pytest.approx(-1.0), False)
    text = matrix_markdown(table)
    assert "2-talker mean: +2.50 (target ≥ +3.0): NOT met" in text
    assert "5.50 (+2.5)" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--set", "x", "--matrix", str(RECIPE)], "exactly one of --set DIR and --matrix FILE"),
        ([], "exactly one of --set DIR and --matrix FILE"),
        (["--matrix", str(RECIPE), "--n-src", "2"], "drop --select and --n-src"),
        (["--matrix", str(RECIPE), "--methods", "auto,mixture"], "must keep the matrix's peers"),
        (["--matrix", "nope.yaml"], "cannot read matrix 'nope.yaml'"),
        (["--set", "x", "--methods", "mixture", "--full"], "--full selects the full grid"),
        (["--set", "x", "--methods", "mixture", "--simulate-only"], "builds the cells of a"),
    ],
)
def test_bench_cli_errors_are_one_line(argv, message, capsys):
    from vae_audio import cli

    assert cli.main(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
