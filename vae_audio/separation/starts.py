"""Start selection for FastMNMF(2), MNMF and FCA: ``init="auto"``.

Two starts are candidates (with a noise slot, ``N = n_src + 1``):

* ``"noise"``: a first stage with frequency-flat speech slots and a stationary last slot
  (:func:`~vae_audio.separation.fastmnmf.noise_first_stage`). FastMNMF(2) keeps the last slot
  stationary in the main run and names it in ``noise_index``. MNMF/FCA take the SCMs of
  FastMNMF2's ``init="noise"`` fit (``n_iter_init`` iterations, split as in
  :func:`~vae_audio.separation.fca.initial_scm`) and then free every slot, so their slots
  are exchangeable again and no ``noise_index`` is set.
* the exchangeable start: ``"twostep"`` (FastMNMF(2)) or ``"fastmnmf2"`` (MNMF/FCA, SCMs of
  a ``twostep`` FastMNMF2 fit); ``separate()`` then names the most diffuse slot the noise.

Two rules (``start_rule``):

* ``"likelihood"`` (default): fit both starts and keep, per batch item, the one with the
  higher final log-likelihood (ties and NaN: the ``"noise"`` start; NaN never wins). Both
  fits are Gaussian likelihoods of the same STFT with the same floors (``eps``, FastMNMF's
  observation floor ``δ``), in nats, so they are comparable; cost 2x. MNMF/FCA: both fits are
  the same model, only the start differs. FastMNMF(2): the ``"noise"`` fit is a *nested*
  model (its noise PSD ``λ_ft = w_f`` is an NMF with ``h_kt`` constant), so twostep's
  optimum is never worse and the comparison favours twostep by its extra ``K(F + T) - F``
  noise-slot parameters (about 4,500 for F = 257, T = 300, K = 8); measured, twostep had the
  higher likelihood on 48 of 48 fits (``egs/bench/start_rule.py``), so for FastMNMF(2) this
  rule amounts to ``"twostep"`` at twice the cost.
* ``"snr"``: one fit. A blind SNR estimate (:func:`estimate_snr`) picks ``"noise"`` below
  ``snr_threshold_db`` (15 dB) and the exchangeable start otherwise.

Measured (``egs/bench/start_rule.py``, its docstring has the commands and tables): 8 + 8
simulated mixtures (SNR 0-10 and 20-30 dB, 2 talkers, 4 mics), FastMNMF2, ``vae-audio bench
--select blind``, mean SDR low / high: ``noise`` 2.08 / 5.22 dB, ``twostep`` 2.39 / 4.22,
likelihood rule 2.39 / 4.22 (always twostep, 2x time), SNR rule 2.08 / 4.22; over seeds 0-2
``noise`` was the better blind start in both bands (low 2.08 vs 1.13, high 5.41 vs 3.75 dB),
and twostep's likelihood margin did not predict the better start. Neither rule beats the
fixed ``noise`` start, so ``separate()``'s default stays ``init="noise"``; ``"auto"`` is an
option (on FCA the likelihood rule also kept the worse start at low SNR).

The fit returned is a :class:`SelectedFit`: per batch item the chosen candidate's images,
SCMs, ``log_likelihood [B, I + 1]`` (that fit's own history) and ``noise_index [B]``, plus a
:class:`StartRecord` of what was fitted and chosen.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from vae_audio.errors import VaeAudioError
from vae_audio.separation.covariance import diffuseness_rank
from vae_audio.separation.fastmnmf import fit_fastmnmf, jd_scm
from vae_audio.separation.fca import fit_fca, fit_free_fca
from vae_audio.separation.linalg import mean_power
from vae_audio.separation.mnmf import fit_mnmf
from vae_audio.separation.source_model import FreePsd, NmfPsd

START_RULES = ("likelihood", "snr")
START_OPTIONS = ("start_rule", "snr_threshold_db")
EXCHANGEABLE = {"jd": "twostep", "mnmf": "fastmnmf2", "fca": "fastmnmf2"}
SNR_THRESHOLD_DB = 15.0


def estimate_snr(x: torch.Tensor, quantile: float = 0.05, band: int = 16) -> torch.Tensor:
    """Blind SNR ``[B]`` (dB) of ``x [B, M, F, T]`` complex: speech power / noise power.

    The noise floor is a low percentile over frames of the power in bands of ``band`` bins
    (mean over mics), summed over bands: a global version of minimum statistics (Martin,
    IEEE TSAP 2001) for a stationary noise, without its bias compensation. SNR =
    ``10 log10((P - P_noise) / P_noise)`` with ``P`` the mean power (summed over bands).
    On the 16 mixtures of ``egs/bench/start_rule.py`` it read 4.6-12.2 dB for true SNRs of
    0-9.6 dB and 20.2-26.1 dB for 20.1-27.8 dB.
    """
    P = (x.real.square() + x.imag.square()).mean(1)  # [B, F, T]
    B, F, T = P.shape
    n_bands = max(1, F // band)
    width = F // n_bands
    Pb = P[:, : n_bands * width].reshape(B, n_bands, width, T).mean(2)  # [B, n_bands, T]
    noise = Pb.quantile(quantile, dim=-1).sum(-1)  # [B]
    total = Pb.mean(-1).sum(-1)  # [B]
    tiny = torch.finfo(P.dtype).tiny
    return 10 * torch.log10((total - noise).clamp_min(1e-6 * total + tiny) / (noise + tiny))


def choose_by_likelihood(final: dict[str, torch.Tensor]) -> list[str]:
    """Per batch item, the start with the highest final log-likelihood.

    ``final`` maps each start to ``[B]`` (nats); NaN counts as ``-inf`` and ties go to the
    earlier start in ``final``'s order.
    """
    names = list(final)
    L = torch.stack([final[n].detach().double().cpu() for n in names])  # [S, B]
    L = torch.where(torch.isnan(L), torch.full_like(L, -math.inf), L)
    chosen = []
    for b in range(L.shape[1]):  # strict > keeps the earlier start on ties
        best = 0
        for s in range(1, len(names)):
            best = s if L[s, b] > L[best, b] else best
        chosen.append(names[best])
    return chosen


def choose_by_snr(snr_db: torch.Tensor, threshold_db: float, low: str, high: str) -> list[str]:
    """``low`` where ``snr_db [B] < threshold_db`` (dB), else ``high``."""
    return [low if float(s) < threshold_db else high for s in snr_db]


@dataclass
class StartRecord:
    """What a start selection did, per batch item ``b``.

    ``rule``; ``chosen[b]`` the start kept; ``final_log_likelihood[start] [B]`` (nats, sum over
    F and T; NaN where that start was not fitted); ``snr_db [B]`` (rule ``"snr"``, else None);
    ``iterations[start]`` the iterations one fit of that start runs (first stage + main run);
    ``fits [B]`` how many fits item ``b`` cost (2 for ``"likelihood"``, 1 for ``"snr"``).
    """

    rule: str
    chosen: tuple[str, ...]
    final_log_likelihood: dict[str, torch.Tensor]
    snr_db: torch.Tensor | None
    iterations: dict[str, int]
    fits: torch.Tensor


@dataclass
class SelectedFit:
    """The fit of the chosen start of every batch item (``separate()``'s model interface).

    ``candidates[start] = (model, items)``: a fitted model and the batch items ``[B']`` it was
    fitted on; ``log_likelihood [B, I + 1]`` and ``noise_index [B]`` (or None: every chosen
    start leaves the noise slot to ``separate()``) of the chosen fits.
    """

    candidates: dict[str, tuple[Any, torch.Tensor]]
    log_likelihood: torch.Tensor
    noise_index: torch.Tensor | None
    record: StartRecord

    def _gather(self, per_model: Callable[[Any, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Item ``b`` of ``per_model(model, items)`` for its chosen start -> ``[B, ...]``."""
        out = None
        for start, (model, items) in self.candidates.items():
            rows = [j for j, b in enumerate(items.tolist()) if self.record.chosen[b] == start]
            if not rows:
                continue
            value = per_model(model, items)  # [B', ...]
            if out is None:
                out = value.new_zeros(len(self.record.chosen), *value.shape[1:])
            out[items[rows]] = value[rows]
        return out

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """Wiener images ``[B, N, M, F, T]`` of ``x [B, M, F, T]``, each item by its fit."""
        return self._gather(lambda model, items: model.images(x[items.to(x.device)]))

    def scm(self) -> torch.Tensor | None:
        """SCMs ``[B, N, F, M, M]`` of the chosen fits (None if a chosen fit has none)."""
        chosen = [m for s, (m, _) in self.candidates.items() if s in self.record.chosen]
        if any(m.scm() is None for m in chosen):
            return None
        return self._gather(lambda model, items: model.scm())


def fit_full_rank_noise_start(
    kind: str,
    x: torch.Tensor,
    n_src: int,
    n_iter: int,
    seed: int,
    callback: Callable[[int, torch.Tensor], None] | None,
    n_basis: int | None = None,
    algorithm: str | None = None,
    n_iter_init: int | None = None,
    eps_rel: float | None = None,
):
    """MNMF (``kind="mnmf"``) or FCA (``"fca"``) on ``x [B, M, F, T]`` from the SCMs of a
    FastMNMF2 ``init="noise"`` fit (module docstring); otherwise as
    :func:`~vae_audio.separation.mnmf.fit_mnmf` / :func:`~vae_audio.separation.fca.
    fit_free_fca` (their defaults for the options left None) -> ``FcaResult``."""
    base = fit_mnmf if kind == "mnmf" else fit_free_fca
    defaults = {k: p.default for k, p in inspect.signature(base).parameters.items()}
    algorithm = defaults["algorithm"] if algorithm is None else algorithm
    n_iter_init = defaults["n_iter_init"] if n_iter_init is None else n_iter_init
    eps_rel = defaults["eps_rel"] if eps_rel is None else eps_rel
    B, M, F, T = x.shape
    n_first = max(1, n_iter_init // 3)  # as initial_scm's "fastmnmf2"
    jd = fit_fastmnmf(
        x, n_src, 2, n_iter_init - n_first, init="noise", n_iter_init=n_first, seed=seed
    )
    H, lam = jd_scm(jd.Q, jd.g), jd.lam  # [B, N, F, M, M], [B, N, F, T]
    power = mean_power(x, (1, 2, 3))  # [B]
    floor = eps_rel * power[:, None, None, None]  # [B, 1, 1, 1]
    if kind == "mnmf":
        K = defaults["n_basis"] if n_basis is None else n_basis
        generator = torch.Generator().manual_seed(seed + 2)  # fit_mnmf's NMF draw
        source = NmfPsd.random((B, n_src, F, K, T), power, generator, power.dtype, x.device, floor)
    else:
        source = FreePsd(lam.clamp_min(floor), floor)
    return fit_fca(x, source, H, n_iter, algorithm, eps_rel * power, callback)


def selecting_fit(fit: Callable[..., Any], family: str) -> Callable[..., Any]:
    """Wrap a ``MethodSpec.fit`` of family ``"jd"`` (FastMNMF/FastMNMF2), ``"mnmf"`` or
    ``"fca"`` so that it takes ``init="auto"`` (with ``start_rule`` and
    ``snr_threshold_db``) and, for MNMF/FCA, ``init="noise"``; other inits go to ``fit``."""
    if family not in EXCHANGEABLE:
        raise VaeAudioError(f"unknown start family {family!r}; use one of jd, mnmf, fca")

    def fit_one(start, x, n_slots, n_iter, seed, callback, opts):
        if family != "jd" and start == "noise":
            return fit_full_rank_noise_start(family, x, n_slots, n_iter, seed, callback, **opts)
        return fit(x, n_slots, n_iter, seed, callback, init=start, **opts)

    def wrapped(x, n_slots, n_iter, seed, callback, init=None, start_rule=None,
                snr_threshold_db=None, **opts):  # fmt: skip
        if init != "auto":
            if start_rule is not None or snr_threshold_db is not None:
                raise VaeAudioError(
                    f"start_rule and snr_threshold_db choose a start and need init='auto', "
                    f"got init={init!r}; drop them or pass init='auto'"
                )
            if init is None:
                return fit(x, n_slots, n_iter, seed, callback, **opts)
            return fit_one(init, x, n_slots, n_iter, seed, callback, opts)
        rule = "likelihood" if start_rule is None else start_rule
        threshold = SNR_THRESHOLD_DB if snr_threshold_db is None else float(snr_threshold_db)
        run = lambda start, xs, cb: fit_one(start, xs, n_slots, n_iter, seed, cb, opts)  # noqa: E731
        return select_start(x, n_slots, run, family, rule, threshold, callback, opts)

    return wrapped


def select_start(
    x: torch.Tensor,
    n_slots: int,
    run: Callable[[str, torch.Tensor, Any], Any],
    family: str,
    rule: str = "likelihood",
    threshold_db: float = SNR_THRESHOLD_DB,
    callback: Callable[[int, torch.Tensor], None] | None = None,
    opts: dict[str, Any] | None = None,
) -> SelectedFit:
    """Fit the candidate starts of ``family`` on ``x [B, M, F, T]`` with ``run(start, x_sub,
    callback)`` and keep one per item by ``rule`` (module docstring).

    ``callback(it, log_likelihood [B])`` runs after every iteration of every fit, NaN for the
    items that fit does not cover (so it runs ``fits`` times ``n_iter`` times in all).
    ``opts`` (the method's options) only size the iteration record.
    """
    if rule not in START_RULES:
        raise VaeAudioError(f"unknown start_rule {rule!r}; use one of {', '.join(START_RULES)}")
    B = x.shape[0]
    exchangeable = EXCHANGEABLE[family]
    starts = ["noise", exchangeable] if n_slots >= 2 else [exchangeable]
    snr = None
    if rule == "likelihood":
        plan = {s: torch.arange(B) for s in starts}
    else:
        snr = estimate_snr(x).cpu()  # [B]
        wanted = choose_by_snr(snr, threshold_db, starts[0], starts[-1])
        plan = {s: torch.tensor([b for b in range(B) if wanted[b] == s]) for s in starts}
        plan = {s: items for s, items in plan.items() if len(items)}
    candidates, final = {}, {}
    for start, items in plan.items():
        cb = None if callback is None else _spread(callback, items, B, x.real.dtype)
        model = run(start, x[items.to(x.device)], cb)
        candidates[start] = (model, items)
        final[start] = torch.full((B,), math.nan, dtype=torch.float64)
        final[start][items] = model.log_likelihood[:, -1].detach().double().cpu()
    chosen = choose_by_likelihood(final) if rule == "likelihood" else wanted
    fits = torch.zeros(B, dtype=torch.long)
    for items in plan.values():
        fits[items] += 1
    n_iter = next(iter(candidates.values()))[0].log_likelihood.shape[1] - 1
    record = StartRecord(
        rule, tuple(chosen), final, snr, {s: n_iter + _first_stage(family, s, opts) for s in plan},
        fits,
    )  # fmt: skip
    history = _pick(candidates, chosen, lambda m: m.log_likelihood)  # [B, I + 1]
    return SelectedFit(candidates, history, _noise_index(candidates, chosen), record)


def _first_stage(family: str, start: str, opts: dict[str, Any] | None) -> int:
    """Iterations a start runs before the main run (its ``n_iter_init``)."""
    base = fit_fastmnmf if family == "jd" else fit_mnmf if family == "mnmf" else fit_free_fca
    default = inspect.signature(base).parameters["n_iter_init"].default
    n = (opts or {}).get("n_iter_init", default)
    return n if start in ("noise", "twostep", "fastmnmf2") else 0


def _spread(callback, items: torch.Tensor, B: int, dtype: torch.dtype):
    """A callback for a fit of ``items`` that reports ``[B]`` (NaN elsewhere)."""

    def cb(it: int, ll: torch.Tensor) -> None:
        full = torch.full((B,), math.nan, dtype=ll.dtype, device=ll.device)
        full[items.to(ll.device)] = ll
        callback(it, full)

    return cb


def _pick(candidates, chosen: list[str], attr: Callable[[Any], torch.Tensor]) -> torch.Tensor:
    """Row ``b`` of ``attr(model)`` of item ``b``'s chosen fit -> ``[B, ...]``."""
    values = {s: attr(candidates[s][0]) for s in dict.fromkeys(chosen)}  # [B', ...] each
    rows = [values[s][candidates[s][1].tolist().index(b)] for b, s in enumerate(chosen)]
    return torch.stack(rows)


def _noise_index(candidates, chosen: list[str]) -> torch.Tensor | None:
    """``[B]``: the chosen fit's ``noise_index``, or for a fit without one the most diffuse
    slot (as ``separate()`` does); None when no chosen fit names its noise slot."""

    if all(getattr(candidates[s][0], "noise_index", None) is None for s in set(chosen)):
        return None

    def index(model) -> torch.Tensor:
        named = getattr(model, "noise_index", None)
        return named if named is not None else diffuseness_rank(model.scm()).argmin(-1)

    return _pick(candidates, chosen, index)
