"""Build image VAEs from the ``model`` section of a recipe, and reload exported ones.

``model`` keys: ``network`` (``conv`` | ``mlp``), ``latent_dim`` (``D``; for the affine VAE
the content dimensions, the six affine ones are added), ``hidden`` (MLP widths),
``likelihood`` (``bernoulli`` | ``gaussian``), ``coord_hidden`` and ``coord_activation``
(``tanh`` | ``relu``) of the affine VAE's coordinate decoder, ``affine_prior_std`` (the
prior std of its six affine dimensions: one number or six, ``A`` row-major).
The objective kind picks the model class: ``jmvae`` -> :class:`JMVAE`, ``affine`` ->
:class:`AffineVAE`, ``cvae`` -> conditional :class:`ImageVAE`, ``vq_vae`` -> :class:`VQVAE`,
``vae_gan`` -> :class:`VAEGAN`, ``gmm_vae`` -> :class:`MixturePriorVAE`, the others ->
:class:`ImageVAE`.

Keys of the newer models (defaults in :data:`VQ_DEFAULTS` and beside them):

- ``vq_vae``: ``codebook_size`` (K), ``code_dim`` (D per grid position), ``channels`` (conv
  width), ``downsample`` (stride-2 layers: grid side = image side / 2^downsample),
  ``ema_decay``, ``restart_threshold`` (EMA uses per batch below which a code is restarted),
  ``prior_width``, ``prior_layers``, ``prior_heads`` (the code prior's transformer). The
  networks are always convolutional (a spatial code grid); ``network``/``hidden`` are unused.
- ``vae_gan``: ``discriminator_hidden`` (fully connected widths of the discriminator; default
  ``hidden``); ``network`` picks conv or MLP for all three networks. The feature layer
  ``Dis_l`` is the conv output (conv) or the first fully connected layer (mlp).
- ``gmm_vae``: ``num_components`` (K of the mixture prior).
"""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from vae_audio.core.checkpoint import load_model_file
from vae_audio.core.likelihoods import build_likelihood
from vae_audio.errors import VaeAudioError
from vae_audio.image.models import JMVAE, VAEGAN, VQVAE, AffineVAE, ImageVAE, MixturePriorVAE
from vae_audio.image.networks import (
    AFFINE_DIM,
    CodePrior,
    ConvDecoder,
    ConvEncoder,
    CoordinateDecoder,
    Discriminator,
    GridDecoder,
    GridEncoder,
    MLPDecoder,
    MLPEncoder,
    grid_side,
)
from vae_audio.image.vq import VectorQuantizer

MODEL_KIND = "image-vae"
_MODEL_KEYS = {
    "network",
    "latent_dim",
    "hidden",
    "likelihood",
    "coord_hidden",
    "coord_activation",
    "affine_prior_std",
    *("codebook_size", "code_dim", "channels", "downsample", "ema_decay", "restart_threshold"),
    *("prior_width", "prior_layers", "prior_heads"),
    "discriminator_hidden",
    "num_components",
}
VQ_DEFAULTS: dict[str, Any] = {
    "codebook_size": 64,
    "code_dim": 16,
    "channels": 32,
    "downsample": None,  # 3 for 64x64 images, 2 for 28x28 (grid side 8 or 7)
    "ema_decay": 0.99,
    "restart_threshold": 1.0,
    "prior_width": 64,
    "prior_layers": 2,
    "prior_heads": 4,
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
    if kind == "vq_vae":
        return _vq_vae(cfg, shape, likelihood)
    cond = num_classes if kind == "cvae" else 0
    encoder, decoder = _networks(cfg, shape, latent, cond)
    if kind == "vae_gan":
        hidden = cfg.get("discriminator_hidden", cfg.get("hidden", (512, 256)))
        discriminator = Discriminator(shape, cfg.get("network", "mlp"), tuple(hidden))
        return VAEGAN(encoder, decoder, discriminator, likelihood, latent)
    if kind == "gmm_vae":
        components = int(cfg.get("num_components", 10))
        if components < 1:
            raise VaeAudioError(f"model.num_components={components} must be at least 1")
        return MixturePriorVAE(encoder, decoder, likelihood, latent, components)
    return ImageVAE(encoder, decoder, likelihood, latent, cond)


def _vq_vae(cfg: dict, shape: tuple[int, ...], likelihood) -> VQVAE:
    """The VQ-VAE of ``cfg`` (keys and defaults in :data:`VQ_DEFAULTS`) for ``(C, H, W)``."""
    c = {**VQ_DEFAULTS, **{k: v for k, v in cfg.items() if k in VQ_DEFAULTS}}
    channels, side = shape[0], min(shape[1:])
    downsample = int(c["downsample"] or (3 if side >= 64 else 2))
    grid = (grid_side(shape[1], downsample), grid_side(shape[2], downsample))
    k, d, width = int(c["codebook_size"]), int(c["code_dim"]), int(c["channels"])
    return VQVAE(
        GridEncoder(channels, d, width, downsample),
        VectorQuantizer(k, d, float(c["ema_decay"]), float(c["restart_threshold"])),
        GridDecoder(channels, d, width, downsample),
        likelihood,
        CodePrior(k, grid, int(c["prior_width"]), int(c["prior_layers"]), int(c["prior_heads"])),
    )


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
