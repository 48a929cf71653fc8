"""Fine-tuning pieces: labels and label-fraction sampling by patient, imbalance weights, cached steps, the recipe."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest
import torch

from radlas_monai.data.writers import write_png
from radlas_monai.engines.finetune import (
    ClassifierEvalStep,
    ClassifierTrainStep,
    FrozenFeatureCache,
    class_target,
    class_weights,
    classification_loss,
    load_classification_split,
    positive_weights,
)
from radlas_monai.networks.classifier import RadLASClassifier

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"num_layers": 4, "hidden_size": 48, "num_heads": 2, "mlp_dim": 64}
NAMES = ["Nodule", "Effusion", "Cardiomegaly"]


@pytest.mark.parametrize(
    "item, class_names, multi_label, source, expected",
    [
        [{"label": [1, 0, 1]}, NAMES, True, NAMES, [1, 0, 1]],
        [{"label": [1, 0, 1], "findings": ["Nodule", "Cardiomegaly"]}, ["Cardiomegaly", "Mass"], True, NAMES, [1, 0]],
        [{"label": [0, 1, 0]}, ["Effusion", "Nodule"], True, NAMES, [1, 0]],  # remapped by name, no findings
        [{"findings": ["pleural effusion"]}, NAMES, True, None, [0, 1, 0]],  # harmonised spelling
        [{"findings": ["Effusion"]}, NAMES, False, None, 1],
        [{"findings": []}, ["No Finding", *NAMES], False, None, 0],
    ],
)
def test_class_target(item, class_names, multi_label, source, expected):
    target = class_target(item, class_names, multi_label, source)
    np.testing.assert_array_equal(target, expected)
    assert target.dtype == (np.float32 if multi_label else np.int64)


@pytest.mark.parametrize(
    "item, multi_label, message",
    [
        [{"findings": ["Nodule", "Effusion"], "patient": "P7"}, False, "P7"],
        [{"findings": []}, False, "No Finding"],
        [{"image": "x.png"}, True, "no usable labels"],
    ],
)
def test_class_target_errors_name_the_item(item, multi_label, message):
    with pytest.raises(ValueError, match=message):
        class_target(item, NAMES, multi_label)


@pytest.fixture()
def datalist(tmp_path):
    """20 images of 10 patients (2 each), 32 px, labels over NAMES; class 0 images are brighter."""
    rng = np.random.default_rng(0)
    items = []
    for index in range(20):
        label = [int(index % 2 == 0), int(index % 3 == 0), int(index % 5 == 0)]
        pixels = (rng.random((32, 32)) * 120 + 60 * label[0] + 20).astype(np.uint8)
        write_png(pixels, tmp_path / "images" / f"img{index:02d}.png")
        items.append({"image": f"images/img{index:02d}.png", "label": label, "patient": f"P{index // 2:02d}"})
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps({"class_names": NAMES, "training": items, "validation": items[:8], "test": items[8:]}))
    return path


def _patients(items):
    return {item["patient"] for item in items}


def test_label_fraction_samples_whole_patients_reproducibly(datalist, tmp_path):
    def load(fraction, seed=0):
        return load_classification_split(datalist, "training", tmp_path, NAMES, label_fraction=fraction, seed=seed)

    full, half, fifth = load(1.0), load(0.5), load(0.2)
    assert len(full) == 20 and len(_patients(full)) == 10
    assert len(_patients(half)) == 5 and len(half) == 10  # every image of a kept patient
    assert len(_patients(fifth)) == 2 and _patients(fifth) <= _patients(half)  # nested fractions
    assert [i["image"] for i in load(0.5)] == [i["image"] for i in half]  # reproducible
    assert _patients(load(0.5, seed=1)) != _patients(half)
    assert len(load(0.01)) == 2  # at least one patient
    assert half[0]["label"].dtype == np.float32 and half[0]["label"].shape == (3,)
    with pytest.raises(ValueError, match="label_fraction"):
        load(0.0)


def test_imbalance_weights_by_hand():
    items = [{"label": np.array(v, dtype=np.float32)} for v in ([1, 0, 0], [1, 1, 0], [0, 0, 0], [0, 0, 0])]
    torch.testing.assert_close(positive_weights(items, 3), torch.tensor([1.0, 3.0, 1.0]))  # class 2: no positives
    classes = [{"label": np.int64(k)} for k in (0, 0, 0, 1)]
    torch.testing.assert_close(class_weights(classes, 3), torch.tensor([4 / 9, 4 / 3, 1.0]))  # N / (K n_k)
    bce = classification_loss(items, NAMES, True)
    assert isinstance(bce, torch.nn.BCEWithLogitsLoss) and bce.pos_weight[1] == 3.0
    assert isinstance(classification_loss(classes, NAMES, False), torch.nn.CrossEntropyLoss)


def _engine(network, optimizer=None, loss=None):
    state = types.SimpleNamespace(device=torch.device("cpu"), iteration=1)
    return types.SimpleNamespace(network=network, optimizer=optimizer, loss_function=loss, state=state)


def test_frozen_feature_cache_reuses_backbone_outputs():
    torch.manual_seed(0)
    net = RadLASClassifier(NAMES, img_size=32, from_scratch=True, backbone_kwargs=SMALL).eval()
    cache = FrozenFeatureCache()
    image = torch.rand(3, 1, 32, 32)
    first = cache.features(net, image)
    again = cache.features(net, image[[2, 0]])
    assert (cache.misses, cache.hits, len(cache)) == (3, 2, 3)
    direct = net.forward_backbone(image)
    torch.testing.assert_close(first.tokens, direct.tokens)
    torch.testing.assert_close(again.token_weight, direct.token_weight[[2, 0]])
    full = RadLASClassifier(NAMES, img_size=32, from_scratch=True, finetune_mode="full", backbone_kwargs=SMALL)
    with pytest.raises(ValueError, match="frozen encoder"):
        cache.features(full, image)


def test_train_step_updates_the_head_only_and_matches_uncached_eval():
    torch.manual_seed(0)
    net = RadLASClassifier(NAMES, img_size=32, from_scratch=True, backbone_kwargs=SMALL)
    backbone_before = {k: v.clone() for k, v in net.backbone.state_dict().items()}
    head_before = net.head.weight.detach().clone()
    optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=0.01)
    items = [{"label": np.array([1, 0, 1], dtype=np.float32)}, {"label": np.array([0, 1, 0], dtype=np.float32)}]
    engine = _engine(net, optimizer, classification_loss(items, NAMES))
    batch = {"image": torch.rand(2, 1, 32, 32), "label": torch.tensor([[1.0, 0, 1], [0, 1, 0]])}
    step = ClassifierTrainStep()
    losses = [step(engine, batch)["loss"] for _ in range(3)]
    assert step.cache.hits == 4 and step.cache.misses == 2
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert not torch.equal(net.head.weight, head_before)
    assert all(torch.equal(v, net.backbone.state_dict()[k]) for k, v in backbone_before.items())
    cached = ClassifierEvalStep()(engine, batch)
    plain = ClassifierEvalStep(cache_features=False)(engine, batch)
    torch.testing.assert_close(cached["pred"], plain["pred"])
    torch.testing.assert_close(plain["label"], batch["label"])


def test_multiclass_train_step_uses_class_indices():
    torch.manual_seed(0)
    net = RadLASClassifier(NAMES, img_size=32, from_scratch=True, multi_label=False, backbone_kwargs=SMALL)
    optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=0.01)
    items = [{"label": np.int64(k)} for k in (0, 1, 2)]
    engine = _engine(net, optimizer, classification_loss(items, NAMES, multi_label=False))
    output = ClassifierTrainStep()(engine, {"image": torch.rand(3, 1, 32, 32), "label": torch.tensor([0, 2, 1])})
    torch.testing.assert_close(output["pred"].sum(1), torch.ones(3))
    torch.testing.assert_close(output["label"], torch.eye(3)[[0, 2, 1]])


def test_train_and_evaluate_classifier_recipe_is_reproducible(datalist):
    from radlas_monai.data.datalist import load_datalist
    from radlas_monai.engines.finetune_recipe import train_and_evaluate_classifier

    splits = {s: load_datalist(datalist, s) for s in ("training", "validation", "test")}

    def run():
        return train_and_evaluate_classifier(
            splits["training"], splits["validation"], splits["test"], NAMES, None, epochs=2, from_scratch=True,
            image_size=32, batch_size=8, val_interval=1, source_class_names=NAMES, backbone_kwargs=SMALL,
        )  # fmt: skip

    first, second = run(), run()
    assert first["per_class"].keys() == set(NAMES) and first["num_test"] == 12 and first["num_train"] == 20
    assert first["best_epoch"] in (1, 2) and first["pretrained_parts"] is None
    assert first["mean"] == second["mean"] and first["per_class"] == second["per_class"]
