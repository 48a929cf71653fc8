"""Layer-wise learning-rate decay parameter groups."""

from __future__ import annotations

import pytest
import torch

from radlas_monai.networks.classifier import RadLASClassifier
from radlas_monai.networks.lr_decay import infer_num_layers, layer_decay_param_groups, layer_id_for_parameter

SMALL = {"num_layers": 4, "hidden_size": 48, "num_heads": 2, "mlp_dim": 64}


@pytest.mark.parametrize(
    "name, expected",
    [
        ["backbone.encoder.patch_embed.patch_embeddings.weight", 0],
        ["module.backbone.encoder.patch_embed.position_embeddings", 0],
        ["backbone.encoder.blocks.0.attn.qkv.weight", 1],
        ["backbone.encoder.blocks.3.mlp.linear1.bias", 4],
        ["backbone.encoder.norm.weight", 5],
        ["head.queries", 5],
        ["patch_embedding.patch_embeddings.weight", 0],  # MONAI ViTAutoEnc naming
    ],
)
def test_layer_ids(name, expected):
    assert layer_id_for_parameter(name, 4) == expected


def test_full_finetune_groups_decay_geometrically_and_skip_frozen():
    net = RadLASClassifier(["A", "B"], img_size=32, from_scratch=True, finetune_mode="full", backbone_kwargs=SMALL)
    assert infer_num_layers(net) == 4
    groups = layer_decay_param_groups(net, base_lr=1.0, weight_decay=0.1, layer_decay=0.5)
    by_layer = {g["layer_id"]: g["lr"] for g in groups}
    assert by_layer == {layer: 0.5 ** (5 - layer) for layer in range(6)}
    grouped = {id(p) for g in groups for p in g["params"]}
    trainable = {id(p) for p in net.parameters() if p.requires_grad}
    assert grouped == trainable and not any(id(p) in grouped for p in net.backbone.decoder.parameters())
    for group in groups:
        ndims = {p.ndim for p in group["params"]}
        assert (group["weight_decay"] == 0.0) == (ndims <= {1} or group["name"].endswith("no_decay"))
    position = net.backbone.encoder.patch_embed.position_embeddings
    assert next(g for g in groups if any(p is position for p in g["params"]))["weight_decay"] == 0.0
    optimizer = torch.optim.AdamW(groups, lr=1.0)
    assert [g["lr"] for g in optimizer.param_groups] == [g["lr"] for g in groups]


def test_linear_probe_has_only_head_groups_at_base_lr():
    net = RadLASClassifier(["A"], img_size=32, from_scratch=True, backbone_kwargs=SMALL)
    groups = layer_decay_param_groups(net, base_lr=0.01, layer_decay=0.5)
    assert {g["lr"] for g in groups} == {0.01}
    assert sum(len(g["params"]) for g in groups) == len(list(net.head.parameters()))


def test_bad_arguments():
    net = RadLASClassifier(["A"], img_size=32, from_scratch=True, backbone_kwargs=SMALL)
    with pytest.raises(ValueError, match="layer_decay"):
        layer_decay_param_groups(net, 0.1, layer_decay=0.0)
    net.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameter"):
        layer_decay_param_groups(net, 0.1)
