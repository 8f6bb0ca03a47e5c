"""Build image VAEs from the ``model`` section of a recipe, and reload exported ones.

``model`` keys: ``network`` (``conv`` | ``mlp``), ``latent_dim`` (``D``; for the affine VAE
the content dimensions, the six affine ones are added), ``hidden`` (MLP widths),
``likelihood`` (``bernoulli`` | ``gaussian``), ``coord_hidden`` and ``coord_activation``
(``tanh`` | ``relu``) of the affine VAE's coordinate decoder, ``affine_prior_std`` (the
prior std of its six affine dimensions: one number or six, ``A`` row-major).
The objective kind picks the model class: ``jmvae`` -> :class:`JMVAE`, ``affine`` ->
:class:`AffineVAE`, ``cvae`` -> conditional :class:`ImageVAE`, the others -> :class:`ImageVAE`.
"""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from vae_audio.core.checkpoint import load_model_file
from vae_audio.core.likelihoods import build_likelihood
from vae_audio.errors import VaeAudioError
from vae_audio.image.models import JMVAE, AffineVAE, ImageVAE
from vae_audio.image.networks import (
    AFFINE_DIM,
    ConvDecoder,
    ConvEncoder,
    CoordinateDecoder,
    MLPDecoder,
    MLPEncoder,
)

MODEL_KIND = "image-vae"
_MODEL_KEYS = {
    "network",
    "latent_dim",
    "hidden",
    "likelihood",
    "coord_hidden",
    "coord_activation",
    "affine_prior_std",
}


def _networks(cfg: dict, shape: tuple[int, int, int], latent: int, cond: int):
    """Encoder and decoder for images of ``shape = (C, H, W)`` with ``D = latent``."""
    c, h, w = shape
    net = cfg.get("network", "mlp")
    if net == "conv":
        if h != w:
            raise VaeAudioError(f"conv networks need square images, got {h}x{w}; use network: mlp")
        return ConvEncoder(h, c, latent, cond), ConvDecoder(h, c, latent, cond)
    if net == "mlp":
        hidden = tuple(cfg.get("hidden", (512, 256)))
        return (
            MLPEncoder(shape, latent, hidden, cond),
            MLPDecoder(shape, latent, hidden[::-1], cond),
        )
    raise VaeAudioError(f"model.network {net!r} unknown; use conv or mlp")


def build_model(
    cfg: dict[str, Any], kind: str, image_shape: tuple[int, int, int], num_classes: int = 0
) -> nn.Module:
    """Build the model for objective ``kind`` on images ``(C, H, W)``.

    Args:
        cfg: the recipe's ``model`` section.
        kind: the objective kind (``vae``, ``cvae``, ``jmvae``, ``affine``, ...).
        image_shape: ``(C, H, W)``.
        num_classes: number of labels (``cvae`` and ``jmvae``).
    """
    unknown = set(cfg) - _MODEL_KEYS
    if unknown:
        raise VaeAudioError(
            f"model section has unknown key(s) {sorted(unknown)}; use {sorted(_MODEL_KEYS)}"
        )
    latent = int(cfg.get("latent_dim", 10))
    likelihood = build_likelihood(cfg.get("likelihood", "bernoulli"))
    shape = tuple(int(s) for s in image_shape)
    if kind in ("cvae", "jmvae") and num_classes < 1:
        raise VaeAudioError(f"{kind} needs a labelled data set (digits or mnist); change data.name")
    if kind == "affine":
        if shape[0] != 1 or shape[1] != shape[2]:
            raise VaeAudioError(f"the affine VAE needs square grey images, got {shape}")
        encoder, _ = _networks(cfg, shape, AFFINE_DIM + latent, 0)
        decoder = CoordinateDecoder(
            shape[1],
            latent,
            tuple(cfg.get("coord_hidden", (256, 256, 256))),
            cfg.get("coord_activation", "tanh"),
        )
        return AffineVAE(encoder, decoder, likelihood, cfg.get("affine_prior_std", 1.0))
    if kind == "jmvae":
        joint_enc, _ = _networks(cfg, shape, latent, num_classes)  # q(z | x, y)
        image_enc, image_dec = _networks(cfg, shape, latent, 0)  # q(z | x), p(x | z)
        return JMVAE(
            joint_enc,
            image_enc,
            MLPEncoder((num_classes,), latent, (128,)),
            image_dec,
            MLPDecoder((num_classes,), latent, (128,)),
            likelihood,
            latent,
            num_classes,
        )
    cond = num_classes if kind == "cvae" else 0
    encoder, decoder = _networks(cfg, shape, latent, cond)
    return ImageVAE(encoder, decoder, likelihood, latent, cond)


def load_image_model(path: str | os.PathLike) -> tuple[nn.Module, dict]:
    """Rebuild an exported image model (``model.pt``); returns ``(model in eval mode, file)``."""
    data = load_model_file(path, kind=MODEL_KIND)
    meta = data["meta"]
    model = build_model(
        data["config"]["model"],
        data["config"]["objective"]["kind"],
        tuple(meta["image_shape"]),
        int(meta.get("num_classes", 0)),
    )
    try:
        model.load_state_dict(data["state_dict"])
    except RuntimeError as err:
        raise VaeAudioError(
            f"model file {path} does not match its own config ({str(err).splitlines()[0]}); "
            "re-export it"
        ) from None
    return model.eval(), data
