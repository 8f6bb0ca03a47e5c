import shutil

import numpy as np
import pytest
import soundfile as sf
import yaml

from vae_audio.cli import build_parser
from vae_audio.data.manifest import read_manifest
from vae_audio.data.rir_bank import RirBank
from vae_audio.errors import VaeAudioError

from .conftest import tiny_preset


def _run(argv):
    """One data command through the package's parser (every command there has -q)."""
    args = build_parser().parse_args(argv)
    return args.func(args)


def test_scan_simulate_and_bank_commands(tmp_path, corpus_manifest, capsys):
    root = tmp_path / "recordings"
    for spk in ("ann", "bob", "cy"):
        (root / spk).mkdir(parents=True)
        sf.write(root / spk / "a.wav", 0.1 * np.random.default_rng(0).standard_normal(8000), 16000)
    assert (
        _run(["corpus", "scan", str(root), str(tmp_path / "c.jsonl"), "--valid-percent", "0"]) == 0
    )
    assert "3 indexed (generic 3" in capsys.readouterr().out
    assert {e["speaker"] for e in read_manifest(tmp_path / "c.jsonl")} == {"ann", "bob", "cy"}

    preset = tmp_path / "tiny.yaml"
    preset.write_text(yaml.safe_dump(tiny_preset()))
    argv = [
        "simulate",
        str(tmp_path / "sim"),
        "--corpus",
        str(tmp_path / "c.jsonl"),
        "--preset",
        str(preset),
        "--n",
        "1",
        "--seed",
        "3",
    ]
    assert _run(argv) == 0
    assert "1 mixtures" in capsys.readouterr().out
    assert (tmp_path / "sim" / "000000" / "mix.wav").is_file()

    argv = [
        "rir-bank",
        str(tmp_path / "bank.pt"),
        "--preset",
        str(preset),
        "--n",
        "1",
        "--noise-sources",
        "2",
    ]
    assert _run(argv) == 0
    assert "RIR bank of 1 rooms" in capsys.readouterr().out
    assert RirBank.load(tmp_path / "bank.pt").noise_rirs.shape[1] == 2

    preset.write_text("noise: {kind: brown}\n")
    with pytest.raises(VaeAudioError, match="noise.kind"):
        _run(
            [
                "simulate",
                str(tmp_path / "s2"),
                "--corpus",
                str(corpus_manifest),
                "--preset",
                str(preset),
                "--n",
                "1",
            ]
        )


@pytest.mark.tts
def test_tts_command(tmp_path, capsys):
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed (apt-get install flite; `make test` installs it)")
    argv = ["corpus", "tts", str(tmp_path / "c"), "--utterances", "1", "--engines", "flite"]
    assert _run(argv) == 0
    assert "wrote 1 utterances" in capsys.readouterr().out
