"""The method registry: built-in methods, plugins through entry points loaded on first read,
and a broken plugin left out with a warning."""

from __future__ import annotations

import logging
import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest

from vae_audio.errors import VaeAudioError
from vae_audio.separation import registry
from vae_audio.separation.registry import MethodRegistry, MethodSpec


def _spec(description: str) -> MethodSpec:
    return MethodSpec(fit=lambda *args, **kwargs: None, description=description)


class _Point:
    """An entry point whose ``load()`` returns a given function."""

    def __init__(self, name: str, function) -> None:
        self.name, self.value, self._function = name, f"tests:{name}", function

    def load(self):
        return self._function


def test_plugins_load_on_first_read_only(monkeypatch):
    methods = MethodRegistry(group="test.methods")
    calls = []

    def register():
        calls.append(1)
        assert "plugin" not in methods  # a plugin may read the registry while it loads
        methods.add("plugin", _spec("from a plugin"))

    monkeypatch.setattr(registry, "entry_points", lambda group: [_Point("p", register)])
    methods.add("builtin", _spec("built in"))
    assert calls == []  # adding does not load the plugins
    assert sorted(methods) == ["builtin", "plugin"]
    assert methods["plugin"].description == "from a plugin"
    assert len(methods) == 2 and "builtin" in methods
    assert calls == [1]  # loaded once


def test_a_broken_plugin_is_left_out_with_a_warning(monkeypatch, caplog):
    methods = MethodRegistry(group="test.methods")
    broken = EntryPoint(name="broken", value="math:no_such_function", group="test.methods")

    def register():
        methods.add("good", _spec("good"))

    monkeypatch.setattr(registry, "entry_points", lambda group: [broken, _Point("ok", register)])
    with caplog.at_level(logging.WARNING, logger="vae_audio"):
        assert list(methods) == ["good"]
    assert "'broken' (math:no_such_function) left out" in caplog.text


def test_a_taken_name_is_refused_unless_overwritten():
    methods = MethodRegistry(group="test.methods")
    methods.add("m", _spec("first"))
    with pytest.raises(VaeAudioError, match="'m' is already registered"):
        methods.add("m", _spec("second"))
    methods.add("m", _spec("second"), overwrite=True)
    assert methods["m"].description == "second"


def test_the_neural_methods_come_from_the_entry_point_without_a_cycle():
    """Importing the separation package does not import the Neural FCA package, which imports
    it; the registry's first read brings the Neural FCA methods in."""
    code = (
        "import sys\n"
        "from vae_audio.separation import METHODS\n"
        "assert 'vae_audio.neural_fca' not in sys.modules\n"
        "assert {'neural-fca', 'neural-fastfca', 'fastmnmf2', 'vae-fastfca'} <= set(METHODS)\n"
        "assert 'vae_audio.neural_fca' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
