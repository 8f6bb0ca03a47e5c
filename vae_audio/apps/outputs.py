"""Output folders of ``vae-audio separate``: ``OUTDIR/<name>/src1.wav ... srcN.wav``
(``[S, M]`` float32 WAV, speaker images at every mic, loudest first), ``noise.wav`` when the
method has a noise slot, ``spectrogram.png`` with ``--plot``, and ``separation.json`` (input,
method, settings, timings; written last).

Every file is written atomically and never onto an input. ``separation.json`` marks a
finished folder: a folder is "done" when it exists and every file it lists is present, so an
interrupted run redoes exactly the unfinished inputs. It also records the job settings that
shape the output (method, speakers, iterations, chunking, seed, the model file's SHA-256), so
outputs made with other settings, e.g. by a model since retrained, are redone, not kept. If
writing a folder fails half-way, the files already written for it are removed again (no
partial output sets). Long inputs separated chunk by chunk go through
:class:`StreamingOutputs`, which writes each joined block as it comes and never holds a whole
output.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from vae_audio.errors import VaeAudioError
from vae_audio.fileio import atomic_write, atomic_write_text, commit_temp, new_temp

MARKER = "separation.json"
PLOT = "spectrogram.png"


def finished_job(folder: Path) -> dict | None:
    """The ``job`` settings of the finished separation in ``folder`` (``{}`` if it recorded
    none), or None when the folder holds no finished separation (module docstring)."""
    try:
        record = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        files = record["files"]
        done = all((folder / f).is_file() for f in files)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return dict(record.get("job") or {}) if done else None


def _previous_files(folder: Path) -> list[str]:
    try:
        return list(json.loads((folder / MARKER).read_text(encoding="utf-8"))["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return []


def write_outputs(
    folder: Path,
    sources: torch.Tensor,
    noise: torch.Tensor | None,
    sr: int,
    record: dict,
    *,
    protect: Iterable[Path] = (),
    mixture: torch.Tensor | None = None,
    stft=None,
) -> list[Path]:
    """Write one input's estimates ``sources [N, M, S]`` and ``noise [M, S]`` (or None) at
    ``sr`` Hz, the spectrogram of ``mixture [M, S]`` and every estimate when ``mixture`` is
    given, and ``record`` (plus the file list) as ``separation.json``. Returns the paths."""
    from vae_audio.audio.io import save_audio

    wavs = {f"src{k + 1}.wav": sources[k] for k in range(sources.shape[0])}
    if noise is not None:
        wavs["noise.wav"] = noise
    for name, wav in wavs.items():
        if not bool(torch.isfinite(wav).all()):
            raise VaeAudioError(
                f"separating '{record.get('input')}' gave NaN/Inf samples in {name}; try "
                "--method fastmnmf2, fewer --iters, or check the recording's levels"
            )
    protect = list(protect)
    stale = [f for f in _previous_files(folder) if f not in wavs and f != PLOT]
    with contextlib.suppress(FileNotFoundError):
        (folder / MARKER).unlink()  # an interrupted overwrite must not look finished
    written: list[Path] = []
    try:
        for name, wav in wavs.items():
            written.append(save_audio(folder / name, wav, sr, protect=protect))
        if mixture is not None:
            rows = [("mixture (mic 0)", mixture[0])]
            rows += [(f"{n.removesuffix('.wav')} (mic 0)", w[0]) for n, w in wavs.items()]
            written.append(plot_spectrograms(folder / PLOT, rows, stft, protect=protect))
        record = {**record, "files": [p.name for p in written]}
        atomic_write_text(
            folder / MARKER, json.dumps(record, indent=2, default=str) + "\n", protect=protect
        )
        written.append(folder / MARKER)
    except BaseException:
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    for name in stale:  # e.g. src3.wav from an earlier run with more speakers
        with contextlib.suppress(OSError):
            (folder / name).unlink()
    return written


class StreamingOutputs:
    """The output folder of one input, written block by block (``--chunk``).

    Each slot's WAV grows in a temporary file (named as :func:`vae_audio.fileio.new_temp`
    names them, so a killed run's leftovers are cleaned up by the next); :meth:`finish` puts
    the speakers in order of energy (loudest first, as :func:`~vae_audio.separation.separate`
    does), moves the files onto their names and writes ``separation.json`` last;
    :meth:`abort` deletes the temporary files. Memory: one block at a time.
    """

    def __init__(
        self, folder: Path, n_src: int, noise: bool, sr: int, channels: int, *,
        protect: Iterable[Path] = (), source: str = "",
    ) -> None:  # fmt: skip
        import soundfile as sf

        self.folder, self.sr, self.protect, self.source = folder, sr, list(protect), source
        self.names = [f"src{k + 1}.wav" for k in range(n_src)] + (["noise.wav"] if noise else [])
        self.energy = [0.0] * n_src
        self.temps: list[Path] = []
        self.files = []
        with contextlib.suppress(FileNotFoundError):
            (folder / MARKER).unlink()  # an interrupted overwrite must not look finished
        try:
            for name in self.names:
                tmp = new_temp(folder / name, protect=self.protect)
                self.temps.append(tmp)
                self.files.append(sf.SoundFile(tmp, "w", sr, channels, "FLOAT", format="WAV"))
        except BaseException:
            self.abort()
            raise

    def write(self, speakers: torch.Tensor, noise: torch.Tensor | None) -> None:
        """Append ``speakers [N, M, L]`` and ``noise [M, L]`` (or None)."""
        blocks = [*speakers] + ([] if noise is None else [noise])
        for name, fh, wav in zip(self.names, self.files, blocks, strict=True):
            data = wav.detach().to("cpu", torch.float32)
            if not bool(torch.isfinite(data).all()):
                raise VaeAudioError(
                    f"separating '{self.source}' gave NaN/Inf samples in {name}; try "
                    "--method fastmnmf2, fewer --iters, or check the recording's levels"
                )
            fh.write(data.T.contiguous().numpy())  # [L, M]
        for k in range(len(self.energy)):
            self.energy[k] += float(speakers[k].double().square().sum())

    def finish(self, record: dict) -> list[Path]:
        """Close, order the speakers by energy, commit the files and ``separation.json``."""
        for fh in self.files:
            fh.close()
        order = sorted(range(len(self.energy)), key=lambda k: -self.energy[k])
        temps = [self.temps[k] for k in order] + self.temps[len(self.energy) :]
        stale = [f for f in _previous_files(self.folder) if f not in self.names and f != PLOT]
        written = []
        for name, tmp in zip(self.names, temps, strict=True):
            written.append(commit_temp(tmp, self.folder / name, protect=self.protect))
        record = {**record, "files": [p.name for p in written]}
        atomic_write_text(
            self.folder / MARKER, json.dumps(record, indent=2, default=str) + "\n",
            protect=self.protect,
        )  # fmt: skip
        for name in stale:
            with contextlib.suppress(OSError):
                (self.folder / name).unlink()
        return [*written, self.folder / MARKER]

    def abort(self) -> None:
        """Close and delete the temporary files (the folder keeps no partial output)."""
        for fh in self.files:
            with contextlib.suppress(Exception):
                fh.close()
        for tmp in self.temps:
            with contextlib.suppress(OSError):
                tmp.unlink()


def plot_spectrograms(
    path: Path, rows: Sequence[tuple[str, torch.Tensor]], stft, *, protect: Iterable[Path] = ()
) -> Path:
    """One dB spectrogram per ``(title, wav [S])`` row, stacked, on a common 80-dB range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vae_audio.audio.stft import stft as stft_transform

    specs = [
        (
            10 * torch.log10(stft_transform(w.detach().cpu().float(), stft).abs().square() + 1e-10)
        ).numpy()
        for _, w in rows
    ]  # each [F, T]
    top = max(float(s.max()) for s in specs)
    fig, axes = plt.subplots(len(rows), 1, figsize=(8, 1.5 * len(rows) + 0.4), sharex=True)
    axes = [axes] if len(rows) == 1 else list(axes)
    seconds = stft.hop_length / stft.sample_rate
    khz = stft.sample_rate / 2000
    for ax, (title, _), spec in zip(axes, rows, specs, strict=True):
        extent = (0, spec.shape[1] * seconds, 0, khz)
        ax.imshow(
            spec, origin="lower", aspect="auto", vmin=top - 80, vmax=top, cmap="magma",
            extent=extent,
        )  # fmt: skip
        ax.set_title(title, fontsize=8, loc="left")
        ax.set_ylabel("kHz", fontsize=8)
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    try:
        with atomic_write(path, protect=protect) as tmp:
            fig.savefig(tmp, dpi=80, format="png")
    finally:
        plt.close(fig)
    return path
