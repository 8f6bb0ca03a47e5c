"""The shipped Neural FCA model as a ready-to-use separator.

:class:`PretrainedNeuralFCA` *is* a :class:`~vae_audio.neural_fca.model.NeuralFCA` (so
``fit_neural_fca(x, model)``, ``separate(..., model=model)`` and attribute access such as
``model.config`` keep working) with its :class:`~vae_audio._pretrained.cards.ModelCard` and
two conveniences: :meth:`separate` for a waveform at any rate and :meth:`separate_file` for
an audio file.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import torch

from vae_audio._pretrained.cards import ModelCard
from vae_audio.core.checkpoint import load_model_file
from vae_audio.errors import VaeAudioError
from vae_audio.neural_fca.model import NeuralFCA
from vae_audio.neural_fca.modelfile import KIND, load_neural_fca, load_weights, model_config

DEFAULT_ITERATIONS = 200  # refinement steps of `vae-audio separate --method auto`


class PretrainedNeuralFCA(NeuralFCA):
    """A shipped Neural FCA / FastFCA model with its ``card``.

    Build it with :meth:`from_file`; ``vae_audio.pretrained("neural-fca")`` does.
    """

    card: ModelCard

    @classmethod
    def from_file(cls, path: str | os.PathLike, card: ModelCard) -> PretrainedNeuralFCA:
        """The model in ``path`` (kind ``"neural-fca"``), in eval mode, carrying ``card``."""
        data = load_model_file(path, kind=KIND)
        cfg, stft = model_config(data["config"])
        model = cls(cfg, stft)
        load_weights(
            model, data["state_dict"], f"shipped model {path} does not match its stored "
            "architecture", f"regenerate it with `{card.regenerate}`",
        )  # fmt: skip
        model.card = card
        return load_neural_fca(model)  # checks and eval mode

    @property
    def sample_rate(self) -> int:
        """The rate (Hz) the model works at."""
        return self.stft_config.sample_rate

    def separate(
        self,
        wav: torch.Tensor | np.ndarray,
        sr: int,
        n_src: int | None = None,
        *,
        n_iter: int = DEFAULT_ITERATIONS,
        **kwargs,
    ):
        """Separate ``wav`` ``[M, S]`` (or ``[B, M, S]``) recorded at ``sr`` Hz, ``M`` the
        model's (any ``M >= 2`` for a model with ``n_mics`` None).

        ``n_src`` talkers, 1 to the model's ``config.n_speakers`` (None: its
        ``config.default_talkers``: 2 when it was trained on 2, else its largest count); with
        fewer, the model's most energetic speaker slots are the talkers and the others go
        to the noise (:func:`~vae_audio.neural_fca.inference.merge_inactive_slots`).
        Other rates are resampled to the model's and the outputs back to ``sr``, trimmed to
        ``S``. ``n_iter`` refinement steps (0: amortised, about 30x faster); ``kwargs`` go to
        :func:`vae_audio.separation.separate` (``chunk_seconds``, ``device``, ...).

        Returns:
            :class:`~vae_audio.separation.api.SeparationResult` at ``sr``: ``sources``
            ``[B?, N, M, S]`` (``N = n_src`` talkers, loudest first), ``noise``
            ``[B?, M, S]``.
        """
        from vae_audio.audio.io import resample
        from vae_audio.neural_fca.inference import separate_with_model

        wav = torch.as_tensor(wav)
        if not wav.is_floating_point() or wav.ndim not in (2, 3):
            raise VaeAudioError(
                f"separate() takes a float waveform [M, S] or [B, M, S], got dtype {wav.dtype} "
                f"and shape {tuple(wav.shape)}"
            )
        if not self.takes_mics(wav.shape[-2]):
            takes = (
                "multichannel recordings ([M, S] with M >= 2)"
                if self.n_mics is None
                else f"{self.n_mics}-channel recordings ([M, S] with M = {self.n_mics})"
            )
            raise VaeAudioError(
                f"the shipped model takes {takes}, got shape {tuple(wav.shape)}; for other "
                "arrays use vae_audio.separate(wav, method='vae-fastfca') or 'fastmnmf2'"
            )
        rate = self.sample_rate
        length = wav.shape[-1]
        x = resample(wav, sr, rate)  # [B?, M, S'] at the model's rate
        if n_src is not None:
            kwargs["n_src"] = n_src
        result = separate_with_model(x, self, n_iter=n_iter, **kwargs)
        if sr == rate:
            return result

        def back(y: torch.Tensor | None) -> torch.Tensor | None:
            if y is None:
                return None
            y = resample(y, rate, sr)[..., :length]  # [..., S]
            return torch.nn.functional.pad(y, (0, length - y.shape[-1]))

        return dataclasses.replace(
            result,
            sources=back(result.sources),
            noise=back(result.noise),
            sample_rate=sr,
            settings={**result.settings, "resampled_from": sr, "model_rate": rate},
        )

    def separate_file(
        self,
        path: str | os.PathLike,
        n_src: int | None = None,
        *,
        n_iter: int = DEFAULT_ITERATIONS,
        **kwargs,
    ):
        """Separate the recording in ``path`` (any rate soundfile reads; outputs at the model's
        rate). See :meth:`separate`."""
        from vae_audio.audio.io import load_audio

        wav, _ = load_audio(path, sr=self.sample_rate)  # [M, S]
        return self.separate(wav, self.sample_rate, n_src, n_iter=n_iter, **kwargs)
