"""Weight schedules (β, capacity, learning-rate factors) as pure functions of the step.

``step`` is the global optimiser step (``LightningModule.global_step``) or any other
monotone counter the caller chooses (e.g. the epoch); the functions never keep state, so a
resumed run sees exactly the values an uninterrupted run would.

:class:`Schedule` builds one of them from a config entry::

    beta: {kind: cyclic, period: 10000, ratio: 0.5, value_max: 1.0}
    beta: 4.0                       # a bare number is a constant
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from vae_audio.errors import VaeAudioError


def constant(step: int, value: float = 1.0) -> float:
    """``value`` at every step."""
    del step
    return float(value)


def linear_warmup(
    step: int, start: int, end: int, value_from: float = 0.0, value_to: float = 1.0
) -> float:
    """``value_from`` until ``start``, linear ramp to ``value_to`` at ``end``, then held.

    Used for KL warm-up and for the capacity ``C`` of Burgess et al. 2018 (Sec. 4), which
    grows linearly from 0 to ``C_max``.
    """
    if end <= start:
        return float(value_to if step >= end else value_from)
    frac = min(max((step - start) / (end - start), 0.0), 1.0)
    return float(value_from + (value_to - value_from) * frac)


def cyclic(
    step: int,
    period: int,
    ratio: float = 0.5,
    value_max: float = 1.0,
    value_min: float = 0.0,
) -> float:
    """Cyclical annealing (Fu et al. 2019, Eq. (5)-(6)), linear ramp.

    With ``τ = (step mod period) / period``: ``value_min + (value_max − value_min) τ / ratio``
    while ``τ < ratio``, then ``value_max`` until the cycle restarts. Step 0 gives
    ``value_min``; the ramp of each cycle lasts ``ratio * period`` steps.
    """
    if period <= 0:
        raise VaeAudioError(f"cyclic schedule: period={period} must be a positive step count")
    if not 0.0 < ratio <= 1.0:
        raise VaeAudioError(f"cyclic schedule: ratio={ratio} must lie in (0, 1]")
    tau = (step % period) / period
    if tau >= ratio:
        return float(value_max)
    return float(value_min + (value_max - value_min) * tau / ratio)


_KINDS = {"constant": constant, "linear_warmup": linear_warmup, "cyclic": cyclic}


@dataclass(frozen=True)
class Schedule:
    """A named schedule with bound parameters; ``schedule(step) -> float``.

    Attributes:
        kind: ``"constant"``, ``"linear_warmup"`` or ``"cyclic"``.
        params: keyword arguments of the matching function (everything but ``step``).
    """

    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise VaeAudioError(f"unknown schedule kind {self.kind!r}; use one of {sorted(_KINDS)}")
        signature = inspect.signature(_KINDS[self.kind])
        accepted = set(signature.parameters) - {"step"}
        unknown = set(self.params) - accepted
        if unknown:
            raise VaeAudioError(
                f"schedule {self.kind!r} got unknown parameter(s) {sorted(unknown)}; "
                f"it accepts {sorted(accepted)}"
            )
        try:
            signature.bind(0, **self.params)
        except TypeError as err:
            raise VaeAudioError(f"schedule {self.kind!r}: {err}; fix its config entry") from None

    @classmethod
    def from_config(cls, spec: float | int | dict[str, Any]) -> Schedule:
        """Build from a number (constant) or a dict ``{"kind": ..., **params}``."""
        if isinstance(spec, bool):
            raise VaeAudioError(f"schedule spec {spec!r} is a boolean; give a number or a dict")
        if isinstance(spec, (int, float)):
            return cls("constant", {"value": float(spec)})
        if isinstance(spec, dict):
            params = dict(spec)
            kind = params.pop("kind", None)
            if kind is None:
                raise VaeAudioError(
                    f"schedule spec {spec!r} has no 'kind'; add kind: constant|linear_warmup|cyclic"
                )
            return cls(str(kind), params)
        raise VaeAudioError(
            f"schedule spec {spec!r} must be a number or a mapping with a 'kind' key"
        )

    def __call__(self, step: int) -> float:
        return _KINDS[self.kind](step, **self.params)
