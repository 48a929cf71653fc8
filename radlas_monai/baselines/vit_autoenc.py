"""MONAI's self-supervised ViTAutoEnc recipe as a baseline, adapted to 2D radiographs.

The recipe is MONAI's tutorial ``self_supervised_pretraining/vit_unetr_ssl/ssl_train.ipynb`` (and
``ssl_script_train.py``), itself after Haghighi et al., "Self-supervised learning for medical image analysis" and
Chen et al., SimCLR (ICML 2020). One step, as the tutorial writes it::

    out1, _ = model(view1); out2, _ = model(view2)              # two augmented views (views.RecipeViews)
    r = L1(out1, original)                                       # reconstruct the original from view 1
    c = ContrastiveLoss(temperature=0.05)(out1.flatten(1), out2.flatten(1))
    loss = r + c * r                                             # "adjust the CL loss by recon loss"
    loss.backward(); optimizer.step()

The network is MONAI's :class:`~monai.networks.nets.ViTAutoEnc` (``spatial_dims=2``, ``patch_size=16``) at the
width and depth of a RadLAS encoder preset. ``ViTAutoEnc`` cannot ask its blocks for SDPA attention, so
:func:`build_vit_autoenc` builds it without blocks and fills ``model.blocks`` with the blocks RadLAS uses
(:func:`~radlas_monai.networks.transformer.build_transformer_block`: MONAI ``TransformerBlock`` with
``use_flash_attention=True``, or its state-dict-identical SDPA twin without ``einops``), so both models run the
same attention kernels and the state dict keeps MONAI's keys. The tutorial's optimizer is Adam at ``1e-4``;
:func:`build_recipe_optimizer` uses AdamW at the same rate (the RadLAS optimizer family).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn as nn
from monai.losses import ContrastiveLoss
from monai.networks.nets import ViTAutoEnc
from monai.utils import CommonKeys

from radlas_monai.baselines.views import RecipeViews, make_views_batch
from radlas_monai.engines.pretrain import autocast_context
from radlas_monai.networks.grounding import gaussian_smooth
from radlas_monai.networks.presets import get_encoder_preset
from radlas_monai.networks.transformer import build_transformer_block

__all__ = [
    "RECIPE_LEARNING_RATE",
    "RECIPE_TEMPERATURE",
    "ViTAutoEncRecipeStep",
    "build_recipe_optimizer",
    "build_vit_autoenc",
    "extract_encoder_features",
    "recipe_loss",
    "recipe_train_step",
    "vit_autoenc_residual_map",
    "vit_autoenc_tokens",
]

logger = logging.getLogger(__name__)

RECIPE_TEMPERATURE = 0.05
"""``ContrastiveLoss`` temperature of the MONAI tutorial."""

RECIPE_LEARNING_RATE = 1e-4
"""Learning rate of the MONAI tutorial."""

_VIT_AUTOENC_ARGS = frozenset(inspect.signature(ViTAutoEnc.__init__).parameters) - {"self"}


def build_vit_autoenc(preset: str = "tiny", img_size: int | Sequence[int] = 256, **overrides: Any) -> ViTAutoEnc:
    """Build the recipe's 2D ``ViTAutoEnc`` at the transformer size of RadLAS preset ``preset``.

    Defaults follow the tutorial (``in_channels=1``, ``patch_size=16``, ``proj_type="conv"``, ``deconv_chns=16``,
    ``qkv_bias=False``, no dropout) with ``hidden_size``, ``num_layers``, ``num_heads`` and ``mlp_dim`` from
    :func:`~radlas_monai.networks.presets.get_encoder_preset`.

    Args:
        preset: RadLAS preset name (``tiny``, ``small``, ``base``).
        img_size: input size ``H`` (square) or ``(H, W)``, multiples of ``patch_size``.
        overrides: any ``ViTAutoEnc`` argument, plus ``attention_impl`` (``"auto"``, ``"monai"``, ``"sdpa"``; see
            :func:`~radlas_monai.networks.transformer.build_transformer_block`).

    Returns:
        the network; ``model(x)`` maps ``(B, 1, H, W)`` to ``(reconstruction (B, 1, H, W), hidden_states)``.

    Raises:
        ValueError: for an unknown preset, ``spatial_dims != 2``, ``save_attn=True`` (SDPA keeps no attention
            weights) or sizes the network rejects.
        TypeError: for an override that is not a ``ViTAutoEnc`` argument.
    """
    unknown = sorted(set(overrides) - _VIT_AUTOENC_ARGS - {"attention_impl"})
    if unknown:
        raise TypeError(
            f"build_vit_autoenc got unknown arguments {unknown}; ViTAutoEnc takes {sorted(_VIT_AUTOENC_ARGS)}"
        )
    kwargs: dict[str, Any] = {
        "in_channels": 1,
        "patch_size": 16,
        "proj_type": "conv",
        "deconv_chns": 16,
        "qkv_bias": False,
        "dropout_rate": 0.0,
        "spatial_dims": 2,
        **get_encoder_preset(preset),
    }
    kwargs.update(overrides)
    attention_impl = kwargs.pop("attention_impl", "auto")
    if kwargs["spatial_dims"] != 2:
        raise ValueError(f"build_vit_autoenc builds the 2D recipe, got spatial_dims={kwargs['spatial_dims']}")
    if kwargs.pop("save_attn", False):
        raise ValueError("save_attn=True is not supported: the SDPA attention blocks keep no attention weights")
    num_layers = kwargs.pop("num_layers")
    model = ViTAutoEnc(img_size=img_size, num_layers=0, **kwargs)
    model.blocks = nn.ModuleList(
        build_transformer_block(
            kwargs["hidden_size"],
            kwargs["mlp_dim"],
            kwargs["num_heads"],
            kwargs["dropout_rate"],
            kwargs["qkv_bias"],
            attention_impl,
        )
        for _ in range(num_layers)
    )
    return model


def build_recipe_optimizer(
    model: nn.Module, lr: float = RECIPE_LEARNING_RATE, weight_decay: float = 0.01
) -> torch.optim.AdamW:
    """AdamW over all parameters at the tutorial's learning rate (the tutorial's Adam is AdamW at zero decay)."""
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)


def _check_image(model: ViTAutoEnc, image: torch.Tensor) -> None:
    expected = tuple(int(s) for s in model.img_size)
    if image.ndim != 4 or tuple(image.shape[2:]) != expected:
        raise ValueError(
            f"ViTAutoEnc was built for images (B, C, {', '.join(map(str, expected))}), got {tuple(image.shape)}"
        )


def vit_autoenc_tokens(model: ViTAutoEnc, image: torch.Tensor) -> torch.Tensor:
    """The encoder half of ``ViTAutoEnc.forward``: final normalised patch tokens ``(B, N, D)`` (row-major grid).

    Raises:
        ValueError: when ``image`` is not ``(B, C, *model.img_size)``.
    """
    _check_image(model, image)
    x = model.patch_embedding(image)
    for block in model.blocks:
        x = block(x)
    return model.norm(x)


def extract_encoder_features(model: ViTAutoEnc, image: torch.Tensor) -> torch.Tensor:
    """Global feature ``(B, D)``: the mean of the ViT tokens, like ``RadLASEncoder.forward_pooled``.

    Runs in the model's current mode and with gradients as the caller sets them (wrap it in ``torch.no_grad()``
    and call ``model.eval()`` for linear probing); the deconvolution decoder is not run.

    Args:
        model: a recipe network from :func:`build_vit_autoenc`.
        image: ``(B, 1, H, W)`` radiographs in ``[0, 1]``.

    Returns:
        ``(B, hidden_size)`` features.

    Raises:
        ValueError: when ``image`` does not match the network's input size.
    """
    return vit_autoenc_tokens(model, image).mean(dim=1)


def vit_autoenc_residual_map(
    model: ViTAutoEnc, image: torch.Tensor, smooth: float = 2.0, eps: float = 1e-6
) -> torch.Tensor:
    """The reconstruction-residual "lesion map" of the recipe: ``|x - recon|``, smoothed, min-max normalised per image.

    The network runs in eval mode without gradients (its previous mode is restored). Per-image normalisation makes
    the maximum of every map 1, so values rank pixels within an image, not across images; a map with no spread
    (``max - min <= eps``) is all zeros.

    Args:
        model: a recipe network from :func:`build_vit_autoenc`.
        image: ``(B, 1, H, W)`` radiographs in ``[0, 1]``.
        smooth: Gaussian sigma in pixels applied to the residual (0 disables),
            see :func:`~radlas_monai.networks.grounding.gaussian_smooth`.
        eps: smallest per-image spread that is normalised.

    Returns:
        ``(B, 1, H, W)`` float32 maps in ``[0, 1]``.

    Raises:
        ValueError: when ``image`` is not ``(B, 1, *model.img_size)``.
    """
    _check_image(model, image)
    if image.shape[1] != 1:
        raise ValueError(
            f"vit_autoenc_residual_map expects single-channel images (B, 1, H, W), got {tuple(image.shape)}"
        )
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            recon = model(image)[0]
    finally:
        model.train(was_training)
    residual = gaussian_smooth((image.float() - recon.float()).abs(), smooth)
    low = residual.amin(dim=(1, 2, 3), keepdim=True)
    spread = residual.amax(dim=(1, 2, 3), keepdim=True) - low
    normalised = (residual - low) / spread.clamp_min(eps)
    return torch.where(spread > eps, normalised, torch.zeros_like(normalised)).clamp(0.0, 1.0)


def recipe_loss(
    out1: torch.Tensor,
    out2: torch.Tensor,
    target: torch.Tensor,
    contrastive_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    l1_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> dict[str, torch.Tensor]:
    """The tutorial's loss: ``loss = r + c * r`` with ``r = L1(out1, target)``, ``c = NT-Xent(flat(out1), flat(out2))``.

    Args:
        out1: reconstructions of view 1, ``(B, C, H, W)``.
        out2: reconstructions of view 2, same shape.
        target: the un-augmented images, same shape.
        contrastive_loss: ``monai.losses.ContrastiveLoss(temperature=0.05)`` in the recipe.
        l1_loss: ``torch.nn.L1Loss()`` in the recipe.

    Returns:
        ``{"loss", "recon_loss", "contrastive_loss"}`` scalar tensors.

    Raises:
        ValueError: when the three tensors differ in shape.
    """
    if not out1.shape == out2.shape == target.shape:
        raise ValueError(
            f"expected equal shapes, got out1 {tuple(out1.shape)}, out2 {tuple(out2.shape)}, "
            f"target {tuple(target.shape)}"
        )
    recon = l1_loss(out1, target)
    contrast = contrastive_loss(out1.flatten(start_dim=1), out2.flatten(start_dim=1))
    return {"loss": recon + contrast * recon, "recon_loss": recon, "contrastive_loss": contrast}


def _forward_backward(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    views_batch: tuple[torch.Tensor, torch.Tensor],
    images: torch.Tensor,
    contrastive_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    l1_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    amp: bool,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    view1, view2 = views_batch
    if not view1.shape == view2.shape == images.shape:
        raise ValueError(
            f"views and images must share one shape (B, 1, H, W), got view1 {tuple(view1.shape)}, "
            f"view2 {tuple(view2.shape)}, images {tuple(images.shape)}"
        )
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with autocast_context(images.device, amp):
        out1, _ = model(view1)
        out2, _ = model(view2)
    terms = recipe_loss(out1.float(), out2.float(), images.float(), contrastive_loss, l1_loss)
    loss = terms["loss"]
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite ViTAutoEnc recipe loss: { ({k: float(v) for k, v in terms.items()}) }")
    loss.backward()
    optimizer.step()
    return terms, out1


def recipe_train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    views_batch: tuple[torch.Tensor, torch.Tensor],
    images: torch.Tensor,
    contrastive_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    l1_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    amp: bool = False,
) -> dict[str, float]:
    """One recipe iteration on ready-made views: forward both views, :func:`recipe_loss`, backward, optimizer step.

    Args:
        model: the recipe network (:func:`build_vit_autoenc`); put in train mode.
        optimizer: its optimizer (:func:`build_recipe_optimizer`).
        views_batch: ``(view1, view2)``, each ``(B, 1, H, W)`` (:func:`~radlas_monai.baselines.views.make_views_batch`).
        images: the un-augmented ``(B, 1, H, W)`` images, the reconstruction target.
        contrastive_loss: ``ContrastiveLoss(temperature=RECIPE_TEMPERATURE)``.
        l1_loss: ``torch.nn.L1Loss()``.
        amp: bf16 autocast for the forward passes (as ``RadLASPretrainStep``); losses are computed in float32.

    Returns:
        ``{"loss", "recon_loss", "contrastive_loss"}`` as floats.

    Raises:
        ValueError: when the views and images differ in shape.
        FloatingPointError: on a non-finite loss.
    """
    terms, _ = _forward_backward(model, optimizer, views_batch, images, contrastive_loss, l1_loss, amp)
    return {name: float(value.detach()) for name, value in terms.items()}


def _batch_tensor(batch: dict[str, Any], key: str, device: torch.device, non_blocking: bool) -> torch.Tensor:
    value = torch.as_tensor(batch[key])
    value = value.as_tensor() if hasattr(value, "as_tensor") else value
    return value.to(device, torch.float32, non_blocking=non_blocking)


class ViTAutoEncRecipeStep:
    """``iteration_update`` for ``monai.engines.SupervisedTrainer``: one iteration of MONAI's ViTAutoEnc recipe.

    Uses the trainer's ``network`` and ``optimizer``; the reconstruction loss is ``recon_loss`` or, when that is
    None, the trainer's ``loss_function`` (``torch.nn.L1Loss()`` in the recipe). The two views are read from the
    batch (``<image_key>_view1`` / ``_view2``, written in the loader by a
    :class:`~radlas_monai.baselines.views.RecipeViews`, as the tutorial does); when the batch has none and ``views``
    is given, they are made per image here with :func:`~radlas_monai.baselines.views.make_views_batch`.

    Args:
        views: the view transform used when the batch carries no views (its output key names are used either way).
        temperature: ``ContrastiveLoss`` temperature (the tutorial's 0.05).
        recon_loss: reconstruction loss; default the trainer's ``loss_function``.
        image_key: batch key of the un-augmented images.
        amp: bf16 autocast for the forward passes.

    Returns (per call):
        ``engine.state.output``: ``loss``, ``recon_loss`` and ``contrastive_loss`` as floats, plus the detached
        ``(B, 1, H, W)`` tensors ``image``, ``image_view1``, ``image_view2`` and ``reconstruction`` (of view 1) for
        image handlers.
    """

    def __init__(
        self,
        views: RecipeViews | None = None,
        temperature: float = RECIPE_TEMPERATURE,
        recon_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        image_key: str = CommonKeys.IMAGE,
        amp: bool = False,
    ) -> None:
        self.views = views
        self.contrastive_loss = ContrastiveLoss(temperature=temperature)
        self.recon_loss = recon_loss
        self.image_key = image_key
        self.amp = amp

    def _view_keys(self) -> tuple[str, str]:
        if self.views is not None:
            return self.views.view_keys(self.image_key)
        return f"{self.image_key}_view1", f"{self.image_key}_view2"

    def __call__(self, engine: Any, batchdata: dict[str, Any]) -> dict[str, Any]:
        device = torch.device(engine.state.device)
        if self.image_key not in batchdata:
            raise KeyError(f"batch has no {self.image_key!r} key; keys are {sorted(map(str, batchdata))}")
        images = _batch_tensor(batchdata, self.image_key, device, engine.non_blocking)
        key1, key2 = self._view_keys()
        if key1 in batchdata and key2 in batchdata:
            views = (
                _batch_tensor(batchdata, key1, device, engine.non_blocking),
                _batch_tensor(batchdata, key2, device, engine.non_blocking),
            )
        elif self.views is not None:
            views = make_views_batch(images, self.views, key=self.image_key)
        else:
            raise KeyError(f"batch has no views {key1!r}/{key2!r} and no RecipeViews was given to make them")
        l1_loss = self.recon_loss if self.recon_loss is not None else engine.loss_function
        if l1_loss is None:
            l1_loss = nn.L1Loss()
        terms, out1 = _forward_backward(
            engine.network, engine.optimizer, views, images, self.contrastive_loss, l1_loss, self.amp
        )
        result: dict[str, Any] = {name: float(value.detach()) for name, value in terms.items()}
        result.update(
            {
                CommonKeys.IMAGE: images.detach(),
                "image_view1": views[0].detach(),
                "image_view2": views[1].detach(),
                "reconstruction": out1.detach().float(),
            }
        )
        return result
