"""Source power-spectral-density models ``λ [B, N, F, T]`` that the spatial models plug in.

A spatial model (FCA, FastMNMF) never touches a source model's parameters; it talks to it
through four calls:

* ``psd()`` — the current PSDs ``λ [B, N, F, T]`` (non-negative).
* ``mm_update(stats)`` — one majorisation-minimisation step on the negative
  log-likelihood. ``stats(λ)`` returns a :class:`PsdStats` computed by the spatial model at
  the PSDs ``λ``; the model may call it more than once (e.g. NMF re-evaluates it between
  its W and H steps so that each step is monotone). The first call must be at the current
  ``psd()``: spatial models answer it from a cache.
* ``em_update(power)`` — the M-step of EM: decrease the Itakura–Saito divergence from the
  posterior expected source power ``power [B, N, F, T]`` to ``λ``.
* ``rescale(c)`` — multiply ``λ_nft`` by ``c_nf [B, N, F]`` (the spatial model moved a scale
  between its SCMs and the PSDs; the likelihood does not change).

A VAE-decoder source model (``λ = u_nf v_nt g_f(z_nt)``) implements the same calls:
``mm_update`` can take gradient steps on ``PsdStats.surrogate`` plus its prior.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch


@dataclass
class PsdStats:
    """Terms of the negative log-likelihood's majoriser in ``λ`` (Sawada et al. 2013).

    For any spatial model ``−log p(x | λ) ≤ Σ_nft [den · λ + num · λ̄² / λ] + const`` with
    equality at ``λ = λ̄``, where ``λ̄ [B, N, F, T]`` are the PSDs the statistics were computed
    at. FCA: ``num = tr(Y⁻¹ X Y⁻¹ H_n)``, ``den = tr(Y⁻¹ H_n)``; FastMNMF:
    ``num = Σ_m g_nm x̃_m / ŷ_m²``, ``den = Σ_m g_nm / ŷ_m``. All three are ``[B, N, F, T]``.
    The majoriser's minimiser in ``λ_nft`` is ``λ̄ sqrt(num / den)``.
    """

    num: torch.Tensor
    den: torch.Tensor
    lam: torch.Tensor

    def surrogate(self, lam: torch.Tensor) -> torch.Tensor:
        """Majoriser value at ``lam [B, N, F, T]`` -> ``[B]`` (sum over N, F, T; nats up to a
        constant): the objective a gradient-based source model should decrease."""
        return (self.den * lam + self.num * self.lam.square() / lam).sum((1, 2, 3))


StatsFn = Callable[[torch.Tensor], PsdStats]


def mu_ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``sqrt(num / den)`` guarded against round-off (``num < 0`` or ``den <= 0``)."""
    return (num.clamp_min(0) / den.clamp_min(torch.finfo(den.dtype).tiny)).sqrt()


@runtime_checkable
class SourceModel(Protocol):
    """What FCA/MNMF/FastMNMF need from a source model (see the module docstring)."""

    def psd(self) -> torch.Tensor: ...

    def mm_update(self, stats: StatsFn) -> None: ...

    def em_update(self, power: torch.Tensor) -> None: ...

    def rescale(self, c: torch.Tensor) -> None: ...


def _is_stats(power: torch.Tensor) -> StatsFn:
    """IS divergence ``Σ [log λ + p/λ]`` as ``PsdStats``: num = p/λ², den = 1/λ."""
    return lambda lam: PsdStats(num=power / lam.square(), den=lam.reciprocal(), lam=lam)


class FreePsd:
    """Unconstrained PSD per source and TF bin, ``λ [B, N, F, T]`` (Duong et al. 2010).

    ``floor`` (absolute, same unit as ``λ``) keeps ``λ`` strictly positive.
    """

    def __init__(self, lam: torch.Tensor, floor: float | torch.Tensor = 0.0) -> None:
        self.lam = lam
        self.floor = torch.as_tensor(floor, dtype=lam.dtype, device=lam.device)

    def psd(self) -> torch.Tensor:
        return self.lam

    def mm_update(self, stats: StatsFn) -> None:
        s = stats(self.lam)
        self.lam = (self.lam * mu_ratio(s.num, s.den)).clamp_min(self.floor)

    def em_update(self, power: torch.Tensor) -> None:
        # argmin_λ IS(power | λ) = power: Duong et al. 2010's M-step for free PSDs
        self.lam = power.clamp_min(self.floor)

    def rescale(self, c: torch.Tensor) -> None:
        self.lam = self.lam * c[..., None]  # [B, N, F, T]


class NmfPsd:
    """NMF PSDs ``λ_nft = Σ_k W_nfk H_nkt`` (Ozerov & Févotte 2010; Sawada et al. 2013).

    ``W [B, N, F, K]``, ``H [B, N, K, T]``. Updates are the square-root multiplicative rules,
    which are majorisation-minimisation steps for IS-type objectives (Févotte & Idier 2011;
    Sawada et al. 2013, the MU rules for W and H). By default W and H are updated one after
    the other with fresh statistics, so each step is monotone (Sekiguchi's reference code).
    ``joint=True`` updates H with the statistics taken before the W update (one statistics
    evaluation per iteration, as ``pyroomacoustics.bss.fastmnmf2``): not guaranteed
    monotone, but in ``egs/bench`` it separated slightly better. ``floor`` is added to ``λ``
    (absolute, keeps it positive).
    """

    def __init__(
        self,
        W: torch.Tensor,
        H: torch.Tensor,
        floor: float | torch.Tensor = 0.0,
        joint: bool = False,
    ) -> None:
        self.W, self.H, self.joint = W, H, joint
        self.floor = torch.as_tensor(floor, dtype=W.dtype, device=W.device)
        self._has_floor = bool((self.floor != 0).any())  # skip adding a zero floor
        self._lam = None  # cached W @ H + floor

    @classmethod
    def random(
        cls,
        shape: tuple[int, int, int, int, int],
        scale: torch.Tensor,
        generator: torch.Generator,
        dtype: torch.dtype,
        device: torch.device,
        floor: float | torch.Tensor = 0.0,
        joint: bool = False,
    ) -> NmfPsd:
        """Uniform(0, 1) draw for ``shape = (B, N, F, K, T)``; ``scale [B]`` sets the power.

        The draw is made once (on CPU, from ``generator``) and shared by all batch items,
        so batched and one-by-one fits start identically.
        """
        B, N, F, K, T = shape
        W = torch.rand(N, F, K, generator=generator, dtype=torch.float64)
        H = torch.rand(N, K, T, generator=generator, dtype=torch.float64)
        W = W.to(device=device, dtype=dtype).expand(B, N, F, K)
        H = H.to(device=device, dtype=dtype).expand(B, N, K, T).clone()
        W = W * (scale / K)[:, None, None, None]  # [B, N, F, K]: E[λ] = scale / 4
        return cls(W, H, floor, joint)

    def psd(self) -> torch.Tensor:
        if self._lam is None:
            self._lam = self.W @ self.H  # [B, N, F, T]
            if self._has_floor:
                self._lam.add_(self.floor)
        return self._lam

    def mm_update(self, stats: StatsFn) -> None:
        s = stats(self.psd())
        num = s.num @ self.H.mT  # [B, N, F, K]
        den = s.den @ self.H.mT
        self.W, self._lam = self.W * mu_ratio(num, den), None
        if not self.joint:
            s = stats(self.psd())
        num = self.W.mT @ s.num  # [B, N, K, T]
        den = self.W.mT @ s.den
        self.H, self._lam = self.H * mu_ratio(num, den), None

    def em_update(self, power: torch.Tensor) -> None:
        self.mm_update(_is_stats(power))

    def rescale(self, c: torch.Tensor) -> None:
        lam = self._lam
        self.W = self.W * c[..., None]  # [B, N, F, K]
        self.normalize()
        if lam is not None and not self._has_floor:  # λ = W H scales with W: no new product
            self._lam = lam * c[..., None]  # [B, N, F, T]

    def normalize(self) -> None:
        """Make every basis sum to one over F (``Σ_f W_nfk = 1``), moving the scale to H."""
        nu = self.W.sum(2).clamp_min(torch.finfo(self.W.dtype).tiny)  # [B, N, K]
        self.W = self.W / nu[:, :, None, :]
        self.H = self.H * nu[..., None]
        self._lam = None


class FlatPsd:
    """Rank-1 PSDs ``λ_nft = a_nf p_nt``: frequency-flat speech in the first ``n_speech``
    slots (MU on ``p``, ``a = 1``), stationary noise in the others (MU on ``a``, ``p = 1``).

    Sekiguchi's ``FreqInv`` speech and ``TimeInv`` noise models, the source models of the
    first stage of his ``twostep`` start (:func:`~vae_audio.separation.fastmnmf.
    noise_first_stage`). ``a [B, N, F]``, ``p [B, N, T]``; the fixed factor changes only by
    rescaling.
    """

    def __init__(self, a: torch.Tensor, p: torch.Tensor, n_speech: int) -> None:
        self.a, self.p, self.ns = a, p, n_speech  # [B, N, F], [B, N, T]

    def psd(self) -> torch.Tensor:
        return self.a[..., None] * self.p[:, :, None, :]  # [B, N, F, T]

    def mm_update(self, stats: StatsFn) -> None:
        s = stats(self.psd())  # one evaluation: the two slot groups are separate terms
        ns = self.ns
        a, p = self.a[..., None], self.p[:, :, None, :]  # [B, N, F, 1], [B, N, 1, T]
        ratio_p = mu_ratio((s.num * a).sum(-2), (s.den * a).sum(-2))  # [B, N, T]
        ratio_a = mu_ratio((s.num * p).sum(-1), (s.den * p).sum(-1))  # [B, N, F]
        self.p = torch.cat([self.p[:, :ns] * ratio_p[:, :ns], self.p[:, ns:]], 1)
        self.a = torch.cat([self.a[:, :ns], self.a[:, ns:] * ratio_a[:, ns:]], 1)

    def em_update(self, power: torch.Tensor) -> None:
        self.mm_update(_is_stats(power))

    def rescale(self, c: torch.Tensor) -> None:
        self.a = self.a * c  # [B, N, F]


class ConcatPsd:
    """Source models side by side over the slot axis: ``λ = cat(part.psd() for part)``.

    ``mm_update`` updates the parts one after the other, each with statistics of the whole
    model at the other parts' current PSDs, so every part's step is an MM step on the joint
    objective and the sequence is monotone.
    """

    def __init__(self, parts: list) -> None:
        self.parts = parts

    def _sizes(self) -> list[int]:
        return [p.psd().shape[1] for p in self.parts]

    def psd(self) -> torch.Tensor:
        return torch.cat([p.psd() for p in self.parts], 1)  # [B, N, F, T]

    def mm_update(self, stats: StatsFn) -> None:
        sizes = self._sizes()
        for i, part in enumerate(self.parts):
            lo, hi = sum(sizes[:i]), sum(sizes[: i + 1])

            def part_stats(lam: torch.Tensor, lo=lo, hi=hi, i=i) -> PsdStats:
                full = [p.psd() if j != i else lam for j, p in enumerate(self.parts)]
                s = stats(torch.cat(full, 1))
                return PsdStats(s.num[:, lo:hi], s.den[:, lo:hi], s.lam[:, lo:hi])

            part.mm_update(part_stats)

    def em_update(self, power: torch.Tensor) -> None:
        sizes = self._sizes()
        for i, part in enumerate(self.parts):
            lo, hi = sum(sizes[:i]), sum(sizes[: i + 1])
            part.em_update(power[:, lo:hi])

    def rescale(self, c: torch.Tensor) -> None:
        sizes = self._sizes()
        for i, part in enumerate(self.parts):
            lo, hi = sum(sizes[:i]), sum(sizes[: i + 1])
            part.rescale(c[:, lo:hi])
