"""The Debian TTS engines behind the synthetic speech corpus: flite, espeak-ng, festival.

A :class:`Voice` is one engine voice (flite ``slt``, espeak-ng ``en-us+m3``, festival
``kal_diphone``). :func:`discover_voices` lists the voices installed on this machine and
says which engines are missing (with the Debian package to install). :func:`synthesise`
runs one engine on one sentence with a pitch and speaking-rate setting.

By default espeak-ng contributes its English voices with the ``+m1..+m7`` / ``+f1..+f5``
variants. ``languages`` widens that to other languages (``"all"`` or a list of language
codes such as ``fr-fr,de``; they read the corpus' English sentences with their own
letter-to-sound rules and voices) and ``variants`` to other voice variants (``"all"``: every
variant espeak-ng lists except the whispered, robotic and effect ones in
:data:`ESPEAK_NON_SPEECH_VARIANTS`, or a list of variant names). Festival contributes every
installed voice that its ``voice.list`` reports.


========== ================================= ===========================================
engine     pitch                             rate
========== ================================= ===========================================
flite      ``int_f0_target_mean`` (Hz)       ``duration_stretch`` (1 = normal, >1 slower)
espeak-ng  ``-p`` (0-99, 50 = normal)        ``-s`` (words per minute, 175 = normal)
festival   LR intonation ``target_f0_mean``  ``Duration_Stretch`` (1 = normal)
========== ================================= ===========================================
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vae_audio.errors import VaeAudioError

ENGINES = ("flite", "espeak-ng", "festival")
# Debian packages that provide each engine (and a voice for it).
ENGINE_PACKAGES = {
    "flite": "flite",
    "espeak-ng": "espeak-ng",
    "festival": "festival festvox-kallpc16k",
}
# flite voices used (awb_time only speaks clock times) and their natural mean f0 in Hz,
# measured with librosa.pyin on a long sentence.
FLITE_VOICES = {"kal": 95.0, "kal16": 95.0, "awb": 125.0, "rms": 105.0, "slt": 170.0}
ESPEAK_VARIANTS = tuple(f"m{i}" for i in range(1, 8)) + tuple(f"f{i}" for i in range(1, 6))
# espeak-ng variant files that do not sound like a human talker (whisper, robots, effects,
# and a speed-test voice); left out of ``variants="all"``.
ESPEAK_NON_SPEECH_VARIANTS = frozenset(
    {
        "whisper", "whisperf", "Demonic", "announcer", "fast", "UniRobot", "anikaRobot",
        "Tweaky", "robosoft", "robosoft2", "robosoft3", "robosoft4", "robosoft5",
        "robosoft6", "robosoft7", "robosoft8",
    }
)  # fmt: skip
_FESTIVAL_F0 = 105.0  # natural mean f0 of the kal_diphone voice (its int_lr_params)
_TIMEOUT_S = 120


@dataclass(frozen=True)
class Voice:
    """One engine voice; ``speaker`` is its corpus-wide id, e.g. ``espeak-ng_en-us+m3``."""

    engine: str
    name: str

    @property
    def speaker(self) -> str:
        return f"{self.engine}_{self.name}"

    @property
    def natural_pitch(self) -> float:
        """Engine pitch value of the unmodified voice (Hz, or espeak-ng's 0-99 scale)."""
        if self.engine == "flite":
            return FLITE_VOICES[self.name]
        if self.engine == "espeak-ng":
            return 50.0
        return _FESTIVAL_F0

    @property
    def natural_rate(self) -> float:
        """Engine rate value of the unmodified voice (stretch factor, or words per minute)."""
        return 175.0 if self.engine == "espeak-ng" else 1.0


def _run(cmd: list[str], what: str, stdin: str | None = None) -> str:
    try:
        proc = subprocess.run(
            cmd, input=stdin, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VaeAudioError(f"{what} failed ({exc}); check the engine's installation") from exc
    if proc.returncode != 0:
        err = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no message"]
        raise VaeAudioError(
            f"{what} failed (exit {proc.returncode}: {err[0]}); check the engine's installation"
        )
    return proc.stdout


def _flite_voices() -> list[Voice]:
    out = _run(["flite", "-lv"], "`flite -lv`")
    installed = set(out.split(":", 1)[-1].split())
    return [Voice("flite", v) for v in FLITE_VOICES if v in installed]


def _espeak_languages(languages: str | tuple[str, ...]) -> list[str]:
    """espeak-ng language codes of the non-mbrola voices, in espeak-ng's listing order.

    ``"en"``: the English voices; ``"all"``: every language; a tuple: the codes starting with
    one of its items, ``"all"`` standing for every code, less those starting with an item
    written ``-CODE`` (``("all", "-en")``: every language but English).
    """
    if languages == "en":
        out, keep, drop = _run(["espeak-ng", "--voices=en"], "`espeak-ng --voices=en`"), ("en",), ()
    else:
        items = ("all",) if languages == "all" else tuple(languages)
        out = _run(["espeak-ng", "--voices"], "`espeak-ng --voices`")
        keep = tuple(i for i in items if not i.startswith("-"))
        drop = tuple(i[1:] for i in items if i.startswith("-"))
        keep = ("",) if "all" in keep else keep  # "" prefixes every code
    found = []
    for line in out.splitlines()[1:]:
        cols = line.split()
        # Pty Language Age/Gender VoiceName File ...; mbrola voices (mb/...) need mbrola.
        if len(cols) < 5 or cols[4].startswith("mb/") or cols[1] in found:
            continue
        if cols[1].startswith(keep) and not (drop and cols[1].startswith(drop)):
            found.append(cols[1])
    if not found:
        raise VaeAudioError(
            f"espeak-ng has no voice for the language(s) {languages!r}; see `espeak-ng --voices`"
        )
    return found


def _espeak_variants(variants: str | tuple[str, ...]) -> list[str]:
    """Variant names: the standard 12 (``"standard"``), ``"all"`` human-sounding ones, or a list."""
    if variants == "standard":
        return list(ESPEAK_VARIANTS)
    listed = []
    out = _run(["espeak-ng", "--voices=variant"], "`espeak-ng --voices=variant`")
    for line in out.splitlines()[1:]:
        files = [col[3:] for col in line.split() if col.startswith("!v/")]  # File column
        listed += files[:1]
    if variants == "all":
        extra = [v for v in listed if v not in ESPEAK_NON_SPEECH_VARIANTS]
        return list(dict.fromkeys([*ESPEAK_VARIANTS, *sorted(extra)]))
    unknown = sorted(set(variants) - set(listed))
    if unknown:
        raise VaeAudioError(
            f"unknown espeak-ng variant(s) {unknown}; see `espeak-ng --voices=variant`"
        )
    return list(dict.fromkeys(variants))


def _espeak_voices(
    languages: str | tuple[str, ...] = "en", variants: str | tuple[str, ...] = "standard"
) -> list[Voice]:
    langs, vars_ = _espeak_languages(languages), _espeak_variants(variants)
    return [Voice("espeak-ng", f"{lang}+{var}") for lang in langs for var in vars_]


def _festival_voices() -> list[Voice]:
    out = _run(["festival", "--pipe"], "`festival --pipe`", stdin="(print (voice.list))\n")
    match = re.search(r"\(([^()]*)\)\s*$", out.strip())
    names = match.group(1).split() if match else []
    return [Voice("festival", name) for name in names]


_DISCOVER = {"flite": _flite_voices, "festival": _festival_voices}
_BINARIES = {
    "flite": ("flite",),
    "espeak-ng": ("espeak-ng",),
    "festival": ("festival", "text2wave"),
}


def missing_engine_message(engine: str) -> str:
    """One line saying an engine is absent and which Debian package provides it."""
    return (
        f"TTS engine '{engine}' is not installed; install it with "
        f"`apt-get install {ENGINE_PACKAGES[engine]}`"
    )


def discover_voices(
    engines: tuple[str, ...] = ENGINES,
    *,
    languages: str | tuple[str, ...] = "en",
    variants: str | tuple[str, ...] = "standard",
) -> tuple[list[Voice], list[str]]:
    """Voices of the requested engines installed here, and one message per missing engine.

    ``languages`` and ``variants`` choose espeak-ng's voices (module docstring); the defaults
    give the English voices with the 12 standard variants.
    """
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        raise VaeAudioError(f"unknown TTS engine(s) {unknown}; choose from {', '.join(ENGINES)}")
    voices, missing = [], []
    for engine in engines:
        if not all(shutil.which(b) for b in _BINARIES[engine]):
            missing.append(missing_engine_message(engine))
            continue
        if engine == "espeak-ng":
            found = _espeak_voices(languages, variants)
        else:
            found = _DISCOVER[engine]()
        if found:
            voices.extend(found)
        else:
            missing.append(
                f"TTS engine '{engine}' has no usable voice; "
                f"install one with `apt-get install {ENGINE_PACKAGES[engine]}`"
            )
    return voices, missing


def synthesise(voice: Voice, text: str, pitch: float, rate: float, out_wav: Path) -> None:
    """Speak ``text`` with ``voice`` into the WAV file ``out_wav`` (engine's own rate).

    ``pitch`` and ``rate`` are in the engine's units (see the module table).
    """
    what = f"{voice.engine} voice '{voice.name}' on '{out_wav.name}'"
    if voice.engine == "flite":
        _run(
            [
                "flite",
                "-voice",
                voice.name,
                "--setf",
                f"int_f0_target_mean={pitch:.2f}",
                "--setf",
                f"duration_stretch={rate:.4f}",
                "-t",
                text,
                "-o",
                str(out_wav),
            ],
            what,
        )
    elif voice.engine == "espeak-ng":
        _run(
            [
                "espeak-ng",
                "-v",
                voice.name,
                "-p",
                str(int(round(pitch))),
                "-s",
                str(int(round(rate))),
                "-w",
                str(out_wav),
                "--stdin",
            ],
            what,
            stdin=text,
        )
    elif voice.engine == "festival":
        with tempfile.NamedTemporaryFile("w", suffix=".txt", dir=out_wav.parent) as fh:
            fh.write(text + "\n")
            fh.flush()
            lr = (
                f"(set! int_lr_params '((target_f0_mean {pitch:.2f}) (target_f0_std 14) "
                "(model_f0_mean 170) (model_f0_std 34)))"
            )
            _run(
                [
                    "text2wave",
                    "-eval",
                    f"(voice_{voice.name})",
                    "-eval",
                    f"(Parameter.set 'Duration_Stretch {rate:.4f})",
                    "-eval",
                    lr,
                    fh.name,
                    "-o",
                    str(out_wav),
                ],
                what,
            )
    else:
        raise VaeAudioError(f"unknown TTS engine '{voice.engine}'; choose from {ENGINES}")
    if not out_wav.is_file() or out_wav.stat().st_size <= 44:
        raise VaeAudioError(f"{what} wrote no audio; check the engine's installation")
