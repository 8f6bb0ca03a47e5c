"""Model cards of the shipped models: what each was trained on, for which input, how well it
separates and where it fails.

Every number is a measurement reported in the README ("The shipped model", "Train a speech
prior", the condition matrix) or ``recipes/neural_fca/README.md``, with the command that
produced it; nothing here is re-measured at import time.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

_WIDTH = 100


@dataclass(frozen=True)
class ModelCard:
    """Facts about one shipped model.

    ``sample_rate`` in Hz; ``stft`` the analysis settings the model needs (n_fft, hop);
    ``array`` the microphone geometry it was trained on (None: single channel, any mic);
    ``talkers`` how many speakers it separates (None: not a separator); ``measured`` results
    with their set and unit; ``limits`` known failure modes and restrictions.
    """

    name: str
    summary: str
    architecture: str
    sample_rate: int
    stft: str
    training_data: str
    array: str | None
    talkers: int | None
    measured: tuple[str, ...]
    limits: tuple[str, ...]
    regenerate: str

    def to_text(self) -> str:
        """The card as indented plain text (what ``vae-audio models`` prints)."""

        def item(text: str, indent: str, hang: str) -> list[str]:
            return textwrap.wrap(text, _WIDTH, initial_indent=indent, subsequent_indent=hang)

        lines = item(f"{self.name}: {self.summary}", "", "    ")
        fields = [
            ("architecture", self.architecture),
            ("sample rate", f"{self.sample_rate} Hz ({self.stft})"),
            ("training data", self.training_data),
            ("array", self.array or "single channel (any microphone)"),
            ("talkers", str(self.talkers) if self.talkers else "n/a (speech prior)"),
        ]
        for label, value in fields:
            lines += item(f"{label}: {value}", "  ", "      ")
        lines.append("  measured:")
        for m in self.measured:
            lines += item(m, "    - ", "      ")
        lines.append("  known limits:")
        for m in self.limits:
            lines += item(m, "    - ", "      ")
        lines.append(f"  regenerate: {self.regenerate}")
        return "\n".join(lines)


_TTS_CORPUS = (
    "1 h of speech synthesised offline by Debian's TTS engines (flite, espeak-ng voices; "
    "`vae-audio corpus tts data/tts --hours 1 --seed 0`)"
)

CARDS: dict[str, ModelCard] = {
    "speech-vae": ModelCard(
        name="speech-vae",
        summary="speech prior: spectrogram VAE with a complex-Gaussian (Itakura-Saito) decoder",
        architecture="frame-wise MLP, 257 bins -> 128 hidden -> 16 latent dimensions "
        "(recipes/speech_vae/mlp.yaml), 0.3 MB",
        sample_rate=16000,
        stft="n_fft 512, hop 128, Hann",
        training_data=_TTS_CORPUS + ", utterances normalised to -25 dBFS, in 2-s segments",
        array=None,
        talkers=None,
        measured=(
            "held-out Itakura-Saito divergence on 150 TTS validation utterances (nats per "
            "frame, lower is better): 543.3, against 862.9 for the mean speech PSD with a "
            "per-frame gain and 1322.9 for the mean speech PSD",
            "single-channel enhancement (vae-nmf, MCEM), 10 held-out utterances: SDR "
            "+7.62 / +6.92 / +5.44 dB over the input in pink noise at 0 / 5 / 10 dB SNR",
        ),
        limits=(
            "heard only synthetic (TTS) speech",
            "babble noise is speech-like: vae-nmf stays near 0 dB improvement on it",
            "only for 16 kHz audio analysed with n_fft 512, hop 128: other STFTs are refused",
        ),
        regenerate="bash recipes/speech_vae/make_pretrained.sh",
    ),
    "speech-vae-conv": ModelCard(
        name="speech-vae-conv",
        summary="temporal speech prior: spectrogram VAE with a complex-Gaussian (Itakura-Saito) "
        "decoder and a convolutional encoder over time; the default prior of single-channel "
        "vae-nmf",
        architecture="dilated residual 1-D convolution encoder over frames (3 layers, 128 "
        "channels: 29 frames, +/-0.12 s, of context; its GroupNorms pool over the whole input) "
        "-> 16 latent dimensions per frame -> frame-wise MLP decoder "
        "(recipes/speech_vae/conv_multi.yaml), 1.4 MB",
        sample_rate=16000,
        stft="n_fft 512, hop 128, Hann",
        training_data="about 9 h of TTS from every offline flite and espeak-ng voice (espeak-ng "
        "English with its variants, every other espeak-ng language reading English sentences, "
        "rate and pitch varied) + the 1 h TTS corpus + 0.4 h of recorded Asterisk prompts of "
        "one voice (Allison, en_US; CC BY-SA 3.0), utterances normalised to -25 dBFS, 2-s "
        "segments; 8 epochs (2320 steps of 32 x 2 s); no festival voices",
        array=None,
        talkers=None,
        measured=(
            "held-out Itakura-Saito divergence (nats per frame, lower is better), against the "
            "frame-MLP speech-vae: recorded voices 534.1 (June, fr_CA, never heard) and 598.4 "
            "(Allison, es_MX; heard in en_US only) against 775.4 and 947.4; the matrix's "
            "held-out TTS voices 566.7 against 540.8",
            "single-channel enhancement (vae-nmf, MCEM), pink noise, SDR improvement over the "
            "input: those two recorded voices +7.13 / +4.95 dB at 0 / 10 dB input SNR "
            "(24 files; speech-vae +6.46 / +4.43, this prior ahead on every file), +6.62 / "
            "+5.97 at 0 / 5 dB on 10 others (speech-vae +5.55 / +5.33); held-out TTS voices "
            "+7.35 / +5.13 at 0 / 10 dB (16 files; speech-vae +7.52 / +5.32)",
            "auto on one channel (this prior in vae-nmf, then the VAE-FCA re-fit), against the "
            "same path with speech-vae: +0.48 / +0.35 dB SDR on those recorded voices at 0 / "
            "10 dB, level on TTS voices (+0.02 / -0.04)",
            "VAE-FastFCA (2 talkers, 4 mics) with this prior in place of speech-vae: +0.84 dB "
            "SDR on 18 recorded-voice mixtures, -0.98 dB on 36 TTS mixtures of the condition "
            "matrix; so the multichannel methods run speech-vae-conv16 instead",
        ),
        limits=(
            "one recorded voice in training: judged on two recorded voices only, one never "
            "heard and one heard in another language, both women reading telephone prompts",
            "in babble it loses less than speech-vae on recorded voices (-1.20 against -2.49 dB "
            "at 0 dB) but more on TTS voices (-0.37 against -0.06 dB): speech-like noise is "
            "hard for a speech-vs-NMF model",
            "only for 16 kHz audio analysed with n_fft 512, hop 128: other STFTs are refused",
        ),
        regenerate="bash recipes/speech_vae/make_pretrained_conv.sh",
    ),
    "speech-vae-conv16": ModelCard(
        name="speech-vae-conv16",
        summary="temporal speech prior, speech-vae-conv's run trained for 16 epochs instead of "
        "8; the default prior of the multichannel VAE methods (vae-fca, vae-fastfca) and of "
        "auto's VAE-FCA re-fit",
        architecture="as speech-vae-conv: dilated residual 1-D convolution encoder over frames "
        "(3 layers, 128 channels, 29 frames of context) -> 16 latent dimensions per frame -> "
        "frame-wise MLP decoder (recipes/speech_vae/conv_multi.yaml), 1.4 MB",
        sample_rate=16000,
        stft="n_fft 512, hop 128, Hann",
        training_data="as speech-vae-conv (every offline flite and espeak-ng voice, the 1 h "
        "TTS corpus and 0.4 h of recorded Asterisk prompts of one voice, Allison, en_US; CC "
        "BY-SA 3.0), for 16 epochs (4640 steps of 32 x 2 s): speech-vae-conv's run resumed "
        "after its 8th epoch",
        array=None,
        talkers=None,
        measured=(
            "held-out Itakura-Saito divergence (nats per frame, lower is better), against "
            "speech-vae / speech-vae-conv: the matrix's held-out TTS voices 427.1 (540.8 / "
            "566.7), held-out flite voice 546.2 (862.9 / 649.4), recorded voices June, fr_CA "
            "(never heard) 470.0 (775.4 / 534.1) and Allison, es_MX 512.0 (947.4 / 598.4); the "
            "lowest of the three on every held-out set",
            "VAE-FastFCA on the condition matrix, paired against speech-vae (SDR dB, mean "
            "difference +/- 95 % half-interval): 2-talker TTS mixtures +0.48 +/- 0.26 (36, "
            "30 ahead), 3-talker TTS +0.53 +/- 0.30 (36, 28 ahead), recorded voices +0.92 +/- "
            "1.06 (18, 13 ahead; SI-SDR +1.79)",
            "VAE-FCA (full-rank SCMs) on the matrix: level with speech-vae, -0.02 +/- 0.31 dB "
            "on 16 2-talker mixtures (7 ahead), +0.12 +/- 0.44 on 18 3-talker ones (7 ahead)",
            "auto's VAE-FCA re-fit with this prior in place of speech-vae: +0.06 +/- 0.05 dB "
            "over 86 matrix mixtures (54 ahead); on one channel, after vae-nmf with "
            "speech-vae-conv, +0.18 / +0.11 dB on the two recorded voices at 0 / 10 dB pink "
            "noise (24 files) and +0.09 / +0.12 on held-out TTS voices (16 files)",
        ),
        limits=(
            "one recorded voice in training: judged on two recorded voices only, both women "
            "reading telephone prompts",
            "single-channel auto (vae-nmf, then the re-fit) with it in vae-nmf lost 0.70 dB on "
            "held-out TTS voices in 0 dB pink noise against the same path with speech-vae, "
            "where speech-vae-conv was level: vae-nmf keeps speech-vae-conv",
            "only for 16 kHz audio analysed with n_fft 512, hop 128: other STFTs are refused",
        ),
        regenerate="bash recipes/speech_vae/make_pretrained_conv16.sh",
    ),
    "neural-fca": ModelCard(
        name="neural-fca",
        summary="Neural FastFCA separator (Bando et al., EUSIPCO 2023): 2 talkers + noise "
        "from a 4-mic recording",
        architecture="dilated-convolution encoder (3 stacks x 4 layers, 64/128 channels) -> "
        "the shipped speech prior's decoder (fine-tuned), per-slot frequency response, "
        "jointly diagonalised spatial model with 5 MM updates of Q and g; 3.4 MB",
        sample_rate=16000,
        stft="n_fft 512, hop 128, Hann",
        training_data="800 dynamically mixed 4-s 2-talker mixtures of the "
        + _TTS_CORPUS
        + ", spatialised with 150 simulated default-preset rooms (`vae-audio rir-bank --n "
        "150`), labelled by a blind FastMNMF2 teacher (its separated PSDs, never the "
        "references); 5000 steps of 4 x 2 s (recipes/neural_fca/shipped.yaml)",
        array="4-mic circular array, radius 5 cm (the default simulation preset)",
        talkers=2,
        measured=(
            "24 simulated default-preset mixtures (valid-split voices, new rooms, seed 2026), "
            "SDR at mic 0: 5.06 +/- 1.92 dB with 200 refinement steps (RTF 2.35), "
            "3.40 +/- 1.85 dB amortised (RTF 0.08 with 2 processes on 2 cores; about 0.030 "
            "alone on one thread for a 10-s input); FastMNMF2 4.80, ILRMA 2.00, oracle MWF "
            "12.06 dB on the same set",
            "12 two-talker mixtures of unseen TTS voices, simulated outside this toolkit: "
            "8.1 dB SDR",
        ),
        limits=(
            "takes exactly 4 channels and the 16 kHz / n_fft 512 / hop 128 STFT; other "
            "arrays or more than 2 talkers need another method (vae-fastfca, fastmnmf2)",
            "trained on 2-talker mixtures only: with n_src=1 its louder speaker slot is "
            "returned and the other added to the noise, which scored 8.0 dB SDR on 10 "
            "one-talker mixtures against 15.8 for FastMNMF2 (4 starts) and 14.4 for the "
            "unprocessed mixture; auto does not use it for one talker",
            "trained on TTS voices only: on 10 recorded-voice mixtures every blind method, "
            "this one included (0.90 dB SDR), stays within 1 dB of the unprocessed mixture",
            "the refined model's lead over FastMNMF2 (+0.26 +/- 1.79 dB over 24 mixtures) is "
            "within the noise; the amortised estimates are 1.40 dB below FastMNMF2",
            "a 5-cm array has almost no spatial cue below about 300 Hz",
        ),
        regenerate="bash recipes/neural_fca/make_pretrained.sh",
    ),
}
