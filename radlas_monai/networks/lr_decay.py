"""Layer-wise learning-rate decay for fine-tuning ViT encoders (BEiT / MAE recipe).

Layer ids follow the encoder's depth: the patch embedding is layer 0, transformer block ``i`` is layer ``i + 1``,
and everything after the last block (the final norm, any head) is layer ``L + 1`` with ``L`` blocks. A parameter
of layer ``l`` trains at ``lr * layer_decay ** (L + 1 - l)``: the head at the full rate, the patch embedding at
``layer_decay ** (L + 1)`` of it. Biases, norm weights, position embeddings and other 1-D parameters get no weight
decay. Only parameters with ``requires_grad`` are grouped, so frozen parts (linear probe, partial fine-tuning)
never reach the optimizer.

References: Bao et al., "BEiT: BERT Pre-Training of Image Transformers", ICLR 2022; He et al., "Masked
Autoencoders Are Scalable Vision Learners", CVPR 2022 (``util/lr_decay.py``).

Example (bundle config)::

    "optimizer": {"_target_": "torch.optim.AdamW",
                  "params": "$radlas_monai.networks.lr_decay.layer_decay_param_groups(@network, @learning_rate,
                             weight_decay=@weight_decay, layer_decay=@layer_decay)",
                  "lr": "@learning_rate"}
"""

from __future__ import annotations

import re

import torch.nn as nn

__all__ = ["layer_id_for_parameter", "infer_num_layers", "layer_decay_param_groups"]

_BLOCK = re.compile(r"(?:^|\.)blocks\.(\d+)\.")
_EMBED = re.compile(r"(?:^|\.)(patch_embed|patch_embedding)\.")


def layer_id_for_parameter(name: str, num_layers: int) -> int:
    """Depth of parameter ``name`` (module path) in a ViT with ``num_layers`` blocks.

    Args:
        name: a ``named_parameters()`` name, e.g. ``"backbone.encoder.blocks.3.attn.qkv.weight"``.
        num_layers: number of transformer blocks ``L``.

    Returns:
        0 for the patch embedding, ``i + 1`` for block ``i``, ``L + 1`` for anything else (norm, head).
    """
    block = _BLOCK.search(name)
    if block:
        return int(block.group(1)) + 1
    if _EMBED.search(name):
        return 0
    return int(num_layers) + 1


def infer_num_layers(model: nn.Module) -> int:
    """Number of transformer blocks: ``model.num_layers`` if set, else one more than the highest block index."""
    if isinstance(getattr(model, "num_layers", None), int):
        return int(model.num_layers)
    indices = [int(m.group(1)) for name, _ in model.named_parameters() if (m := _BLOCK.search(name))]
    return max(indices) + 1 if indices else 0


def _no_weight_decay(name: str, param: nn.Parameter) -> bool:
    return param.ndim <= 1 or name.endswith("position_embeddings") or name.endswith("pos_embed")


def layer_decay_param_groups(
    model: nn.Module,
    base_lr: float,
    weight_decay: float = 0.05,
    layer_decay: float = 0.75,
    num_layers: int | None = None,
) -> list[dict]:
    """Optimizer parameter groups with layer-wise learning-rate decay.

    Args:
        model: the network (e.g. a :class:`~radlas_monai.networks.classifier.RadLASClassifier`).
        base_lr: learning rate of the last layer (the head).
        weight_decay: weight decay of matrices (0 for 1-D parameters and position embeddings).
        layer_decay: per-layer factor in ``(0, 1]``; 1 gives every layer ``base_lr``.
        num_layers: number of transformer blocks; inferred with :func:`infer_num_layers` when None.

    Returns:
        A list of ``{"params", "lr", "lr_scale", "weight_decay", "layer_id", "name"}`` dicts, ordered by layer,
        holding only trainable parameters.

    Raises:
        ValueError: ``layer_decay`` outside ``(0, 1]``, negative ``base_lr``, or no trainable parameter.
    """
    if not 0.0 < layer_decay <= 1.0 or base_lr < 0:
        raise ValueError(f"need layer_decay in (0, 1] and base_lr >= 0, got {layer_decay} and {base_lr}")
    depth = infer_num_layers(model) if num_layers is None else int(num_layers)
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        layer = layer_id_for_parameter(name, depth)
        decay = not _no_weight_decay(name, param)
        key = (layer, decay)
        if key not in groups:
            scale = float(layer_decay) ** (depth + 1 - layer)
            groups[key] = {
                "params": [],
                "lr": float(base_lr) * scale,
                "lr_scale": scale,
                "weight_decay": float(weight_decay) if decay else 0.0,
                "layer_id": layer,
                "name": f"layer{layer}_{'decay' if decay else 'no_decay'}",
            }
        groups[key]["params"].append(param)
    if not groups:
        raise ValueError(f"{type(model).__name__} has no trainable parameter to optimise")
    return [groups[k] for k in sorted(groups)]
