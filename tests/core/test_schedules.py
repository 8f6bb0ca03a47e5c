"""Schedules: values at known steps, config construction and errors."""

import pytest

from vae_audio.core.schedules import Schedule, constant, cyclic, linear_warmup
from vae_audio.errors import VaeAudioError


def test_constant():
    assert constant(0, 2.5) == constant(10**6, 2.5) == 2.5


def test_linear_warmup_values():
    f = lambda s: linear_warmup(s, start=10, end=30, value_from=1.0, value_to=5.0)  # noqa: E731
    assert [f(s) for s in (0, 10, 20, 25, 30, 1000)] == [1.0, 1.0, 3.0, 4.0, 5.0, 5.0]
    assert linear_warmup(4, start=5, end=5, value_to=2.0) == 0.0
    assert linear_warmup(5, start=5, end=5, value_to=2.0) == 2.0


def test_cyclic_follows_fu_et_al():
    # period 100, ramp over the first half from 0 to 2, then hold; restarts every 100 steps
    f = lambda s: cyclic(s, period=100, ratio=0.5, value_max=2.0)  # noqa: E731
    assert [f(s) for s in (0, 25, 49, 50, 99, 100, 125, 250)] == pytest.approx(
        [0.0, 1.0, 2.0 * 49 / 50, 2.0, 2.0, 0.0, 1.0, 2.0]
    )
    assert cyclic(10, period=40, ratio=1.0, value_max=1.0, value_min=0.5) == pytest.approx(0.625)


def test_schedule_from_config():
    assert Schedule.from_config(4)(123) == 4.0
    s = Schedule.from_config({"kind": "cyclic", "period": 10, "value_max": 3.0})
    assert (s(0), s(5), s(12)) == (0.0, 3.0, pytest.approx(1.2))
    w = Schedule.from_config({"kind": "linear_warmup", "start": 0, "end": 10, "value_to": 25.0})
    assert w(5) == 12.5


@pytest.mark.parametrize(
    "spec, match",
    [
        ({"kind": "cosine"}, "unknown schedule kind"),
        ({"period": 3}, "has no 'kind'"),
        ({"kind": "cyclic", "period": 3, "max": 1}, "unknown parameter"),
        ({"kind": "linear_warmup", "start": 0}, "missing a required argument"),
        ("fast", "must be a number"),
        (True, "boolean"),
    ],
)
def test_schedule_config_errors(spec, match):
    with pytest.raises(VaeAudioError, match=match):
        Schedule.from_config(spec)


def test_cyclic_rejects_bad_period():
    with pytest.raises(VaeAudioError, match="period"):
        cyclic(3, period=0)
