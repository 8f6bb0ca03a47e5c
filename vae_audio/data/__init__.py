"""Offline data: speech corpora (TTS builder, folder scanners), manifests of published
separation corpora read in place (:func:`import_corpus`), room simulation, datasets.

Corpus manifests are JSON Lines (:mod:`vae_audio.data.manifest`). The simulator
(:func:`simulate_mixture`, :func:`simulate_dataset`) draws rooms from YAML presets
(:func:`load_preset`); :func:`sample_rirs` and :class:`RirBank` feed dynamic mixing, whose
convolutions (:func:`spatialise`) run on the training device.

Names are imported lazily (PEP 562) so ``import vae_audio.data.levels`` stays cheap.
"""

import importlib

_EXPORTS = {
    "MixtureDataset": "vae_audio.data.datasets",
    "SpeechSegmentDataset": "vae_audio.data.datasets",
    "DynamicMixer": "vae_audio.data.dynamic",
    "DynamicMixingDataset": "vae_audio.data.dynamic",
    "normalise_rms": "vae_audio.data.levels",
    "rms_dbfs": "vae_audio.data.levels",
    "trim_silence": "vae_audio.data.levels",
    "read_manifest": "vae_audio.data.manifest",
    "write_manifest": "vae_audio.data.manifest",
    "MixtureBatch": "vae_audio.data.mixing",
    "mix_images": "vae_audio.data.mixing",
    "spatialise": "vae_audio.data.mixing",
    "SimulationPreset": "vae_audio.data.presets",
    "load_preset": "vae_audio.data.presets",
    "RirBank": "vae_audio.data.rir_bank",
    "build_rir_bank": "vae_audio.data.rir_bank",
    "RirSet": "vae_audio.data.rirs",
    "compute_rirs": "vae_audio.data.rirs",
    "sample_rirs": "vae_audio.data.rirs",
    "ImportResult": "vae_audio.data.importers",
    "import_corpus": "vae_audio.data.importers",
    "ScanResult": "vae_audio.data.scan",
    "scan_corpus": "vae_audio.data.scan",
    "Scene": "vae_audio.data.scene",
    "sample_scene": "vae_audio.data.scene",
    "HANDWRITTEN": "vae_audio.data.sentences",
    "generate_sentences": "vae_audio.data.sentences",
    "sentence_pool": "vae_audio.data.sentences",
    "SimulatedMixture": "vae_audio.data.simulate",
    "simulate_mixture": "vae_audio.data.simulate",
    "SimulateResult": "vae_audio.data.simulate_set",
    "simulate_dataset": "vae_audio.data.simulate_set",
    "PromptsCorpusResult": "vae_audio.data.prompts_corpus",
    "build_prompts_corpus": "vae_audio.data.prompts_corpus",
    "TtsCorpusResult": "vae_audio.data.tts_corpus",
    "build_tts_corpus": "vae_audio.data.tts_corpus",
    "Voice": "vae_audio.data.tts_engines",
    "discover_voices": "vae_audio.data.tts_engines",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vae_audio.data' has no attribute '{name}'")
