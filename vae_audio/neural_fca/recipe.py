"""`vae-audio train neural-fca`: train Neural FCA / Neural FastFCA on unlabelled mixtures.

Config sections (see ``recipes/neural_fca/*.yaml``)::

    prior:      speech-prior model.pt whose decoder initialises the source model (null: random)
    init:       a Neural FCA model.pt whose weights start the model (null: none), e.g. the
                previous teacher round's model; the model section must match its own
    data:       train_manifest / valid_manifest (simulated sets from `vae-audio simulate`),
                or teacher_set (from `vae-audio teacher-set`: mixtures with a blind
                separator's PSDs, for the warm start of loss.teacher; a list of sets
                trains on all, e.g. 2- and 3-talker sets for a model with
                model.n_speakers: 3, its spare slots inactive on fewer talkers), or dynamic:
                {corpus, rir_bank, split, valid_corpus, valid_split, epoch_size, valid_size,
                n_speakers} (dynamic mixing; validation from valid_manifest, else from
                valid_corpus, else none); segment_seconds, batch_size, num_workers
    stft:       StftConfig fields (must match the prior's)
    model:      NeuralFCAConfig fields (n_mics: null takes M from the data; with
                encoder.kind: tac it keeps null: the model takes any M >= 2)
    loss:       beta (number or schedule), beta_unit (epoch | step), teacher (weight of the
                distillation term, number or schedule over steps; needs data.teacher_set)
    augment:    mic_permutation, mic_subset ({min, max}: train each batch on a random k of
                its M mics, k uniform in [min, min(max, M)]; any-M models only; null: off)
    validation: examples, examples_every_n_epochs, refine_iterations
    optim, trainer: see vae_audio.core.training

Only mixtures reach the loss; the references of the validation set are used for the
separation examples alone. Writes into ``trainer.out_dir``: ``model.pt`` (kind
``neural-fca``), ``config.yaml``, ``curves.png``, ``checkpoints/``, ``logs/`` and
``examples/epoch_*/`` (spectrograms, ``scores.md``, ``scores.json``).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from torch.utils.data import Dataset

from vae_audio.core.loader import ResumableLoader
from vae_audio.core.training import TrainResult, train
from vae_audio.errors import VaeAudioError

DATA_DEFAULTS: dict[str, Any] = {
    "train_manifest": None,
    "teacher_set": None,
    "valid_manifest": None,
    "dynamic": None,
    "segment_seconds": 4.0,
    "batch_size": 16,
    "num_workers": 0,
}
DYNAMIC_DEFAULTS: dict[str, Any] = {
    "corpus": None,
    "rir_bank": None,
    "split": "train",
    "valid_corpus": None,
    "valid_split": None,
    "epoch_size": 2000,
    "valid_size": 64,
    "n_speakers": None,
}


def data_config(config: dict) -> dict:
    """The ``data`` section completed from the defaults and checked."""
    given = config.get("data") or {}
    unknown = sorted(set(given) - set(DATA_DEFAULTS))
    if unknown:
        raise VaeAudioError(f"unknown data key(s) {unknown}; known: {sorted(DATA_DEFAULTS)}")
    data = {**DATA_DEFAULTS, **given}
    if data["dynamic"]:
        dyn = dict(data["dynamic"])
        unknown = sorted(set(dyn) - set(DYNAMIC_DEFAULTS))
        if unknown:
            raise VaeAudioError(
                f"unknown data.dynamic key(s) {unknown}; known: {sorted(DYNAMIC_DEFAULTS)}"
            )
        data["dynamic"] = {**DYNAMIC_DEFAULTS, **dyn}
        for key in ("corpus", "rir_bank"):
            if not data["dynamic"][key]:
                raise VaeAudioError(
                    f"data.dynamic.{key} is not set; pass data.dynamic.{key}=PATH (corpus: a "
                    "`vae-audio corpus` manifest, rir_bank: from `vae-audio rir-bank`)"
                )
        if data["teacher_set"] or data["train_manifest"]:
            raise VaeAudioError(
                "data.dynamic and data.train_manifest/data.teacher_set are alternatives; set one"
            )
    elif bool(data["train_manifest"]) == bool(data["teacher_set"]):
        raise VaeAudioError(
            "set exactly one of data.train_manifest=OUT/manifest.jsonl (from `vae-audio "
            "simulate`), data.teacher_set=DIR (from `vae-audio teacher-set`) or "
            "data.dynamic={corpus: ..., rir_bank: ...}"
        )
    return data


class _RenderedExamples(Dataset):
    """Dynamic-mixing items rendered on CPU, renamed to the MixtureDataset layout."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        item = self.dataset[index]
        return {"mix": item["mix"], "sources": item["images"], "id": f"dyn{index:04d}"}


def build_datasets(config: dict) -> tuple[Dataset, Dataset | None, Dataset | None, Any, int]:
    """``(train, valid, examples, rir_bank, M)``: training and validation datasets, the
    held-out items with references for the examples, the RIR bank (dynamic mixing, else
    None) and the number of microphones of the data."""
    from vae_audio.data.datasets import MixtureDataset

    data = data_config(config)
    sr = int((config.get("stft") or {}).get("sample_rate", 16000))
    seg = float(data["segment_seconds"])
    seed = _seed(config)  # random crops; dynamic mixtures follow the loader's seed
    valid = examples = None
    if data["valid_manifest"]:
        valid = MixtureDataset(data["valid_manifest"], seg, sr=sr, random_crop=False)
        examples = MixtureDataset(
            data["valid_manifest"], seg, sr=sr, with_sources=True, random_crop=False
        )
    if data["teacher_set"]:
        from vae_audio.neural_fca.teacher import TeacherSets

        roots = data["teacher_set"]
        train_set = TeacherSets(roots if isinstance(roots, list) else [roots], seg, seed=seed)
        stft = {**train_set.settings["stft"], **(config.get("stft") or {})}
        if stft != train_set.settings["stft"]:
            raise VaeAudioError(
                f"teacher set {data['teacher_set']} was labelled with STFT "
                f"{train_set.settings['stft']}, the recipe uses {stft}; rebuild the set or "
                "match the stft section"
            )
        return train_set, valid, examples, None, train_set.n_mics
    if not data["dynamic"]:
        train_set = MixtureDataset(data["train_manifest"], seg, sr=sr, seed=seed)
        return train_set, valid, examples, None, int(train_set[0]["mix"].shape[0])
    from vae_audio.data.dynamic import DynamicMixingDataset
    from vae_audio.data.rir_bank import RirBank

    dyn = data["dynamic"]
    bank = RirBank.load(dyn["rir_bank"])
    if bank.sample_rate != sr:
        raise VaeAudioError(
            f"RIR bank {dyn['rir_bank']} is at {bank.sample_rate} Hz but stft.sample_rate={sr}; "
            "rebuild the bank or change stft.sample_rate"
        )
    common = {"segment_seconds": seg, "n_speakers": dyn["n_speakers"]}
    train_set = DynamicMixingDataset(
        dyn["corpus"], bank, epoch_size=int(dyn["epoch_size"]), split=dyn["split"], **common
    )
    if valid is None and dyn["valid_corpus"]:
        kw = {"epoch_size": int(dyn["valid_size"]), "split": dyn["valid_split"], "seed": 1234}
        valid = DynamicMixingDataset(dyn["valid_corpus"], bank, **kw, **common)
        rendered = DynamicMixingDataset(dyn["valid_corpus"], bank, render=True, **kw, **common)
        examples = _RenderedExamples(rendered)
    return train_set, valid, examples, bank, int(bank.rirs.shape[2])


def _seed(config: dict) -> int:
    return int((config.get("trainer") or {}).get("seed", 0))


def _loader(dataset, data: dict, shuffle: bool, seed: int) -> ResumableLoader:
    """Seeded, resumable loader (:mod:`vae_audio.core.loader`)."""
    workers = int(data["num_workers"])
    return ResumableLoader(
        dataset,
        batch_size=int(data["batch_size"]),
        shuffle=shuffle,
        seed=seed,
        num_workers=workers,
        drop_last=shuffle,
        persistent_workers=workers > 0,
    )


def train_from_config(config: dict, resume: bool = False) -> TrainResult:
    """Train, export ``model.pt`` and the examples; the run's
    :class:`~vae_audio.core.training.TrainResult`."""
    from vae_audio.neural_fca.model import NeuralFCAConfig
    from vae_audio.neural_fca.task import NeuralFCATask

    config = copy.deepcopy(config)
    data = data_config(config)
    train_set, valid, examples, bank, n_mics = build_datasets(config)
    model = config.setdefault("model", {})
    any_mics = (model.get("encoder") or {}).get("kind") == "tac"
    if model.get("n_mics") is None:
        if not any_mics:  # a TAC model with n_mics null takes any M
            model["n_mics"] = n_mics
    elif int(model["n_mics"]) != n_mics:
        raise VaeAudioError(
            f"model.n_mics={model['n_mics']} but the training data has {n_mics} microphones; "
            f"set model.n_mics={n_mics} (or null to follow the data)"
        )
    if len(train_set) < int(data["batch_size"]):
        raise VaeAudioError(
            f"the training set has {len(train_set)} mixtures, fewer than one batch of "
            f"data.batch_size={data['batch_size']}; lower data.batch_size or add mixtures"
        )
    # the talker counts of the training data (teacher sets, dynamic mixing) are recorded in
    # the model file: `separate --method auto` runs the model for those counts
    counts = getattr(train_set, "talker_counts", None)
    n_spk = int(model.get("n_speakers", NeuralFCAConfig.n_speakers))
    if counts and max(counts) > n_spk:
        raise VaeAudioError(
            f"the training data has {max(counts)} talkers but model.n_speakers={n_spk}; set "
            f"model.n_speakers={max(counts)} or more"
        )
    if counts and model.get("talkers") is None:
        model["talkers"] = list(counts)
    task = NeuralFCATask(config)
    subset = task.config["augment"]["mic_subset"]
    if subset is not None and n_mics < subset["min"]:
        raise VaeAudioError(
            f"augment.mic_subset.min={subset['min']} but the training data has {n_mics} "
            f"microphones; set augment.mic_subset.min to at most {n_mics}"
        )
    if bank is not None:
        from vae_audio.data.dynamic import DynamicMixer

        task.mixer = DynamicMixer(bank)
    task.example_set = examples
    loaders = (
        _loader(train_set, data, True, _seed(config)),
        None if valid is None else _loader(valid, data, False, _seed(config)),
    )
    result = train(task, loaders, resume=resume)
    if result.model_path is None:  # non-zero DDP rank
        return result
    cfg = task.model.config
    mics = cfg.n_mics if cfg.n_mics is not None else f"any (trained on {n_mics})"
    if subset is not None:
        top = n_mics if subset["max"] is None else min(subset["max"], n_mics)
        sizes = f"{subset['min']}-{top}" if top > subset["min"] else f"{top}"
        mics = f"any (trained on {sizes} of {n_mics})"
    summary = (
        f"Neural FCA ({'FastFCA, ISS' if cfg.spatial == 'jd' else 'full-rank, EM'}; "
        f"M = {mics}, N = {cfg.n_src}): {result.model_path} (step {result.global_step}); "
        f"metrics: " + ", ".join(f"{k}={v:.3f}" for k, v in sorted(result.metrics.items()))
    )
    return dataclasses.replace(result, summary=summary)
