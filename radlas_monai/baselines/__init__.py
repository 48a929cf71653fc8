"""Baselines RadLAS is measured against, with the same data and budget.

- :mod:`~radlas_monai.baselines.vit_autoenc`: MONAI's self-supervised ViTAutoEnc recipe (network, step, residual
  lesion map, pooled features);
- :mod:`~radlas_monai.baselines.views`: the recipe's two augmented views (coarse dropout + coarse shuffle).
"""

from __future__ import annotations

from radlas_monai.baselines.views import RecipeViews, make_views_batch
from radlas_monai.baselines.vit_autoenc import (
    RECIPE_LEARNING_RATE,
    RECIPE_TEMPERATURE,
    ViTAutoEncRecipeStep,
    build_recipe_optimizer,
    build_vit_autoenc,
    extract_encoder_features,
    recipe_loss,
    recipe_train_step,
    vit_autoenc_residual_map,
    vit_autoenc_tokens,
)

__all__ = [
    "RECIPE_LEARNING_RATE",
    "RECIPE_TEMPERATURE",
    "RecipeViews",
    "ViTAutoEncRecipeStep",
    "build_recipe_optimizer",
    "build_vit_autoenc",
    "extract_encoder_features",
    "make_views_batch",
    "recipe_loss",
    "recipe_train_step",
    "vit_autoenc_residual_map",
    "vit_autoenc_tokens",
]
