"""TorchScript export of the amortised Neural FCA / Neural FastFCA separator.

The exported program is the whole amortised path of :mod:`vae_audio.neural_fca.inference`
with ``n_iter = 0``, from waveform to source images, so it runs with ``torch.jit.load`` alone
(no vae_audio, no Python model code):

    wav [B, M, S] -> STFT [B, M, F, T] -> power normalisation -> encoder (posterior means,
    gains; JD: ISS diagonalisers) -> decoder PSDs λ [B, N, F, T] -> spatial model (EM from
    the identity, or the JD model's MM updates) -> multichannel Wiener filter -> ISTFT
    -> images [B, N, M, S]

with the N - 1 talker slots first and the noise slot last, in the model's slot order (not
sorted by energy as :func:`vae_audio.separation.separate` returns them). The input must have
the model's ``M`` channels at its sample rate; ``S`` and ``B`` may differ from the example
used for tracing. That example's length (:data:`EXAMPLE_SECONDS`, or ``seconds=``) does fix
one thing: the frequency blocks in which the JD updates and the Wiener filter work are sized
for it, so that their temporaries stay small and are reused from the heap instead of being
mapped and page-faulted afresh at every call (README, "Amortised speed"). Programs traced
on any length give the same numbers at every length. A model for any ``M`` (``n_mics:
null``, TAC encoder) is exported for one ``M``, given by the caller: tracing unrolls the ISS
sweeps over the channels.

Format. TorchScript by tracing (``torch.jit.trace``): the separator works on complex
tensors (STFT, inter-channel phases, ISS, the Wiener filter's inverses), which TorchScript
keeps as they are; ONNX has no complex tensors (every complex op would have to be rewritten
in real arithmetic) and torch's current ONNX exporter also needs the ``onnx`` and
``onnxscript`` packages. ``torch.export``, which torch 2.11 recommends over TorchScript,
specialises this graph to the example's length (the STFT and ISTFT take the length as a
Python int), so its programs would only take one input length. Iterative refinement
(``n_iter > 0``: Adam steps on the latents) is not exported. The archive carries
``model.json`` (architecture, STFT, speaker count) as an extra file; exporting the same
weights twice gives byte-identical files.
"""

from __future__ import annotations

import copy
import io
import json
import os
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from vae_audio.audio.stft import istft, make_window, stft
from vae_audio.core._io import atomic_path
from vae_audio.errors import VaeAudioError
from vae_audio.neural_fca.inference import NeuralFcaFit
from vae_audio.neural_fca.model import NeuralFCA
from vae_audio.neural_fca.modelfile import check_mixture, load_neural_fca

EXTRA_FILE = "model.json"
EXAMPLE_SECONDS = 10.0  # the tracing example's length (module docstring)


class AmortisedSeparator(nn.Module):
    """``wav [B, M, S]`` -> images ``[B, N, M, S]`` with a frozen copy of ``model``
    (module docstring). Eager, it is the reference the exported program is tested against."""

    def __init__(self, model: NeuralFCA) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.stft_config = model.stft_config
        self.register_buffer("window", make_window(model.stft_config), persistent=False)

    def forward(self, wav: Tensor) -> Tensor:
        cfg, model = self.stft_config, self.model
        x = stft(wav, cfg, self.window)  # [B, M, F, T]
        xn, scale = model.normalise(x)  # power-normalised, scale [B]
        out = model(xn, sample=False)  # posterior means -> λ and the spatial model
        power = scale.square().to(out.lam.dtype)  # [B]
        fit = NeuralFcaFit(
            lam=out.lam * power[:, None, None, None],  # [B, N, F, T], raw power units
            eps=model.config.eps * power,  # [B]
            z=out.z,
            log_likelihood=power[:, None],  # not computed here
            noise_index=torch.zeros_like(power, dtype=torch.long),
            H=out.H,
            Q=out.Q,
            g=out.g,
        )
        images = fit.images(x)  # [B, N, M, F, T]
        return istft(images, cfg, length=wav.shape[-1], window=self.window)  # [B, N, M, S]


def _metadata(model: NeuralFCA, n_mics: int) -> str:
    return json.dumps(
        {
            "format": "vae_audio.neural_fca.torchscript",
            "input": "wav [B, M, S] float32 at sample_rate",
            "output": "images [B, N, M, S]: talker slots, then the noise slot",
            "n_mics": n_mics,
            "n_speakers": model.config.n_speakers,
            "sample_rate": model.stft_config.sample_rate,
            "model": model.config.to_dict(),
            "stft": model.stft_config.to_dict(),
        },
        sort_keys=True,
    )


def _separator(model: str | os.PathLike | NeuralFCA) -> AmortisedSeparator:
    """The float32 CPU separator of a model file or of a copy of the caller's module."""
    net = model if isinstance(model, NeuralFCA) else load_neural_fca(model)
    return AmortisedSeparator(net).to("cpu", torch.float32)


def _export_mics(model: NeuralFCA, n_mics: int | None) -> int:
    """The ``M`` of the exported program: the model's, or ``n_mics`` for an any-``M`` model."""
    if model.n_mics is None:
        if n_mics is None or isinstance(n_mics, bool) or n_mics < 2:
            raise VaeAudioError(
                "this Neural FCA model takes any number of microphones but an exported "
                f"separator is traced for one: pass n_mics=M (M >= 2), got {n_mics!r}"
            )
        return int(n_mics)
    if n_mics is not None:
        check_mixture(model, n_mics, None, "this Neural FCA model")
    return model.n_mics


def trace_separator(
    model: str | os.PathLike | NeuralFCA | AmortisedSeparator,
    n_mics: int | None = None,
    seconds: float = EXAMPLE_SECONDS,
) -> torch.jit.ScriptModule:
    """The traced amortised separator of ``model`` (a model file, a :class:`NeuralFCA`, which
    is copied, or an :class:`AmortisedSeparator`), float32 on the CPU, for ``n_mics``
    channels (needed for, and only for, a model that takes any ``M``), traced on an example
    of ``seconds`` (the length its frequency blocks are sized for; module docstring)."""
    separator = model if isinstance(model, AmortisedSeparator) else _separator(model)
    M = _export_mics(separator.model, n_mics)
    gen = torch.Generator().manual_seed(0)
    cfg = separator.stft_config
    if not seconds * cfg.sample_rate >= cfg.n_fft:
        raise VaeAudioError(
            f"the tracing example must hold at least one STFT frame ({cfg.n_fft} samples), "
            f"got seconds={seconds!r}"
        )
    n_samples = int(seconds * cfg.sample_rate)
    example = 0.1 * torch.randn(1, M, n_samples, generator=gen)  # [1, M, S]
    # TorchScript names every traced class after its Python class and, when that name is
    # taken in the compilation unit, appends a process-wide counter; a fresh unit per trace
    # keeps the names (and so the saved archive) independent of earlier traces.
    shared = torch.jit._state._python_cu
    torch.jit._state._python_cu = torch._C.CompilationUnit()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # torch 2.11 marks torch.jit.trace deprecated; the tracer's own warnings come from
            # the STFT's length check and the unpacking of the encoder head's [2, ...]
            # output, neither of which depends on the signal's values
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            return torch.jit.trace(separator, example, check_trace=False)
    finally:
        torch.jit._state._python_cu = shared


def _without_debug_records(archive: bytes) -> bytes:
    """``archive`` rewritten without its ``*.debug_pkl`` records.

    Those map every op to the Python stack that traced it, with absolute paths and the
    caller's line numbers; loading does not need them.
    """
    reader = torch._C.PyTorchFileReader(io.BytesIO(archive))
    out = io.BytesIO()
    writer = torch._C.PyTorchFileWriter(out)
    for name in sorted(reader.get_all_records()):
        if name.endswith(".debug_pkl") or name.startswith(".data/serialization_id"):
            continue  # the writer derives a new serialisation id from the records
        record = reader.get_record(name)
        writer.write_record(name, record, len(record))
    writer.write_end_of_file()
    return out.getvalue()


def export_separator(
    model: str | os.PathLike | NeuralFCA,
    path: str | os.PathLike,
    n_mics: int | None = None,
    seconds: float = EXAMPLE_SECONDS,
) -> Path:
    """Write the TorchScript amortised separator of ``model`` to ``path`` (atomically), for
    ``n_mics`` channels if the model takes any ``M``, traced on an example of ``seconds``
    (module docstring).

    Load it with :func:`load_separator` or ``torch.jit.load(path)``. Returns ``Path(path)``.
    """
    separator = _separator(model)
    if separator.model.config.wpe:
        raise VaeAudioError(
            "this model dereverberates its input by WPE (model.wpe), which the TorchScript "
            "export does not contain; export a model trained without it, or run WPE "
            "(vae_audio.separation.frontend.dereverberate) before the exported separator"
        )
    M = _export_mics(separator.model, n_mics)
    traced = trace_separator(separator, M, seconds)
    buffer = io.BytesIO()  # a file path would name the archive's entries after the temp file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.11 on TorchScript
        torch.jit.save(traced, buffer, _extra_files={EXTRA_FILE: _metadata(separator.model, M)})
    with atomic_path(path) as tmp:
        tmp.write_bytes(_without_debug_records(buffer.getvalue()))
    return Path(path)


def load_separator(path: str | os.PathLike) -> tuple[torch.jit.ScriptModule, dict]:
    """``(separator, settings)`` from a file written by :func:`export_separator`."""
    extra = {EXTRA_FILE: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.11 on TorchScript
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except (RuntimeError, ValueError, OSError) as err:
        reason = " ".join(str(err).split())[:120]
        raise VaeAudioError(
            f"{path} is not a TorchScript separator ({reason}); export one with "
            "vae_audio.neural_fca.export.export_separator"
        ) from None
    if not extra[EXTRA_FILE]:
        raise VaeAudioError(f"{path} lacks {EXTRA_FILE}: it was not written by export_separator")
    return module, json.loads(extra[EXTRA_FILE])
