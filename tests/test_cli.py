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
