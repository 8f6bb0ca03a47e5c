"""Lightning task that trains Neural FCA / Neural FastFCA on unlabelled multichannel mixtures.

Batches are either simulated mixtures (``mix [B, M, S]``, from
:class:`~vae_audio.data.datasets.MixtureDataset`) or dry parts for dynamic mixing, which the
task spatialises on the training device with its :class:`~vae_audio.data.dynamic.DynamicMixer`
(``self.mixer``, set by the recipe). Per step: for a model of any ``M`` (``model.n_mics:
null``), a random sub-array of the batch's microphones (training only; ``augment.mic_subset``,
:func:`draw_mic_subset`), STFT on the device, random permutation of the microphones of every
item (training only; ``augment.mic_permutation``), normalisation to unit mean power, one
forward pass and :func:`~vae_audio.neural_fca.objective.neural_fca_loss` (nats per
time-frequency bin). Sources and references are never used by the loss.

Both augmentations draw from torch's global CPU generator (the permutation from the batch
device's), which :class:`~vae_audio.core.training.VAETask` reseeds before every training step
from ``(seed, epoch, batch index, rank)``: the draws of a step are the same in a resumed run.

``loss.beta`` is a number or a schedule (:mod:`vae_audio.core.schedules`) evaluated at the
global step (``loss.beta_unit: step``) or at the fractional epoch ``global_step /
steps_per_epoch`` (``epoch``, default): the published cyclic annealing is
``{kind: cyclic, period: 10, ratio: 0.5, value_max: 1.0}`` in epochs (β ramps 0 → 1 over
5 epochs, stays at 1 for 5). With teacher targets (``data.teacher_set``) the loss adds
``loss.teacher`` (a number or a schedule over steps) times
:func:`~vae_audio.neural_fca.teacher.distillation_loss` of the model's PSDs; the published
training has no such term (``loss.teacher: 0``, the default).

Every ``validation.examples_every_n_epochs`` epochs the task separates
``validation.examples`` held-out mixtures (``self.example_set``, set by the recipe) and
writes :mod:`vae_audio.neural_fca.examples` into the run folder.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import Tensor

from vae_audio.audio.stft import STFT, StftConfig
from vae_audio.core.precision import full_precision
from vae_audio.core.schedules import Schedule
from vae_audio.core.training import LossOutput, VAETask
from vae_audio.errors import VaeAudioError
from vae_audio.neural_fca.modelfile import KIND, build_neural_fca, load_weights
from vae_audio.neural_fca.objective import neural_fca_loss
from vae_audio.neural_fca.teacher import distillation_loss
from vae_audio.separation.frontend import dereverberate, wpe_config

SECTION_DEFAULTS: dict[str, dict[str, Any]] = {
    "loss": {
        "beta": {"kind": "cyclic", "period": 10, "ratio": 0.5, "value_max": 1.0},
        "beta_unit": "epoch",
        "teacher": 0.0,
    },
    "augment": {"mic_permutation": True, "mic_subset": None},
    "validation": {"examples": 2, "examples_every_n_epochs": 5, "refine_iterations": 0},
}
MIC_SUBSET_DEFAULTS: dict[str, int | None] = {"min": 2, "max": None}


def resolve_sections(config: dict) -> dict:
    """Copy of ``config`` with ``loss``, ``augment`` and ``validation`` completed from
    :data:`SECTION_DEFAULTS`, ``prior`` set (None: random decoder) and ``init`` set (None:
    no warm start, see :func:`warm_start`).

    Raises:
        VaeAudioError: an unknown key in one of these sections.
    """
    config = copy.deepcopy(config)
    for name, defaults in SECTION_DEFAULTS.items():
        given = config.get(name) or {}
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            raise VaeAudioError(f"unknown {name} key(s) {unknown}; known: {sorted(defaults)}")
        config[name] = {**copy.deepcopy(defaults), **given}
    if config["loss"]["beta_unit"] not in ("step", "epoch"):
        raise VaeAudioError(f"loss.beta_unit={config['loss']['beta_unit']!r}; use step or epoch")
    config["augment"]["mic_subset"] = mic_subset_range(config["augment"]["mic_subset"])
    config.setdefault("prior", None)
    config.setdefault("init", None)
    return config


def warm_start(model: torch.nn.Module, path: str) -> None:
    """Load the weights of the Neural FCA ``model.pt`` at ``path`` into ``model`` (recipe key
    ``init``: a teacher round fine-tunes the previous round's model). The file is read with
    ``weights_only=True``; the recipe's own ``model`` section still sets the model's settings
    (JD updates, floors), so give the one the file was trained with.

    Raises:
        VaeAudioError: the file is not a Neural FCA model, or its weights do not fit.
    """
    from vae_audio.core.checkpoint import load_model_file

    load_weights(
        model, load_model_file(path, kind=KIND)["state_dict"],
        f"init model {path} does not fit this recipe's model",
        "copy the model section of the run that wrote it (its config.yaml), or set init=null",
    )  # fmt: skip


def mic_subset_range(spec: Any) -> dict[str, int | None] | None:
    """``augment.mic_subset`` completed from :data:`MIC_SUBSET_DEFAULTS` and checked: ``{min,
    max}`` (``max`` None: every microphone of the batch); None or false: off (None); true:
    the defaults.

    Raises:
        VaeAudioError: not a mapping, an unknown key, ``min < 2`` or ``max < min``.
    """
    if spec is None or spec is False:
        return None
    if spec is True:
        spec = {}
    if not isinstance(spec, dict):
        raise VaeAudioError(
            f"augment.mic_subset must be null or {{min: 2, max: null}}, got {spec!r}"
        )
    unknown = sorted(set(spec) - set(MIC_SUBSET_DEFAULTS))
    if unknown:
        raise VaeAudioError(
            f"unknown augment.mic_subset key(s) {unknown}; known: {sorted(MIC_SUBSET_DEFAULTS)}"
        )
    out = {**MIC_SUBSET_DEFAULTS, **spec}
    low, high = out["min"], out["max"]
    if isinstance(low, bool) or not isinstance(low, int) or low < 2:
        raise VaeAudioError(f"augment.mic_subset.min must be an integer >= 2, got {low!r}")
    if high is not None and (isinstance(high, bool) or not isinstance(high, int) or high < low):
        raise VaeAudioError(
            f"augment.mic_subset.max must be null or an integer >= min = {low}, got {high!r}"
        )
    return out


def draw_mic_subset(M: int, low: int, high: int | None = None) -> Tensor:
    """Indices ``[k]`` (ascending) of ``k`` of ``M`` microphones: ``k`` uniform in ``[low,
    min(high, M)]`` (``high`` None: ``M``), then a uniformly random ``k``-subset. Drawn from
    torch's global CPU generator (the module docstring says why).

    Raises:
        VaeAudioError: ``M < low``.
    """
    if M < low:
        raise VaeAudioError(
            f"the batch has M = {M} microphones, fewer than augment.mic_subset.min = {low}; "
            "lower augment.mic_subset.min or train on more microphones"
        )
    top = M if high is None else min(high, M)
    k = int(torch.randint(low, top + 1, ()))
    return torch.randperm(M)[:k].sort().values  # [k]


def permute_mics(x: Tensor) -> Tensor:
    """Random microphone order per batch item: ``x [B, M, ...]`` -> same shape."""
    B, M = x.shape[:2]
    perm = torch.rand(B, M, device=x.device).argsort(dim=1)  # [B, M]
    index = perm.reshape(B, M, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


class NeuralFCATask(VAETask):
    """Trains a :class:`~vae_audio.neural_fca.model.NeuralFCA` from a recipe config."""

    kind = KIND

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(resolve_sections(config))
        stft = StftConfig.from_dict(dict(self.config.get("stft") or {}))
        prior = None
        if self.config["prior"]:
            from vae_audio.speech.prior import load_speech_prior

            prior = copy.deepcopy(load_speech_prior(self.config["prior"], stft=stft))
            model = self.config.setdefault("model", {})
            model["decoder"] = prior.config.to_dict()  # the model file records the decoder
        self.model = build_neural_fca(self.config, prior)
        self.config["model"] = self.model.config.to_dict()
        if self.config["init"]:
            warm_start(self.model, self.config["init"])
        if self.config["augment"]["mic_subset"] is not None and self.model.n_mics is not None:
            raise VaeAudioError(
                "augment.mic_subset needs a model for any M (model.n_mics: null with "
                f"model.encoder.kind: tac); this one takes M = {self.model.n_mics}: drop "
                "augment.mic_subset"
            )
        self.stft = STFT(stft)
        self.wpe = wpe_config(self.model.config.wpe)  # front end (None: off)
        self.mixer = None  # DynamicMixer for dynamic mixing (set by the recipe)
        self.example_set = None  # held-out items with references (set by the recipe)

    def mixture(self, batch: Any) -> Tensor:
        """Waveforms ``[B, M, S]`` of a batch (rendered on the device for dynamic mixing)."""
        if isinstance(batch, Tensor):
            return batch
        if "mix" in batch:
            return batch["mix"]
        if self.mixer is None:
            raise VaeAudioError(
                "batch holds dry parts for dynamic mixing but the task has no mixer; set "
                "data.dynamic in the recipe (or feed simulated mixtures)"
            )
        with torch.no_grad():
            return self.mixer(batch).mix

    def beta(self) -> float:
        """KL weight at the current step (module docstring)."""
        loss = self.config["loss"]
        step: float = self.global_step
        if loss["beta_unit"] == "epoch" and self._trainer is not None:
            per_epoch = self.trainer.num_training_batches
            if math.isfinite(per_epoch) and per_epoch > 0:
                accumulate = max(1, int(self.trainer.accumulate_grad_batches))
                step = self.global_step / max(1, int(per_epoch) // accumulate)
        return Schedule.from_config(loss["beta"])(step)

    def teacher_weight(self) -> float:
        """Weight of the distillation term at the current step (``loss.teacher``)."""
        return Schedule.from_config(self.config["loss"]["teacher"])(self.global_step)

    def compute_loss(self, batch: Any, stage: str) -> LossOutput:
        # Under trainer.precision: bf16-mixed only the model's networks run in bfloat16
        # (vae_audio.core.precision); autocast leaves the mixing (FFT convolution), WPE
        # (complex128) and the STFT alone, and the loss is computed outside it.
        xn = self._normalised_mixture(batch, stage)  # [B, M, F, T]
        out = self.model(xn)
        with full_precision(self.device):
            return self._loss(xn, out, batch, stage)

    def _normalised_mixture(self, batch: Any, stage: str) -> Tensor:
        """The batch's mixture STFT ``[B, M, F, T]``, augmented for training and normalised
        to unit mean power."""
        wav = self.mixture(batch)  # [B, M, S]
        subset = self.config["augment"]["mic_subset"]
        if stage == "train" and subset is not None:
            # one sub-array for the whole batch (a batch has one M), before WPE, which is
            # multichannel; the teacher's PSDs (averaged over all mics) stay the targets
            mics = draw_mic_subset(wav.shape[1], subset["min"], subset["max"])  # [k]
            wav = wav[:, mics.to(wav.device)]  # [B, k, S]
        if self.wpe is not None:
            wav = dereverberate(wav, self.stft.config.sample_rate, self.wpe)
        x = self.stft(wav)  # [B, M, F, T]
        if stage == "train" and self.config["augment"]["mic_permutation"]:
            x = permute_mics(x)  # the teacher's PSDs are averaged over mics: unaffected
        return self.model.normalise(x)[0]

    def _loss(self, xn: Tensor, out, batch: Any, stage: str) -> LossOutput:
        """FCA NLL + β·KL of the model output ``out`` on ``xn``, plus the weighted
        distillation term where the batch has teacher targets."""
        beta = self.beta()
        loss = neural_fca_loss(xn, out, beta=beta, eps=self.model.config.eps)
        logs = {"nll": loss.nll, "kl": loss.kl, "beta": float(beta)}
        total = loss.loss
        target = batch.get("teacher_log_psd") if isinstance(batch, dict) else None
        weight = self.teacher_weight()
        if target is not None:
            distil = distillation_loss(out.lam, target)
            logs.update(distil=distil.detach(), teacher_weight=weight)
            if weight > 0:
                total = total + weight * distil
        elif weight > 0 and stage == "train":
            raise VaeAudioError(
                "loss.teacher > 0 needs teacher targets; train on data.teacher_set (from "
                "`vae-audio teacher-set`) or set loss.teacher=0"
            )
        return LossOutput(total, logs)

    def on_validation_epoch_end(self) -> None:
        val = self.config["validation"]
        every, n = int(val["examples_every_n_epochs"]), int(val["examples"])
        trainer = self.trainer
        if self.example_set is None or every <= 0 or n <= 0 or trainer.sanity_checking:
            return
        if (self.current_epoch + 1) % every or not trainer.is_global_zero:
            return
        from vae_audio.neural_fca.examples import write_examples

        items = [self.example_set[i] for i in range(min(n, len(self.example_set)))]
        was_training = self.model.training
        with torch.inference_mode(False), torch.enable_grad():
            scores = write_examples(
                self.model,
                items,
                self.config["trainer"]["out_dir"],
                self.current_epoch,
                int(val["refine_iterations"]),
            )
        self.model.train(was_training)
        for name in ("sdr", "si_sdr", "si_sdr_i"):
            value = scores.mean[name]
            if math.isfinite(value):
                self.log(f"val/examples_{name}", value, rank_zero_only=True)

    def export_meta(self) -> dict[str, Any]:
        return {"stft": self.model.stft_config.to_dict(), "model": self.model.config.to_dict()}
