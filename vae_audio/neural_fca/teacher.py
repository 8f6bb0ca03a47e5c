"""Teacher targets for Neural FCA: an unsupervised separator's source PSDs on unlabelled mixtures.

Trained from scratch on the FCA likelihood alone, the encoder must discover on its own which
time-frequency bins belong together; on a small compute budget it settles in poor optima (the
speaker slots split the spectrum into frequency bands). A **teacher** gives it a start:
FastMNMF2 with its stationary noise slot (``init="noise"``) separates each training mixture,
and the encoder is first trained to make its PSDs explain the teacher's separated sources
(:func:`distillation_loss`), then the weight of that term decays and the usual FCA NLL +
β·KL takes over. This is the spatial-clustering-teacher scheme of Drude et al. (ICASSP 2019)
and Tzinis et al. (ICASSP 2019) applied to Neural FCA. Nothing but the mixtures is used:
the teacher is blind, and the set stores no references.

The teacher is FastMNMF2 by default (:data:`DEFAULT_TEACHER`); any registered separation
method can take its place (``teacher=`` as ``vae-audio bench`` names methods:
``"fastmnmf2:starts=4"`` averages four starts, ``"vae-fastfca"`` adds the speech prior,
``"neural-fastfca:model=PATH"`` is a trained model, ``"auto"`` what ``vae-audio separate
--method auto`` runs), so that a model trained on one teacher's labels can label the next
set (:func:`method_log_psd`). A set records its teacher, and for ``auto`` also what ``auto``
runs on its mixtures (:func:`auto_teacher_plan`): a set is never grown with the labels of
another teacher, nor of another version of ``auto``. Its talker images, then its noise
image (or, for a method without a noise slot, the mixture minus the talkers), give the
targets at the set's STFT.

:func:`build_teacher_set` (``vae-audio teacher-set``) renders mixtures by dynamic mixing
(corpus x RIR bank, as in training), runs the teacher and writes shards
``OUT/shard_<k>.pt`` = ``{"mix": [n, M, S] float16, "log_psd": [n, N, F, T] float16}`` with
``log_psd = log(mean_m |ĉ_nmft|² + floor)`` of the teacher's Wiener images, noise slot last.
:class:`TeacherDataset` serves random hop-aligned crops of them to the training recipe.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import ConcatDataset, Dataset
from tqdm import tqdm

from vae_audio.audio.stft import StftConfig
from vae_audio.core.draws import epoch_rng
from vae_audio.errors import VaeAudioError
from vae_audio.fileio import atomic_write

SETTINGS_NAME = "teacher"
PSD_FLOOR = 1e-3  # teacher PSD floor, relative to the slot's mean power (30 dB range)
DEFAULT_TEACHER = "fastmnmf2-noise"  # FastMNMF2 with its stationary noise slot, --iters


def images_log_psd(images: Tensor) -> Tensor:
    """``log(mean_m |ĉ_nmft|² + floor_n)`` of image STFTs ``[B, N, M, F, T]`` ->
    ``[B, N, F, T]``, the floor :data:`PSD_FLOOR` times each slot's mean power."""
    power = (images.real.square() + images.imag.square()).mean(2)  # [B, N, F, T]
    floor = PSD_FLOOR * power.mean((2, 3), keepdim=True).clamp_min(1e-12)
    return (power + floor).log()


def teacher_log_psd(
    x: Tensor, n_speakers: int, n_iter: int = 50, n_basis: int = 8, seed: int = 0
) -> Tensor:
    """FastMNMF2 (stationary noise slot last) on ``x [B, M, F, T]`` complex ->
    ``log_psd [B, N, F, T]`` of its Wiener images averaged over microphones (module docstring)."""
    from vae_audio.separation.fastmnmf import fit_fastmnmf

    fit = fit_fastmnmf(x, n_speakers + 1, n_basis=n_basis, n_iter=n_iter, init="noise", seed=seed)
    return images_log_psd(fit.images(x))


def parse_teacher(spec: str) -> tuple[str, int | None, dict]:
    """A teacher other than :data:`DEFAULT_TEACHER`: ``"NAME[@N][:key=value]..."`` as
    ``vae-audio bench`` names methods -> ``(NAME, N, options)``, NAME a registered
    multichannel separation method or ``auto`` (what ``vae-audio separate --method auto``
    runs on the mixture: on 4 mics and 2 talkers the shipped model, or ``auto:model=PATH``,
    averaged with FastMNMF2 fits).

    Raises:
        VaeAudioError: the name is not such a method, or the spec is malformed.
    """
    from vae_audio.bench.methods import parse_method
    from vae_audio.separation import METHODS

    name, n_iter, options = parse_method(spec)
    if name == "auto":  # what `vae-audio separate --method auto` runs
        return name, n_iter, options
    if name not in METHODS or not METHODS[name].multichannel:
        known = ", ".join(n for n, m in METHODS.items() if m.multichannel)
        raise VaeAudioError(
            f"unknown teacher {spec!r}; use {DEFAULT_TEACHER} or a multichannel separation "
            f"method, optionally NAME@ITERATIONS:key=value: {known}"
        )
    return name, n_iter, options


def method_log_psd(
    mix: Tensor, spec: str, n_speakers: int, stft: StftConfig, seed: int = 0
) -> Tensor:
    """The separation method ``spec`` (:func:`parse_teacher`) as the teacher of mixtures
    ``mix [B, M, S]`` -> ``log_psd [B, n_speakers + 1, F, T]`` at ``stft``: each mixture is
    separated on its own (``vae_audio.separate``; options ``n_fft``/``hop`` set the STFT the
    method runs at, ``starts`` and ``wpe`` as in ``separate``), and its talker images, then
    its noise image (the mixture minus the talkers when the method has no noise slot), go
    through :func:`images_log_psd`."""
    from vae_audio.audio.stft import STFT
    from vae_audio.bench.methods import STFT_OPTIONS, auto_images, stft_config
    from vae_audio.separation import separate

    name, n_iter, options = parse_teacher(spec)
    # the set's STFT unless the spec sets n_fft/hop
    run_stft = stft_config(stft.sample_rate, options) if options.keys() & STFT_OPTIONS else stft
    auto_starts = options.get("starts")  # auto: None runs its plan's starts
    starts, wpe = int(options.pop("starts", 1)), bool(options.pop("wpe", False))
    if name == "auto" and set(options) - {"model"}:
        raise VaeAudioError(
            f"teacher {spec!r}: auto takes model, starts and wpe, got "
            f"{sorted(set(options) - {'model'})}; e.g. auto:model=PATH"
        )
    options = {k: v for k, v in options.items() if k not in STFT_OPTIONS}
    transform = STFT(stft).to(mix.device)
    out = []
    for wav in mix:  # [M, S]
        if name == "auto":
            est, n_talkers = auto_images(
                wav, stft.sample_rate, n_speakers, n_iter, seed, options.get("model"),
                str(wav.device), wpe, auto_starts,
            )  # fmt: skip
            est = est.to(wav)
            talkers = est[:n_talkers]  # [K, M, S]
            noise = est[n_talkers] if est.shape[0] > n_talkers else wav - talkers.sum(0)
        else:
            res = separate(
                wav, name, n_src=n_speakers, sr=stft.sample_rate, stft=run_stft,
                n_iter=n_iter, seed=seed, starts=starts, wpe=wpe, **options,
            )  # fmt: skip
            talkers = res.sources.to(wav)  # [K, M, S]
            noise = wav - talkers.sum(0) if res.noise is None else res.noise.to(wav)  # [M, S]
        out.append(transform(torch.cat([talkers, noise[None]])))  # [N, M, F, T]
    return images_log_psd(torch.stack(out))


def scale_invariant_is(target_log: Tensor, lam: Tensor) -> Tensor:
    """Itakura-Saito divergence from ``exp(target_log)`` to ``c · lam`` at the best scale ``c``.

    With ``r = p / λ`` the minimum over ``c`` of ``mean_ft [r/c − log(r/c) − 1]`` is
    ``log mean_ft r − mean_ft log r`` (≥ 0, zero iff ``p ∝ λ``). ``target_log [..., F, T]``,
    ``lam [..., F, T]`` -> ``[...]`` nats per bin.
    """
    log_r = (target_log - lam.clamp_min(1e-12).log()).flatten(-2)  # [..., F T]
    return torch.logsumexp(log_r, -1) - math.log(log_r.shape[-1]) - log_r.mean(-1)


def distillation_loss(lam: Tensor, target_log: Tensor) -> Tensor:
    """Mean over the batch of the scale-invariant IS divergence between the teacher's and the
    model's PSDs, summed over the teacher's slots.

    ``lam [B, N, F, T]`` (``N − 1`` speaker slots, the noise slot last); ``target_log
    [B, R, F, T]``: up to ``N − 1`` talker rows, then the noise row. An item with fewer
    talkers than the batch's rows has NaN rows after its talkers (:class:`TeacherDataset`
    pads them so). Each item's ``K`` talkers are matched to ``K`` of the model's speaker
    slots by the best injective assignment (a permutation when ``K = N − 1``); the model's
    unmatched speaker slots are inactive: their PSDs are added to its noise slot for the
    noise term, as :func:`~vae_audio.neural_fca.inference.merge_inactive_slots` merges their
    images at inference.

    Raises:
        VaeAudioError: an item has more talkers than the model has speaker slots.
    """
    n_spk = lam.shape[1] - 1
    talkers = target_log[:, :-1]  # [B, R - 1, F, T]
    counts = (~talkers.flatten(2).isnan().any(-1)).sum(1)  # [B] talkers per item
    if int(counts.max()) > n_spk:
        raise VaeAudioError(
            f"the teacher labels {int(counts.max())} talkers but the model has {n_spk} speaker "
            f"slots; set model.n_speakers >= {int(counts.max())}"
        )
    total = lam.new_zeros(())
    for k in counts.unique().tolist():
        items = (counts == k).nonzero()[:, 0]
        cost = _assigned_cost(lam[items], target_log[items, :k], target_log[items, -1])
        total = total + cost.sum()
    return total / lam.shape[0]


def _assigned_cost(lam: Tensor, talkers_log: Tensor, noise_log: Tensor) -> Tensor:
    """:func:`distillation_loss` for items with the same ``K`` talkers: ``lam [b, N, F, T]``,
    ``talkers_log [b, K, F, T]``, ``noise_log [b, F, T]`` -> ``[b]``, the lowest cost over
    the injective assignments of the ``K`` talkers to the ``N − 1`` speaker slots."""
    n_spk, K = lam.shape[1] - 1, talkers_log.shape[1]
    speech = lam[:, :n_spk]  # [b, n, F, T]
    pair = scale_invariant_is(talkers_log[:, :, None], speech[:, None])  # [b, K, n]
    assign = torch.tensor(list(itertools.permutations(range(n_spk), K)), device=lam.device)
    rows = torch.arange(K, device=lam.device)
    cost = pair[:, rows, assign].sum(-1)  # [b, P]: teacher talker k <-> slot assign[p, k]
    if K == n_spk:  # no inactive slot: the noise slot alone, for every assignment
        return (cost + scale_invariant_is(noise_log, lam[:, -1])[:, None]).min(1).values
    inactive = torch.ones(assign.shape[0], n_spk, dtype=lam.dtype, device=lam.device)
    inactive[torch.arange(assign.shape[0], device=lam.device)[:, None], assign] = 0  # [P, n]
    merged = lam[:, None, -1] + torch.einsum("pn,bnft->bpft", inactive, speech)  # [b, P, F, T]
    return (cost + scale_invariant_is(noise_log[:, None], merged)).min(1).values


def _shard_path(out: Path, k: int) -> Path:
    return out / f"shard_{k:05d}.pt"


_DATASETS: dict[str, Dataset] = {}  # per worker process: the RIR bank is loaded once


def auto_teacher_plan(spec: str, n_mics: int, settings: dict) -> dict:
    """What the ``auto`` teacher ``spec`` runs on a set's ``n_mics``-channel mixtures
    (:meth:`~vae_audio.apps.methods.Plan.record`: its method and model file, members, re-fit,
    iterations; and its STFT). A teacher set records it, so that labels made by one version
    of ``auto`` are never extended with another's under the same ``--teacher``."""
    from vae_audio.bench.methods import auto_plan

    _, n_iter, options = parse_teacher(spec)
    sr = StftConfig.from_dict(settings["stft"]).sample_rate
    plan = auto_plan(n_mics, sr, settings["n_speakers"], options.get("model"))
    starts = options.get("starts")
    record = plan.record(sr, n_iter, None if starts is None else int(starts))
    record["stft"] = plan.stft_for(plan.sample_rate or sr).to_dict()  # auto's own STFT
    return record


def _mixtures(settings: dict) -> Dataset:
    """The seeded dynamic-mixing dataset of a teacher set (cached per process)."""
    from vae_audio.data.dynamic import DynamicMixingDataset

    key = repr(sorted((k, v) for k, v in settings.items() if k not in ("n", "teacher_plan")))
    if key not in _DATASETS:
        _DATASETS.clear()
        _DATASETS[key] = DynamicMixingDataset(
            settings["corpus"],
            settings["rir_bank"],
            segment_seconds=settings["segment_seconds"],
            n_speakers=settings["n_speakers"],
            epoch_size=2**31 - 1,  # item i depends on the seed and i only
            split=settings["split"],
            render=True,
            seed=settings["seed"],
        )
    return _DATASETS[key]


def _build_shard(job: tuple) -> int:
    """Worker: render ``count`` mixtures from item ``start`` and run the teacher."""
    out, k, start, count, settings = job
    path = _shard_path(Path(out), k)
    if path.exists():
        return count
    from vae_audio.audio.stft import STFT

    data = _mixtures(settings)
    mix = torch.stack([data[i]["mix"] for i in range(start, start + count)])  # [n, M, S]
    cfg, teacher = StftConfig.from_dict(settings["stft"]), settings["teacher"]
    if teacher == DEFAULT_TEACHER:
        x = STFT(cfg)(mix)  # [n, M, F, T] complex64
        log_psd = teacher_log_psd(
            x, settings["n_speakers"], settings["n_iter"], seed=settings["seed"]
        )
    else:
        log_psd = method_log_psd(mix, teacher, settings["n_speakers"], cfg, settings["seed"])
    with atomic_write(path) as tmp:
        torch.save({"mix": mix.half(), "log_psd": log_psd.half()}, tmp)
    return count


def build_teacher_set(
    out: str | Path,
    corpus: str | Path,
    rir_bank: str | Path,
    n: int,
    *,
    segment_seconds: float = 4.0,
    n_speakers: int = 2,
    split: str | None = "train",
    n_iter: int = 50,
    stft: dict | None = None,
    seed: int = 0,
    shard_size: int = 16,
    jobs: int = 1,
    progress: bool = True,
    teacher: str = DEFAULT_TEACHER,
) -> int:
    """Write ``n`` teacher-labelled mixtures into ``out`` (module docstring); resumable and
    growable like the other builders (:mod:`vae_audio.data.build_state`). Returns ``n``.
    ``n_iter`` counts the iterations of :data:`DEFAULT_TEACHER`; another ``teacher``
    (:func:`parse_teacher`) runs its own default, or ``NAME@N``."""
    from vae_audio.data.build_state import claim_output_folder, worker_map

    if n < 1 or shard_size < 1 or jobs < 1:
        raise VaeAudioError(f"n, shard_size and jobs must be >= 1 (got {n}, {shard_size}, {jobs})")
    if teacher != DEFAULT_TEACHER:
        parse_teacher(teacher)  # a bad name fails before any work
    out = Path(out)
    settings = {
        "corpus": str(Path(corpus).resolve()),
        "rir_bank": str(Path(rir_bank).resolve()),
        "n": int(n),
        "segment_seconds": float(segment_seconds),
        "n_speakers": int(n_speakers),
        "split": split,
        "n_iter": int(n_iter),
        "teacher": teacher,
        "stft": StftConfig.from_dict(dict(stft or {})).to_dict(),
        "seed": int(seed),
        "shard_size": int(shard_size),
    }
    for key in ("corpus", "rir_bank"):
        if not Path(settings[key]).is_file():
            raise VaeAudioError(f"{key.replace('_', ' ')} '{settings[key]}' does not exist")
    data = _mixtures(settings)  # the bank's talker positions, the corpus: fail before claiming
    if teacher != DEFAULT_TEACHER and parse_teacher(teacher)[0] == "auto":
        settings["teacher_plan"] = auto_teacher_plan(teacher, data.bank.rirs.shape[2], settings)
    if jobs > 1:
        _DATASETS.clear()  # the workers load their own
    # the mixtures depend on n only through the item index; n may grow
    claim_output_folder(out, SETTINGS_NAME, settings, grow_keys=("n",))
    jobs_list = [
        (str(out), k, start, min(shard_size, n - start), settings)
        for k, start in enumerate(range(0, n, shard_size))
    ]
    last = _shard_path(out, len(jobs_list) - 1)
    if last.exists():  # a last shard from a smaller --n is short: redo it
        held = torch.load(last, map_location="cpu", weights_only=True)["mix"].shape[0]
        if held != jobs_list[-1][3]:
            last.unlink()
    with worker_map(jobs) as pmap:
        bar = tqdm(total=n, unit="mix", desc="teacher", disable=not progress)
        for count in pmap(_build_shard, jobs_list):
            bar.update(count)
        bar.close()
    return n


class TeacherDataset(Dataset):
    """Items ``{"mix": [M, S'] float32, "teacher_log_psd": [N, F, T'] float32}`` from a
    teacher set: random crops of ``segment_seconds`` starting on a frame boundary, so the
    crop's STFT frames are the stored frames ``t0 .. t0 + T' − 1`` (``center=True``); the
    crop is drawn from ``(seed, epoch, index)`` (:func:`vae_audio.core.draws.epoch_rng`).
    ``random_crop=False`` takes the first ``segment_seconds``. ``talker_rows`` (the set's
    talker count; :class:`TeacherSets` raises it to the largest count of its sets) larger
    than the set's count pads the targets with NaN talker rows before the noise row
    (:func:`distillation_loss` reads them as absent talkers)."""

    def __init__(
        self, root: str | Path, segment_seconds: float, random_crop: bool = True, seed: int = 0
    ) -> None:
        root = Path(root)
        self.root = root
        record = root / f"{SETTINGS_NAME}.json"
        if not record.is_file():
            raise VaeAudioError(
                f"'{root}' is not a teacher set (no {record.name}); build one with "
                "`vae-audio teacher-set`"
            )
        self.settings = json.loads(record.read_text(encoding="utf-8"))
        shards = sorted(root.glob("shard_*.pt"))
        if not shards:
            raise VaeAudioError(
                f"teacher set '{root}' has no shards; run `vae-audio teacher-set` to completion"
            )
        parts = [torch.load(p, map_location="cpu", weights_only=True) for p in shards]
        self.mix = torch.cat([p["mix"] for p in parts])  # [n, M, S] float16
        self.log_psd = torch.cat([p["log_psd"] for p in parts])  # [n, N, F, T] float16
        self.hop = int(self.settings["stft"]["hop_length"])
        sr = int(self.settings["stft"]["sample_rate"])
        total = self.log_psd.shape[-1]
        self.frames = min(total, int(round(segment_seconds * sr)) // self.hop + 1)
        self.random_crop, self.seed = random_crop, seed
        self.talker_rows = self.n_talkers

    @property
    def n_mics(self) -> int:
        return int(self.mix.shape[1])

    @property
    def n_talkers(self) -> int:
        return int(self.log_psd.shape[1]) - 1

    @property
    def talker_counts(self) -> tuple[int, ...]:
        """The talker counts the set labels (one: ``n_talkers``)."""
        return (self.n_talkers,)

    def __len__(self) -> int:
        return int(self.mix.shape[0])

    def __getitem__(self, index: int) -> dict:
        total = self.log_psd.shape[-1]
        rng = epoch_rng(self.seed, index) if self.random_crop else None
        t0 = int(rng.integers(total - self.frames + 1)) if rng is not None else 0
        s0, length = t0 * self.hop, (self.frames - 1) * self.hop
        target = self.log_psd[index, :, :, t0 : t0 + self.frames].float()  # [K + 1, F, T']
        if self.talker_rows > self.n_talkers:
            absent = target.new_full(
                (self.talker_rows - self.n_talkers, *target.shape[1:]), math.nan
            )
            target = torch.cat([target[:-1], absent, target[-1:]])  # [talker_rows + 1, F, T']
        return {"mix": self.mix[index, :, s0 : s0 + length].float(), "teacher_log_psd": target}


class TeacherSets(ConcatDataset):
    """Several teacher sets (e.g. 2-talker and 3-talker mixtures) as one training set (the
    sets' items one after the other; the training loader shuffles them); every set is a
    :class:`TeacherDataset` with its targets padded to the largest talker count. The sets
    must share the STFT and the microphone count.

    Raises:
        VaeAudioError: no set is given, or a set differs from the first in STFT or mics.
    """

    def __init__(self, roots: list[str | Path], segment_seconds: float, seed: int = 0) -> None:
        if not roots:
            raise VaeAudioError("no teacher set given; pass data.teacher_set=DIR or a list")
        sets = [TeacherDataset(root, segment_seconds, seed=seed) for root in roots]
        first = sets[0]
        for other in sets[1:]:
            for what, a, b in (
                ("STFT", first.settings["stft"], other.settings["stft"]),
                ("microphone count", first.n_mics, other.n_mics),
            ):
                if a != b:
                    raise VaeAudioError(
                        f"teacher set '{other.root}' has {what} {b} but '{first.root}' has "
                        f"{a}; train on sets built with the same STFT and array"
                    )
        rows = max(s.n_talkers for s in sets)
        for s in sets:
            s.talker_rows = rows
        super().__init__(sets)
        self.settings, self.n_mics, self.n_talkers = first.settings, first.n_mics, rows
        self.talker_counts = tuple(sorted({s.n_talkers for s in sets}))
