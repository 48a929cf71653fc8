"""Tests for radlas_monai.baselines.pretrain_variants: one budget for every compared training, cached checkpoints."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from radlas_monai.baselines import experiment_data
from radlas_monai.baselines import pretrain_variants as pv
from radlas_monai.baselines.vit_autoenc import vit_autoenc_tokens
from radlas_monai.networks.encoder import RadLASEncoder

pytestmark = pytest.mark.usefixtures("one_thread")

JSRT = pv.JSRT_ROOT


class TestBudget:
    @pytest.mark.parametrize(
        "kwargs", [{"image_size": 40}, {"epochs": 0}, {"batch_size": 0}, {"learning_rate": 0.0}, {"warmup_epochs": -1}]
    )
    def test_invalid_raises(self, kwargs):
        with pytest.raises(ValueError):
            pv.PretrainBudget(**kwargs)

    def test_hash_ignores_key_order_and_sees_values(self):
        a = {"x": 1, "budget": pv.PretrainBudget().to_dict()}
        b = {"budget": pv.PretrainBudget().to_dict(), "x": 1}
        assert pv.settings_hash(a) == pv.settings_hash(b)
        assert pv.settings_hash(a) != pv.settings_hash({**a, "budget": pv.PretrainBudget(epochs=3).to_dict()})

    def test_fingerprint_changes_with_the_images(self):
        images = torch.zeros(2, 1, 16, 16)
        changed = images.clone()
        changed[1, 0, 3, 3] = 1.0
        assert pv.images_fingerprint(images) == pv.images_fingerprint(images.clone())
        assert pv.images_fingerprint(images) != pv.images_fingerprint(changed)


class TestFitMinibatches:
    def test_steps_order_and_schedule(self):
        budget = pv.PretrainBudget(image_size=16, epochs=3, batch_size=4, warmup_epochs=1, seed=5)
        optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=budget.learning_rate)
        seen, rates = [], []

        def step(index):
            seen.append(index.tolist())
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            return float(len(index))

        history = pv.fit_minibatches(step, 10, optimizer, budget)
        assert history == [4.0, 4.0, 4.0]
        assert len(seen) == 3 * (10 // 4)  # incomplete last batch dropped
        assert all(len(set(seen[e * 2] + seen[e * 2 + 1])) == 8 for e in range(3))
        assert rates[0] == 0.0 and max(rates) > rates[-1] > 0.0  # warm-up, then cosine decay
        order = []
        pv.fit_minibatches(lambda i: order.append(i.tolist()) or 0.0, 10, optimizer, budget)
        assert order == seen  # the batch order depends on the seed only

    def test_no_items_raises(self):
        optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
        with pytest.raises(ValueError, match="no training items"):
            pv.fit_minibatches(lambda i: 0.0, 0, optimizer, pv.PretrainBudget())


class TestCache:
    def test_reuse_retrain_force(self, tmp_path):
        calls = []

        def train():
            calls.append(1)
            return nn.Linear(2, 1), [0.5]

        first = pv.cached_training("m", tmp_path, {"a": 1}, train)
        again = pv.cached_training("m", tmp_path, {"a": 1}, train)
        assert len(calls) == 1 and not first.reused and again.reused
        assert again.history == [0.5] and again.checkpoint == tmp_path / "m" / "model.pt"
        assert json.loads((tmp_path / "m" / "settings.json").read_text())["settings"]["a"] == 1
        pv.cached_training("m", tmp_path, {"a": 2}, train)
        pv.cached_training("m", tmp_path, {"a": 2}, train, force=True)
        assert len(calls) == 3

    def test_seeded_build_leaves_global_rng(self):
        state = torch.get_rng_state()
        a = pv.seeded_build(3, lambda: nn.Linear(4, 4))
        b = pv.seeded_build(3, lambda: nn.Linear(4, 4))
        torch.testing.assert_close(a.weight, b.weight)
        assert torch.equal(state, torch.get_rng_state())


class TestVariants:
    def test_vit_autoenc_encoder_state_computes_the_recipe_tokens(self, tmp_path):
        budget = pv.PretrainBudget(image_size=32, epochs=1, batch_size=2)
        images = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(0))
        trained = pv.pretrain_vit_autoenc(images, budget, tmp_path)
        recipe = pv.load_vit_autoenc(trained.checkpoint, budget)
        encoder = RadLASEncoder.from_preset("tiny", img_size=32).eval()
        encoder.load_from_pretrain(trained.checkpoint.parent / "encoder.pt", strict=True)
        with torch.no_grad():
            torch.testing.assert_close(encoder.forward_features(images), vit_autoenc_tokens(recipe, images))
        with pytest.raises(KeyError, match="not a ViTAutoEnc"):
            pv.vit_autoenc_to_encoder_state(encoder.state_dict())

    def test_radlas_and_reconstruction_only(self, tmp_path):
        budget = pv.PretrainBudget(image_size=32, epochs=1, batch_size=2)
        images = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(0))
        full = pv.pretrain_radlas(images, budget, tmp_path)
        recon = pv.pretrain_reconstruction_only(images, budget, tmp_path)
        assert full.settings["contrastive_weight"] == 0.1 and recon.settings["contrastive_weight"] == 0.0
        assert full.checkpoint != recon.checkpoint and len(full.history) == 1
        network = pv.load_radlas(recon.checkpoint, budget)
        with torch.no_grad():
            assert network.predict_lesion_map(images).shape == (4, 1, 32, 32)
        with pytest.raises(ValueError, match="expected training images"):
            pv.pretrain_radlas(torch.rand(2, 1, 64, 64), budget, tmp_path)

    def test_densenet_variant_records_labels(self, tmp_path):
        budget = pv.PretrainBudget(image_size=32, epochs=1, batch_size=2)
        images = torch.rand(2, 1, 32, 32)
        trained = pv.train_densenet121_variant(images, torch.tensor([[1.0], [0.0]]), budget, tmp_path)
        assert trained.settings["num_classes"] == 1
        with pytest.raises(ValueError, match="label rows"):
            pv.train_densenet121_variant(images, torch.zeros(3, 1), budget, tmp_path)


class TestData:
    def test_quick_subset_keeps_both_classes(self):
        items = [{"image": f"{i}", "label": [int(i < 9)]} for i in range(12)]
        picked = experiment_data._quick_subset(items, 6)
        assert len(picked) == 6 and {sum(item["label"]) for item in picked} == {0, 1}

    def test_unknown_dataset_raises(self):
        with pytest.raises(ValueError, match="synthetic"):
            pv.prepare_experiment_data("chexpert", 64)

    @pytest.mark.skipif(not (JSRT / "labels.csv").is_file(), reason="JSRT nodule data (../shared) not available")
    def test_jsrt_split_is_fixed_stratified_and_disjoint(self):
        split = pv.jsrt_split(JSRT, seed=0)
        train, test = split["training"], split["test"]
        assert len(train) + len(test) == 247 and abs(len(train) - len(test)) <= 1
        assert {i["patient"] for i in train}.isdisjoint({i["patient"] for i in test})
        positives = [sum(sum(i["label"]) for i in part) for part in (train, test)]
        assert positives == [77, 77]
        assert all(i.get("centers") and i.get("radii") for i in test if sum(i["label"]))
        assert pv.jsrt_split(JSRT, seed=0)["test"] == test
        fit, validation = split["fit"], split["validation"]  # choosing settings: inside the training half only
        assert sorted(i["image"] for i in fit + validation) == sorted(i["image"] for i in train)
        assert {i["patient"] for i in fit}.isdisjoint({i["patient"] for i in validation})
        assert 0.2 < len(validation) / len(train) < 0.3 and sum(sum(i["label"]) for i in validation) > 10
        data = pv.prepare_experiment_data("jsrt", 64, jsrt_root=JSRT, validation=True)
        assert [i["image"] for i in data.test_items] == [i["image"] for i in validation]
        assert len(data.train_items) == len(fit) and "validation" in data.description
        with pytest.raises(ValueError, match="JSRT"):
            pv.prepare_experiment_data("synthetic", 64, validation=True)


def test_recipe_settings_are_the_pretrain_bundles():
    # the comparison, the benchmark and the bundle train the same recipe: one drifting would compare another model
    from pathlib import Path

    from radlas_monai.benchmarking.pretrain import BUNDLE_CROP_SIZE, BUNDLE_LOSS

    config = json.loads((Path(__file__).resolve().parents[2] / "bundles/pretrain/configs/train.json").read_text())
    loss = {k: v for k, v in config["loss"].items() if k != "_target_"}
    assert loss == BUNDLE_LOSS and config["crop_size"] == BUNDLE_CROP_SIZE
    assert pv.RECIPE_LOSS.items() <= loss.items()
