"""pyroomacoustics separators as benchmark peers, on our STFT and returning source images.

Every peer takes the mixture STFT ``X [M, F, T]`` of :class:`~vae_audio.audio.stft.StftConfig`
(the toolkit's analysis: 512-point periodic Hann, hop 128, centred), hands it to
``pyroomacoustics.bss`` as ``[T, F, M]`` complex128 and returns **candidate images at every
microphone** ``[N, M, F, T]``, so the ISTFT, the scoring on the reference mic (channel 0) and
the permutation are the same as for our methods.

* ``pra-auxiva`` (AuxIVA, Laplace model; Ono 2011) and ``pra-ilrma`` (ILRMA, 2 NMF bases per
  source; Kitamura et al. 2016) are **determined**: they demix ``N = M`` outputs (ILRMA cannot
  do otherwise, AuxIVA is run the same way for a like-for-like comparison). The scale of each
  output is fixed by the library's ``pra.bss.projection_back`` (least-squares filter onto one
  mixture channel), applied once per microphone: ``ĉ_nmft = conj(z_mnf) y_nft`` with ``z_m``
  the projection onto mic ``m``. The library's own ``proj_back`` does the same for mic 0 only.
  **Noise.** Diffuse noise is no point source: a determined demixer has no output reserved for
  it, so the noise spreads over all M outputs; the ``M - n_src`` extra outputs hold what the
  demixer could not attribute to the talkers (mostly noise and reverberation). Which outputs
  are the talkers is left to the benchmark's selection (see :mod:`vae_audio.bench.runner`).
* ``pra-fastmnmf`` / ``pra-fastmnmf2`` (Sekiguchi et al. 2019/2020) are full-rank models and
  return multichannel Wiener-filtered images themselves (``mic_index="all"``); like our
  FCA-type methods they fit ``n_src + 1`` slots, one for the noise (no projection back: the
  outputs are already images, scaled to the mixture).

pyroomacoustics draws its random initialisations (ILRMA's and FastMNMF's NMF) from NumPy's
global generator; :func:`run_peer` seeds it with ``seed`` so a run is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vae_audio.errors import VaeAudioError


@dataclass(frozen=True)
class PeerSpec:
    """A pyroomacoustics separator: ``fit(X [T, F, M], n_src, n_iter, n_basis) -> [N, M, F, T]``,
    whether it demixes exactly M outputs (``determined``), its default number of NMF bases per
    source (None: no NMF) and a one-line description."""

    fit: Callable[[np.ndarray, int, int, int | None], np.ndarray]
    determined: bool
    n_basis: int | None
    description: str


def projection_back_images(Y: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Images at every mic of demixed outputs ``Y [T, F, N]`` given the mixture ``X [T, F, M]``.

    Uses ``pyroomacoustics.bss.projection_back`` (``z = E[y x_m*] / E[|y|²]`` per frequency,
    the least-squares scale onto channel ``m``) once per mic -> ``[N, M, F, T]`` complex.
    """
    from pyroomacoustics.bss import projection_back

    images = []
    for m in range(X.shape[2]):
        z = projection_back(Y, X[:, :, m])  # [F, N]
        images.append(Y * np.conj(z[None]))  # [T, F, N]
    return np.stack(images).transpose(3, 0, 2, 1)  # [M, T, F, N] -> [N, M, F, T]


def _auxiva(X: np.ndarray, n_src: int, n_iter: int, n_basis: int | None) -> np.ndarray:
    from pyroomacoustics.bss import auxiva

    del n_src, n_basis  # determined: M outputs; no NMF
    Y = auxiva(X, n_iter=n_iter, proj_back=False, model="laplace")  # [T, F, M]
    return projection_back_images(Y, X)


def _ilrma(X: np.ndarray, n_src: int, n_iter: int, n_basis: int | None) -> np.ndarray:
    from pyroomacoustics.bss import ilrma

    del n_src  # ILRMA needs n_src == M
    Y = ilrma(X, n_iter=n_iter, n_components=n_basis, proj_back=False)  # [T, F, M]
    return projection_back_images(Y, X)


def _fastmnmf(X: np.ndarray, n_src: int, n_iter: int, n_basis: int | None) -> np.ndarray:
    from pyroomacoustics.bss import fastmnmf

    C = fastmnmf(X, n_src + 1, n_iter, n_components=n_basis, mic_index="all")  # [M, T, F, N]
    return C.transpose(3, 0, 2, 1)  # [N, M, F, T]


def _fastmnmf2(X: np.ndarray, n_src: int, n_iter: int, n_basis: int | None) -> np.ndarray:
    from pyroomacoustics.bss import fastmnmf2

    C = fastmnmf2(X, n_src + 1, n_iter, n_components=n_basis, mic_index="all")  # [M, T, F, N]
    return C.transpose(3, 0, 2, 1)  # [N, M, F, T]


PEERS: dict[str, PeerSpec] = {
    "pra-auxiva": PeerSpec(_auxiva, True, None, "pyroomacoustics AuxIVA (Laplace), M outputs"),
    "pra-ilrma": PeerSpec(_ilrma, True, 2, "pyroomacoustics ILRMA (2 bases), M outputs"),
    "pra-fastmnmf": PeerSpec(
        _fastmnmf, False, 8, "pyroomacoustics FastMNMF (8 bases), n_src + 1 slots"
    ),
    "pra-fastmnmf2": PeerSpec(
        _fastmnmf2, False, 8, "pyroomacoustics FastMNMF2 (8 bases), n_src + 1 slots"
    ),
}


def run_peer(
    name: str,
    X: np.ndarray,
    n_src: int,
    n_iter: int,
    seed: int = 0,
    n_basis: int | None = None,
) -> np.ndarray:
    """Run peer ``name`` on the mixture STFT ``X [M, F, T]`` -> candidate images
    ``[N, M, F, T]`` complex128 (``N = M`` for determined peers, ``n_src + 1`` otherwise).
    ``n_basis``: NMF bases per source (default: the peer's, see :data:`PEERS`)."""
    if name not in PEERS:
        raise VaeAudioError(f"unknown pyroomacoustics peer {name!r}; use one of {sorted(PEERS)}")
    spec = PEERS[name]
    M = X.shape[0]
    if spec.determined and n_src > M:
        raise VaeAudioError(
            f"{name} demixes at most M = {M} sources, got n_src = {n_src}; "
            "use fewer sources or an FCA-type method"
        )
    if n_iter < 1:
        raise VaeAudioError(f"{name} needs at least one iteration, got n_iter = {n_iter}")
    Xt = np.ascontiguousarray(np.asarray(X, dtype=np.complex128).transpose(2, 1, 0))  # [T, F, M]
    np.random.seed(seed)  # pyroomacoustics initialises from the global NumPy generator
    return spec.fit(Xt, n_src, n_iter, spec.n_basis if n_basis is None else n_basis)
