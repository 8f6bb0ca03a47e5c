"""``egs/neural_fca/bench.py amortised``: the stage table of amortised inference."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def test_amortised_times_every_stage(monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("nfca_bench", ROOT / "egs/neural_fca/bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    argv = ["bench.py", "amortised", "--seconds", "1", "--repeats", "1"]
    monkeypatch.setattr(sys, "argv", argv)
    threads = torch.get_num_threads()
    try:
        bench.main()  # sets one thread
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    stages = ["STFT", "encoder", "decoder (PSDs)", "JD updates (5)", "Wiener filter",
              "inverse STFT"]  # fmt: skip
    ms = {}
    for name in [*stages, "sum of the stages"]:
        match = re.search(rf"^\| {re.escape(name)} \| ([0-9.]+) \|", out, re.M)
        assert match, (name, out)
        ms[name] = float(match.group(1))
    assert abs(sum(ms[s] for s in stages) - ms["sum of the stages"]) < 0.1 * len(stages)
    rtf = float(re.search(r"RTF ([0-9.]+)", out).group(1))
    assert 0 < rtf < 10
