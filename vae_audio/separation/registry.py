"""The separation method registry: name -> :class:`MethodSpec`.

The statistical methods of this package register themselves in
:mod:`vae_audio.separation.api`. Methods that live above it, such as the Neural FCA models
(``vae_audio.neural_fca``, which imports this package), and methods of other packages come in
through the entry-point group :data:`PLUGIN_GROUP`: each entry point names a function
``register()`` that calls :func:`register_method`. They are loaded on the first read of
:data:`METHODS`, so this package never imports the packages that build on it::

    [project.entry-points."vae_audio.methods"]
    my-method = "my_package.separation:register"

A plugin that fails to load is left out with a warning (through ``logging``); the other
methods stay available.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from vae_audio.errors import VaeAudioError

PLUGIN_GROUP = "vae_audio.methods"

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class MethodSpec:
    """A separation method: ``fit`` (see :mod:`vae_audio.separation.api`), whether it needs
    ``M >= 2`` and ``n_src <= M``, its default iteration count, a one-line description, if
    known the names of the options ``fit`` accepts (others are rejected with a clear error),
    ``defaults``: options used when the caller did not set them (e.g. the speech prior the
    method runs by default), and ``noise_defaults``: options used when ``separate`` fits a
    noise slot and the caller did not set them (e.g. a start that makes one slot the noise);
    ``frontend(opts)``: the WPE front end the method asks for when the caller sets none
    (e.g. a Neural FCA model trained on dereverberated mixtures); ``check_stft(method, opts,
    stft)``: raises ``VaeAudioError`` when the method's model (a speech prior, a trained
    network) was not made for the sample rate and STFT ``stft`` the mixture is analysed
    with."""

    fit: Callable[..., Any]
    multichannel: bool = True
    needs_n_src_le_m: bool = False
    default_n_iter: int = 100
    description: str = ""
    options: tuple[str, ...] | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    noise_defaults: dict[str, Any] = field(default_factory=dict)
    frontend: Callable[[dict[str, Any]], Any] | None = None
    check_stft: Callable[[str, dict[str, Any], Any], None] | None = None


class MethodRegistry(MutableMapping[str, MethodSpec]):
    """A mapping of method names that loads the :data:`PLUGIN_GROUP` entry points the first
    time it is read (membership, lookup, iteration, length)."""

    def __init__(self, group: str = PLUGIN_GROUP) -> None:
        self._specs: dict[str, MethodSpec] = {}
        self._group = group
        self._loaded = False

    def _load_plugins(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # before loading: a plugin's register() reads the registry
        for point in entry_points(group=self._group):
            try:
                point.load()()
            except Exception as err:  # a broken plugin must not hide the other methods
                LOGGER.warning(
                    "separation methods of %r (%s) left out: %s", point.name, point.value, err
                )

    def add(self, name: str, spec: MethodSpec, overwrite: bool = False) -> None:
        """Register ``spec`` under ``name`` without loading the plugins first (built-in
        methods register while their module is still being imported).

        Raises:
            VaeAudioError: ``name`` is taken and ``overwrite`` is false.
        """
        if name in self._specs and not overwrite:
            raise VaeAudioError(f"separation method {name!r} is already registered")
        self._specs[name] = spec

    def __getitem__(self, name: str) -> MethodSpec:
        self._load_plugins()
        return self._specs[name]

    def __setitem__(self, name: str, spec: MethodSpec) -> None:
        self._specs[name] = spec

    def __delitem__(self, name: str) -> None:
        del self._specs[name]

    def __iter__(self) -> Iterator[str]:
        self._load_plugins()
        return iter(dict(self._specs))

    def __len__(self) -> int:
        self._load_plugins()
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._specs


METHODS = MethodRegistry()


def register_method(name: str, spec: MethodSpec, overwrite: bool = False) -> None:
    """Add ``spec`` to :data:`METHODS` under ``name`` (:meth:`MethodRegistry.add`)."""
    METHODS.add(name, spec, overwrite)
