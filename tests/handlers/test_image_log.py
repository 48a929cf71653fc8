"""Tests for radlas_monai.handlers.image_log: labelled validation panels, written and logged to MLflow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events
from PIL import Image

from radlas_monai.handlers.image_log import ImageLogHandler, render_panel
from radlas_monai.handlers.tracking import RadLASMLFlowHandler


def _columns(n: int = 3, size: int = 16) -> dict[str, np.ndarray]:
    ramp = np.tile(np.linspace(0, 1, size, dtype=np.float32), (n, size, 1))
    return {"input": ramp, "lesion map": np.ones((n, size, size), np.float32), "mask": np.zeros((n, size, size))}


def test_panel_layout_colours_and_labels() -> None:
    panel = render_panel(_columns(n=3, size=16), colormaps={"lesion map": "hot"}, tile_size=64)
    header = 14
    assert panel.shape == (header + 3 * 16, 3 * 16, 3) and panel.dtype == np.uint8
    tiles = panel[header:]
    assert tuple(tiles[5, 16 + 5]) == (255, 255, 255)  # hot(1.0) = white
    assert tuple(tiles[5, 32 + 5]) == (0, 0, 0)  # mask 0 = black
    assert tiles[0, 0, 0] == 0 and tiles[0, 15, 0] == 255  # ramp kept in [0, 1], gray
    assert np.all(tiles[:, :16, 0] == tiles[:, :16, 1])
    assert panel[:header].max() == 255 and panel[:header].mean() < 128  # white label text on black


def test_panel_hot_colormap_is_coloured() -> None:
    panel = render_panel({"lesion map": np.full((1, 8, 8), 0.5, np.float32)}, colormaps={"lesion map": "hot"})
    r, g, b = panel[20, 4]
    assert r == 255 and 0 < g < 255 and b == 0


def test_panel_stretches_out_of_range_and_downsizes_large() -> None:
    columns = {"raw": np.linspace(-1000, 3000, 2 * 300 * 200).reshape(2, 300, 200)}
    panel = render_panel(columns, tile_size=150)
    assert panel.shape == (14 + 2 * 150, 100, 3)
    assert panel[14:].min() <= 2 and panel[14:].max() >= 253  # stretched per tile (then resized)


@pytest.mark.parametrize("bad", [{}, {"x": np.zeros((4, 4))}])
def test_panel_rejects_bad_columns(bad: dict) -> None:
    with pytest.raises(ValueError):
        render_panel(bad)


def _evaluator(batch_size: int = 5) -> Engine:
    """An evaluator whose output is MONAI-style decollated dicts, with the mask only in the batch."""

    def step(engine: Engine, batch: dict) -> list[dict]:
        image = batch["image"]
        return [
            {"image": image[i], "restored": image[i] * 0.5, "lesion_map": (image[i] - 0.25).abs()}
            for i in range(len(image))
        ]

    evaluator = Engine(step)
    return evaluator


def _batches(batch_size: int = 5) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(batch_size, 1, 24, 32, generator=generator)
    return [{"image": image, "lesion_mask": (image > 0.8).float()}, {"image": image * 0}]


def test_handler_writes_and_logs_panel_each_validation(store_uri: str, tmp_path: Path) -> None:
    tracking = RadLASMLFlowHandler(store_uri, "panels", output_dir=tmp_path / "mlflow")
    trainer, evaluator = Engine(lambda engine, batch: 0.0), _evaluator()
    tracking.attach(trainer)
    panels = ImageLogHandler(tmp_path / "panels", tracking, max_images=3)
    panels.attach(evaluator)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: evaluator.run(_batches(), max_epochs=1))
    trainer.run([0], max_epochs=2)

    files = sorted(p.name for p in (tmp_path / "panels").iterdir())
    assert files == ["validation_panel_epoch0001.png", "validation_panel_epoch0002.png"]
    panel = np.asarray(Image.open(tmp_path / "panels" / files[0]))
    assert panel.shape == (14 + 3 * 24, 4 * 32, 3)  # 3 rows from the first batch, 4 labelled columns
    image = _batches()[0]["image"]
    expected_input = np.round(image[1, 0].numpy() * 255)
    assert np.abs(panel[14 + 24 : 14 + 48, :32, 0].astype(float) - expected_input).max() <= 1
    mask = panel[14:, 3 * 32 :, 0]
    assert set(np.unique(mask)) <= {0, 255} and mask.max() == 255  # the mask column came from the batch
    logged = {f.path for f in tracking._writer.client.list_artifacts(tracking.run_id, "images")}
    assert logged == {"images/validation_panel_epoch0001.png", "images/validation_panel_epoch0002.png"}


def test_missing_sources_are_left_out_and_callables_work(tmp_path: Path) -> None:
    evaluator = _evaluator()
    columns = {"input": "image", "double": lambda output: [item["image"] * 2 for item in output], "absent": "nope"}
    panels = ImageLogHandler(tmp_path, columns=columns, max_images=2)
    panels.attach(evaluator)
    evaluator.run(_batches(), max_epochs=1)
    panel = np.asarray(Image.open(tmp_path / "validation_panel_epoch0001.png"))
    assert panel.shape == (14 + 2 * 24, 2 * 32, 3)


def test_bad_max_images(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_images"):
        ImageLogHandler(tmp_path, max_images=0)
