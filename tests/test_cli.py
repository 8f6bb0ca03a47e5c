"""The `vae-audio` entry point: help, version, and one-line errors for expected failures."""

import subprocess
import sys
import types

from vae_audio import cli
from vae_audio.errors import VaeAudioError


def _subcommands(parser):
    return set(parser._subparsers._group_actions[0].choices) if parser._subparsers else set()


def test_help_lists_registered_subcommands():
    result = subprocess.run(
        [sys.executable, "-m", "vae_audio", "--help"], capture_output=True, text=True, check=True
    )
    names = _subcommands(cli.build_parser())
    assert names, "no subcommand registered"
    for name in names:
        assert name in result.stdout


def _fake_command_module(func):
    module = types.ModuleType("fake_cmd")

    def register(subparsers):
        subparsers.add_parser("fake").set_defaults(func=func)

    module.register = register
    return module


def test_expected_failure_is_one_line_with_exit_code_2(monkeypatch, capsys):
    def fail(args):
        raise VaeAudioError("input 'x.wav' is empty; pick a non-empty recording")

    monkeypatch.setitem(sys.modules, "fake_cmd", _fake_command_module(fail))
    monkeypatch.setattr(cli, "_COMMAND_MODULES", ("fake_cmd",))
    code = cli.main(["fake"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "x.wav" in err and err.startswith("vae-audio: error:")


def test_unexpected_failure_keeps_traceback(monkeypatch):
    def bug(args):
        raise RuntimeError("a bug")

    monkeypatch.setitem(sys.modules, "fake_cmd", _fake_command_module(bug))
    monkeypatch.setattr(cli, "_COMMAND_MODULES", ("fake_cmd",))
    try:
        cli.main(["fake"])
    except RuntimeError as err:
        assert "a bug" in str(err)
    else:
        raise AssertionError("a bug must not be swallowed as a user error")


def test_no_command_prints_help_and_fails(capsys):
    assert cli.main([]) == 2
    assert "usage: vae-audio" in capsys.readouterr().out


def _leaf_parsers(parser, prefix=()):
    import argparse

    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix, parser
    for action in subs:
        for name, sub in action.choices.items():
            yield from _leaf_parsers(sub, (*prefix, name))


def test_every_command_has_quiet():
    leaves = list(_leaf_parsers(cli.build_parser()))
    assert len(leaves) >= 12
    for words, parser in leaves:
        flags = {s for a in parser._actions for s in a.option_strings}
        assert {"-q", "--quiet"} <= flags, words


def test_quiet_silences_progress_bars_and_info_logs(tmp_path, monkeypatch, capsys):
    import logging

    import numpy as np
    import soundfile as sf

    (tmp_path / "spk1").mkdir()
    for k in range(3):
        sf.write(tmp_path / "spk1" / f"u{k}.wav", np.zeros(1600, dtype=np.float32), 16000)

    def scan_and_log(args):
        logging.getLogger("vae_audio.some.module").info("a note from the library")
        return real(args)

    parser = cli.build_parser()
    real = parser.parse_args(["corpus", "scan", "x", "y"]).func
    loud = ["corpus", "scan", str(tmp_path), str(tmp_path / "a.jsonl")]
    monkeypatch.setattr("vae_audio.data.cli._run_scan", scan_and_log)
    assert cli.main(loud) == 0
    err = capsys.readouterr().err
    assert "file/s" in err  # the progress bar
    assert "vae-audio: a note from the library" in err
    assert cli.main([*loud[:3], str(tmp_path / "b.jsonl"), "-q"]) == 0
    err = capsys.readouterr().err
    assert "file/s" not in err and "a note from the library" not in err
    assert "TQDM_DISABLE" not in __import__("os").environ  # put back after the command
