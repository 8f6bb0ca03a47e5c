"""The GPU check script (egs/neural_fca/gpu_check.py) end to end on the CPU (``--smoke``):
it prepares its data, trains both published-scale recipes for 2 epochs in bf16-mixed and
times batched separation, and writes its report."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fixtures" / "corpus" / "train.jsonl"


def _script():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "egs/neural_fca/gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_runs_on_the_cpu_and_reports_every_step(tmp_path):
    gpu_check = _script()
    data, out = tmp_path / "data", tmp_path / "out"
    gpu_check.main(["prepare", "--corpus", str(CORPUS), "--out", str(data), "--n-train", "2",
                    "--n-valid", "1", "--jobs", "1"])  # fmt: skip
    ids = [json.loads(line)["id"] for line in (data / "train" / "manifest.jsonl").open()]
    assert len(ids) == 2
    assert sorted(p.name for p in (data / "train" / ids[0]).iterdir()) == ["meta.json", "mix.wav"]
    gpu_check.main(["run", "--data", str(data), "--out", str(out), "--device", "cpu", "--smoke",
                    "--no-tests"])  # fmt: skip
    report = (out / "report.md").read_text()
    for recipe in ("paper", "fastfca_paper"):
        assert f"| {recipe} | 0 | bf16-mixed |" in report
        assert (out / recipe / "model.pt").is_file()
    rows = [
        line for line in report.splitlines() if line.startswith("| shipped") or "FastMNMF2" in line
    ]
    assert len(rows) == 6  # 3 methods x batches of 1 and 2
    assert not list(out.glob("*.tmp"))


def test_gpu_check_refuses_missing_data_and_a_missing_gpu(tmp_path):
    gpu_check = _script()
    with pytest.raises(SystemExit, match="run `prepare` first"):
        gpu_check.main(["run", "--data", str(tmp_path), "--device", "cpu"])
    if not gpu_check.torch.cuda.is_available():
        with pytest.raises(SystemExit, match="no CUDA device"):
            gpu_check.main(["run", "--data", str(tmp_path)])
