"""Localization inference pieces: checkpoint loading, box drawing, finding assignment, the step and the writer."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from radlas_monai.data.loader import LoadRadiograph
from radlas_monai.data.writers import write_dicom, write_png
from radlas_monai.engines.localization import (
    LocalizationInferenceStep,
    LocalizationWriter,
    assign_box_findings,
    draw_boxes,
    load_lesion_map_network,
    localization_inputs,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _tiny_radlas():
    from radlas_monai.networks import RadLAS, RadLASLesionMap

    torch.manual_seed(0)
    return RadLASLesionMap(RadLAS(preset="tiny", img_size=32, num_layers=4))


def test_missing_checkpoint_names_the_file_and_the_training_command(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pt.*bundles/pretrain/configs/train\.json"):
        load_lesion_map_network(_tiny_radlas(), tmp_path / "nope.pt")


@pytest.mark.parametrize("layout", ["radlas_state_dict", "wrapper_state_dict", "full_checkpoint"])
def test_pretrain_weights_load_into_the_lesion_map_network(tmp_path, layout):
    source = _tiny_radlas()
    state = {
        "radlas_state_dict": source.network.state_dict(),
        "wrapper_state_dict": source.state_dict(),
        "full_checkpoint": {"network": source.network.state_dict(), "meta": {"epoch": 1}},
    }[layout]
    torch.save(state, tmp_path / "model.pt")
    target = _tiny_radlas()
    with torch.no_grad():
        for p in target.parameters():
            p.add_(1.0)
    loaded = load_lesion_map_network(target, tmp_path / "model.pt")
    assert not loaded.training
    for key, value in source.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key


def test_wrong_architecture_is_refused(tmp_path):
    from radlas_monai.handlers.checkpoint_io import StateDictMismatchError
    from radlas_monai.networks import RadLAS

    torch.save(RadLAS(preset="tiny", img_size=32, num_layers=5).state_dict(), tmp_path / "model.pt")
    with pytest.raises(StateDictMismatchError, match="model.pt"):
        load_lesion_map_network(_tiny_radlas(), tmp_path / "model.pt")


def test_draw_boxes_outlines_only():
    rgb = np.zeros((10, 12, 3), dtype=np.uint8)
    out = draw_boxes(rgb, [[2, 3, 7, 8]], width=1)
    outline = np.zeros((10, 12), dtype=bool)
    outline[3, 2:7] = outline[7, 2:7] = outline[3:8, 2] = outline[3:8, 6] = True
    np.testing.assert_array_equal(out.any(axis=-1), outline)
    np.testing.assert_array_equal(out[3, 2], [0, 255, 255])
    assert not rgb.any()  # the input is not modified


@pytest.mark.parametrize(
    "probabilities, expected",
    [([0.5, 0.5], ["Nodule", "Effusion"]), ([1.0, 0.01], ["Nodule", "Nodule"])],
    ids=["evidence_decides", "probability_decides"],
)
def test_each_box_gets_the_finding_its_evidence_supports(probabilities, expected):
    evidence = np.zeros((2, 8, 8), dtype=np.float32)
    evidence[0, :, :4] = 0.8  # Nodule evidence on the left
    evidence[1, :, 4:] = 0.9  # Effusion evidence on the right
    evidence[0, :, 4:] = 0.2
    boxes = [[0, 0, 4, 8], [4, 0, 8, 8]]
    found = assign_box_findings(boxes, evidence, np.array(probabilities), ["Nodule", "Effusion"])
    assert [name for name, _ in found] == expected
    assert found[0][1] == pytest.approx(0.8 * probabilities[0])


def test_finding_assignment_checks_sizes():
    with pytest.raises(ValueError, match=r"K=3"):
        assign_box_findings([[0, 0, 1, 1]], np.zeros((2, 4, 4)), np.zeros(2), ["a", "b", "c"])


class _BlobNetwork(torch.nn.Module):
    """A 'network' whose lesion map is one bright square at a known place of its 32 x 32 grid."""

    def forward(self, image):
        lesion = torch.zeros_like(image)
        lesion[:, :, 8:16, 16:24] = 0.9
        return lesion


class _FakeClassifier(torch.nn.Module):
    class_names = ("Nodule", "Effusion")
    multi_label = True

    def forward(self, image):
        b, _, h, w = image.shape
        evidence = torch.zeros(b, 2, h, w)
        evidence[:, 1, 8:16, 16:24] = 1.0
        return SimpleNamespace(logits=torch.tensor([[0.0, 2.0]]).repeat(b, 1), evidence_maps=evidence)


def _run_step_and_writer(tmp_path, inputs, classifier=None):
    loader = LoadRadiograph()
    images = [torch.nn.functional.interpolate(loader(p)[None], size=(32, 32), mode="area")[0] for p in inputs]
    ids = [loader(p).meta["image_id"] for p in inputs]
    batch = torch.stack(images)
    from monai.data import MetaTensor

    batch = MetaTensor(batch, meta={"image_id": ids, "filename_or_obj": [str(p) for p in inputs]})
    engine = SimpleNamespace(network=_BlobNetwork(), state=SimpleNamespace(device="cpu"))
    engine.state.output = LocalizationInferenceStep(classifier=classifier)(engine, {"image": batch})
    writer = LocalizationWriter(tmp_path / "out", threshold_method="fixed", threshold_value=0.5, min_area=1)
    writer(engine)
    writer.write_index()
    return tmp_path / "out", ids


def test_writer_outputs_are_in_input_geometry_and_named_by_id(tmp_path):
    rng = np.random.default_rng(0)
    dicom = write_dicom(
        (rng.random((96, 64)) * 4000).astype(np.uint16),
        tmp_path / "in" / "DOE_JANE_777.dcm",
        spacing=(0.25, 0.5),
        patient={"PatientName": "Doe^Jane", "PatientID": "777"},
    )
    png = write_png((rng.random((40, 80)) * 255).astype(np.uint8), tmp_path / "in" / "chest.png")
    out, ids = _run_step_and_writer(tmp_path, [dicom, png], classifier=_FakeClassifier())
    index = json.loads((out / "predictions.json").read_text())["predictions"]
    assert [r["image_id"] for r in index] == ids
    reader = LoadRadiograph(reject_constant=False)
    for record, shape in zip(index, [(96, 64), (40, 80)]):
        heatmap = reader(out / record["files"]["heatmap"])
        assert tuple(heatmap.shape[1:]) == shape == tuple(record["shape"])
        mask = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(out / record["files"]["mask"]))
        assert mask.shape == shape and set(np.unique(mask)) <= {0, 255}
        detail = json.loads((out / record["files"]["json"]).read_text())
        (box,) = detail["boxes"]
        h, w = shape  # the network's square [8:16, 16:24] of 32 x 32, scaled to the input
        expected = [16 * w / 32, 8 * h / 32, 24 * w / 32, 16 * h / 32]
        np.testing.assert_allclose(box["box"], expected, atol=max(h, w) / 32 + 1)
        assert 0 <= box["box"][0] < box["box"][2] <= w and 0 <= box["box"][1] < box["box"][3] <= h
        assert box["finding"] == "Effusion" and detail["probabilities"]["Effusion"] > 0.8
        assert detail["image_score"] == pytest.approx(0.9, abs=1e-4)
        assert (out / record["files"]["overlay"]).is_file()
    np.testing.assert_allclose(reader(out / index[0]["files"]["heatmap"]).meta["spacing"], (0.25, 0.5), rtol=1e-5)
    written = " ".join(p.name for p in out.iterdir()) + " ".join(p.read_text() for p in out.glob("*.json"))
    for secret in ("DOE", "Doe", "777", "chest", "JANE"):
        assert secret not in written


def test_step_rejects_a_network_with_a_structured_output():
    class TwoOutputs(torch.nn.Module):
        def forward(self, x):
            return x, x

    engine = SimpleNamespace(network=TwoOutputs(), state=SimpleNamespace(device="cpu"))
    with pytest.raises(ValueError, match="one lesion map"):
        LocalizationInferenceStep()(engine, {"image": torch.zeros(1, 1, 8, 8)})


def test_inputs_skip_bad_files_without_leaving_input_names(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "in"
    write_dicom((rng.random((20, 24)) * 4000).astype(np.uint16), folder / "SMITH_42.dcm", spacing=(0.2, 0.2))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10)
    out = tmp_path / "out"
    items = localization_inputs(folder, None, out)
    assert [item["image"].endswith("SMITH_42.dcm") for item in items] == [True]
    report = json.loads((out / "skipped.json").read_text())
    assert [s["path"].endswith("broken.png") for s in report["skipped"]] == [True]
    assert sorted(p.name for p in out.iterdir()) == ["skipped.json"]
    assert "SMITH" not in (out / "skipped.json").read_text()


def test_classifier_checkpoint_loads_and_absent_means_none(tmp_path):
    from radlas_monai.engines.localization import load_classifier
    from radlas_monai.networks.classifier import RadLASClassifier

    assert load_classifier("", ["Nodule"]) is None
    with pytest.raises(FileNotFoundError, match="finetune_classification"):
        load_classifier(tmp_path / "none.pt", ["Nodule"], image_size=32)
    torch.manual_seed(0)
    source = RadLASClassifier(class_names=["Nodule", "Effusion"], img_size=32, from_scratch=True)
    torch.save(source.state_dict(), tmp_path / "model.pt")
    loaded = load_classifier(tmp_path / "model.pt", ["Nodule", "Effusion"], image_size=32)
    assert not loaded.training and loaded.class_names == ("Nodule", "Effusion")
    for key, value in source.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
