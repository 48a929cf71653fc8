"""Tests for radlas_monai.baselines.vit_autoenc: MONAI's ViTAutoEnc self-supervised recipe as a baseline."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedTrainer
from monai.losses import ContrastiveLoss
from monai.networks.nets import ViTAutoEnc

from radlas_monai.baselines.views import RecipeViews, make_views_batch
from radlas_monai.baselines.vit_autoenc import (
    RECIPE_TEMPERATURE,
    ViTAutoEncRecipeStep,
    build_recipe_optimizer,
    build_vit_autoenc,
    extract_encoder_features,
    recipe_loss,
    recipe_train_step,
    vit_autoenc_residual_map,
)
from radlas_monai.networks.encoder import RadLASEncoder
from radlas_monai.networks.presets import get_encoder_preset
from radlas_monai.networks.transformer import SDPATransformerBlock

pytestmark = pytest.mark.usefixtures("one_thread")


SMALL = 64  # image size of the training tests: 16 tokens keep them fast


def _images(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    """Smooth radiograph-like images in [0, 1] (a blurred random field), so reconstruction is learnable."""
    noise = torch.rand(batch, 1, size // 8, size // 8, generator=torch.Generator().manual_seed(seed))
    return F.interpolate(noise, size=(size, size), mode="bilinear", align_corners=False)


def _model(size: int = SMALL, seed: int = 0, **overrides) -> ViTAutoEnc:
    torch.manual_seed(seed)
    return build_vit_autoenc("tiny", img_size=size, **overrides)


def _nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hand-written NT-Xent (SimCLR, Chen et al. 2020): mean over the 2B anchors of -log softmax at the positive."""
    z = F.normalize(torch.cat([a, b]), dim=1)
    sim = z @ z.t() / temperature
    n = a.shape[0]
    losses = []
    for i in range(2 * n):
        positive = (i + n) % (2 * n)
        others = torch.cat([sim[i, :i], sim[i, i + 1 :]])
        losses.append(torch.logsumexp(others, dim=0) - sim[i, positive])
    return torch.stack(losses).mean()


def test_tiny_at_256_shapes():
    model = _model(256)
    image = torch.rand(2, 1, 256, 256)
    recon, hidden = model(image)
    assert recon.shape == (2, 1, 256, 256)
    assert len(hidden) == 6 and all(h.shape == (2, 256, 192) for h in hidden)
    assert extract_encoder_features(model, image).shape == (2, 192)
    assert vit_autoenc_residual_map(model, image).shape == (2, 1, 256, 256)


@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_encoder_width_and_depth_equal_the_radlas_preset(preset):
    model = build_vit_autoenc(preset, img_size=SMALL)
    sizes = get_encoder_preset(preset)
    radlas = RadLASEncoder.from_preset(preset, img_size=SMALL)
    assert isinstance(model, ViTAutoEnc)
    assert model.norm.normalized_shape == (sizes["hidden_size"],) == (radlas.num_features,)
    assert len(model.blocks) == sizes["num_layers"] == len(radlas.blocks)
    assert model.patch_embedding.patch_embeddings.out_channels == sizes["hidden_size"]
    for block in model.blocks:
        assert block.mlp.linear1.out_features == sizes["mlp_dim"]
        assert block.attn.num_heads == sizes["num_heads"]
    # same transformer parameters as RadLAS's blocks, up to the qkv bias the MONAI recipe leaves off
    qkv_bias = sizes["num_layers"] * 3 * sizes["hidden_size"]
    count = sum(p.numel() for p in model.blocks.parameters())
    assert count + qkv_bias == sum(p.numel() for p in radlas.blocks.parameters())


def test_blocks_use_sdpa_attention():
    for block in _model().blocks:
        sdpa = isinstance(block, SDPATransformerBlock) or getattr(block.attn, "use_flash_attention", False)
        assert sdpa, type(block).__name__


def test_state_dict_keeps_monai_vit_autoenc_keys():
    keys = set(_model().state_dict())
    for key in (
        "patch_embedding.position_embeddings",
        "blocks.5.attn.qkv.weight",
        "blocks.0.attn.out_proj.bias",
        "blocks.0.mlp.linear1.weight",
        "norm.weight",
        "conv3d_transpose.weight",
        "conv3d_transpose_1.weight",
    ):
        assert key in keys, key


@pytest.mark.parametrize(
    "kwargs, error",
    [
        [{"preset": "huge"}, ValueError],
        [{"spatial_dims": 3}, ValueError],
        [{"save_attn": True}, ValueError],
        [{"img_size": 72}, ValueError],
        [{"hidden_sz": 64}, TypeError],
    ],
)
def test_bad_build_arguments_raise(kwargs, error):
    with pytest.raises(error):
        build_vit_autoenc(**{"img_size": SMALL, **kwargs})


def test_overrides_reach_the_network():
    model = build_vit_autoenc("tiny", img_size=SMALL, num_layers=2, deconv_chns=8, qkv_bias=True)
    assert len(model.blocks) == 2 and model.conv3d_transpose.out_channels == 8
    assert model.blocks[0].attn.qkv.bias is not None


def test_recipe_loss_matches_a_hand_written_reference():
    gen = torch.Generator().manual_seed(0)
    out1, out2, target = (torch.rand(3, 1, 8, 8, generator=gen) for _ in range(3))
    terms = recipe_loss(out1, out2, target, ContrastiveLoss(temperature=RECIPE_TEMPERATURE), nn.L1Loss())
    recon = (out1 - target).abs().mean()
    contrast = _nt_xent(out1.flatten(1), out2.flatten(1), RECIPE_TEMPERATURE)
    torch.testing.assert_close(terms["recon_loss"], recon)
    torch.testing.assert_close(terms["contrastive_loss"], contrast)
    torch.testing.assert_close(terms["loss"], recon + contrast * recon)


def test_recipe_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="equal shapes"):
        recipe_loss(
            torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 4), torch.rand(2, 1, 8, 8), ContrastiveLoss(), nn.L1Loss()
        )


def test_train_step_decreases_the_loss_on_a_fixed_batch():
    model = _model()
    optimizer = build_recipe_optimizer(model, lr=1e-3)
    images = _images(4, SMALL)
    views = make_views_batch(images, RecipeViews().set_random_state(seed=0))
    contrastive, l1 = ContrastiveLoss(temperature=RECIPE_TEMPERATURE), nn.L1Loss()
    before = [p.detach().clone() for p in model.parameters()]
    losses = [recipe_train_step(model, optimizer, views, images, contrastive, l1) for _ in range(5)]
    assert set(losses[0]) == {"loss", "recon_loss", "contrastive_loss"}
    assert all(isinstance(v, float) for v in losses[0].values())
    assert losses[-1]["loss"] < 0.8 * losses[0]["loss"], [round(t["loss"], 4) for t in losses]
    assert losses[-1]["recon_loss"] < losses[0]["recon_loss"]
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_train_step_rejects_views_of_another_shape():
    model = _model()
    images = _images(2, SMALL)
    with pytest.raises(ValueError, match="one shape"):
        recipe_train_step(
            model, build_recipe_optimizer(model), (images, images[:1]), images, ContrastiveLoss(), nn.L1Loss()
        )


def _trainer(model: ViTAutoEnc, step: ViTAutoEncRecipeStep, transform=None) -> SupervisedTrainer:
    data = [{"image": image} for image in _images(4, SMALL, seed=1)]
    loader = DataLoader(Dataset(data, transform=transform), batch_size=2, num_workers=0)
    return SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=1,
        train_data_loader=loader,
        network=model,
        optimizer=build_recipe_optimizer(model),
        loss_function=nn.L1Loss(),
        iteration_update=step,
    )


@pytest.mark.parametrize("views_in_loader", [True, False])
def test_recipe_step_runs_in_a_supervised_trainer(views_in_loader):
    model = _model()
    views = RecipeViews().set_random_state(seed=0)
    step = ViTAutoEncRecipeStep(views=None if views_in_loader else views)
    trainer = _trainer(model, step, transform=views if views_in_loader else None)
    before = [p.detach().clone() for p in model.parameters()]
    trainer.run()
    output = trainer.state.output
    assert trainer.state.iteration == 2
    assert all(isinstance(output[k], float) for k in ("loss", "recon_loss", "contrastive_loss"))
    for key in ("image", "image_view1", "image_view2", "reconstruction"):
        assert output[key].shape == (2, 1, SMALL, SMALL), key
    assert not torch.equal(output["image_view1"], output["image"])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_recipe_step_without_views_raises():
    trainer = _trainer(_model(), ViTAutoEncRecipeStep(views=None))
    with pytest.raises(KeyError, match="no views"):
        trainer.run()


class _ForgetsTheSquare(nn.Module):
    """A stand-in autoencoder whose reconstruction misses one bright square (a 'lesion' it cannot restore)."""

    def __init__(self) -> None:
        super().__init__()
        self.img_size = (SMALL, SMALL)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        recon = x.clone()
        recon[..., 40:48, 16:24] = 0.2
        return recon, []


def test_residual_map_peaks_where_the_reconstruction_fails():
    image = torch.full((2, 1, SMALL, SMALL), 0.2)
    image[0, :, 40:48, 16:24] = 0.9
    maps = vit_autoenc_residual_map(_ForgetsTheSquare(), image, smooth=1.0)
    assert maps.shape == (2, 1, SMALL, SMALL)
    row, col = divmod(int(maps[0, 0].argmax()), SMALL)
    assert 40 <= row < 48 and 16 <= col < 24
    assert float(maps[0].max()) == pytest.approx(1.0) and float(maps[0].min()) == pytest.approx(0.0)
    assert torch.count_nonzero(maps[1]) == 0  # a perfect reconstruction has no spread: an all-zero map


def test_residual_map_of_the_real_network_is_normalised_per_image():
    model = _model().train()
    maps = vit_autoenc_residual_map(model, _images(2, SMALL))
    assert maps.shape == (2, 1, SMALL, SMALL) and maps.dtype == torch.float32
    assert float(maps.min()) >= 0.0 and float(maps.max()) <= 1.0
    torch.testing.assert_close(maps.amax(dim=(1, 2, 3)), torch.ones(2))
    assert model.training  # the caller's mode is restored
    with pytest.raises(ValueError, match="B, C, 64, 64"):
        vit_autoenc_residual_map(model, torch.rand(2, 1, 32, 32))


def test_features_are_the_mean_of_the_final_normalised_tokens():
    model = _model().eval()
    image = _images(3, SMALL)
    with torch.no_grad():
        _, hidden = model(image)
        expected = model.norm(hidden[-1]).mean(dim=1)
        features = extract_encoder_features(model, image)
    assert features.shape == (3, 192)
    torch.testing.assert_close(features, expected)
    with pytest.raises(ValueError):
        extract_encoder_features(model, torch.rand(3, 64, 64))
