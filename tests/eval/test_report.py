"""Markdown tables and report files: parse them back and compare with the inputs."""

import csv
import json
import math

import pytest

from vae_audio.eval import EvalResult, markdown_table, summarise, write_reports
from vae_audio.eval.report import one_line_summary, summary_markdown


def _parse(table: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in table.splitlines()]


def test_markdown_table_round_trips_values_and_aligns_numbers():
    rows = [
        {"method": "FastMNMF2", "sdr": 7.12345, "n": 12},
        {"method": "Neural FCA", "sdr": float("nan"), "n": 3},
        ["ILRMA", 10.0, 40],
    ]
    table = markdown_table(rows, ["method", "sdr", "n"], floatfmt=".1f", headers=["", "SDR", "N"])
    lines = table.splitlines()
    assert len({len(line) for line in lines}) == 1  # padded: lines up as plain text
    cells = _parse(table)
    assert cells[0] == ["", "SDR", "N"]
    assert cells[1][0].startswith("---") and not cells[1][0].endswith(":")
    assert cells[1][1].endswith(":") and cells[1][2].endswith(":")  # numbers right-aligned
    assert cells[2:] == [
        ["FastMNMF2", "7.1", "12"],
        ["Neural FCA", "nan", "3"],
        ["ILRMA", "10.0", "40"],
    ]


def test_markdown_table_escapes_pipes_and_checks_row_length():
    assert "a\\|b" in markdown_table([{"x": "a|b"}], ["x"])
    assert markdown_table([{"x": 1}], ["x", "y"]).splitlines()[2].endswith("|     |")
    with pytest.raises(ValueError, match="row 0 has 1 cells for 2 columns"):
        markdown_table([[1]], ["x", "y"])


def _result() -> EvalResult:
    rows = [
        {"id": "a", "source": "src1", "sdr": 10.0, "si_sdr": 9.0},
        {"id": "a", "source": "src2", "sdr": 14.0, "si_sdr": float("nan")},
        {"id": "b", "source": "src1", "sdr": 3.0, "si_sdr": 2.0},
    ]
    columns = ["sdr", "si_sdr"]
    return EvalResult(
        rows=rows,
        columns=["id", "source", *columns],
        summary=summarise(rows, columns),
        n_mixtures=2,
        notes=["PESQ not computed: no package"],
        settings={"est": "E", "ref": "R", "criterion": "sdr", "images": False},
    )


def test_summary_statistics_skip_undefined_values():
    s = _result().summary
    assert s["sdr"].mean == pytest.approx(9.0) and s["sdr"].median == 10.0
    assert (s["si_sdr"].mean, s["si_sdr"].count, s["si_sdr"].undefined) == (5.5, 2, 1)


def test_write_reports_round_trip(tmp_path):
    result = _result()
    paths = write_reports(result, tmp_path / "out")
    with open(paths.csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == ["a", "a", "b"]
    assert float(rows[0]["sdr"]) == 10.0 and math.isnan(float(rows[1]["si_sdr"]))
    data = json.loads(paths.json.read_text())  # strict JSON: NaN became null
    assert data["summary"]["si_sdr"] == {"mean": 5.5, "median": 5.5, "count": 2, "undefined": 1}
    assert data["notes"] == result.notes and data["n_sources"] == 3
    md = paths.markdown.read_text()
    assert md == summary_markdown(result)
    table = [c for c in _parse(md) if len(c) > 4]
    assert table[0] == ["metric", "unit", "mean", "median", "count", "undefined"]
    assert table[2] == ["SDR", "dB", "9.00", "10.00", "3", "0"]
    assert "- PESQ not computed: no package" in md
    assert not list((tmp_path / "out").glob(".*tmp*"))  # atomic writes leave no temp files
    assert one_line_summary(result) == (
        "2 mixtures, 3 sources: SDR 9.00 dB, SI-SDR 5.50 dB; 1 source(s) with undefined "
        "metrics, left out of these means (silent estimates?): a/src2"
    )
