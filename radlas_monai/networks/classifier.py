"""RadLAS classifier: a diagnosis derived from grounded lesion evidence, with the evidence it was derived from.

Stages, each a named method: ``forward_backbone -> forward_head``.

* :meth:`RadLASClassifier.forward_backbone`: the pretrained :class:`~radlas_monai.networks.radlas.RadLAS` encodes
  the image into patch tokens and grounds a lesion map (encode -> restore -> ground); the map is pooled onto the
  token grid (:func:`~radlas_monai.networks.pooling.token_lesion_weights`).
* :meth:`RadLASClassifier.forward_head`: per class, attention pooling of the tokens biased by the lesion weights,
  concatenated with the global feature, read by a per-class linear layer
  (:class:`~radlas_monai.networks.evidence_pooling.EvidencePoolingHead`); each class's attention, upsampled and
  max-normalised, is its evidence map (:func:`~radlas_monai.networks.evidence_pooling.attention_to_evidence_maps`).

The restoration decoder and grounding head are always frozen and run without gradients: the lesion map is the
pretrained grounding, never bent by the classification loss. ``finetune_mode`` sets what trains:

==================  ==========================================================================================
``linear_probe``    the head only; the whole backbone is frozen and kept in eval mode
``partial``         the head, the last ``trainable_blocks`` encoder blocks and the encoder's final norm
``full``            the head and the whole encoder (use layer-wise LR decay,
                    :func:`~radlas_monai.networks.lr_decay.layer_decay_param_groups`)
==================  ==========================================================================================

Frozen modules stay in eval mode whatever ``train()`` is called with (no BatchNorm/dropout drift). In ``partial``
and ``full`` the decoder reads the fine-tuned encoder, so the lesion map can drift from the pretrained one.

Pretrained weights are loaded strictly at construction (:mod:`radlas_monai.networks.classifier_loading`); only
``from_scratch=True`` skips loading.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn

from radlas_monai.networks.classifier_loading import PRETRAINED_PARTS, load_pretrained_backbone
from radlas_monai.networks.evidence_pooling import EvidencePoolingHead, attention_to_evidence_maps
from radlas_monai.networks.pooling import token_lesion_weights
from radlas_monai.networks.radlas import RadLAS

__all__ = ["FINETUNE_MODES", "BackboneFeatures", "ClassifierOutput", "RadLASClassifier", "RadLASClassifierLogits"]

logger = logging.getLogger(__name__)

FINETUNE_MODES = ("linear_probe", "partial", "full")


@dataclasses.dataclass
class BackboneFeatures:
    """What the head reads (``B`` images, ``N`` tokens, ``D`` width).

    Attributes:
        tokens: final normalised patch tokens ``(B, N, D)``.
        token_weight: per-token lesion fraction ``(B, N)`` in ``[0, 1]`` (detached).
        lesion_map: grounded lesion map ``(B, 1, H, W)`` in ``[0, 1]`` (detached); None when not kept (caches).
    """

    tokens: torch.Tensor
    token_weight: torch.Tensor
    lesion_map: torch.Tensor | None = None


@dataclasses.dataclass
class ClassifierOutput:
    """One classifier forward pass (``K`` classes).

    Attributes:
        logits: ``(B, K)``; sigmoid (multi-label) or softmax (multi-class) gives probabilities.
        evidence_maps: ``(B, K, H, W)`` in ``[0, 1]``, max-normalised per image and class (max exactly 1); None
            when the forward was asked for no evidence.
        lesion_map: grounded lesion map ``(B, 1, H, W)`` in ``[0, 1]`` (None when the backbone features came from
            a cache without maps).
        attention: per-class attention over tokens ``(B, K, N)``, each row summing to 1.
        class_names: the ``K`` class names, in logit order.
        multi_label: sigmoid (True) or softmax (False) outputs.
    """

    logits: torch.Tensor
    evidence_maps: torch.Tensor | None
    lesion_map: torch.Tensor | None
    attention: torch.Tensor
    class_names: tuple[str, ...]
    multi_label: bool = True

    def probabilities(self) -> torch.Tensor:
        """``(B, K)`` class probabilities: sigmoid per class, or softmax over classes."""
        logits = self.logits.float()
        return torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=1)


def _class_names(class_names: Sequence[str], multi_label: bool) -> tuple[str, ...]:
    if isinstance(class_names, str):
        raise ValueError(f"class_names must be a list of names, got the string {class_names!r}")
    names = tuple(str(n) for n in class_names)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"class_names must be non-empty and unique, got {list(names)}")
    if not multi_label and len(names) < 2:
        raise ValueError(f"multi-class (softmax) classification needs at least 2 classes, got {list(names)}")
    return names


class RadLASClassifier(nn.Module):
    """Diagnostic classifier on a pretrained RadLAS backbone, with per-class evidence maps.

    Args:
        class_names: the ``K`` classes (e.g. the 14 ChestX-ray14 findings); they name the outputs.
        preset: backbone size (``tiny``/``small``/``base``), as the pretrain checkpoint.
        img_size: input size, as the pretrain checkpoint.
        multi_label: independent sigmoid per class (True) or one softmax over classes (False).
        pretrained_ckpt: the pretrain checkpoint (``models/model.pt`` of the pretrain bundle or a
            ``checkpoint_*.pt``); required unless ``from_scratch``.
        from_scratch: do not load any checkpoint (random backbone, on purpose); ``pretrained_ckpt`` is ignored.
            Also what inference uses before loading a fine-tuned ``model.pt``.
        finetune_mode: ``"linear_probe"``, ``"partial"`` or ``"full"`` (see the module docstring).
        pretrained_parts: ``"all"`` or ``"encoder"``
            (see :func:`~radlas_monai.networks.classifier_loading.load_pretrained_backbone`).
        trainable_blocks: encoder blocks fine-tuned in ``partial`` mode (the last ones).
        evidence_eps: ``eps`` of the lesion bias ``beta_k * log(w_n + eps)``.
        beta_init: initial lesion bias of every class.
        head_dropout: dropout before the per-class read-out.
        backbone_kwargs: extra :class:`RadLAS` arguments (must match the checkpoint's architecture).

    Raises:
        ValueError: bad class names, mode, parts or ``trainable_blocks``; no checkpoint without ``from_scratch``.
        CheckpointError: the checkpoint file is missing or unreadable (names the pretrain command).
        StateDictMismatchError: the checkpoint does not fit (names the keys).

    Example (bundle config)::

        "network_def": {"_target_": "radlas_monai.networks.classifier.RadLASClassifier",
                        "class_names": "@class_names", "pretrained_ckpt": "@pretrained_ckpt"}
    """

    def __init__(
        self,
        class_names: Sequence[str],
        preset: str = "tiny",
        img_size: int | Sequence[int] = 256,
        multi_label: bool = True,
        pretrained_ckpt: str | os.PathLike | None = None,
        from_scratch: bool = False,
        finetune_mode: str = "linear_probe",
        pretrained_parts: str = "all",
        trainable_blocks: int = 2,
        evidence_eps: float = 1e-2,
        beta_init: float = 1.0,
        head_dropout: float = 0.0,
        backbone_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if finetune_mode not in FINETUNE_MODES:
            raise ValueError(f"finetune_mode must be one of {FINETUNE_MODES}, got {finetune_mode!r}")
        if pretrained_parts not in PRETRAINED_PARTS:
            raise ValueError(f"pretrained_parts must be one of {PRETRAINED_PARTS}, got {pretrained_parts!r}")
        self.class_names = _class_names(class_names, bool(multi_label))
        self.multi_label = bool(multi_label)
        self.finetune_mode = finetune_mode
        self.backbone = RadLAS(preset=preset, img_size=img_size, **dict(backbone_kwargs or {}))
        self.num_layers = self.backbone.encoder.num_layers
        if finetune_mode == "partial" and not 1 <= int(trainable_blocks) <= self.num_layers:
            raise ValueError(f"trainable_blocks must be in [1, {self.num_layers}], got {trainable_blocks}")
        self.trainable_blocks = int(trainable_blocks)
        self.img_size = self.backbone.img_size
        self.grid_size = self.backbone.grid_size
        self.head = EvidencePoolingHead(
            len(self.class_names), self.backbone.num_features, evidence_eps, beta_init, head_dropout
        )
        if from_scratch:
            if pretrained_ckpt:
                logger.warning("from_scratch=True: pretrained_ckpt %s is not loaded", pretrained_ckpt)
        elif not pretrained_ckpt:
            raise ValueError(
                "RadLASClassifier needs pretrained_ckpt (a RadLAS pretrain checkpoint); pass from_scratch=True to "
                "train without pretraining on purpose"
            )
        else:
            load_pretrained_backbone(self.backbone, pretrained_ckpt, pretrained_parts)
        self._apply_finetune_mode()

    # ------------------------------------------------------------------ training modes
    def _trainable_backbone_modules(self) -> list[nn.Module]:
        encoder = self.backbone.encoder
        if self.finetune_mode == "full":
            return [encoder]
        if self.finetune_mode == "partial":
            return [*encoder.blocks[self.num_layers - self.trainable_blocks :], encoder.norm]
        return []

    def _apply_finetune_mode(self) -> None:
        self.backbone.requires_grad_(False)
        for module in self._trainable_backbone_modules():
            module.requires_grad_(True)
        for block in self.backbone.encoder.blocks:  # MONAI's unused cross-attention norm never trains (DDP)
            if isinstance(getattr(block, "norm_cross_attn", None), nn.LayerNorm):
                block.norm_cross_attn.requires_grad_(False)
        self.train(self.training)

    @property
    def encoder_trainable(self) -> bool:
        """Whether any encoder parameter trains (False in ``linear_probe``)."""
        return any(p.requires_grad for p in self.backbone.encoder.parameters())

    def frozen_modules(self) -> list[nn.Module]:
        """Backbone modules without trainable parameters; they stay in eval mode."""
        trainable = {id(m) for top in self._trainable_backbone_modules() for m in top.modules()}
        frozen = []
        for module in self.backbone.modules():
            own = list(module.parameters(recurse=False))
            if id(module) not in trainable and (not own or not any(p.requires_grad for p in own)):
                frozen.append(module)
        return frozen

    def train(self, mode: bool = True) -> RadLASClassifier:
        """Set train/eval mode; frozen backbone modules always stay in eval mode."""
        super().train(mode)
        if mode:
            for module in self.frozen_modules():
                module.training = False  # this module only: trainable children keep train mode
        return self

    # ------------------------------------------------------------------ stages
    def forward_backbone(self, image: torch.Tensor) -> BackboneFeatures:
        """Encode and ground: tokens, per-token lesion weights and the lesion map.

        Args:
            image: radiographs ``(B, 1, H, W)`` in ``[0, 1]``, ``(H, W) == img_size``.

        Returns:
            :class:`BackboneFeatures` (tokens carry gradients only when the encoder trains).
        """
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.encoder_trainable):
            tokens, intermediates = self.backbone.encode(image)
        with torch.no_grad():
            restored = self.backbone.restore(image, tokens.detach(), [t.detach() for t in intermediates])
            lmap = self.backbone.ground(image, restored)[1].float()
            weight = token_lesion_weights(lmap, self.grid_size)
        return BackboneFeatures(tokens=tokens, token_weight=weight, lesion_map=lmap)

    def forward_head(self, features: BackboneFeatures, evidence: bool = True) -> ClassifierOutput:
        """Per-class evidence pooling -> logits (and evidence maps).

        Args:
            features: from :meth:`forward_backbone` (or a cache of it).
            evidence: compute the image-resolution evidence maps (skip in training to save memory).

        Returns:
            :class:`ClassifierOutput`.
        """
        tokens = features.tokens
        logits, attention = self.head(tokens, features.token_weight.to(tokens.dtype), tokens.mean(dim=1))
        maps = attention_to_evidence_maps(attention, self.grid_size, self.img_size) if evidence else None
        return ClassifierOutput(
            logits=logits,
            evidence_maps=maps,
            lesion_map=features.lesion_map,
            attention=attention,
            class_names=self.class_names,
            multi_label=self.multi_label,
        )

    def forward(
        self, image: torch.Tensor, backbone: BackboneFeatures | None = None, evidence: bool = True
    ) -> ClassifierOutput:
        """Classify radiographs.

        Args:
            image: ``(B, 1, H, W)`` in ``[0, 1]`` with ``(H, W) == img_size``.
            backbone: precomputed :meth:`forward_backbone` features of ``image`` (a frozen-backbone cache); the
                image is then not encoded again. Passing them through ``forward`` keeps DDP's gradient hooks.
            evidence: compute the evidence maps.

        Returns:
            :class:`ClassifierOutput`.

        Raises:
            ValueError: on an ill-shaped image.
        """
        features = backbone if backbone is not None else self.forward_backbone(image)
        return self.forward_head(features, evidence=evidence)


class RadLASClassifierLogits(nn.Module):
    """Thin ``image (B, 1, H, W) -> logits (B, K)`` wrapper (``verify_net_in_out``, TorchScript, MONAI inferers).

    Loads a bare :class:`RadLASClassifier` state dict (the bundle's ``models/model.pt``) as well as its own
    (``classifier.``-prefixed) one, so MONAI's ``ckpt_export`` works on it directly.

    Args:
        classifier: a :class:`RadLASClassifier`.
    """

    def __init__(self, classifier: RadLASClassifier) -> None:
        super().__init__()
        self.classifier = classifier
        self.class_names = classifier.class_names
        self._register_load_state_dict_pre_hook(self._add_prefix)

    @staticmethod
    def _add_prefix(state_dict: dict, prefix: str, *args: Any) -> None:
        own = prefix + "classifier."
        bare = [k for k in state_dict if k.startswith(prefix) and not k.startswith(own)]
        if bare and not any(k.startswith(own) for k in state_dict):
            for key in bare:
                state_dict[own + key[len(prefix) :]] = state_dict.pop(key)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K)`` in ``class_names`` order."""
        return self.classifier(image, evidence=False).logits
