"""Every numeric option of every `vae-audio` command refuses values outside its domain
(NaN, inf, negative, zero, too small, a fraction for an integer, text) with one line on
stderr and exit code 2, before any work starts; and values inside it are accepted."""

from __future__ import annotations

import argparse
import math

import pytest

from vae_audio import cli
from vae_audio.cli_types import Number, OneLineParser

CANDIDATES = ("nan", "inf", "-inf", "-1", "0", "0.5", "1.5", "1", "3", "1e309", "abc", "")


def _numeric_options(parser: argparse.ArgumentParser, prefix=()):
    """``(command words, option string, action)`` for every option that takes a value."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _numeric_options(sub, (*prefix, name))
        elif action.option_strings and action.nargs != 0 and action.type is not None:
            yield prefix, action.option_strings[-1], action


OPTIONS = list(_numeric_options(cli.build_parser()))


def _value(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def test_every_numeric_option_declares_its_domain():
    assert len(OPTIONS) >= 30
    bare = [
        f"{' '.join(cmd)} {opt}"
        for cmd, opt, action in OPTIONS
        if not isinstance(action.type, Number)
    ]
    assert not bare, f"numeric options without a domain (use vae_audio.cli_types): {bare}"


CASES = [
    (cmd, opt, text, action.type)
    for cmd, opt, action in OPTIONS
    if isinstance(action.type, Number)
    for text in CANDIDATES
]


@pytest.mark.parametrize(
    "cmd,opt,text,domain", CASES, ids=[f"{' '.join(c[0])}{c[1]}={c[2]!r}" for c in CASES]
)
def test_values_outside_the_domain_get_one_line_and_exit_2(cmd, opt, text, domain, capsys):
    value = _value(text)
    inside = value is not None and domain.contains(value)
    if domain.kind is int and inside:
        inside = text.lstrip("-").isdigit()  # "1e309" is no integer on the command line
    with pytest.raises(SystemExit) as stop:
        # OPT=VALUE: argparse would read a bare "-inf" as an option, not as the value
        cli.main([*cmd, f"{opt}={text}", "--help"] if inside else [*cmd, f"{opt}={text}"])
    err = capsys.readouterr().err
    if inside:  # accepted: parsing goes on to --help
        assert stop.value.code == 0 and err == ""
        return
    assert stop.value.code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert opt in err and repr(text) in err and "e.g." in err
    assert err.startswith(f"vae-audio {' '.join(cmd)}: error:")


def test_number_domain_matches_its_description():
    chunk = Number(float, 2, example="10")
    assert [chunk.contains(v) for v in (2, 1.999, math.inf, math.nan, 1e9)] == [
        True, False, False, False, True,
    ]  # fmt: skip
    hours = Number(float, 0, low_open=True)
    assert not hours.contains(0) and hours.contains(1e-9)
    seed = Number(int, 0, 10)
    assert [seed.contains(v) for v in (0, 10, 11, -1, 2.5)] == [True, True, False, False, False]
    assert "from 0 to 10" in seed.describe() and "> 0" in hours.describe()


def test_argparse_errors_are_one_line(capsys):
    for argv in (["separate"], ["separate", "x.wav", "-o", "o", "--bogus"], ["no-such"]):
        with pytest.raises(SystemExit) as stop:
            cli.main(argv)
        err = capsys.readouterr().err
        assert stop.value.code == 2 and err.count("\n") == 1 and "--help" in err, argv
    assert isinstance(cli.build_parser(), OneLineParser)
