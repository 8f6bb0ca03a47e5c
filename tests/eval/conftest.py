"""A tiny simulated set and separator outputs written to disk, in the layouts the tools use."""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import butter, sosfilt
from threadpoolctl import threadpool_limits


@dataclass
class FakeSet:
    ref: Path  # SET/ with manifest.jsonl
    est: Path  # EST/<id>/src<k>.wav
    ids: list[str]
    truth: dict  # id -> {reference source name: estimate file name}
    dropped: dict  # id -> estimate file names not matching any reference


def write_fake_set(
    root: Path,
    *,
    n_mix: int = 2,
    n_ref: int = 2,
    extra: int = 1,
    sr: int = 8000,
    n_samples: int = 4000,
    n_mics: int = 2,
    est_noise: float = 0.01,
    seed: int = 0,
) -> FakeSet:
    """Random low-passed speaker images; estimates are the images plus small noise, shuffled, with
    ``extra`` further estimates holding the noise image (as a separator's noise slot)."""
    rng = np.random.default_rng(seed)
    lowpass = butter(6, 0.6, output="sos")  # band-limited like speech: cut at 0.6 x Nyquist
    ref_dir, est_dir = root / "set", root / "est"
    entries, truth, dropped, ids = [], {}, {}, []
    for i in range(n_mix):
        mid = f"utt{i:02d}"
        ids.append(mid)
        (ref_dir / mid).mkdir(parents=True)
        images = [
            sosfilt(lowpass, rng.standard_normal((n_samples, n_mics)), axis=0) for _ in range(n_ref)
        ]
        images = [0.1 * x / x.std() for x in images]  # [S, M] each, RMS 0.1
        noise = 0.02 * rng.standard_normal((n_samples, n_mics))
        sf.write(ref_dir / mid / "mix.wav", sum(images) + noise, sr, subtype="FLOAT")
        for k, img in enumerate(images):
            sf.write(ref_dir / mid / f"src{k + 1}.wav", img, sr, subtype="FLOAT")
        sf.write(ref_dir / mid / "noise.wav", noise, sr, subtype="FLOAT")
        (ref_dir / mid / "meta.json").write_text("{}")
        entries.append(
            {
                "id": mid,
                "mix": f"{mid}/mix.wav",
                "sources": [f"{mid}/src{k + 1}.wav" for k in range(n_ref)],
                "noise": f"{mid}/noise.wav",
                "meta": f"{mid}/meta.json",
            }
        )
        outputs = [img + est_noise * rng.standard_normal(img.shape) for img in images]
        outputs += [noise] * extra
        order = rng.permutation(len(outputs))  # file j+1 holds output order[j]
        (est_dir / mid).mkdir(parents=True)
        for j, o in enumerate(order):
            sf.write(est_dir / mid / f"src{j + 1}.wav", outputs[o], sr, subtype="FLOAT")
        sf.write(est_dir / mid / "noise.wav", noise, sr, subtype="FLOAT")  # must be ignored
        name = {int(o): f"src{j + 1}.wav" for j, o in enumerate(order)}
        truth[mid] = {f"src{k + 1}": name[k] for k in range(n_ref)}
        dropped[mid] = sorted(name[o] for o in range(n_ref, n_ref + extra))
    (ref_dir / "manifest.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    return FakeSet(ref_dir, est_dir, ids, truth, dropped)


@pytest.fixture
def fake_set(tmp_path) -> FakeSet:
    return write_fake_set(tmp_path)


@pytest.fixture
def make_fake_set(tmp_path):
    """``make_fake_set(**options)`` -> :class:`FakeSet` in a fresh folder of ``tmp_path``."""
    count = iter(range(1000))
    return lambda **options: write_fake_set(tmp_path / f"set{next(count)}", **options)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    # mir_eval's small least-squares solves run faster on one thread than on two contended
    # ones; this keeps the suite quick on a busy 2-core machine without changing results.
    with threadpool_limits(1):
        yield
