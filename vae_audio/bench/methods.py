"""Benchmark methods: names, and candidate images of one mixture for each of them.

**Methods** (:func:`available_methods`): every name in
:data:`vae_audio.separation.METHODS` (run through :func:`~vae_audio.separation.separate`
with ``n_src`` speakers plus a noise slot; single-channel ones such as ``vae-nmf`` on the
reference mic), the pyroomacoustics peers of
:mod:`vae_audio.bench.peers`, the oracles of :mod:`vae_audio.bench.oracles` (ceilings) and
``mixture`` (the unprocessed mixture as every talker's estimate: the floor, SDRi = 0).
``NAME@N`` runs an iterative method with ``N`` iterations whatever ``--iters`` says, so one
run can hold several settings of a method (e.g. ``neural-fastfca@0,neural-fastfca@200``:
amortised and refined Neural FastFCA); ``NAME:key=value`` sets an option (``n_fft``/``hop``
of the STFT, or the method's own, e.g. ``fastmnmf2:init=twostep``,
``neural-fastfca:model=PATH``) or ``wpe=1`` (WPE dereverberation of the mixture before
the method, :mod:`vae_audio.separation.frontend`; our methods, ``auto`` and the peers, e.g.
``fastmnmf2:wpe=1`` beside ``fastmnmf2``) or ``starts=K`` (our methods and ``auto``: K
random starts averaged, :func:`~vae_audio.separation.api.average_starts`). As in
``vae-audio separate``, the Neural FCA methods run the shipped model when none is named,
with 200 refinement steps by default, and ``auto`` runs what ``separate --method auto``
would.

**Which outputs are the talkers** (``select``). A method returns ``N >= n_src`` candidate
images: our methods and the pyroomacoustics FastMNMFs ``n_src`` talkers + 1 noise slot,
AuxIVA and ILRMA ``M`` outputs (see :mod:`vae_audio.bench.peers` for their noise).

* ``"best"`` (default): all N candidates go to the scorer, which keeps the K that match the
  K references best (the permutation solver of :mod:`vae_audio.eval.permutation` with N > K,
  maximising mean pairwise SDR); the others are reported in ``dropped``. This is an oracle
  choice: it measures how well the sources were separated, not how well the method names
  them, and a method with more outputs has more to choose from (AuxIVA/ILRMA: M = 4
  candidates against 3 for the FastMNMFs).
* ``"blind"``: ``n_src`` candidates are chosen without the references, then only their order
  is solved. Our methods: the speakers :func:`~vae_audio.separation.separate` returns (its
  noise slot is the one the method's start makes the noise, e.g. fastmnmf2's and the VAE
  methods', else the most diffuse one). pyroomacoustics FastMNMF(2): the same rule, the slot
  whose empirical image SCM ``Σ_t c cᴴ`` is the most diffuse
  (:func:`~vae_audio.separation.api.diffuseness_rank`) is the noise. AuxIVA/ILRMA: the
  ``n_src`` loudest outputs at the reference mic (a projected-back output is rank 1 at every
  frequency, so diffuseness cannot tell noise from a talker there).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import yaml

from vae_audio.apps.methods import NEURAL, NEURAL_REFINE_ITERATIONS, file_record
from vae_audio.audio.io import load_audio
from vae_audio.audio.stft import StftConfig, istft, stft
from vae_audio.bench.oracles import HALF_ORACLE_ITERATIONS, ORACLE_FILTERS
from vae_audio.bench.peers import PEERS, run_peer
from vae_audio.errors import VaeAudioError
from vae_audio.eval.matching import Reference
from vae_audio.separation.frontend import dereverberate

ORACLES = {
    "oracle-mwf": "multichannel Wiener filter, oracle PSDs and full-rank SCMs (ceiling)",
    "oracle-irm": "ideal ratio (power) mask on each mic (ceiling)",
    "oracle-psd": (
        f"multichannel Wiener filter, oracle PSDs, SCMs blind by {HALF_ORACLE_ITERATIONS} "
        "FCA EM iterations from I (half-oracle)"
    ),
    "oracle-scm": (
        f"multichannel Wiener filter, oracle full-rank SCMs, free PSDs blind by "
        f"{HALF_ORACLE_ITERATIONS} FCA MU iterations from flat (half-oracle)"
    ),
    "oracle-scm-vae": (
        f"multichannel Wiener filter, oracle full-rank SCMs, PSDs blind from the shipped "
        f"speech prior and an NMF noise by {HALF_ORACLE_ITERATIONS} VAE-FCA iterations "
        "(half-oracle)"
    ),
}
FLOOR = {"mixture": "the unprocessed mixture (floor)"}
AUTO = {"auto": "what `vae-audio separate --method auto` runs on the mixture"}
SELECTIONS = ("best", "blind")
STFT_OPTIONS = ("n_fft", "hop")  # NAME:n_fft=1024:hop=256 (hop default n_fft / 4)
FRONTEND_OPTIONS = ("wpe",)  # NAME:wpe=1: WPE before the method (ours, auto, peers)
START_OPTIONS = ("starts",)  # NAME:starts=4: starts averaged (ours, auto)
PEER_ITERATIONS = 100  # default for the pyroomacoustics peers (their own defaults are 20-30)


def available_methods() -> dict[str, str]:
    """Every name the benchmark accepts -> a one-line description."""
    from vae_audio.separation import METHODS

    ours = {
        name: spec.description or "registered separation method" for name, spec in METHODS.items()
    }
    peers = {name: spec.description for name, spec in PEERS.items()}
    return {**AUTO, **dict(sorted(ours.items())), **peers, **ORACLES, **FLOOR}


def parse_method(name: str) -> tuple[str, int | None, dict[str, Any]]:
    """``"NAME[@N][:key=value]..."`` -> ``(NAME, N or None, {key: value})``. Values are read
    as YAML scalars (``1024`` an int, ``twostep`` a string); ``n_fft`` and ``hop`` set the
    STFT, the other keys go to the method as options.

    Raises:
        VaeAudioError: ``N`` is not a non-negative integer, or an option is not ``key=value``.
    """
    head, *parts = name.split(":")
    base, at, count = head.partition("@")
    if at and not count.isdigit():
        raise VaeAudioError(
            f"method {name!r}: the part after '@' is the iteration count, a non-negative "
            f"integer (e.g. {base}@100)"
        )
    options = {}
    for part in parts:
        key, eq, value = part.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise VaeAudioError(
                f"method {name!r}: options follow the name as ':key=value' (e.g. "
                f"{base}:n_fft=1024:init=twostep), got {part!r}"
            )
        options[key.strip()] = yaml.safe_load(value.strip())
    return base, int(count) if at else None, options


def method_record(name: str, n_mics: int, sr: int, n_src: int) -> dict[str, Any]:
    """What shapes the output of method ``name`` (``NAME[@N][:key=value]...``) on an
    ``n_mics``-channel input at ``sr`` Hz with ``n_src`` talkers besides the name itself:
    every option and default that names a file or a shipped model, by path or name and
    SHA-256 (the speech prior of a VAE method, a Neural FCA model, the shipped model a Neural
    method runs when none is named); for ``auto``, its plan's record
    (:meth:`~vae_audio.apps.methods.Plan.record`: the model, the members, the re-fit and its
    prior). ``{}`` for the methods that read no file. A result kept under the name is stale
    when this record has changed, e.g. after a method's default prior changed."""
    from vae_audio.data.manifest import file_digest
    from vae_audio.separation import METHODS

    base, _, options = parse_method(name)
    if base in AUTO:
        return auto_plan(n_mics, sr, n_src).record(sr)
    spec = METHODS.get(base)
    named = {**(spec.defaults if spec is not None else {}), **options}
    if base in NEURAL and "model" not in named:
        named["model"] = _shipped_model(base)
    files = {k: file_record(v, file_digest) for k, v in named.items() if isinstance(v, str)}
    return json.loads(json.dumps({k: e for k, e in files.items() if "sha256" in e}))


def split_method(name: str) -> tuple[str, int | None]:
    """``"NAME@N"`` -> ``(NAME, N)``; a bare name -> ``(name, None)``; options are dropped
    (:func:`parse_method`).

    Raises:
        VaeAudioError: ``N`` is not a non-negative integer.
    """
    base, n_iter, _ = parse_method(name)
    return base, n_iter


def resolve_methods(names: str | Sequence[str]) -> tuple[str, ...]:
    """``"a,b"`` or ``["a", "b"]`` -> the names, checked, duplicates removed, order kept."""
    if isinstance(names, str):
        names = names.split(",")
    chosen = tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
    valid = available_methods()
    unknown = [n for n in chosen if split_method(n)[0] not in valid]
    if unknown or not chosen:
        what = f"unknown method(s) {', '.join(map(repr, unknown))}" if unknown else "no method"
        raise VaeAudioError(f"{what}; valid names: {', '.join(valid)}")
    fixed = [n for n in chosen if split_method(n)[1] is not None]
    not_iterative = [
        n
        for n in fixed
        if split_method(n)[0] not in AUTO and method_iterations(split_method(n)[0], None) is None
    ]
    if not_iterative:
        raise VaeAudioError(
            f"{', '.join(map(repr, not_iterative))}: '@N' sets iterations, and these methods "
            "have none; drop the '@N'"
        )
    for name in chosen:
        _check_options(name)
    return chosen


def _check_options(name: str) -> None:
    """Options of ``name`` must be the STFT ones (our methods, peers) or the method's own."""
    from vae_audio.separation import METHODS

    base, _, options = parse_method(name)
    takes_stft = base in METHODS or base in PEERS
    takes_frontend = takes_stft or base in AUTO
    takes_starts = base in METHODS or base in AUTO
    bad = [
        k
        for k in options
        if not (k in STFT_OPTIONS and takes_stft)
        and not (k in FRONTEND_OPTIONS and takes_frontend)
        and not (k in START_OPTIONS and takes_starts)
        and not accepts_option(base, k)
    ]
    starts = options.get("starts", 1)
    if "starts" not in bad and (
        isinstance(starts, bool) or not isinstance(starts, int) or starts < 1
    ):
        raise VaeAudioError(f"method {name!r}: starts is a positive integer, got {starts!r}")
    if "wpe" in options and "wpe" not in bad and options["wpe"] not in (0, 1):
        raise VaeAudioError(
            f"method {name!r}: wpe is 1 or 0 (true or false), got {options['wpe']!r}"
        )
    if bad:
        own = "the method's own options" if base in METHODS else "none of its own"
        raise VaeAudioError(
            f"method {name!r}: {base} takes no option {', '.join(map(repr, bad))}; it takes "
            f"{'n_fft, hop, wpe and ' if takes_stft else ''}{own}"
        )


def method_iterations(method: str, n_iter: int | None) -> int | None:
    """Iterations ``method`` runs: its ``@N``, else ``n_iter``, else its default; None for
    non-iterative ones."""
    from vae_audio.separation import METHODS

    method, own = split_method(method)
    if own is not None:
        return own
    if method in AUTO:
        return n_iter  # None: what auto's choice runs by default
    if method in NEURAL and n_iter is None:
        return NEURAL_REFINE_ITERATIONS  # as `vae-audio separate` runs a Neural FCA model
    if method in METHODS:
        return METHODS[method].default_n_iter if n_iter is None else n_iter
    if method in PEERS:
        return PEER_ITERATIONS if n_iter is None else n_iter
    return None


def accepts_option(method: str, option: str) -> bool:
    """Whether the registered separation method ``method`` takes the option ``option``."""
    from vae_audio.separation import METHODS

    spec = METHODS.get(split_method(method)[0])
    if spec is None:
        return False
    if spec.options is not None:
        return option in spec.options
    return option in inspect.signature(spec.fit).parameters


@dataclass(frozen=True)
class Mixture:
    """One mixture of a simulated set (``sr`` Hz, float32)."""

    mix: torch.Tensor  # [M, S]
    images: torch.Tensor  # [K, M, S] talker images
    noise: torch.Tensor  # [M, S] noise image
    sr: int


def load_mixture(ref: Reference) -> Mixture:
    """Read a mixture, its talker images and its noise image (checked against each other)."""
    mix, sr = load_audio(ref.mix)  # [M, S]
    images = []
    for path in ref.sources:
        wav, rate = load_audio(path)  # [M, S]
        if rate != sr or wav.shape != mix.shape:
            raise VaeAudioError(
                f"talker image '{path}' ({tuple(wav.shape)} at {rate} Hz) does not match its "
                f"mixture '{ref.mix}' ({tuple(mix.shape)} at {sr} Hz); regenerate the set"
            )
        images.append(wav)
    images = torch.stack(images)  # [K, M, S]
    if ref.noise is not None and ref.noise.is_file():
        noise, rate = load_audio(ref.noise)  # [M, S]
        if rate != sr or noise.shape != mix.shape:
            raise VaeAudioError(
                f"noise image '{ref.noise}' does not match its mixture '{ref.mix}'; "
                "regenerate the set"
            )
    else:  # sets without noise.wav: whatever is not a talker
        noise = mix - images.sum(0)
    return Mixture(mix, images, noise, sr)


def _empirical_scm(C: torch.Tensor) -> torch.Tensor:
    """``Σ_t c cᴴ / T`` of images ``C [N, M, F, T]`` -> ``[1, N, F, M, M]``."""
    H = torch.einsum("nmft,nkft->nfmk", C, C.conj()) / C.shape[-1]  # [N, F, M, M]
    return H[None]


def _shipped_model(method: str) -> str:
    """The shipped Neural FCA model file, which ``method`` runs when no model is named."""
    from vae_audio.apps.methods import shipped_model_path

    path = shipped_model_path()
    if path is None:
        raise VaeAudioError(
            f"{method} needs a Neural FCA model and none is shipped with this installation; "
            f"pass --model PATH or name it per method ({method}:model=PATH)"
        )
    return str(path)


def stft_config(sr: int, options: dict[str, Any]) -> StftConfig:
    """The default STFT at ``sr``, or the one ``n_fft``/``hop`` ask for (hop: n_fft / 4)."""
    if "n_fft" not in options and "hop" not in options:
        return StftConfig(sample_rate=sr)
    n_fft = int(options.get("n_fft", StftConfig(sample_rate=sr).n_fft))
    return StftConfig(sample_rate=sr, n_fft=n_fft, hop_length=int(options.get("hop", n_fft // 4)))


def _talkers_then_noise(res) -> torch.Tensor:
    """The candidates of a :class:`~vae_audio.separation.SeparationResult`: its talkers, then
    its noise image when it has one -> ``[N, M, S]`` on the CPU."""
    est = res.sources if res.noise is None else torch.cat([res.sources, res.noise[None]])
    return est.cpu()


@dataclass(frozen=True)
class _Probe:
    """What :class:`~vae_audio.apps.methods.MethodResolver` reads of an input."""

    path: str
    channels: int
    sample_rate: int


def _auto_candidates(
    data: Mixture, n_src: int, n_iter: int | None, seed: int, model: str | None, device: str,
    wpe: bool = False, starts: int | None = None,
) -> tuple[torch.Tensor, list[int]]:  # fmt: skip
    """What ``vae-audio separate --method auto --n-src n_src`` writes for ``data``: the
    talkers, then the noise image (when the chosen method has one)."""
    est, n_talkers = auto_images(data.mix, data.sr, n_src, n_iter, seed, model, device, wpe, starts)
    return est, list(range(n_talkers))


def auto_plan(n_mics: int, sr: int, n_src: int, model: str | None = None):
    """The :class:`~vae_audio.apps.methods.Plan` of ``vae-audio separate --method auto
    --n-src n_src [--model model]`` for an ``n_mics``-channel input at ``sr`` Hz."""
    from vae_audio.apps.methods import MethodResolver

    return MethodResolver("auto", n_src, model).plan(_Probe("mixture", n_mics, sr))


def auto_images(
    mix: torch.Tensor, sr: int, n_src: int, n_iter: int | None = None, seed: int = 0,
    model: str | None = None, device: str = "cpu", wpe: bool = False, starts: int | None = None,
) -> tuple[torch.Tensor, int]:  # fmt: skip
    """What ``vae-audio separate --method auto --n-src n_src`` writes for the mixture
    ``mix [M, S]`` at ``sr`` Hz: ``(images [N, M, S], n_talkers)``, the talkers, then the
    noise image when the chosen method has one, on the CPU at ``sr``."""
    from vae_audio.audio.io import resample
    from vae_audio.separation import separate

    M, S = mix.shape  # one channel: vae-nmf, images [N, 1, S]
    plan = auto_plan(M, sr, n_src, model)
    rate = plan.sample_rate or sr
    x = mix if rate == sr else resample(mix, sr, rate)
    res = separate(
        x, plan.method, n_src=plan.n_src, sr=rate, stft=plan.stft_for(rate),
        n_iter=plan.iterations(n_iter), seed=seed, device=device, wpe=wpe,
        starts=plan.n_starts(starts), blend=plan.blend_entries(rate), refit=plan.refit_entry(),
        **dict(plan.opts),
    )  # fmt: skip
    est = _talkers_then_noise(res)  # [N, M', S']
    if rate != sr:
        est = resample(est, rate, sr)[..., :S]
    return est, res.sources.shape[0]


def candidates(
    method: str,
    data: Mixture,
    n_src: int,
    *,
    n_iter: int | None = None,
    seed: int = 0,
    model: str | None = None,
    device: str = "cpu",
    wpe: bool = False,
) -> tuple[torch.Tensor, list[int]]:
    """Candidate talker images ``[N, M, S]`` (CPU) of ``method`` on ``data`` and the indices
    the blind selection keeps (ascending). ``n_iter`` None: the method's default; ``model``
    goes to the methods that take one; ``device`` is used by our methods only; ``wpe``:
    WPE before our methods, ``auto`` and the peers unless the name sets ``wpe`` itself
    (oracles and the floor never take it)."""
    from vae_audio.separation import METHODS, separate
    from vae_audio.separation.api import diffuseness_rank

    S = data.mix.shape[-1]
    n_iter = method_iterations(method, n_iter)
    method, _, options = parse_method(method)
    cfg = stft_config(data.sr, options)
    wpe = bool(options.get("wpe", wpe))
    starts = options.get("starts")  # None: the method's (auto's plan, else 1)
    own = (*STFT_OPTIONS, *FRONTEND_OPTIONS, *START_OPTIONS)
    options = {k: v for k, v in options.items() if k not in own}
    if method in AUTO:
        return _auto_candidates(data, n_src, n_iter, seed, model, device, wpe, starts)
    if method in METHODS:
        if model is None and "model" not in options and method in NEURAL:
            model = _shipped_model(method)  # as `vae-audio separate` does
        opts = {"model": model} if model and accepts_option(method, "model") else {}
        opts.update(options)
        # single-channel methods (vae-nmf) get the reference mic: images [N, 1, S]
        mix = data.mix if METHODS[method].multichannel else data.mix[:1]
        res = separate(
            mix, method, n_src=n_src, sr=data.sr, stft=cfg, n_iter=n_iter, seed=seed,
            device=device, wpe=wpe, starts=starts or 1, **opts,
        )  # fmt: skip
        return _talkers_then_noise(res), list(range(res.sources.shape[0]))  # [N, M, S]
    if method in PEERS:
        mix = dereverberate(data.mix.double(), data.sr) if wpe else data.mix.double()  # [M, S]
        X = stft(mix, cfg).numpy()  # [M, F, T] complex128
        C = torch.from_numpy(run_peer(method, X, n_src, n_iter, seed))  # [N, M, F, T]
        est = istft(C, cfg, length=S)  # [N, M, S]
        if PEERS[method].determined:
            blind = est[:, 0].square().sum(-1).argsort(descending=True)[:n_src]  # loudest
        else:
            noise = int(diffuseness_rank(_empirical_scm(C))[0].argmin())
            blind = torch.tensor([n for n in range(C.shape[0]) if n != noise])
        return est, sorted(blind.tolist())
    if method in ORACLES:
        x = stft(data.mix.double(), cfg)  # [M, F, T]
        C = stft(torch.cat([data.images, data.noise[None]]).double(), cfg)  # [K + 1, M, F, T]
        C_hat = ORACLE_FILTERS[method](x, C)  # [K + 1, M, F, T]
        est = istft(C_hat[:-1], cfg, length=S)  # [K, M, S]: the talkers, noise discarded
        return est, list(range(est.shape[0]))
    if method in FLOOR:
        K = data.images.shape[0]
        return data.mix.expand(K, -1, -1).clone(), list(range(K))  # [K, M, S]
    raise VaeAudioError(f"unknown method {method!r}")
