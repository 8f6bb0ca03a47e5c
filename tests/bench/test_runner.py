"""run_bench: identical scores for any number of worker processes, talker selection."""

import math

import pytest

from vae_audio.bench import BenchSettings, resolve_methods, run_bench
from vae_audio.bench.runner import COST_COLUMNS
from vae_audio.errors import VaeAudioError

METHODS = "mixture,oracle-irm,pra-auxiva,pra-fastmnmf2,fastmnmf2"


def _scores(result):
    return [{k: v for k, v in r.items() if k not in COST_COLUMNS} for r in result.rows]


def test_jobs_do_not_change_the_results(fixture_set):
    settings = BenchSettings(n_iter=4)
    one = run_bench(fixture_set, METHODS, settings, jobs=1, progress=False)
    two = run_bench(fixture_set, METHODS, settings, jobs=2, progress=False)
    assert _scores(one) == _scores(two)  # exact: same seeds, one thread per run
    assert [r["method"] for r in one.rows] == [m for m in METHODS.split(",") for _ in "12"]
    by = {r["method"]: r for r in one.rows}
    assert by["pra-auxiva"]["n_out"] == 4 and by["pra-auxiva"]["n_est"] == 4  # M outputs
    assert by["fastmnmf2"]["n_out"] == 3 and by["pra-fastmnmf2"]["n_out"] == 3  # + noise slot
    for r in one.rows:
        dropped = [d for d in r["dropped"].split(";") if d]
        assert len(dropped) == r["n_out"] - 2  # 2 talkers kept of n_out candidates
        assert r["rtf"] == pytest.approx(r["seconds"] / 2.0)
        assert r["rss_mb"] >= 0.0 and r["rss_measure"] in ("vmhwm", "ru_maxrss")


def test_blind_selection_keeps_n_src_outputs(fixture_set):
    settings = BenchSettings(n_iter=3, select="blind")
    result = run_bench(fixture_set, "fastmnmf2,pra-ilrma", settings, progress=False)
    for r in result.rows:
        assert r["n_est"] == 2
        if r["method"] == "fastmnmf2":  # separate() puts its noise slot last
            assert r["est"] in (0, 1) and r["dropped"] == "2"


def test_method_names_are_checked():
    assert resolve_methods(" mixture, oracle-mwf,mixture ") == ("mixture", "oracle-mwf")
    with pytest.raises(
        VaeAudioError, match=r"unknown method\(s\) 'nope'; valid names: .*pra-ilrma"
    ):
        resolve_methods("mixture,nope")


def test_bad_settings_are_rejected(fixture_set):
    with pytest.raises(VaeAudioError, match="jobs must be a positive integer"):
        run_bench(fixture_set, "mixture", jobs=0, progress=False)
    with pytest.raises(VaeAudioError, match="selection"):
        run_bench(fixture_set, "mixture", BenchSettings(select="oracle"), progress=False)


def test_iteration_suffix_runs_one_method_at_several_settings(fixture_set):
    with pytest.raises(VaeAudioError, match="non-negative integer"):
        resolve_methods("fastmnmf2@x")
    with pytest.raises(VaeAudioError, match="have none; drop the '@N'"):
        resolve_methods("oracle-mwf@3")
    methods = "fastmnmf2@2,fastmnmf2@4,fastmnmf2"
    result = run_bench(fixture_set, methods, BenchSettings(n_iter=4), progress=False)

    def sdr(rows, method):
        return [r["sdr"] for r in rows if r["method"] == method]

    four = run_bench(fixture_set, "fastmnmf2", BenchSettings(n_iter=4), progress=False).rows
    two = run_bench(fixture_set, "fastmnmf2", BenchSettings(n_iter=2), progress=False).rows
    rows = result.rows
    assert sdr(rows, "fastmnmf2@4") == sdr(rows, "fastmnmf2") == sdr(four, "fastmnmf2")
    assert sdr(rows, "fastmnmf2@2") == sdr(two, "fastmnmf2") != sdr(four, "fastmnmf2")
    assert result.settings["methods"]["fastmnmf2@2"]["n_iter"] == 2


def test_keep_going_records_a_failed_run_and_goes_on(fixture_set):
    settings = BenchSettings(n_src=5, n_iter=2, keep_going=True)  # 5 talkers > M = 4 mics
    result = run_bench(fixture_set, "pra-auxiva,mixture", settings, progress=False)
    failed = [r for r in result.rows if r["method"] == "pra-auxiva"]
    assert failed and all(math.isnan(r["sdr"]) and "at most M = 4" in r["error"] for r in failed)
    assert all(math.isfinite(r["sdr"]) and r["error"] == "" for r in result.rows
               if r["method"] == "mixture")  # fmt: skip
    assert any("pra-auxiva failed on 1 mixture(s)" in n for n in result.notes)
    with pytest.raises(VaeAudioError, match="pra-auxiva on mixture"):
        run_bench(fixture_set, "pra-auxiva", BenchSettings(n_src=5, n_iter=2), progress=False)
