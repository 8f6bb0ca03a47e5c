"""Argument types of the command line: numbers that carry their domain.

Every numeric option of ``vae-audio`` is parsed by a :class:`Number`, which knows its kind
(integer or real), its bounds and an example value, so a bad value (``nan``, ``inf``, a
negative count, zero jobs, a fraction where an integer is due, text) stops the command at
parse time with one line naming the option, what it takes and an example, and exit code 2.
The test of the command line walks every parser and tries such values on every
:class:`Number` option, and fails on a numeric option declared with a bare ``int`` or
``float``, so a new option cannot skip the check.

:class:`OneLineParser` makes argparse's own errors (unknown option, missing argument,
bad choice) one line too: ``vae-audio separate: error: ...; see vae-audio separate --help``.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

SEED_MAX = 2**31 - 1  # seeds feed numpy, torch and pyroomacoustics generators, offsets added


@dataclass(frozen=True)
class Number:
    """An argparse ``type`` for an ``int`` or a finite ``float`` in ``[low, high]`` (``low``
    excluded when ``low_open``); ``None`` bounds are open ends."""

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    example: str = "1"

    @property
    def __name__(self) -> str:  # argparse names the type in some messages
        return self.kind.__name__

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a finite number"
        if self.low is not None and self.high is not None:
            left = "above" if self.low_open else "from"
            return f"{what} {left} {self.low:g} to {self.high:g}"
        if self.low is not None:
            return f"{what} {'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"{what} <= {self.high:g}"
        return what

    def contains(self, value: float) -> bool:
        if not math.isfinite(value) or (self.kind is int and value != int(value)):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high

    def __call__(self, text: str):
        try:
            value = int(text) if self.kind is int else float(text)
        except (TypeError, ValueError):
            value = None
        if value is None or not self.contains(value):
            raise argparse.ArgumentTypeError(
                f"takes {self.describe()}, got {text!r}; e.g. {self.example}"
            )
        return value


def count(example: str = "1", *, minimum: int = 1, maximum: int | None = None) -> Number:
    """An integer count, at least ``minimum``."""
    return Number(int, minimum, maximum, example=example)


def seconds(example: str, *, minimum: float = 0.0) -> Number:
    """A duration in seconds, above ``minimum`` (or at least it, when ``minimum`` > 0)."""
    return Number(float, minimum, low_open=minimum == 0.0, example=example)


SEED = Number(int, 0, SEED_MAX, example="0")
ITERATIONS = count("100", minimum=0)
JOBS = count("2")


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr and exit code 2."""

    def error(self, message: str):  # noqa: D401 (argparse's name)
        first = message.strip().splitlines()[0] if message.strip() else "bad arguments"
        self.exit(2, f"{self.prog}: error: {first}; see {self.prog} --help\n")


LEVEL_DBFS = Number(float, -80, -1, example="-25")
