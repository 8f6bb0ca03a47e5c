"""Which separation method, speaker count, rate and STFT each input of ``vae-audio separate``
gets (``--method``, ``--n-src``, ``--model``).

``auto``, per input (:func:`choose_auto`, which also says why): one channel and one talker
-> ``vae-nmf``; the channel count and a talker count of the Neural FCA model (``--model``,
else the shipped ``"neural-fca"`` model when this installation has one; a model with
``n_mics: null`` takes every ``M >= 2``,
:meth:`~vae_audio.neural_fca.model.NeuralFCA.takes_mics`; the talker counts are those it was
trained on, ``model.talkers``, and without ``--n-src`` it separates 2 talkers when it serves
2, else its largest count) -> that model, its separation averaged with those of
:data:`AUTO_NEURAL_BLEND` (FastMNMF2 from 4 starts, and from 2 on frames twice as long, each
with and without WPE, and from 2 on frames four times as long); any other ``M >= 2`` and any
talker count -> :data:`AUTO_FALLBACK`, the first of them registered (FCA-type methods
separate ``N >= M`` talkers too), FastMNMF2 with :data:`AUTO_STARTS` random starts averaged
(:func:`vae_audio.separation.api.average_starts`) and then averaged with
:data:`AUTO_FALLBACK_BLEND` (FastMNMF2 from 4 starts after WPE, from 2 starts on frames
twice as long, with and without WPE, and from 2 on frames four times as long). Either
average is then the start of VAE-FCA re-fitted to the mixture, whose images are mixed into
it (:data:`AUTO_REFIT`; where the input's STFT is that of VAE-FCA's default speech prior, else
skipped with a note). The choice is logged as a note. ``auto`` does not give a model a talker count
it was not trained on (fewer than its slots, for a model trained on one count), although
``--method neural-fastfca --n-src k`` can (its least energetic speaker slots then go to the
noise): on 10 one-talker 4-mic mixtures the shipped 2-talker model scored 8.0 dB SDR with
``--n-src 1``, its blend with FastMNMF2 12.5 dB, FastMNMF2 from 4 starts 15.8 dB and the
unprocessed mixture 14.4 dB.

``neural-fca`` / ``neural-fastfca`` run a trained model (``--model``, default the shipped
one) with 200 refinement iterations unless ``--iters`` says otherwise (0: amortised only).
``auto`` runs it with its own spatial model (full-rank: ``neural-fca``, jointly
diagonalised: ``neural-fastfca``); ``neural-fca`` on a jointly diagonalised model keeps its
latents and estimates full-rank SCMs by EM, and ``neural-fastfca`` on a full-rank model
(which has no diagonaliser) runs as ``neural-fca`` with a note. The model fixes ``M`` (or
takes any ``M >= 2``), the largest speaker count and the STFT; inputs at another sample rate
are resampled to the model's.

Methods with a VAE speech prior (``vae-fca``, ``vae-nmf``, ...; ``--model`` is then the
prior, default the method's shipped one) run at the prior's rate and STFT. The others run at the
file's rate with ``n_fft`` the power of two nearest 32 ms (512 at 16 kHz), hop ``n_fft / 4``.
All take ``--n-src`` speakers (default 2; ``vae-nmf`` 1) plus a noise slot.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vae_audio.errors import VaeAudioError

# Names `--help` lists (it does not import the registry); `--method` takes `auto` or any name
# registered in vae_audio.separation.METHODS, checked when the command runs.
METHOD_CHOICES = (
    "auto",
    "neural-fca",
    "neural-fastfca",
    "vae-fca",
    "vae-fastfca",
    "fastmnmf2",
    "fastmnmf",
    "mnmf",
    "fca",
    "vae-nmf",
)
NEURAL = ("neural-fca", "neural-fastfca")
SINGLE_CHANNEL = "vae-nmf"
FALLBACK = "fastmnmf2"
# What auto runs where no Neural FCA model fits the input (any M >= 2, any talker count),
# in order of preference, and how many random starts it averages. FastMNMF2 with 4 starts
# averaged scored 1.0 dB above one fit of VAE-FastFCA (the speech prior with JD spatial
# covariances) on the 24 condition-matrix mixtures this applies to, ahead on 20, at about
# the same time (README, "The condition matrix").
AUTO_FALLBACK = (FALLBACK, "vae-fastfca")
AUTO_STARTS = {FALLBACK: 4}


@dataclass(frozen=True)
class Blend:
    """A separation averaged with the plan's (``separate(blend=...)``): ``method`` from
    ``starts`` random starts, after WPE dereverberation if ``wpe``, on frames ``stft_scale``
    times as long as the plan's STFT (its hop and window scaled alike)."""

    method: str
    starts: int = 1
    wpe: bool = False
    stft_scale: int = 1

    def entry(self, stft) -> dict[str, Any]:
        """The ``blend`` entry :func:`vae_audio.separation.separate` takes, where the plan's
        STFT is ``stft`` (a :class:`~vae_audio.audio.stft.StftConfig`)."""
        entry: dict[str, Any] = {"method": self.method, "starts": self.starts}
        if self.wpe:
            entry["wpe"] = True
        if self.stft_scale != 1:
            entry["stft"] = {"n_fft": stft.n_fft * self.stft_scale}
        return entry

    def detail(self) -> str:
        """E.g. "2 starts after WPE on 2x longer frames"."""
        text = _count(self.starts, "start")
        if self.wpe:
            text += " after WPE"
        if self.stft_scale != 1:
            text += f" on {self.stft_scale}x longer frames"
        return text


def describe_blends(blends: tuple[Blend, ...]) -> str:
    """``blends`` in a few words, consecutive members of one method in one bracket: e.g.
    "fastmnmf2 (4 starts; 4 starts after WPE)"."""
    parts = [
        f"{method} ({'; '.join(b.detail() for b in group)})"
        for method, group in itertools.groupby(blends, key=lambda b: b.method)
    ]
    return " and ".join(parts)


# What auto averages with the Neural FCA model's separation: the model alone scored 2.94 dB
# on 24 four-mic two-talker mixtures (condition matrix and recorded voices), FastMNMF2 with
# 4 starts 3.85, their average 4.25 (README, "Averaging random starts"); adding FastMNMF2
# from 4 starts after WPE to that average gained +0.77 dB on 24 new ones (ahead on 20), and
# adding the fallback's two longer-frame members then +0.07 dB on the matrix's 14 and +0.53
# on the 24 new ones (ahead on 17; +0.82 on the 10 recorded-voice mixtures), and its member
# on frames four times as long +0.15 on both (ahead on 10 of 14 and 18 of 24). Counting the
# model twice in the average gained nothing (-0.01 and -0.05 dB).
AUTO_NEURAL_BLEND: tuple[Blend, ...] = (
    Blend(FALLBACK, 4),
    Blend(FALLBACK, 4, wpe=True),
    Blend(FALLBACK, 2, stft_scale=2),
    Blend(FALLBACK, 2, wpe=True, stft_scale=2),
    Blend(FALLBACK, 2, stft_scale=4),
)
# What auto averages with its fallback's separation, per method: FastMNMF2 from 4 starts on
# the WPE-dereverberated input, and from 2 starts on frames twice as long, with and without
# WPE. Each front end and each frame length alone helps some mixtures and harms others, but
# their errors differ: the plain fit averaged with the WPE one scored +0.54 dB over the plain
# fit on the 24 condition-matrix mixtures this applies to, then +0.90 dB on 34 new ones (new
# draws of the same cells and 10 recorded-voice mixtures), where 8 plain starts gained +0.10;
# the two longer-frame members added +0.22 dB more on the first 24 and +0.64 on the 34, ahead
# on 27; 2 starts on frames four times as long, +0.13 and +0.17 more (ahead on 17 and 24;
# README, "Averaging with a fit after WPE").
AUTO_FALLBACK_BLEND: dict[str, tuple[Blend, ...]] = {
    FALLBACK: (
        Blend(FALLBACK, 4, wpe=True),
        Blend(FALLBACK, 2, stft_scale=2),
        Blend(FALLBACK, 2, wpe=True, stft_scale=2),
        Blend(FALLBACK, 2, stft_scale=4),
    )
}


@dataclass(frozen=True)
class Refit:
    """VAE-FCA re-fitted from the plan's separation for ``n_iter`` iterations and its images
    mixed into it with weight ``weight`` (``separate(refit=...)``)."""

    n_iter: int
    weight: float

    def entry(self) -> dict[str, Any]:
        """The ``refit`` entry :func:`vae_audio.separation.separate` takes."""
        return {"n_iter": self.n_iter, "weight": self.weight}


# What auto does after averaging, wherever its STFT is VAE-FCA's default speech prior's:
# VAE-FCA (that prior with full-rank SCMs) re-fitted from the average's PSDs and SCMs, its images
# mixed into the average's. Mixed in with weight 0.5 after 10 iterations it gained on the
# condition matrix's 4-mic 2-talker mixtures of both draws (+0.70 and +0.56 dB), on the
# fallback's 2-talker pair, 6-mic and line cells (-0.06 and +0.33) and 3-talker cells
# (+0.29), and held the recorded voices (-0.01); alone it lost there. With weight 0.25:
# +0.33 dB over the same 68 mixtures against +0.36, ahead on 56 against 43 (README,
# "Re-fitting the average").
AUTO_REFIT: Refit | None = Refit(10, 0.5)
SHIPPED_NAME = "neural-fca"
# Refinement iterations of a Neural FCA model when --iters is not given: the published
# inference (200 Adam steps on the latents, lr 0.2). The shipped model's amortised estimates
# alone separate worse than FastMNMF2 on the default preset; refined, a little better
# (README, "Neural FCA").
NEURAL_REFINE_ITERATIONS = 200


def file_record(value: Any, digest: Callable[[Path], str]) -> dict[str, Any]:
    """How :meth:`Plan.record` names an option: ``{"path": value}``, with the SHA-256 of the
    file it names (a path, or the name of a shipped model) where there is one."""
    from vae_audio._pretrained import SHIPPED, pretrained_path

    entry: dict[str, Any] = {"path": str(value)}
    if Path(str(value)).is_file():
        entry["sha256"] = digest(Path(str(value)))
    elif value in SHIPPED:
        entry["sha256"] = digest(pretrained_path(value))
    return entry


@dataclass(frozen=True)
class Plan:
    """How to separate one input: ``separate(method=..., n_src=..., sr=..., stft=..., **opts)``.
    ``sample_rate`` None means the file's own rate (``stft`` is then made for it)."""

    method: str
    n_src: int
    sample_rate: int | None = None
    stft: Any = None
    opts: tuple[tuple[str, str], ...] = ()
    label: str = ""
    n_iter: int | None = None  # iterations when --iters is not given (None: the method's)
    starts: int = 1  # random starts averaged when --starts is not given
    blend: tuple[Blend, ...] = ()  # separations averaged with this method's
    refit: Refit | None = None  # VAE-FCA re-fitted from the separation (None: none)

    def record(
        self,
        sr: int,
        iters: int | None = None,
        starts: int | None = None,
        digest: Callable[[Path], str] | None = None,
    ) -> dict[str, Any]:
        """What of the plan shapes its outputs on an input at ``sr`` Hz, given ``--iters`` and
        ``--starts``, JSON-normalised: method, talkers, rate, iterations, options (the
        method's defaults included, e.g. the speech prior a VAE method runs; files named by
        path or shipped name and SHA-256, ``digest(path)``; default
        :func:`~vae_audio.data.manifest.file_digest`), and the starts, blend and re-fit (with
        its speech prior) where the plan has them (so that records made before one existed
        keep matching, and a changed default prior redoes the outputs it made)."""
        import json

        from vae_audio.data.manifest import file_digest
        from vae_audio.separation import METHODS

        digest = digest or file_digest
        spec = METHODS.get(self.method)
        options = {**(spec.defaults if spec is not None else {}), **dict(self.opts)}
        opts = {key: file_record(value, digest) for key, value in options.items()}
        record: dict[str, Any] = {
            "method": self.method,
            "n_src": self.n_src,
            "sample_rate": self.sample_rate,
            "iters": self.iterations(iters),
            "opts": opts,
        }
        if self.n_starts(starts) > 1:
            record["starts"] = self.n_starts(starts)
        if self.blend:
            record["blend"] = self.blend_entries(self.sample_rate or sr)
        if self.refit is not None:
            prior = METHODS["vae-fca"].defaults.get("prior")
            record["refit"] = {**self.refit.entry(), "prior": file_record(prior, digest)}
        return json.loads(json.dumps(record))

    def refit_entry(self) -> dict[str, Any] | None:
        """``refit`` as :func:`vae_audio.separation.separate` takes it (None: no re-fit)."""
        return None if self.refit is None else self.refit.entry()

    def blend_entries(self, sr: int) -> list[dict[str, Any]]:
        """``blend`` as :func:`vae_audio.separation.separate` takes it for a rate of ``sr``."""
        stft = self.stft_for(sr)
        return [b.entry(stft) for b in self.blend]

    def longest_window(self, sr: int) -> int:
        """The longest STFT window of the plan at ``sr`` Hz, its blend members' included
        (samples): the shortest input it can separate."""
        return self.stft_for(sr).n_fft * max([1, *(b.stft_scale for b in self.blend)])

    def iterations(self, iters: int | None) -> int | None:
        """Iterations to run: ``--iters`` when given, else the plan's default."""
        return self.n_iter if iters is None else iters

    def n_starts(self, starts: int | None) -> int:
        """Random starts to average: ``--starts`` when given, else the plan's default."""
        return self.starts if starts is None else starts

    def stft_for(self, sr: int):
        from vae_audio.audio.stft import StftConfig

        if self.stft is not None:
            return self.stft
        n_fft = 2 ** round(math.log2(0.032 * sr))
        return StftConfig(sample_rate=sr, n_fft=n_fft, hop_length=n_fft // 4)


@dataclass(frozen=True)
class AutoChoice:
    """What ``auto`` runs on an input: ``method`` ("neural" for the Neural FCA model),
    ``n_src`` talkers, and ``reason``, one line for the user."""

    method: str
    n_src: int
    reason: str


def choose_auto(
    n_mics: int,
    n_src: int | None,
    neural: tuple[int | None, tuple[int, ...]] | None,
    registered: tuple[str, ...] | None = None,
) -> AutoChoice:
    """``auto``'s method for a mixture of ``n_mics`` channels and ``n_src`` talkers (None:
    the model's default count, else 2; 1 for one channel). ``neural`` is ``(M, counts)`` of
    the Neural FCA model at hand (None: none; ``M`` None: the model takes any ``M >= 2``;
    ``counts`` the talker counts it was trained on,
    :attr:`~vae_audio.neural_fca.model.NeuralFCAConfig.talker_counts`); ``registered`` the
    available method names (default: the registry).

    Raises:
        VaeAudioError: no method separates this input (several talkers from one channel).
    """
    if registered is None:
        from vae_audio.separation import METHODS

        registered = tuple(METHODS)
    if n_mics == 1:
        if n_src not in (None, 1):
            raise VaeAudioError(
                f"{n_src} talkers cannot be separated from 1 channel: every method needs "
                "M >= 2 microphones for several talkers; give a multichannel recording, or "
                "--n-src 1 to enhance the one talker"
            )
        if SINGLE_CHANNEL not in registered:
            raise VaeAudioError(
                f"1 channel and no single-channel method ({SINGLE_CHANNEL}) is available in "
                "this installation; separate a multichannel recording (M >= 2)"
            )
        return AutoChoice(SINGLE_CHANNEL, 1, "1 channel: speech prior + NMF noise (vae-nmf)")
    if neural is not None:
        from vae_audio.neural_fca.model import default_talker_count

        counts = neural[1]
        n_model = n_src if n_src is not None else default_talker_count(counts)
        if neural[0] in (None, n_mics) and n_model in counts:
            talkers = _count(n_model, "talker")
            if neural[0] is not None:
                made = "made for them" if len(counts) == 1 else f"made for {_counts(counts)}"
            else:
                made = f"takes any M >= 2 and {_counts(counts)}"
            reason = f"{n_mics} channels, {talkers}: the Neural FCA model {made}"
            return AutoChoice("neural", n_model, reason)
    n = 2 if n_src is None else n_src
    method = next((m for m in AUTO_FALLBACK if m in registered), None)
    if method is None:
        raise VaeAudioError(
            f"none of {', '.join(AUTO_FALLBACK)} is available in this installation; "
            "name a method with --method"
        )
    if neural is None:
        why = "no Neural FCA model is at hand"
    elif neural[0] is None:  # another talker count
        why = f"the Neural FCA model takes any M >= 2 but is made for {_counts(neural[1])}"
    else:  # another channel or talker count
        why = f"the Neural FCA model is made for {neural[0]} channels and {_counts(neural[1])}"
    return AutoChoice(
        method, n, f"{n_mics} channels, {_count(n, 'talker')}: {why}; {method} takes any"
    )


def _counts(counts: tuple[int, ...]) -> str:
    """Talker counts in words: ``"2 talkers"``, ``"1 to 3 talkers"``, ``"1 or 3 talkers"``."""
    if len(counts) == 1:
        return _count(counts[0], "talker")
    if list(counts) == list(range(counts[0], counts[-1] + 1)):
        return f"{counts[0]} to {counts[-1]} talkers"
    return f"{', '.join(map(str, counts[:-1]))} or {counts[-1]} talkers"


def _count(n: int, noun: str) -> str:
    """``"1 talker"``, ``"3 talkers"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def shipped_model_path() -> Path | None:
    """The shipped Neural FCA model file, or None when this installation has none."""
    from vae_audio._pretrained import SHIPPED, pretrained_path

    if SHIPPED_NAME not in SHIPPED:
        return None
    try:
        return pretrained_path(SHIPPED_NAME)
    except VaeAudioError:
        return None


@dataclass
class MethodResolver:
    """Turns the command-line choices into a :class:`Plan` per input (module docstring)."""

    method: str = "auto"
    n_src: int | None = None
    model: str | None = None
    notes: list[str] = field(default_factory=list)
    _net: Any = None
    _net_path: Path | None = None

    def __post_init__(self) -> None:
        from vae_audio.separation import METHODS

        if self.method != "auto" and self.method not in METHODS:
            known = "is unknown"
            if self.method in METHOD_CHOICES:
                known = "is not available in this installation"
            raise VaeAudioError(
                f"method {self.method!r} {known}; use auto or one of {', '.join(sorted(METHODS))}"
            )
        if self.n_src is not None and self.n_src < 1:
            raise VaeAudioError(f"--n-src must be a positive integer, got {self.n_src}")
        if self.model is not None:
            self._net_path = Path(self.model).expanduser()
        elif self.method in NEURAL or self.method == "auto":
            self._net_path = shipped_model_path()
            if self._net_path is None and self.method in NEURAL:
                from vae_audio._pretrained import SHIPPED, pretrained_path

                if SHIPPED_NAME in SHIPPED:
                    pretrained_path(SHIPPED_NAME)  # raises: says how to regenerate the file
                raise VaeAudioError(
                    f"--method {self.method} needs --model PATH (a model.pt exported by "
                    "`vae-audio train neural-fca`): no Neural FCA model is shipped with this "
                    "installation; or use --method fastmnmf2"
                )

    def _network(self):
        if self._net is None:
            from vae_audio.neural_fca import load_neural_fca

            self._net = load_neural_fca(self._net_path)
        return self._net

    def _neural_plan(self, item) -> Plan:
        from vae_audio.neural_fca.modelfile import check_mixture

        net = self._network()
        shipped = self.model is None
        what = "the shipped Neural FCA model" if shipped else f"Neural FCA model '{self._net_path}'"
        try:
            check_mixture(net, item.channels, None, what)
        except VaeAudioError as err:
            raise VaeAudioError(f"cannot separate '{item.path}': {err}") from None
        n_spk = net.config.n_speakers
        n_src = self.n_src or net.config.default_talkers
        if n_src > n_spk:
            raise VaeAudioError(
                f"{what} separates {n_spk} speakers at most, but --n-src {n_src} was given; "
                f"pass --n-src 1 to {n_spk} (or drop it), or use a method without a fixed "
                "speaker count"
            )
        if n_src < n_spk:
            self._note(
                f"{what} has {n_spk} speaker slots: for --n-src {n_src} it returns the "
                f"{_count(n_src, 'most energetic slot')} and adds the rest to the noise"
            )
        method = "neural-fastfca" if net.config.spatial == "jd" else "neural-fca"
        if self.method == "neural-fca":
            method = "neural-fca"  # full-rank SCMs by EM, also on a JD model's latents
        elif self.method == "neural-fastfca" and method != self.method:
            self._note(f"{what} has the {net.config.spatial!r} spatial model: run as {method}")
        if item.sample_rate != net.stft_config.sample_rate:
            self._note(
                f"inputs at rates other than {net.stft_config.sample_rate} Hz are resampled to "
                f"it, the rate of {what}"
            )
        label = f"{method} ({'shipped model' if shipped else self._net_path.name})"
        return Plan(
            method=method,
            n_src=n_src,
            sample_rate=net.stft_config.sample_rate,
            stft=net.stft_config,
            opts=(("model", str(self._net_path)),),
            label=label,
            n_iter=NEURAL_REFINE_ITERATIONS,
        )

    def _neural_shape(self, n_mics: int) -> tuple[int | None, tuple[int, ...]] | None:
        """``(M, counts)`` of the Neural FCA model ``auto`` may use (``M`` None: any
        ``M >= 2``; ``counts`` the talker counts it serves); None when there is none. A model
        named with ``--model`` is always used (its checks then explain a mismatch)."""
        if self._net_path is None:
            return None
        net = self._network()
        counts = net.config.talker_counts
        if self.model is not None:
            M = None if net.n_mics is None else n_mics  # so the note says "any M >= 2"
            if self.n_src is not None:  # the plan takes 1..N talkers or says why not
                counts = (self.n_src,)
            return (M, counts)
        return (net.n_mics, counts)

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def plan(self, item) -> Plan:
        """The plan for a probed :class:`~vae_audio.apps.inputs.InputItem`."""
        method, M = self.method, item.channels
        if method == "auto":
            try:
                choice = choose_auto(M, self.n_src, self._neural_shape(M))
            except VaeAudioError as err:
                raise VaeAudioError(f"cannot separate '{item.path}': {err}") from None
            self._note(f"auto: {choice.reason}")
            if choice.method == "neural":
                plan = self._neural_plan(item)
                return self._refitted(self._blended(plan, AUTO_NEURAL_BLEND, "the model's"), item)
            method = choice.method
            starts = AUTO_STARTS.get(method, 1)
            plan = self._plan(item, method)
            if starts > 1:
                self._note(f"auto: {method} averages {starts} random starts")
                plan = replace(plan, starts=starts, label=f"{plan.label} ({starts} starts)")
            plan = self._blended(plan, AUTO_FALLBACK_BLEND.get(method, ()), "its")
            return self._refitted(plan, item)
        return self._plan(item, method)

    def _refitted(self, plan: Plan, item: Any) -> Plan:
        """``plan`` with :data:`AUTO_REFIT` where VAE-FCA's default speech prior can run on
        its STFT (noted either way)."""
        from vae_audio.separation import METHODS

        if AUTO_REFIT is None or "vae-fca" not in METHODS:
            return plan
        from vae_audio.separation.priors import check_prior_stft, prior_stft

        stft = plan.stft_for(plan.sample_rate or item.sample_rate)
        opts = dict(METHODS["vae-fca"].defaults)
        try:
            check_prior_stft("vae-fca", opts, stft)
        except VaeAudioError:
            prior = prior_stft(opts.get("prior"))
            self._note(
                f"auto: no VAE-FCA re-fit at {stft.sample_rate} Hz (n_fft {stft.n_fft}): the "
                f"speech prior is made for {prior.sample_rate} Hz (n_fft {prior.n_fft})"
            )
            return plan
        self._note(
            f"auto: then VAE-FCA (speech prior {opts.get('prior')}, full-rank SCMs) is re-fitted "
            f"from that average for {AUTO_REFIT.n_iter} iterations and mixed into it with weight "
            f"{AUTO_REFIT.weight}"
        )
        return replace(plan, refit=AUTO_REFIT, label=f"{plan.label}, re-fitted by vae-fca")

    def _blended(self, plan: Plan, blends: tuple[Blend, ...], whose: str) -> Plan:
        """``plan`` with ``blends`` averaged in, noted and named in its label (none: as is)."""
        if not blends:
            return plan
        text = describe_blends(blends)
        self._note(f"auto: {whose} separation is averaged with {text}")
        return replace(plan, blend=blends, label=f"{plan.label} + {text}")

    def _plan(self, item, method: str) -> Plan:
        from vae_audio.separation import METHODS

        M = item.channels
        if method in NEURAL:
            return self._neural_plan(item)
        spec = METHODS[method]
        if spec.multichannel and M < 2:
            raise VaeAudioError(
                f"'{item.path}' has 1 channel but {method} needs a multichannel mixture "
                f"(M >= 2); give a multichannel recording"
                + (f" or use --method {SINGLE_CHANNEL}" if SINGLE_CHANNEL in METHODS else "")
            )
        n_src = self.n_src or (1 if method == SINGLE_CHANNEL else 2)
        if spec.needs_n_src_le_m and n_src > M:
            raise VaeAudioError(
                f"'{item.path}' has {M} channels but {method} separates at most M sources and "
                f"--n-src is {n_src}; lower --n-src or use an FCA-type method"
            )
        opts: tuple[tuple[str, str], ...] = ()
        if self.model is not None:
            key = next((k for k in ("model", "prior") if k in (spec.options or ("model",))), None)
            if key is None:
                raise VaeAudioError(
                    f"method {method} takes no --model; drop it or use --method neural-fca"
                )
            opts = ((key, str(self._net_path)),)
        if "prior" in (spec.options or ()):  # VAE methods run at the speech prior's STFT
            stft = self._prior_stft(spec)
            if self.model is None and "prior" in spec.defaults:
                self._note(f"{method}: speech prior {spec.defaults['prior']} (--model for another)")
            if item.sample_rate != stft.sample_rate:
                self._note(f"{method}: inputs are resampled to the speech prior's rate")
            return Plan(method, n_src, stft.sample_rate, stft, opts, method)
        return Plan(method=method, n_src=n_src, opts=opts, label=method)

    def _prior_stft(self, spec):
        from vae_audio.separation.priors import prior_stft

        # --model names the prior for these methods; without it, the method's own default
        # (self._net_path may then be the shipped Neural FCA model, used by auto)
        return prior_stft(self._net_path if self.model is not None else spec.defaults.get("prior"))
