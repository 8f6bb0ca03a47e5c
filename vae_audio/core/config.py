"""Recipe configs: a YAML file plus ``key=value`` overrides from the command line.

Rules (all failures raise :class:`~vae_audio.errors.VaeAudioError` naming the file or the
override and the fix):

- The file is read with a ``yaml.SafeLoader`` and must hold a mapping. Unlike plain PyYAML
  (YAML 1.1), numbers such as ``1e-3`` are floats (YAML 1.2), not strings.
- An override is ``dotted.key=value``. The value is parsed with the same loader, so
  ``lr=1e-3`` is a float, ``epochs=10`` an int, ``amp=true`` a bool, ``dims=[4,8]`` a list,
  ``name=null`` None and ``tag='007'`` the string ``007``.
- The first key part must be a top-level key that exists in the file, or one of
  :data:`DEFAULT_SECTIONS` (filled with defaults by the training base), which catches typos
  such as ``traner.max_epochs``; deeper parts may add keys inside a section (the training
  base rejects unknown ``trainer``/``optim`` keys). A part that runs through a non-mapping
  value is an error.
- Overrides are applied left to right; the loaded dict is a fresh object.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from vae_audio.core._io import atomic_path, to_plain
from vae_audio.errors import VaeAudioError

# Sections every recipe has implicitly (vae_audio.core.training fills them with defaults).
DEFAULT_SECTIONS: tuple[str, ...] = ("trainer", "optim")


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3``, ``5E+4`` and ``.5e1`` as floats (YAML 1.2)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def load_yaml(text: str):
    """Parse YAML text with the config loader (safe; ``1e-3`` is a float)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


def load_config(path: str | os.PathLike, overrides: Iterable[str] | None = None) -> dict[str, Any]:
    """Read a YAML recipe and apply ``key=value`` overrides (see the module docstring).

    Returns:
        The resolved config as a plain nested dict.
    """
    path = Path(path)
    if not path.is_file():
        raise VaeAudioError(
            f"config file {path} does not exist; pass an existing recipe YAML with --config"
        )
    try:
        with open(path, encoding="utf-8") as f:
            config = load_yaml(f.read())
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise VaeAudioError(
            f"config file {path} is not valid YAML{line}: {_one_line(err)}; fix the file"
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise VaeAudioError(
            f"config file {path} cannot be read ({err}); check it is a UTF-8 text file"
        ) from None
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise VaeAudioError(
            f"config file {path} holds a {type(config).__name__}, not a mapping; "
            "write the recipe as 'key: value' sections"
        )
    return apply_overrides(config, overrides or (), source=str(path))


def apply_overrides(
    config: dict[str, Any], overrides: Iterable[str], source: str = "the config"
) -> dict[str, Any]:
    """Return a deep copy of ``config`` with ``dotted.key=value`` overrides applied.

    Args:
        config: the nested dict (left unchanged).
        overrides: strings ``"a.b.c=value"``.
        source: how to name the config in error messages (its file path).
    """
    result = copy.deepcopy(config)
    for item in overrides:
        keys, value = _parse_override(item)
        if keys[0] not in result and keys[0] not in DEFAULT_SECTIONS:
            known = sorted({*map(str, result), *DEFAULT_SECTIONS})
            raise VaeAudioError(
                f"override {item!r}: {source} has no top-level section {keys[0]!r}; "
                f"use one of {known}"
            )
        node = result
        for depth, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                prefix = ".".join(keys[: depth + 1])
                raise VaeAudioError(
                    f"override {item!r}: {prefix} in {source} is a {type(child).__name__}, "
                    f"not a section; override {prefix}=... instead"
                )
            node = child
        node[keys[-1]] = value
    return result


def save_config(config: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``config`` as YAML atomically (key order kept). Paths become strings.

    Raises:
        VaeAudioError: a value is not plain data (names its key).
    """
    try:
        plain = to_plain(config, "config")
    except TypeError as err:
        raise VaeAudioError(f"cannot save the config to {path}: {err}; store it as text") from None
    text = yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _parse_override(item: str) -> tuple[list[str], Any]:
    key, sep, raw = item.partition("=")
    key = key.strip()
    keys = key.split(".")
    if not sep or not key or any(not k for k in keys):
        raise VaeAudioError(
            f"malformed override {item!r}; write key=value, e.g. optim.lr=1e-3 "
            "(dotted keys reach nested sections)"
        )
    try:
        value = load_yaml(raw)
    except yaml.YAMLError as err:
        raise VaeAudioError(
            f"override {item!r}: value is not valid YAML ({_one_line(err)}); quote it, "
            f"e.g. {key}='...'"
        ) from None
    return keys, value


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())
