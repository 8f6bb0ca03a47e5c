"""Long inputs: memory planning (whole, chunked with a note, or refused with the --chunk to
use), chunk-by-chunk streaming that equals the in-memory chunked separation, block reads
that equal whole-file resampling, and one input's failure not ending the job."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.apps.conftest import FAST, MIXTURE, read, write_cut
from vae_audio import cli
from vae_audio.apps import separate as separate_module
from vae_audio.apps.inputs import InputItem, probe
from vae_audio.apps.methods import Plan
from vae_audio.apps.streaming import BlockReader, plan_chunks
from vae_audio.audio.io import load_audio
from vae_audio.errors import VaeAudioError
from vae_audio.separation import separate
from vae_audio.separation.memory import fit_bytes


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(["separate", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_streamed_chunks_equal_the_in_memory_chunked_separation(tmp_path, capsys):
    code, text, _ = _run(capsys, MIXTURE, "-o", tmp_path / "out", *FAST, "--chunk", "0.8e1")
    assert code == 0 and "1 separated" in text
    code, text, _ = _run(capsys, MIXTURE, "-o", tmp_path / "out3", *FAST, "--chunk", "3")
    assert code == 0
    x, sr = load_audio(MIXTURE)  # [4, 32000]: 2 s, so --chunk 3 is one chunk, 8 is one too
    ref = separate(x, method="fastmnmf2", n_src=2, sr=sr, n_iter=2, chunk_seconds=3.0)
    folder = tmp_path / "out3" / "mix"
    record = json.loads((folder / "separation.json").read_text())
    assert record["settings"]["streamed"] and record["job"]["chunk_s"] == 3.0
    for k in range(2):
        got = torch.from_numpy(read(folder / f"src{k + 1}.wav")[0].T)
        assert torch.equal(got, ref.sources[k])
    assert torch.equal(torch.from_numpy(read(folder / "noise.wav")[0].T), ref.noise)


def test_streaming_over_several_chunks_matches_the_api(tmp_path, capsys):
    """7 s in 2-s chunks with 1-s overlaps: 6 chunks joined while streaming."""
    data, sr = sf.read(MIXTURE, dtype="float32")
    long = np.concatenate([data, data[::-1], data, data[: sr // 2]])  # 7 s
    path = tmp_path / "long.wav"
    sf.write(path, long, sr, subtype="FLOAT")
    code, _, _ = _run(capsys, path, "-o", tmp_path / "out", *FAST, "--chunk", "2")
    assert code == 0
    ref = separate(torch.from_numpy(long.T.copy()), n_src=2, sr=sr, n_iter=2, chunk_seconds=2.0)
    assert ref.objective.shape[0] == 6  # chunks
    folder = tmp_path / "out" / "long"
    for k in range(2):
        got = torch.from_numpy(read(folder / f"src{k + 1}.wav")[0].T)
        torch.testing.assert_close(got, ref.sources[k], rtol=0, atol=0)
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp file left


@pytest.mark.parametrize("file_sr", [48000, 44100, 8000])
def test_block_reads_equal_whole_file_resampling(tmp_path, file_sr):
    rng = np.random.default_rng(0)
    n = int(1.3 * file_sr)
    path = tmp_path / "x.wav"
    sf.write(path, rng.standard_normal((n, 2)).astype(np.float32) * 0.1, file_sr, subtype="FLOAT")
    whole, _ = load_audio(path, sr=16000)
    reader = BlockReader(path, file_sr, 16000, n)
    assert reader.length == whole.shape[1]
    for start, end in [(0, 5000), (4321, 12000), (12000, reader.length), (0, reader.length)]:
        torch.testing.assert_close(reader.read(start, end), whole[:, start:end], atol=2e-6, rtol=0)


def _item(path) -> InputItem:
    item = InputItem(path, path.stem, name=path.stem)
    probe(item)
    return item


def test_memory_plan_runs_whole_chunks_or_refuses_with_the_chunk_to_use(tmp_path):
    item = _item(write_cut(tmp_path / "m.wav", seconds=2.0))
    item.frames = 16000 * 600  # a 10-minute recording, as the header would say
    plan = Plan("fca", 2, sample_rate=16000)
    whole = fit_bytes("fca", 4, 3, item.frames, 128, 512)
    assert plan_chunks(item, plan, None, None).chunk_s is None  # nothing known: as asked
    assert plan_chunks(item, plan, None, 2 * whole).chunk_s is None
    tight = plan_chunks(item, plan, None, whole // 10)
    assert 2 <= tight.chunk_s < 600 and f"{tight.chunk_s:.0f}-s chunks" in tight.note
    # the chosen chunk (1.5x for a merged last chunk) fits the 70 % budget
    assert fit_bytes("fca", 4, 3, int(1.5 * tight.chunk_s * 16000), 128, 512) <= 0.7 * whole / 10
    with pytest.raises(VaeAudioError, match=rf"pass --chunk {tight.chunk_s:.0f}$"):
        plan_chunks(item, plan, 120.0, whole // 10)
    assert plan_chunks(item, plan, 10.0, whole // 10).chunk_s == 10.0
    with pytest.raises(VaeAudioError, match="even in 2-s chunks"):
        plan_chunks(item, plan, None, 1000)


def test_input_too_large_for_memory_is_chunked_with_a_note(tmp_path, capsys, monkeypatch):
    data, sr = sf.read(MIXTURE, dtype="float32")
    path = tmp_path / "m.wav"
    sf.write(path, np.concatenate([data] * 4), sr, subtype="FLOAT")  # 8 s
    need = fit_bytes("fastmnmf2", 4, 3, 8 * sr, 128, 512)
    monkeypatch.setattr("vae_audio.separation.memory.available_bytes", lambda device="cpu": need)
    code, text, err = _run(capsys, path, "-o", tmp_path / "out", *FAST)
    assert code == 0 and "1 separated" in text
    assert "s chunks (choose with --chunk)" in err and str(path.resolve()) in err
    record = json.loads((tmp_path / "out" / "m" / "separation.json").read_text())
    assert record["settings"]["streamed"] and record["settings"]["chunk_seconds"] >= 2


def test_a_failing_input_does_not_end_the_job(cuts, tmp_path, capsys, monkeypatch):
    real = separate_module._BatchRunner._run

    def flaky(self, batch):
        if batch[0].name == "m1":
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 9 GB")
        if batch[0].name == "m2":
            raise ValueError("a bug")
        return real(self, batch)

    monkeypatch.setattr(separate_module._BatchRunner, "_run", flaky)
    code, text, err = _run(capsys, *cuts, "-o", tmp_path / "out", *FAST)
    assert code == 1 and "1 separated, 0 skipped (outputs exist), 2 failed" in text
    lines = [line for line in err.splitlines() if "failed:" in line]
    assert len(lines) == 2
    assert "m1.wav" in lines[0] and "ran out of memory; pass --chunk" in lines[0]
    assert "m2.wav" in lines[1] and "ValueError: a bug" in lines[1]
    assert (tmp_path / "out" / "m0" / "separation.json").is_file()


def test_a_chunk_failing_midway_leaves_no_output(tmp_path, capsys, monkeypatch):
    data, sr = sf.read(MIXTURE, dtype="float32")
    path = tmp_path / "long.wav"
    sf.write(path, np.concatenate([data, data]), sr, subtype="FLOAT")  # 4 s
    calls = []
    real = separate

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise VaeAudioError("the fit diverged")
        return real(*args, **kwargs)

    monkeypatch.setattr("vae_audio.separation.separate", failing)
    code, text, err = _run(capsys, path, "-o", tmp_path / "out", *FAST, "--chunk", "2")
    assert code == 1 and "1 failed" in text and "the fit diverged" in err
    assert list((tmp_path / "out" / "long").iterdir()) == []
