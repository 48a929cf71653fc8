"""RadLAS: lesion-grounded restoration (Task I) + lesion-discrimination embeddings (Task II).

Stages, each a named method: ``encode -> restore -> ground -> pool -> project``.

* :meth:`RadLAS.encode`: ViT tokens of the (possibly lesioned) input and intermediate block outputs; the encoder
  reads the image area-resized to ``img_size`` when the input is larger (the global, semantic path).
* :meth:`RadLAS.restore`: the restored healthy image in ``[0, 1]``: by default a full-resolution convolutional
  restorer (:class:`~radlas_monai.networks.restorer.ConvRestorer`), or the UNETR-style decoder on ViT tokens
  (``restorer="vit"``, the first recipe, which stayed near identity on real radiographs).
* :meth:`RadLAS.ground`: learned grounding logits and the lesion map (:func:`lesion_map`); by default a
  full-resolution MONAI U-Net (:class:`~radlas_monai.networks.unet_grounding.UNetGroundingHead`), or the small
  half-resolution head of the first recipe (``grounding="light"``).
* :meth:`RadLAS.pool`: lesion-cue / normal-anatomy features pooled under a map.
* :meth:`RadLAS.project`: one shared projection head into the contrastive space.

Two paths, two resolutions: the convolutional path (restore + ground) is fully convolutional, runs at the input's
full resolution and trains on native-resolution crops (:meth:`RadLAS.forward_local`); the ViT carries the global
side (Task II, diagnosis) at ``img_size``.

Which map is pooled: by default the predicted lesion map, *detached* (``detach_pool_map=True``) so
that Task II cannot bend the grounding to suit the contrastive loss. Pretraining should pass the
synthetic lesion mask as ``pool_map`` (teacher forcing): the predicted map is meaningless early in
training, while the mask gives Task II the true lesion/normal split from step one. Inference and
downstream use the predicted map (``pool_map=None``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from radlas_monai.networks.decoder import RestorationDecoder
from radlas_monai.networks.encoder import RadLASEncoder, default_skip_indices
from radlas_monai.networks.grounding import GroundingHead, fixed_contrast, lesion_map
from radlas_monai.networks.heads import ProjectionHead
from radlas_monai.networks.pooling import lesion_weighted_pooling
from radlas_monai.networks.presets import (
    get_decoder_feature_size,
    get_encoder_preset,
    get_grounding_feature_size,
)
from radlas_monai.networks.restorer import DEFAULT_RESTORER_FEATURES, ConvRestorer
from radlas_monai.networks.unet_grounding import DEFAULT_GROUNDING_FEATURES, UNetGroundingHead

__all__ = ["RadLAS", "RadLASOutput", "RadLASLesionMap", "RESTORERS", "GROUNDINGS"]

POOL_SOURCES = ("map", "contrast")
#: restoration paths: full-resolution conv U-Net, or UNETR-style decoder on the ViT tokens
RESTORERS = ("conv", "vit")
#: grounding heads: full-resolution MONAI U-Net, or the small half-resolution head of the first recipe
GROUNDINGS = ("unet", "light")


@dataclasses.dataclass
class RadLASOutput:
    """Everything one RadLAS forward pass produces (``B`` images, ``N`` tokens, ``D`` width, ``E`` embedding).

    Attributes:
        restored: restored healthy image ``(B, 1, H, W)`` in ``[0, 1]``.
        grounding_logits: learned grounding logits ``(B, 1, H, W)``; None without a grounding head.
        lesion_map: lesion map ``(B, 1, H, W)`` in ``[0, 1]`` (:func:`lesion_map`).
        tokens: final normalised ViT patch tokens ``(B, N, D)``, row-major over ``grid_size``.
        global_feature: mean token ``(B, D)``.
        lesion_feature: tokens pooled under the pooled map ``(B, D)`` (zero when the map is empty).
        normal_feature: tokens pooled under ``1 - map`` ``(B, D)``.
        global_embedding: projection of ``global_feature`` ``(B, E)`` (not normalised).
        lesion_embedding: projection of ``lesion_feature`` ``(B, E)``.
        normal_embedding: projection of ``normal_feature`` ``(B, E)``.
        token_embeddings: projection of every token ``(B, N, E)`` (for the token-level loss).
        lesion_token_weight: per-token fraction of the pooled map ``(B, N)`` in ``[0, 1]``.
        grid_size: token grid ``(gh, gw)``.
    """

    restored: torch.Tensor
    grounding_logits: torch.Tensor | None
    lesion_map: torch.Tensor
    tokens: torch.Tensor
    global_feature: torch.Tensor
    lesion_feature: torch.Tensor
    normal_feature: torch.Tensor
    global_embedding: torch.Tensor
    lesion_embedding: torch.Tensor
    normal_embedding: torch.Tensor
    token_embeddings: torch.Tensor
    lesion_token_weight: torch.Tensor
    grid_size: tuple[int, int]


class RadLAS(nn.Module):
    """The RadLAS network for single-channel radiographs ``(B, 1, H, W)`` in ``[0, 1]``.

    Args:
        preset: encoder size, ``"tiny"`` (CPU/CI), ``"small"`` or ``"base"`` (ViT-B/16).
        img_size: the ViT's input size (square int or ``(H, W)``), multiples of ``patch_size``. With the conv
            restorer, inputs may be larger (same aspect, e.g. 512 px images with ``img_size=256``): the conv path
            runs at the input's resolution and the encoder reads an area-resized copy.
        patch_size: ViT patch size (power of two; 16).
        hidden_size, num_layers, num_heads, mlp_dim: override the preset's transformer size.
        dropout_rate: encoder dropout.
        qkv_bias: bias on the attention ``qkv`` projection.
        pos_embed_type: ``"learnable"`` or ``"sincos"``.
        attention_impl: ``"auto"``, ``"monai"`` or ``"sdpa"`` (see ``build_transformer_block``).
        restorer: ``"conv"`` (default: :class:`ConvRestorer` at full resolution) or ``"vit"`` (UNETR-style decoder).
        grounding: ``"unet"`` (default: :class:`UNetGroundingHead` at full resolution) or ``"light"`` (the small
            half-resolution :class:`GroundingHead`).
        restorer_features: the conv restorer's six BasicUNet widths (default ``DEFAULT_RESTORER_FEATURES``).
        decoder_feature_size: ``"vit"`` restoration decoder width at full resolution (preset default: 8/16/32).
        decoder_norm: MONAI norm name of the decoder and grounding head. ``"batch"`` (default, as in
            DRAEM) keeps absolute contrast levels, so a lesion-free image can yield an empty map;
            per-image norms (``"instance"``, ``"group"``) rescale every map and cost that.
        decoder_res_block: residual conv blocks in the decoder.
        shuffle: 2 (default) runs the decoder and grounding head at half resolution via pixel
            (un)shuffle, 1 at full resolution (UNETR / DRAEM layouts; a pretraining step is 1.8x
            slower on CPU).
        grounding_head: build the learned :class:`GroundingHead` (False: fixed contrast only).
        grounding_features: grounding head widths: six BasicUNet widths for ``"unet"`` (default
            ``DEFAULT_GROUNDING_FEATURES``), one int for ``"light"`` (preset default: 8/16/16).
        embed_dim: projection (embedding) size ``E``.
        projection_hidden_size: hidden width of the projection MLP (default ``max(D, 2 E)``).
        contrast_weight: weight of the fixed contrast in :func:`lesion_map` (0 = learned head only).
        contrast_scale: normalisation of the fixed contrast (see :func:`fixed_contrast`).
        smooth: Gaussian sigma (pixels) of the fixed contrast.
        pool_source: map pooled when ``pool_map`` is not given: ``"map"`` (the lesion map) or
            ``"contrast"`` (the fixed contrast term alone).
        detach_pool_map: stop gradients from Task II into the pooled map.
        grounding_detach_restored: the grounding stage (head and contrast term) reads
            ``restored.detach()``, so the grounding loss trains the head only and the decoder learns
            restoration only.

    Example (bundle config)::

        "network_def": {"_target_": "radlas_monai.networks.RadLAS", "preset": "tiny", "img_size": 256}
    """

    def __init__(
        self,
        preset: str = "tiny",
        img_size: int | Sequence[int] = 256,
        patch_size: int = 16,
        hidden_size: int | None = None,
        num_layers: int | None = None,
        num_heads: int | None = None,
        mlp_dim: int | None = None,
        dropout_rate: float = 0.0,
        qkv_bias: bool = True,
        pos_embed_type: str = "learnable",
        attention_impl: str = "auto",
        restorer: str = "conv",
        grounding: str = "unet",
        restorer_features: Sequence[int] | None = None,
        decoder_feature_size: int | None = None,
        decoder_norm: tuple | str = "batch",
        shuffle: int = 2,
        decoder_res_block: bool = False,
        grounding_head: bool = True,
        grounding_features: int | Sequence[int] | None = None,
        embed_dim: int = 128,
        projection_hidden_size: int | None = None,
        contrast_weight: float = 0.0,
        contrast_scale: float = 0.1,
        smooth: float = 2.0,
        pool_source: str = "map",
        detach_pool_map: bool = True,
        grounding_detach_restored: bool = True,
    ) -> None:
        super().__init__()
        if pool_source not in POOL_SOURCES:
            raise ValueError(f"pool_source must be one of {POOL_SOURCES}, got {pool_source!r}")
        if restorer not in RESTORERS or grounding not in GROUNDINGS:
            raise ValueError(
                f"restorer must be one of {RESTORERS} and grounding one of {GROUNDINGS}, got restorer={restorer!r}, "
                f"grounding={grounding!r}"
            )
        if not 0.0 <= contrast_weight <= 1.0 or contrast_scale <= 0 or smooth < 0:
            raise ValueError(
                f"need contrast_weight in [0, 1], contrast_scale > 0, smooth >= 0; got contrast_weight="
                f"{contrast_weight}, contrast_scale={contrast_scale}, smooth={smooth}"
            )
        sizes = get_encoder_preset(preset)
        for key, value in (
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
            ("num_heads", num_heads),
            ("mlp_dim", mlp_dim),
        ):
            if value is not None:
                sizes[key] = value
        self.preset = preset
        self.encoder = RadLASEncoder(
            img_size=img_size,
            in_channels=1,
            patch_size=patch_size,
            dropout_rate=dropout_rate,
            qkv_bias=qkv_bias,
            pos_embed_type=pos_embed_type,
            attention_impl=attention_impl,
            **sizes,
        )
        self.restorer_kind, self.grounding_kind = restorer, grounding
        if restorer == "vit":
            self.decoder = RestorationDecoder(
                hidden_size=sizes["hidden_size"],
                grid_size=self.encoder.grid_size,
                patch_size=patch_size,
                in_channels=1,
                feature_size=decoder_feature_size or get_decoder_feature_size(preset),
                shuffle=shuffle,
                norm_name=decoder_norm,
                res_block=decoder_res_block,
            )
            self.skip_indices = default_skip_indices(sizes["num_layers"], self.decoder.num_skips)
        else:
            self.decoder = ConvRestorer(restorer_features or DEFAULT_RESTORER_FEATURES)
            self.skip_indices = ()
        self.grounding_head: nn.Module | None = None
        if grounding_head and grounding == "unet":
            self.grounding_head = UNetGroundingHead(grounding_features or DEFAULT_GROUNDING_FEATURES)
        elif grounding_head:
            width = grounding_features or get_grounding_feature_size(preset)
            if not isinstance(width, int):
                raise ValueError(f"grounding='light' takes one int grounding_features, got {grounding_features!r}")
            self.grounding_head = GroundingHead(width, shuffle, decoder_norm)
        self.projector = ProjectionHead(sizes["hidden_size"], embed_dim, projection_hidden_size)
        self.img_size = self.encoder.img_size
        self.grid_size = self.encoder.grid_size
        self.num_features = self.encoder.num_features
        self.embed_dim = embed_dim
        self.contrast_weight = float(contrast_weight)
        self.contrast_scale = float(contrast_scale)
        self.smooth = float(smooth)
        self.pool_source = pool_source
        self.detach_pool_map = detach_pool_map
        self.grounding_detach_restored = grounding_detach_restored

    def encoder_view(self, image: torch.Tensor) -> torch.Tensor:
        """The image as the ViT reads it: area-resized to ``img_size`` when its size differs (conv restorer only)."""
        size = tuple(self.img_size)
        if tuple(image.shape[-2:]) == size:
            return image
        if self.restorer_kind == "vit":
            raise ValueError(
                f"restorer='vit' needs inputs of img_size (B, 1, {size[0]}, {size[1]}), got {tuple(image.shape)}"
            )
        height, width = image.shape[-2:]
        if height < size[0] or width < size[1] or height * size[1] != width * size[0]:
            raise ValueError(
                f"RadLAS expects images of shape (B, 1, {size[0]}, {size[1]}) or larger with the same aspect ratio, "
                f"got {tuple(image.shape)}"
            )
        return F.interpolate(image, size=size, mode="area")

    def encode(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Tokens ``(B, N, D)`` and the decoder's intermediate block outputs (shallow to deep; none for the conv
        restorer), read from :meth:`encoder_view`."""
        return self.encoder.forward_intermediates(self.encoder_view(image), self.skip_indices)

    def restore(
        self, image: torch.Tensor, tokens: torch.Tensor | None = None, intermediates: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Restored healthy image ``(B, 1, H, W)`` in ``[0, 1]`` (the conv restorer ignores the tokens; the ViT
        restorer encodes ``image`` itself when ``tokens`` is not given)."""
        if self.restorer_kind == "conv":
            return self.decoder(image)
        if tokens is None or intermediates is None:
            tokens, intermediates = self.encode(image)
        return self.decoder(image, tokens, intermediates)

    def forward_local(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """The convolutional path alone, at the input's resolution (crops of any size divisible by 16).

        Returns:
            ``(restored, grounding_logits or None, lesion_map)``, each ``(B, 1, H, W)``.

        Raises:
            ValueError: with ``restorer="vit"``, whose restoration needs the ViT tokens of the whole image.
        """
        if self.restorer_kind != "conv":
            raise ValueError("forward_local needs restorer='conv' (the 'vit' restorer reads whole-image tokens)")
        restored = self.restore(image)
        logits, lmap = self.ground(image, restored)
        return restored, logits, lmap

    def ground(self, image: torch.Tensor, restored: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(grounding_logits (B, 1, H, W) or None, lesion_map (B, 1, H, W))``."""
        if self.grounding_detach_restored:
            restored = restored.detach()
        logits = self.grounding_head(image, restored) if self.grounding_head is not None else None
        lmap = lesion_map(
            image,
            restored,
            logits,
            contrast_weight=self.contrast_weight,
            smooth=self.smooth,
            contrast_scale=self.contrast_scale,
        )
        return logits, lmap

    def pool(self, tokens: torch.Tensor, pool_map: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(lesion_feature (B, D), normal_feature (B, D), lesion_token_weight (B, N))`` under ``pool_map``."""
        return lesion_weighted_pooling(tokens, pool_map, self.grid_size)

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """Project features ``(..., D)`` into the contrastive space ``(..., E)``."""
        return self.projector(features)

    def predict_lesion_map(self, image: torch.Tensor) -> torch.Tensor:
        """Lesion map ``(B, 1, H, W)`` only (restore -> ground; the ViT runs only for the ``"vit"`` restorer), for
        inference and export."""
        if self.restorer_kind == "conv":
            return self.forward_local(image)[2]
        tokens, intermediates = self.encode(image)
        return self.ground(image, self.restore(image, tokens, intermediates))[1]

    def _select_pool_map(
        self, image: torch.Tensor, restored: torch.Tensor, lmap: torch.Tensor, pool_map: torch.Tensor | None
    ) -> torch.Tensor:
        if pool_map is not None:
            if pool_map.shape != image.shape:
                raise ValueError(f"pool_map {tuple(pool_map.shape)} must match image {tuple(image.shape)}")
            return pool_map.to(image.dtype).clamp(0.0, 1.0)
        source = lmap
        if self.pool_source == "contrast":
            source = fixed_contrast(image, restored, smooth=self.smooth, contrast_scale=self.contrast_scale)
        return source.detach() if self.detach_pool_map else source

    def forward(
        self, image: torch.Tensor, pool_map: torch.Tensor | None = None, local_image: torch.Tensor | None = None
    ) -> RadLASOutput:
        """Run all stages.

        Args:
            image: radiographs ``(B, 1, H, W)`` in ``[0, 1]`` with ``(H, W) == img_size`` (or larger, divisible by
                16, with the conv restorer).
            pool_map: optional map ``(B, 1, H, W)`` in ``[0, 1]`` to pool tokens under instead of the
                predicted one (teacher forcing with the synthetic lesion mask during pretraining).
            local_image: optional crops ``(B, 1, h, w)`` of ``image`` (conv restorer only): the convolutional path
                runs on them instead of on the whole image, so ``restored``, ``grounding_logits`` and ``lesion_map``
                are the crops' (pretraining at native resolution); needs ``pool_map``.

        Returns:
            :class:`RadLASOutput`.

        Raises:
            ValueError: on an ill-shaped ``image`` or ``pool_map``, or ``local_image`` without ``pool_map``.
        """
        tokens, intermediates = self.encode(image)
        if local_image is not None:
            if pool_map is None:
                raise ValueError("local_image needs pool_map: the crops' lesion map cannot be pooled over the image")
            restored, logits, lmap = self.forward_local(local_image)
        else:
            restored = self.restore(image, tokens, intermediates)
            logits, lmap = self.ground(image, restored)
        selected = self._select_pool_map(image, restored, lmap, pool_map)
        lesion_feat, normal_feat, weight = self.pool(tokens, selected)
        global_feat = tokens.mean(dim=1)
        n_pooled = 3
        stacked = torch.cat([global_feat[:, None], lesion_feat[:, None], normal_feat[:, None], tokens], dim=1)
        embedded = self.project(stacked)
        return RadLASOutput(
            restored=restored,
            grounding_logits=logits,
            lesion_map=lmap,
            tokens=tokens,
            global_feature=global_feat,
            lesion_feature=lesion_feat,
            normal_feature=normal_feat,
            global_embedding=embedded[:, 0],
            lesion_embedding=embedded[:, 1],
            normal_embedding=embedded[:, 2],
            token_embeddings=embedded[:, n_pooled:],
            lesion_token_weight=weight,
            grid_size=self.grid_size,
        )


class RadLASLesionMap(nn.Module):
    """Thin ``image (B, 1, H, W) -> lesion map (B, 1, H, W)`` wrapper for export and MONAI inferers.

    Traceable with :func:`torch.jit.trace` and usable with ``monai.networks.utils.verify_net_in_out``
    or any MONAI inferer (single tensor in, single tensor out).

    Args:
        network: a (trained) :class:`RadLAS`.
    """

    def __init__(self, network: RadLAS) -> None:
        super().__init__()
        self.network = network

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Lesion map ``(B, 1, H, W)`` in ``[0, 1]``."""
        return self.network.predict_lesion_map(image)
