"""make_contact_sheet: size, annotations drawn where they belong, robustness to minimal datalists."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from radlas_monai.data.preview import BOX_COLOUR, LESION_COLOUR, LUNG_COLOUR, make_contact_sheet
from radlas_monai.data.synthetic.dataset import generate_dataset
from radlas_monai.data.writers import write_png


def _colour_mask(sheet: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    return np.all(sheet == np.array(colour, dtype=np.uint8), axis=-1)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("syn"), num_images=10, image_size=96, seed=4, split=(0.6, 0.2, 0.2))


@pytest.mark.parametrize(
    "kwargs, expected_size",
    [
        ({}, (4 * 128, 2 * 128)),  # 6 training images, 4 columns -> 2 rows
        ({"max_images": 4, "columns": 2}, (2 * 128, 2 * 128)),
        ({"max_images": 3, "columns": 5}, (3 * 128, 128)),
        ({"split": "validation", "columns": 1}, (128, 2 * 128)),
    ],
)
def test_sheet_size(synthetic, tmp_path, kwargs, expected_size):
    out = make_contact_sheet(synthetic, tmp_path / "sub" / "sheet.png", tile_size=128, **kwargs)
    assert out == tmp_path / "sub" / "sheet.png"
    with Image.open(out) as image:
        assert image.size == expected_size and image.mode == "RGB"


def test_annotations_are_drawn_on_the_right_tiles(synthetic, tmp_path):
    data = json.loads(synthetic.read_text())
    items = data["training"][:4]
    out = make_contact_sheet(synthetic, tmp_path / "sheet.png", max_images=4, columns=4, tile_size=96)
    sheet = np.asarray(Image.open(out))
    for index, item in enumerate(items):
        tile = sheet[:, index * 96 : (index + 1) * 96]
        assert _colour_mask(tile, LUNG_COLOUR).sum() > 50, "lung outline in every tile"
        assert (_colour_mask(tile, BOX_COLOUR).sum() > 0) == bool(item["boxes"])
        for x0, y0, x1, y1 in item["boxes"]:  # image and tile share the pixel grid at tile_size == image_size
            edge = _colour_mask(tile, BOX_COLOUR)
            assert edge[y0, x0:x1].any() or edge[y1 - 1, x0:x1].any() or edge[y0:y1, x0].any()
        if item["boxes"]:
            assert _colour_mask(tile, LESION_COLOUR).any()
        # the grey image is in the tile: plenty of non-annotation grey levels
        grey = (tile[..., 0] == tile[..., 1]) & (tile[..., 1] == tile[..., 2])
        assert np.unique(tile[grey][:, 0]).size > 100


def test_minimal_datalist_with_only_images_and_circles(tmp_path):
    rng = np.random.default_rng(0)
    write_png(rng.random((40, 60)).astype(np.float32), tmp_path / "a.png")
    write_png(rng.random((50, 50)).astype(np.float32), tmp_path / "b.png")
    datalist = {
        "training": [
            {"image": "a.png"},
            {"image": str(tmp_path / "b.png"), "centers": [[25, 25]], "radii": [10], "findings": ["Nodule"]},
        ]
    }
    (tmp_path / "d.json").write_text(json.dumps(datalist))
    out = make_contact_sheet(tmp_path / "d.json", tmp_path / "sheet.png", columns=2, tile_size=100)
    sheet = np.asarray(Image.open(out))
    assert sheet.shape == (100, 200, 3)
    assert not _colour_mask(sheet[:, :100], BOX_COLOUR).any()
    circle = _colour_mask(sheet[:, 100:], BOX_COLOUR)
    rows, cols = np.nonzero(circle)
    assert circle.any() and abs(cols.mean() - 50) < 3 and abs(rows.mean() - 50) < 3  # centred at (25, 25) x 2
    # letterboxing: the 60 x 40 image fills the full width, rows above / below stay black
    assert (sheet[:10, :100] == 0).all() or (sheet[-10:, :100] == 0).all()


def test_unreadable_image_gets_a_placeholder_tile(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "d.json").write_text(json.dumps({"training": [{"image": "empty.png"}]}))
    out = make_contact_sheet(tmp_path / "d.json", tmp_path / "sheet.png", tile_size=64)
    assert Image.open(out).size == (64, 64)


def test_empty_or_missing_split_raises(synthetic, tmp_path):
    (tmp_path / "d.json").write_text(json.dumps({"training": [], "validation": [{"image": "x.png"}]}))
    with pytest.raises(ValueError, match="empty"):
        make_contact_sheet(tmp_path / "d.json", tmp_path / "sheet.png")
    with pytest.raises(ValueError, match="no split"):
        make_contact_sheet(tmp_path / "d.json", tmp_path / "sheet.png", split="holdout")
    with pytest.raises(ValueError, match="tile_size"):
        make_contact_sheet(synthetic, tmp_path / "sheet.png", tile_size=4)
