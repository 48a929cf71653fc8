"""The pretrain bundle's real-data recipe (its README, "Real-data recipe (JSRT, 2-core CPU)") on four real radiographs.

The recipe's structure with tiny numbers: a JSRT datalist built by ``scripts/build_datalist.py jsrt_nodule``, then
``train.json --datalist ... --image_size 128 --crop_size 64`` (the recipe's 256 / 128, halved), lung masks from the
datalist's ``lung_mask`` key. The run goes through the real ``python -m monai.bundle`` command line; a launcher
records what each training iteration saw (the batch, the lung masks handed to the synthesizer, the lesions it wrote,
the crops the step trained on) so the test can check the masks and the crops were really used.

Skipped only when the shared JSRT folder (``../shared/data/jsrt_nodule``) is absent.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_runner import REPO, run_bundle
from PIL import Image

SHARED_JSRT = REPO.parent / "shared" / "data" / "jsrt_nodule"
IMAGE_SIZE, CROP_SIZE, LIMIT, BATCH = 128, 64, 4, 2

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not SHARED_JSRT.exists(), reason="the shared JSRT folder (../shared/data/jsrt_nodule) is absent"
    ),
]

#: ``python -c`` launcher of ``monai.bundle`` (``run_bundle(..., launcher=[sys.executable, "-c", this])``): saves,
#: for every training iteration, the collated batch, the lung masks the synthesizer received, its lesion masks, and
#: the step's output tensors, to ``$RADLAS_TEST_RECORD/step_<n>.pt``.
RECORD_STEPS = """
import os, runpy, sys
import torch
from radlas_monai.engines import pretrain
record_dir, calls, seen = os.environ["RADLAS_TEST_RECORD"], [0], {}
real_synthesize, real_publish = pretrain.synthesize_batch, pretrain._publish
real_step = pretrain.RadLASPretrainStep.__call__
def keep(value):
    return torch.as_tensor(value).as_subclass(torch.Tensor).detach().cpu().clone() if value is not None else None
class Spy:
    def __init__(self, synthesizer):
        self.synthesizer = synthesizer
    def __call__(self, image, lung_mask=None):
        out = self.synthesizer(image, lung_mask=lung_mask)
        seen.update(synth_lung=keep(lung_mask), corrupted=keep(out.image), lesion_full=keep(out.mask))
        return out
def synthesize_batch(synthesizer, *args, **kwargs):
    return real_synthesize(Spy(synthesizer), *args, **kwargs)
def publish(engine, output):  # the step's own output, before the engine decollates it
    if "training" in seen:
        seen.update({k: keep(output[k]) for k in ("image", "lesion_mask", "restored", "lesion_map")})
        seen["losses"] = {k: v for k, v in output.items() if isinstance(v, float)}
    return real_publish(engine, output)
def step(self, engine, batchdata):
    seen.clear()
    seen.update(training=True, batch_image=keep(batchdata["image"]), batch_lung=keep(batchdata.get("lung_mask")))
    out = real_step(self, engine, batchdata)
    calls[0] += 1
    torch.save(dict(seen), os.path.join(record_dir, f"step_{calls[0]}.pt"))
    seen.clear()
    return out
pretrain.synthesize_batch, pretrain._publish, pretrain.RadLASPretrainStep.__call__ = synthesize_batch, publish, step
sys.argv = ["monai.bundle", *sys.argv[3:]]
runpy.run_module("monai.bundle", run_name="__main__", alter_sys=True)
"""


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory):
    """``build_datalist.py jsrt_nodule`` then one tiny epoch of the recipe, every training iteration recorded."""
    root = tmp_path_factory.mktemp("real_recipe")
    datalist = root / "datalist.json"
    subprocess.run(
        [sys.executable, "scripts/build_datalist.py", "jsrt_nodule", str(SHARED_JSRT), "--output", str(datalist)],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    record = root / "steps"
    record.mkdir()
    overrides = {
        "datalist": datalist,
        "image_size": IMAGE_SIZE,
        "crop_size": CROP_SIZE,
        "limit": LIMIT,
        "max_epochs": 1,
        "batch_size": BATCH,
        "val_batch_size": LIMIT,
        "val_interval": 1,
        "log_interval": 1,
        "output_dir": root / "eval",
        "ckpt_dir": root / "models",
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RADLAS_TEST_RECORD", str(record))
        run_bundle(root, "pretrain", "train", overrides, launcher=[sys.executable, "-c", RECORD_STEPS], threads=1)
    steps = [torch.load(p, weights_only=False) for p in sorted(record.glob("step_*.pt"))]
    return root, json.loads(datalist.read_text()), steps


def _resized(path: str | Path, mode: str) -> torch.Tensor:
    """A PNG of the shared folder at the run's size, ``(H, W)`` float."""
    array = torch.from_numpy(np.asarray(Image.open(path).convert("L"), dtype=np.float32))
    return torch.nn.functional.interpolate(array[None, None], size=(IMAGE_SIZE, IMAGE_SIZE), mode=mode)[0, 0]


def _expected_lungs(items: list[dict]) -> list[np.ndarray]:
    """The items' lung masks at the run's size, resized as the bundle does (nearest), as booleans."""
    return [_resized(item["lung_mask"], "nearest").numpy() > 0 for item in items]


def _item_of(image: torch.Tensor, items: list[dict]) -> int:
    """Which item a batch image ``(H, W)`` is: the best-correlated of the items' images (resized, area)."""
    scores = [
        float(torch.corrcoef(torch.stack([image.flatten(), _resized(i["image"], "area").flatten()]))[0, 1])
        for i in items
    ]
    assert max(scores) > 0.99, f"a batch image matches no item's image (correlations {scores})"
    return int(np.argmax(scores))


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / max(1.0, float(a.sum() + b.sum()))


def _crop_corner(full: torch.Tensor, window: torch.Tensor) -> tuple[int, int] | None:
    """Where ``window (S, S)`` lies in ``full (H, W)`` exactly, or None."""
    size = window.shape[-1]
    for row in range(full.shape[0] - size + 1):
        for col in range(full.shape[1] - size + 1):
            if torch.equal(full[row : row + size, col : col + size], window):
                return row, col
    return None


def test_recipe_trains_one_epoch_and_writes_a_loadable_checkpoint(recipe_run):
    root, _, steps = recipe_run
    assert len(steps) == LIMIT // BATCH, f"{len(steps)} training iterations for {LIMIT} images in batches of {BATCH}"
    from radlas_monai.networks import RadLAS

    state = torch.load(root / "models" / "model.pt", map_location="cpu", weights_only=True)
    RadLAS(preset="tiny", img_size=IMAGE_SIZE).load_state_dict(state["network"] if "network" in state else state)
    last = torch.load(root / "models" / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert int(last["meta"]["epoch"]) == 1


def test_logged_losses_are_finite(recipe_run):
    root, _, steps = recipe_run
    for step in steps:
        assert {"loss", "loss_reconstruction", "loss_grounding"} <= set(step["losses"]), step["losses"]
        assert all(math.isfinite(v) for v in step["losses"].values()), step["losses"]
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("radlas").experiment_id])
    assert run.info.status == "FINISHED"
    logged = {k: v for k, v in run.data.metrics.items() if k.startswith("train_epoch/loss")}
    assert "train_epoch/loss" in logged and all(math.isfinite(v) for v in logged.values()), logged
    auroc = [v for k, v in run.data.metrics.items() if "val_pixel_auroc" in k]
    assert auroc and all(0.0 <= v <= 1.0 for v in auroc), run.data.metrics


def test_datalist_lung_masks_survive_screening_and_reach_the_synthesizer(recipe_run):
    root, datalist, steps = recipe_run
    training = datalist["training"][:LIMIT]
    assert all(Path(item["lung_mask"]).parent.samefile(SHARED_JSRT / "lung_masks") for item in training), training
    report = json.loads((root / "eval" / "skipped_training.json").read_text())
    assert report["checked"] == 2 * LIMIT and report["skipped"] == [], report  # images and lung masks, all kept
    expected = _expected_lungs(training)
    matched = set()
    for step in steps:
        assert step["batch_lung"] is not None, "the training batches carry no lung_mask"
        assert step["synth_lung"] is not None, "the synthesizer was called without lung masks"
        assert torch.equal(step["synth_lung"], step["batch_lung"])
        for lung in step["synth_lung"][:, 0].numpy() > 0.5:
            dice = [_dice(lung, e) for e in expected]
            assert max(dice) > 0.99, f"a batch lung mask matches no item's mask (Dice {dice})"
            matched.add(int(np.argmax(dice)))
    assert matched == set(range(LIMIT)), "every item's lung mask should appear once in the epoch"


def test_synthetic_lesions_lie_inside_the_real_lungs(recipe_run):
    """Lesions placed in the datalist's lung masks, not in the default lung ellipses (8-16 % of their mass then
    falls outside the real lungs of these images: measured with the datalist's lung masks removed)."""
    _, datalist, steps = recipe_run
    training = datalist["training"][:LIMIT]
    # the SCR masks of the shared folder, whatever the datalist says
    lungs = [_resized(SHARED_JSRT / "lung_masks" / Path(i["image"]).name, "nearest").numpy() > 0 for i in training]
    outside, total = 0.0, 0.0
    for step in steps:
        for image, mask in zip(step["batch_image"][:, 0], step["lesion_full"][:, 0]):
            lung = torch.from_numpy(lungs[_item_of(image, training)]).float()
            # the synthesizer lets lesions spill 1.5 mm (about 1 px at 128 px over 350 mm) over the lung's edge
            grown = torch.nn.functional.max_pool2d(lung[None], 5, stride=1, padding=2)[0] > 0
            outside += float(mask[~grown].sum())
            total += float(mask.sum())
    assert total > 0, "no lesion was synthesized in the whole epoch"
    assert outside / total < 0.01, f"{outside / total:.1%} of the lesion mass lies outside the (grown) lung masks"


def test_the_step_trains_on_crop_size_crops_of_the_lesioned_images(recipe_run):
    _, _, steps = recipe_run
    for step in steps:
        assert tuple(step["batch_image"].shape) == (BATCH, 1, IMAGE_SIZE, IMAGE_SIZE)
        for key in ("image", "lesion_mask", "restored", "lesion_map"):
            assert tuple(step[key].shape) == (BATCH, 1, CROP_SIZE, CROP_SIZE), (key, tuple(step[key].shape))
        for b in range(BATCH):
            corner = _crop_corner(step["corrupted"][b, 0], step["image"][b, 0])
            assert corner is not None, "the trained crop is not a window of the lesioned image"
            row, col = corner
            window = step["lesion_full"][b, 0, row : row + CROP_SIZE, col : col + CROP_SIZE]
            torch.testing.assert_close(step["lesion_mask"][b, 0], window)
