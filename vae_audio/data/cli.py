"""`vae-audio corpus tts|prompts|scan|import`, `vae-audio simulate` and `vae-audio rir-bank`."""

from __future__ import annotations

import argparse
import sys

from vae_audio.cli_types import JOBS, LEVEL_DBFS, SEED, Number, count, seconds
from vae_audio.errors import VaeAudioError


def _engines(text: str) -> tuple[str, ...]:
    return tuple(e.strip() for e in text.split(",") if e.strip())


def _choice(text: str, keywords: tuple[str, ...]) -> str | tuple[str, ...]:
    """A keyword (``"all"``) as is, anything else as a tuple of comma-separated items."""
    return text if text in keywords else _engines(text)


def _hold_out(values: list[str] | None) -> tuple[str, ...]:
    """Speaker ids, each given as is or as a manifest whose speakers are all taken."""
    from vae_audio.data.manifest import read_manifest

    speakers: list[str] = []
    for value in values or ():
        if value.endswith(".jsonl"):
            speakers += [e["speaker"] for e in read_manifest(value, require=("speaker",))]
        else:
            speakers.append(value)
    return tuple(dict.fromkeys(speakers))


def _run_tts(args: argparse.Namespace) -> int:
    from vae_audio.data.tts_corpus import build_tts_corpus

    result = build_tts_corpus(
        args.out,
        hours=args.hours,
        max_utterances=args.utterances,
        seed=args.seed,
        engines=_engines(args.engines),
        jobs=args.jobs,
        level_dbfs=args.level_dbfs,
        languages=_choice(args.languages, ("en", "all")),
        variants=_choice(args.variants, ("standard", "all")),
        hold_out=_hold_out(args.hold_out),
        progress=not args.quiet,
    )
    for message in result.missing_engines:
        print(f"vae-audio: warning: {message}; continuing without it", file=sys.stderr)
    print(
        f"wrote {result.n_train + result.n_valid} utterances ({result.hours:.3f} h; train "
        f"{result.n_train}, valid {result.n_valid}, test {result.n_test}: the valid utterances "
        f"of the {len(result.heldout_speakers)}/{result.n_speakers} speakers held out of train) "
        f"to '{result.out}'; "
        f"{result.n_failed} failed syntheses skipped"
    )
    return 0


def _run_prompts(args: argparse.Namespace) -> int:
    from vae_audio.data.prompts_corpus import build_prompts_corpus

    result = build_prompts_corpus(
        args.out,
        sounds_dir=args.sounds,
        seed=args.seed,
        valid_fraction=args.valid_fraction,
        level_dbfs=args.level_dbfs,
        progress=not args.quiet,
    )
    per_voice = ", ".join(
        f"{speaker} {language} {seconds / 60:.1f} min"
        for (speaker, language), seconds in sorted(result.seconds.items())
    )
    print(
        f"wrote {result.n_train + result.n_valid + result.n_test} prompts (train "
        f"{result.n_train}, valid {result.n_valid}, test {result.n_test}; {per_voice}) to "
        f"'{result.out}'; {result.n_skipped} shorter than 0.5 s skipped"
    )
    return 0


def _run_scan(args: argparse.Namespace) -> int:
    from vae_audio.data.scan import scan_corpus

    result = scan_corpus(
        args.root, args.manifest, sr=args.sr, valid_percent=args.valid_percent,
        progress=not args.quiet,
    )  # fmt: skip
    print(result.summary())
    return 0


def _run_import(args: argparse.Namespace) -> int:
    from vae_audio.data.importers import import_corpus

    result = import_corpus(
        args.corpus, args.root, args.out, sr=args.sr, mode=args.mode, mix=args.mix,
        speakers=args.speakers, subsets=args.subset, metadata=not args.no_metadata,
    )  # fmt: skip
    print(result.summary())
    return 0


def _run_simulate(args: argparse.Namespace) -> int:
    from vae_audio.data.simulate_set import simulate_dataset

    result = simulate_dataset(
        args.corpus,
        args.out,
        args.n,
        preset=args.preset,
        seed=args.seed,
        jobs=args.jobs,
        split=args.split,
        progress=not args.quiet,
    )
    print(
        f"{result.n_mixtures} mixtures ({result.hours:.3f} h, {result.n_reused} reused) in "
        f"'{result.out}'; manifest '{result.manifest}'"
    )
    return 0


def _run_bank(args: argparse.Namespace) -> int:
    from vae_audio.data.rir_bank import build_rir_bank

    if args.noise_sources is not None and args.noise_sources < 0:
        raise VaeAudioError(f"--noise-sources must be >= 0, got {args.noise_sources}")
    bank = build_rir_bank(
        args.preset, args.n, seed=args.seed, jobs=args.jobs, noise_sources=args.noise_sources,
        progress=not args.quiet,
    )  # fmt: skip
    path = bank.save(args.out)
    size = sum(t.numel() * t.element_size() for t in (bank.rirs, bank.noise_rirs)) / 2**20
    print(
        f"RIR bank of {len(bank)} rooms (rirs {tuple(bank.rirs.shape)}, noise "
        f"{tuple(bank.noise_rirs.shape)}, {size:.1f} MiB) -> '{path}'"
    )
    return 0


def _run_teacher_set(args: argparse.Namespace) -> int:
    from vae_audio.neural_fca.teacher import build_teacher_set

    n = build_teacher_set(
        args.out,
        args.corpus,
        args.rir_bank,
        args.n,
        segment_seconds=args.seconds,
        n_speakers=args.n_speakers,
        split=args.split,
        n_iter=args.iters,
        seed=args.seed,
        jobs=args.jobs,
        progress=not args.quiet,
        teacher=args.teacher,
    )
    print(f"{n} teacher-labelled mixtures in '{args.out}'")
    return 0


def register(subparsers) -> None:
    corpus = subparsers.add_parser(
        "corpus",
        help="build a TTS or recorded-prompt speech corpus, or index a folder of recordings",
    )
    sub = corpus.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)

    p = sub.add_parser(
        "tts",
        help="synthesise an English speech corpus with flite, espeak-ng and festival",
        description="Synthesise 16-kHz utterances (every engine voice variant is a speaker), "
        "trim silence, normalise the RMS level and write OUT/train.jsonl, OUT/valid.jsonl, "
        "OUT/test.jsonl (the held-out speakers' utterances only: voices never in train) and "
        "OUT/wav/. Re-running with the same settings resumes; a larger --hours extends.",
    )
    p.add_argument("out", metavar="OUT", help="output folder")
    p.add_argument(
        "--hours",
        type=Number(float, 0, low_open=True, example="1"),
        default=1.0,
        help="hours of audio (default 1)",
    )
    p.add_argument("--utterances", type=count("100"), metavar="N", help="stop after N utterances")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument(
        "--engines", default="flite,espeak-ng,festival", help="comma-separated engines to use"
    )
    p.add_argument("--jobs", type=JOBS, default=1, metavar="J", help="parallel processes")
    p.add_argument("--level-dbfs", type=LEVEL_DBFS, default=-25.0, help="RMS level of every file")
    p.add_argument(
        "--languages", default="en", metavar="LANGS",
        help="espeak-ng languages: 'en' (default), 'all', or comma-separated code prefixes, "
        "'-CODE' excluding (e.g. 'all,-en'); other languages read the English sentences",
    )  # fmt: skip
    p.add_argument(
        "--variants", default="standard", metavar="VARIANTS",
        help="espeak-ng voice variants: 'standard' (m1-m7, f1-f5; default), 'all' (every "
        "human-sounding one of `espeak-ng --voices=variant`) or comma-separated names",
    )  # fmt: skip
    p.add_argument(
        "--hold-out", action="append", metavar="SPEAKER|MANIFEST.jsonl",
        help="keep this speaker (or every speaker of this manifest, e.g. another corpus' "
        "test.jsonl) out of train; repeatable",
    )  # fmt: skip
    p.set_defaults(func=_run_tts)

    p = sub.add_parser(
        "prompts",
        help="decode Debian's recorded Asterisk prompts (2 voices, en/es/fr) into a corpus",
        description="Decode the G.722 prompts of asterisk-core-sounds-{en,es,fr}-g722 "
        "(Allison: en_US, es_MX; June: fr_CA; CC BY-SA 3.0), trim silence, normalise the RMS "
        "level and write OUT/train.jsonl and OUT/valid.jsonl (Allison's en_US prompts), "
        "OUT/test.jsonl (June's fr_CA and Allison's es_MX prompts), OUT/CREDITS.txt and "
        "OUT/wav/. Re-running with the same settings resumes.",
    )
    p.add_argument("out", metavar="OUT", help="output folder")
    p.add_argument(
        "--sounds", default="/usr/share/asterisk/sounds", metavar="DIR",
        help="folder holding en_US_f_Allison/, es_MX_f_Allison/ and fr_CA_f_June/",
    )  # fmt: skip
    p.add_argument("--seed", type=SEED, default=0, help="draws the valid prompts")
    p.add_argument(
        "--valid-fraction", type=Number(float, 0, 1, example="0.05"), default=0.05,
        help="share of the en_US prompts put in valid instead of train (default 0.05)",
    )  # fmt: skip
    p.add_argument("--level-dbfs", type=LEVEL_DBFS, default=-25.0, help="RMS level of every file")
    p.set_defaults(func=_run_prompts)

    p = sub.add_parser(
        "scan",
        help="index a folder of wav/flac files (LibriSpeech, VCTK, WSJ0, CMU ARCTIC, any)",
        description="Write a JSONL manifest of every readable audio file under DIR, with "
        "speaker (and transcript where the layout has one); unreadable files are skipped and "
        "counted.",
    )
    p.add_argument("root", metavar="DIR", help="corpus root folder")
    p.add_argument("manifest", metavar="OUT.jsonl", help="manifest to write")
    p.add_argument(
        "--sr", type=Number(int, 0, example="16000"), default=16000,
        help="rate the corpus will be used at; files below it are skipped (0 keeps all)",
    )  # fmt: skip
    p.add_argument(
        "--valid-percent", type=Number(float, 0, 100, example="5"), default=5.0,
        help="share of utterances put in split 'valid' when the layout has no subsets",
    )  # fmt: skip
    p.set_defaults(func=_run_scan)

    from vae_audio.data.importers import CORPORA, LIBRIMIX_MIXES, MODES

    p = sub.add_parser(
        "import",
        help="index a separation corpus (LibriMix, wsj0-2mix, spatialized wsj0-2mix, SMS-WSJ)",
        description="Write OUT/<subset>.jsonl (mixtures and their references, absolute paths, "
        "the format of `vae-audio simulate`) for every subset of the corpus under ROOT, for "
        "`vae-audio evaluate --ref` and `vae-audio separate`. No audio is copied. Mixtures "
        "missing in some source folder, or unreadable, are skipped and counted.",
    )
    p.add_argument("corpus", choices=CORPORA, help="corpus layout")
    p.add_argument(
        "root", metavar="ROOT",
        help="corpus folder (e.g. Libri2Mix/, wsj0-mix/2speakers/, 2speakers_reverb/, or "
        "sms_wsj.json and its folder)",
    )  # fmt: skip
    p.add_argument("out", metavar="OUT", help="folder for the manifests")
    p.add_argument(
        "--sr", type=Number(int, 1000, example="8000"), metavar="HZ",
        help="read wav8k/ (8000) or wav16k/ (16000) (default: the only one, else 16000)",
    )  # fmt: skip
    p.add_argument(
        "--mode", choices=MODES, help="min or max mixtures (default: the only one, else min)"
    )
    p.add_argument(
        "--mix", choices=LIBRIMIX_MIXES, default="mix_clean",
        help="LibriMix mixture kind (default mix_clean; mix_both adds noise, mix_single is one "
        "talker plus noise)",
    )  # fmt: skip
    p.add_argument(
        "--speakers", type=count("2", minimum=2), metavar="N",
        help="take Libri<N>Mix/ or <N>speakers/ when ROOT holds several",
    )  # fmt: skip
    p.add_argument(
        "--subset", action="append", metavar="NAME",
        help="only this subset (e.g. test, tt, test_eval92); repeatable (default: all)",
    )  # fmt: skip
    p.add_argument(
        "--no-metadata", action="store_true",
        help="pair LibriMix files by folder even where metadata/*.csv lists them",
    )  # fmt: skip
    p.set_defaults(func=_run_import)

    p = subparsers.add_parser(
        "simulate",
        help="simulate reverberant noisy multichannel mixtures from a speech corpus",
        description="Image-source room simulation (pyroomacoustics): OUT/<id>/mix.wav, "
        "src<k>.wav, noise.wav, meta.json and OUT/manifest.jsonl. Re-running with the same "
        "settings resumes; a larger --n extends.",
    )
    p.add_argument("out", metavar="OUT", help="output folder")
    p.add_argument("--corpus", required=True, metavar="MANIFEST", help="speech corpus manifest")
    p.add_argument("--preset", default="default", help="built-in preset name or YAML file")
    p.add_argument("--n", type=count("10"), required=True, help="number of mixtures")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--jobs", type=JOBS, default=1, metavar="J", help="parallel processes")
    p.add_argument("--split", default="train", help="corpus split to draw utterances from")
    p.set_defaults(func=_run_simulate)

    p = subparsers.add_parser(
        "rir-bank",
        help="simulate a bank of room impulse responses for dynamic mixing",
        description="Draw N rooms from a preset and save their RIRs (float16) to a .pt file "
        "loadable with torch.load(weights_only=True).",
    )
    p.add_argument("out", metavar="OUT.pt", help="bank file to write")
    p.add_argument("--preset", default="default", help="built-in preset name or YAML file")
    p.add_argument("--n", type=count("150"), required=True, help="number of rooms")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--jobs", type=JOBS, default=1, metavar="J", help="parallel processes")
    p.add_argument(
        "--noise-sources", type=count("8"), metavar="K",
        help="noise sources per room (default: drawn from the preset; 8 keeps banks small)",
    )  # fmt: skip
    p.set_defaults(func=_run_bank)

    p = subparsers.add_parser(
        "teacher-set",
        help="label dynamic mixtures with a blind separator's PSDs (Neural FCA warm start)",
        description="Render N mixtures by dynamic mixing (corpus x RIR bank), separate each "
        "with FastMNMF2 and its stationary noise slot (or --teacher), and store the mixtures "
        "with the separated sources' log-PSDs (OUT/shard_*.pt) for `vae-audio train "
        "neural-fca` (data.teacher_set). No references are stored. Re-running resumes; a "
        "larger --n extends.",
    )
    p.add_argument("out", metavar="OUT", help="output folder")
    p.add_argument("--corpus", required=True, metavar="MANIFEST", help="speech corpus manifest")
    p.add_argument("--rir-bank", required=True, metavar="BANK.pt", help="from `vae-audio rir-bank`")
    p.add_argument("--n", type=count("10"), required=True, help="number of mixtures")
    p.add_argument("--seconds", type=seconds("4"), default=4.0, help="mixture length (default 4)")
    p.add_argument(
        "--n-speakers", type=count("2"), default=2, help="talkers per mixture (default 2)"
    )
    p.add_argument("--split", default="train", help="corpus split to draw utterances from")
    p.add_argument(
        "--iters", type=count("50"), default=50,
        help="iterations of the default teacher, FastMNMF2 (default 50)",
    )  # fmt: skip
    p.add_argument(
        "--teacher", default="fastmnmf2-noise", metavar="METHOD",
        help="the blind separator that labels the mixtures: fastmnmf2-noise (default; "
        "FastMNMF2 with its stationary noise slot, --iters) or a multichannel method named as "
        "`vae-audio bench` names them, NAME[@ITERATIONS][:key=value...], e.g. "
        "fastmnmf2:starts=4 or neural-fastfca:model=exp/neural_fca/any_mics/model.pt; or auto "
        "(what `vae-audio separate --method auto` runs; auto:model=PATH for another model)",
    )  # fmt: skip
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--jobs", type=JOBS, default=1, metavar="J", help="parallel processes")
    p.set_defaults(func=_run_teacher_set)
