"""Benchmark reports: the summary statistics by hand, the CLI writing every output."""

import csv
import json
import math

import pytest

from vae_audio import cli
from vae_audio.bench.report import summarise
from vae_audio.bench.runner import BenchResult


def _row(i, source, method, sdr, seconds=1.0):
    values = dict.fromkeys(("sir", "sar", "si_sdr", "sdr_i", "si_sdr_i"), sdr)
    return {"id": i, "source": source, "method": method, "sdr": sdr, **values,
            "seconds": seconds, "audio_seconds": 4.0, "rss_mb": 10.0 * seconds,
            "cuda_mb": math.nan}  # fmt: skip


def test_summary_averages_talkers_then_mixtures_with_a_t_interval():
    rows = [
        _row("a", "src1", "m", 0.0), _row("a", "src2", "m", 2.0),  # mixture mean 1
        _row("b", "src1", "m", 2.0, 2.0), _row("b", "src2", "m", 2.0, 2.0),  # 2
        _row("c", "src1", "m", 3.0, 3.0), _row("c", "src2", "m", float("nan"), 3.0),  # 3
    ]  # fmt: skip
    (s,) = summarise(BenchResult(rows, [], ("m",), 3, {}))
    assert s["sdr_mean"] == pytest.approx(2.0)
    # t_{0.975, 2} = 4.302653 (tables); sd of (1, 2, 3) = 1
    assert s["sdr_ci95"] == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert s["undefined"] == 6  # one NaN in each of the 6 metric columns
    assert s["rtf"] == pytest.approx((1 + 2 + 3) / 12.0)  # total time / total audio
    assert s["rss_mb"] == 30.0 and math.isnan(s["cuda_mb"])
    assert (s["n_mixtures"], s["n_sources"]) == (3, 6)


def test_cli_writes_every_output(fixture_set, tmp_path, capsys):
    out = tmp_path / "bench"
    code = cli.main(["bench", "--set", str(fixture_set), "--methods", "mixture,oracle-irm",
                     "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    with open(out / "per_file.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["method"], r["source"]) for r in rows] == [
        ("mixture", "src1"), ("mixture", "src2"), ("oracle-irm", "src1"), ("oracle-irm", "src2")
    ]  # fmt: skip
    with open(out / "summary.csv", newline="") as fh:
        summary = list(csv.DictReader(fh))
    assert [s["method"] for s in summary] == ["mixture", "oracle-irm"]
    assert float(summary[1]["sdr_mean"]) > float(summary[0]["sdr_mean"]) + 9.0
    record = json.loads((out / "results.json").read_text())
    assert set(record) == {"settings", "summary", "notes", "rows"} and len(record["rows"]) == 4
    assert record["settings"]["methods"]["oracle-irm"]["n_iter"] is None
    md = (out / "summary.md").read_text()
    assert "| oracle-irm" in md and "SI-SDR (dB)" in md
    assert (out / "bars.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "| mixture" in printed and str(out) in printed
    assert not list(out.glob(".*tmp*"))  # atomic writes leave no temporary file


def test_cli_unknown_method_is_a_one_line_error(fixture_set, tmp_path, capsys):
    code = cli.main(["bench", "--set", str(fixture_set), "--methods", "mixture,fastnmf",
                     "--out", str(tmp_path / "x")])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "unknown method(s) 'fastnmf'" in err and "oracle-mwf" in err and "pra-auxiva" in err
    assert not (tmp_path / "x").exists()
