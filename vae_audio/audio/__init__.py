"""Audio front end: file I/O, resampling, STFT/ISTFT and multichannel features."""

from vae_audio.audio.features import ipd_features, ipd_phasors, log_power, power_spectrogram
from vae_audio.audio.io import AudioInfo, audio_info, load_audio, resample, save_audio
from vae_audio.audio.stft import ISTFT, STFT, WINDOWS, StftConfig, istft, make_window, stft

__all__ = [
    "ISTFT",
    "STFT",
    "WINDOWS",
    "AudioInfo",
    "StftConfig",
    "audio_info",
    "ipd_features",
    "ipd_phasors",
    "istft",
    "load_audio",
    "log_power",
    "make_window",
    "power_spectrogram",
    "resample",
    "save_audio",
    "stft",
]
