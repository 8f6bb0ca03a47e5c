"""Outputs of ``vae-audio separate``, in one of two layouts (``--layout``):

- ``folders`` (default): ``OUTDIR/<name>/src1.wav ... srcN.wav`` (``[S, M]`` float32 WAV,
  speaker images at every mic, loudest first), ``noise.wav`` when the method has a noise
  slot, ``spectrogram.png`` with ``--plot``, and ``separation.json`` (input, method, settings,
  timings; written last);
- ``librimix``: one folder per slot, as LibriMix and wsj0-2mix store their sources:
  ``OUTDIR/s1/<name>.wav ... OUTDIR/sN/<name>.wav``, ``OUTDIR/noise/<name>.wav``,
  ``OUTDIR/spectrogram/<name>.png`` and the record ``OUTDIR/separation/<name>.json``. The
  files are the same as in ``folders`` (every mic; one channel for a one-channel input).

Every file is written atomically and never onto an input. The record marks a finished
output set: it is "done" when the record exists and every file it lists (paths relative to
the record's folder) is present, so an interrupted run redoes exactly the unfinished inputs.
It also records the job settings that shape the output (method, speakers, iterations,
chunking, seed, the model file's SHA-256), so outputs made with other settings, e.g. by a
model since retrained, are redone, not kept. If writing an output set fails half-way, the
files already written for it are removed again (no partial output sets). Long inputs
separated chunk by chunk go through :class:`StreamingOutputs`, which writes each joined block
as it comes and never holds a whole output.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from vae_audio.errors import VaeAudioError
from vae_audio.fileio import atomic_write, atomic_write_text, commit_temp, new_temp

MARKER = "separation.json"
PLOT = "spectrogram.png"
LAYOUTS = ("folders", "librimix")
_SOURCE = re.compile(r"^src(\d+)\.wav$")


@dataclass(frozen=True)
class OutputPaths:
    """Where the outputs of the input ``name`` go under ``out`` in ``layout`` (module
    docstring). Files are named as in the ``folders`` layout (``src1.wav``, ``noise.wav``,
    :data:`PLOT`) and placed by :meth:`file`."""

    out: Path
    name: str
    layout: str = "folders"

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")

    @property
    def marker(self) -> Path:
        """The record file (``separation.json``)."""
        if self.layout == "folders":
            return self.out / self.name / MARKER
        return self.out / "separation" / f"{self.name}.json"

    def file(self, filename: str) -> Path:
        """The path of the output ``filename`` (``src<k>.wav``, ``noise.wav``, :data:`PLOT`)."""
        if self.layout == "folders":
            return self.out / self.name / filename
        source = _SOURCE.match(filename)
        stem = filename.rsplit(".", 1)[0]
        folder = f"s{source.group(1)}" if source else stem
        return self.out / folder / f"{self.name}{Path(filename).suffix}"

    def relative(self, path: Path) -> str:
        """``path`` as the record lists it: relative to the record's folder."""
        return Path(os.path.relpath(path, self.marker.parent)).as_posix()

    def label(self, listed: str) -> str:
        """A short title for a listed file (``src1``, ``s1``, ``noise``)."""
        return Path(listed).stem if self.layout == "folders" else Path(listed).parent.name

    def folders(self) -> list[Path]:
        """The folders that hold this input's files and nothing of other inputs' (the
        ``folders`` layout), or the shared slot folders (``librimix``)."""
        if self.layout == "folders":
            return [self.out / self.name]
        return sorted(p for p in self.out.glob("*") if p.is_dir())

    def remove_stale_temps(self) -> list[Path]:
        """Delete the temporary files a killed run left for this input (see
        :func:`vae_audio.fileio.remove_stale_temps`); in shared folders only this input's."""
        from vae_audio.fileio import remove_stale_temps

        if self.layout == "folders":
            return remove_stale_temps(self.out / self.name)
        return [p for folder in self.folders() for p in remove_stale_temps(folder, self.name)]


def as_output_paths(target: Path | OutputPaths) -> OutputPaths:
    """An output folder (the ``folders`` layout) or :class:`OutputPaths` as the latter."""
    if isinstance(target, OutputPaths):
        return target
    return OutputPaths(target.parent, target.name)


def finished_job(target: Path | OutputPaths) -> dict | None:
    """The ``job`` settings of the finished separation at ``target`` (an output folder of
    the ``folders`` layout, or :class:`OutputPaths`; ``{}`` if it recorded none), or None when
    there is no finished separation (module docstring)."""
    marker = as_output_paths(target).marker
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
        files = record["files"]
        done = all((marker.parent / f).is_file() for f in files)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return dict(record.get("job") or {}) if done else None


def _previous_files(paths: OutputPaths) -> list[str]:
    try:
        return list(json.loads(paths.marker.read_text(encoding="utf-8"))["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _stale_files(paths: OutputPaths, keep: Iterable[str]) -> list[Path]:
    """The files of the previous record that a new one listing ``keep`` does not list (e.g.
    src3.wav from an earlier run with more speakers); the spectrogram is kept."""
    keep = {*keep, paths.relative(paths.file(PLOT))}
    return [paths.marker.parent / f for f in _previous_files(paths) if f not in keep]


def check_finite(source: object, name: str, wav: torch.Tensor) -> None:
    """Refuse NaN/Inf samples in the output ``name`` of the input ``source``."""
    if not bool(torch.isfinite(wav).all()):
        raise VaeAudioError(
            f"separating '{source}' gave NaN/Inf samples in {name}; try "
            "--method fastmnmf2, fewer --iters, or check the recording's levels"
        )


def write_record(
    paths: OutputPaths, record: dict, files: Iterable[Path], *, protect: Iterable[Path] = ()
) -> Path:
    """Write ``record`` with the list of ``files`` as the record file (atomically, last)."""
    record = {**record, "files": [paths.relative(p) for p in files]}
    text = json.dumps(record, indent=2, default=str) + "\n"
    atomic_write_text(paths.marker, text, protect=protect)
    return paths.marker


def _unlink(files: Iterable[Path]) -> None:
    for path in files:
        with contextlib.suppress(OSError):
            path.unlink()


def write_outputs(
    target: Path | OutputPaths,
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
    given, and ``record`` (plus the file list) as the record, at ``target`` (an output folder
    of the ``folders`` layout, or :class:`OutputPaths`). Returns the paths."""
    from vae_audio.audio.io import save_audio

    paths = as_output_paths(target)

    wavs = {f"src{k + 1}.wav": sources[k] for k in range(sources.shape[0])}
    if noise is not None:
        wavs["noise.wav"] = noise
    for name, wav in wavs.items():
        check_finite(record.get("input"), name, wav)
    protect = list(protect)
    stale = _stale_files(paths, [paths.relative(paths.file(name)) for name in wavs])
    with contextlib.suppress(FileNotFoundError):
        paths.marker.unlink()  # an interrupted overwrite must not look finished
    written: list[Path] = []
    try:
        for name, wav in wavs.items():
            written.append(save_audio(paths.file(name), wav, sr, protect=protect))
        if mixture is not None:
            rows = [("mixture (mic 0)", mixture[0])]
            rows += [(f"{n.removesuffix('.wav')} (mic 0)", w[0]) for n, w in wavs.items()]
            written.append(plot_spectrograms(paths.file(PLOT), rows, stft, protect=protect))
        written.append(write_record(paths, record, written, protect=protect))
    except BaseException:
        _unlink(written)
        raise
    _unlink(stale)
    return written


class StreamingOutputs:
    """The outputs of one input at ``target`` (an output folder of the ``folders`` layout,
    or :class:`OutputPaths`), written block by block (``--chunk``).

    Each slot's WAV grows in a temporary file (named as :func:`vae_audio.fileio.new_temp`
    names them, so a killed run's leftovers are cleaned up by the next); :meth:`finish` puts
    the speakers in order of energy (loudest first, as :func:`~vae_audio.separation.separate`
    does), moves the files onto their names and writes ``separation.json`` last;
    :meth:`abort` deletes the temporary files. Memory: one block at a time.
    """

    def __init__(
        self, target: Path | OutputPaths, n_src: int, noise: bool, sr: int, channels: int, *,
        protect: Iterable[Path] = (), source: str = "",
    ) -> None:  # fmt: skip
        import soundfile as sf

        self.paths = as_output_paths(target)
        self.sr, self.protect, self.source = sr, list(protect), source
        self.names = [f"src{k + 1}.wav" for k in range(n_src)] + (["noise.wav"] if noise else [])
        self.energy = [0.0] * n_src
        self.temps: list[Path] = []
        self.files = []
        with contextlib.suppress(FileNotFoundError):
            self.paths.marker.unlink()  # an interrupted overwrite must not look finished
        try:
            for name in self.names:
                tmp = new_temp(self.paths.file(name), protect=self.protect)
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
            check_finite(self.source, name, data)
            fh.write(data.T.contiguous().numpy())  # [L, M]
        for k in range(len(self.energy)):
            self.energy[k] += float(speakers[k].double().square().sum())

    def finish(self, record: dict) -> list[Path]:
        """Close, order the speakers by energy, commit the files and ``separation.json``."""
        for fh in self.files:
            fh.close()
        order = sorted(range(len(self.energy)), key=lambda k: -self.energy[k])
        temps = [self.temps[k] for k in order] + self.temps[len(self.energy) :]
        paths = self.paths
        stale = _stale_files(paths, [paths.relative(paths.file(n)) for n in self.names])
        written = []
        for name, tmp in zip(self.names, temps, strict=True):
            written.append(commit_temp(tmp, paths.file(name), protect=self.protect))
        marker = write_record(paths, record, written, protect=self.protect)
        _unlink(stale)
        return [*written, marker]

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
