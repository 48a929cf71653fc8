"""RadLAS networks: ViT encoder, restoration decoder, grounding, lesion-weighted pooling, heads; the classifier."""

from __future__ import annotations

from radlas_monai.networks.checkpoint import EncoderLoadResult, extract_encoder_state_dict
from radlas_monai.networks.classifier import (
    FINETUNE_MODES,
    BackboneFeatures,
    ClassifierOutput,
    RadLASClassifier,
    RadLASClassifierLogits,
)
from radlas_monai.networks.decoder import RestorationDecoder, straight_through_clamp
from radlas_monai.networks.encoder import RadLASEncoder, default_skip_indices
from radlas_monai.networks.evidence_pooling import EvidencePoolingHead, attention_to_evidence_maps
from radlas_monai.networks.grounding import GroundingHead, fixed_contrast, gaussian_smooth, lesion_map
from radlas_monai.networks.heads import ProjectionHead
from radlas_monai.networks.lr_decay import layer_decay_param_groups
from radlas_monai.networks.pooling import lesion_weighted_pooling, token_lesion_weights
from radlas_monai.networks.presets import (
    DECODER_FEATURE_SIZES,
    ENCODER_PRESETS,
    GROUNDING_FEATURE_SIZES,
    get_encoder_preset,
)
from radlas_monai.networks.radlas import RadLAS, RadLASLesionMap, RadLASOutput
from radlas_monai.networks.transformer import SDPATransformerBlock, build_transformer_block

__all__ = [
    "FINETUNE_MODES",
    "BackboneFeatures",
    "ClassifierOutput",
    "EvidencePoolingHead",
    "RadLASClassifier",
    "RadLASClassifierLogits",
    "attention_to_evidence_maps",
    "layer_decay_param_groups",
    "DECODER_FEATURE_SIZES",
    "ENCODER_PRESETS",
    "GROUNDING_FEATURE_SIZES",
    "EncoderLoadResult",
    "GroundingHead",
    "ProjectionHead",
    "RadLAS",
    "RadLASEncoder",
    "RadLASLesionMap",
    "RadLASOutput",
    "RestorationDecoder",
    "SDPATransformerBlock",
    "build_transformer_block",
    "default_skip_indices",
    "extract_encoder_state_dict",
    "fixed_contrast",
    "gaussian_smooth",
    "get_encoder_preset",
    "lesion_map",
    "lesion_weighted_pooling",
    "straight_through_clamp",
    "token_lesion_weights",
]
