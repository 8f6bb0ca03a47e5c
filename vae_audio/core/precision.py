"""Mixed precision for models whose networks feed statistical estimators.

Under Lightning's ``trainer.precision: bf16-mixed`` (or ``16-mixed``) every operation of a
training step runs inside ``torch.autocast``, which casts matrix products and convolutions
to the low-precision type. That suits the networks, but not the statistics they drive: the
covariances, ISS and EM updates, determinants and likelihoods of the FCA family lose their
positive definiteness and their gradients in 8 bits of mantissa. The rule here: **networks
run in the autocast type, everything from their outputs on runs in float32.** Code that
computes statistics enters :func:`full_precision` and casts the network outputs it reads
with :func:`as_float32`; outside autocast both are no-ops.
"""

from __future__ import annotations

import torch
from torch import Tensor

_LOW = (torch.bfloat16, torch.float16)


def full_precision(device: torch.device | str) -> torch.autocast:
    """Context in which autocast is off on ``device``'s type (float32 math inside an
    autocast region); re-entering autocast inside it turns it back on."""
    return torch.autocast(torch.device(device).type, enabled=False)


def as_float32(t: Tensor | None) -> Tensor | None:
    """``t`` in float32 if it is a low-precision float (bfloat16, float16), else ``t``."""
    return t.float() if t is not None and t.dtype in _LOW else t
