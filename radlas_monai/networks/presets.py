"""Named encoder sizes for RadLAS (``tiny`` for CPU/CI, ``small``, ``base`` = ViT-B/16).

A preset fixes the transformer size and the default widths of the lean convolutional parts
(restoration decoder and grounding head); every value can be overridden by name in
:class:`~radlas_monai.networks.encoder.RadLASEncoder.from_preset` and
:class:`~radlas_monai.networks.radlas.RadLAS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = [
    "ENCODER_PRESETS",
    "DECODER_FEATURE_SIZES",
    "GROUNDING_FEATURE_SIZES",
    "get_encoder_preset",
    "get_decoder_feature_size",
    "get_grounding_feature_size",
]

ENCODER_PRESETS: Mapping[str, Mapping[str, int]] = MappingProxyType(
    {
        # ~2.7 M encoder parameters; the CPU / CI configuration.
        "tiny": MappingProxyType({"hidden_size": 192, "num_layers": 6, "num_heads": 3, "mlp_dim": 768}),
        # ViT-S/16 (Touvron et al., DeiT, 2021).
        "small": MappingProxyType({"hidden_size": 384, "num_layers": 12, "num_heads": 6, "mlp_dim": 1536}),
        # ViT-B/16 (Dosovitskiy et al., 2021), the paper-scale configuration.
        "base": MappingProxyType({"hidden_size": 768, "num_layers": 12, "num_heads": 12, "mlp_dim": 3072}),
    }
)
"""Transformer sizes per preset: ``hidden_size``, ``num_layers``, ``num_heads``, ``mlp_dim``."""

DECODER_FEATURE_SIZES: Mapping[str, int] = MappingProxyType({"tiny": 8, "small": 16, "base": 32})
"""Default ``feature_size`` of the restoration decoder per preset (channels of its finest level)."""

GROUNDING_FEATURE_SIZES: Mapping[str, int] = MappingProxyType({"tiny": 8, "small": 16, "base": 16})
"""Default ``features`` of the grounding head per preset (channels of its finest level)."""


def _check_name(name: str) -> str:
    if name not in ENCODER_PRESETS:
        raise ValueError(f"unknown RadLAS preset {name!r}; available presets: {sorted(ENCODER_PRESETS)}")
    return name


def get_encoder_preset(name: str) -> dict[str, Any]:
    """Return a fresh, mutable copy of the transformer sizes of preset ``name``.

    Args:
        name: one of ``"tiny"``, ``"small"``, ``"base"``.

    Returns:
        dict with ``hidden_size``, ``num_layers``, ``num_heads`` and ``mlp_dim``.

    Raises:
        ValueError: when ``name`` is not a known preset (the message lists the known ones).
    """
    return dict(ENCODER_PRESETS[_check_name(name)])


def get_decoder_feature_size(name: str) -> int:
    """Return the default restoration-decoder ``feature_size`` of preset ``name``.

    Raises:
        ValueError: when ``name`` is not a known preset.
    """
    return int(DECODER_FEATURE_SIZES[_check_name(name)])


def get_grounding_feature_size(name: str) -> int:
    """Return the default grounding-head ``features`` of preset ``name``.

    Raises:
        ValueError: when ``name`` is not a known preset.
    """
    return int(GROUNDING_FEATURE_SIZES[_check_name(name)])
