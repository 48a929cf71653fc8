"""Tests of radlas_monai.data.screening: skip-and-report screening and the SkipBadFiles dataset guard."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset
from PIL import Image, UnidentifiedImageError

from radlas_monai.data.errors import EmptyFileError, RadiographReadError, TruncatedFileError, UnsupportedFormatError
from radlas_monai.data.loader import LoadRadiograph, LoadRadiographd
from radlas_monai.data.screening import SkipBadFiles, SkipReport, find_read_error, screen_datalist
from radlas_monai.data.writers import write_png

EXPECTED_KINDS = {
    "empty.png": "empty",
    "random.png": "unsupported_format",
    "truncated.png": "truncated",
    "absent.png": "missing",
}


class FakeLoader:
    """A tiny PIL-based stand-in for LoadRadiograph that raises the typed errors and counts its calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, path: str) -> np.ndarray:
        self.calls.append(path)
        data = Path(path).read_bytes()
        if not data:
            raise EmptyFileError(path, "file has zero bytes")
        try:
            with Image.open(path) as image:
                return np.asarray(image)
        except UnidentifiedImageError:
            raise UnsupportedFormatError(path, "not an image") from None
        except OSError as err:
            raise TruncatedFileError(path, str(err)) from None


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    rng = np.random.default_rng(0)
    paths = {}
    for k in range(3):
        paths[f"good{k}.png"] = str(
            write_png(rng.integers(0, 255, (16, 16)).astype(np.uint8), tmp_path / f"good{k}.png")
        )
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "random.png").write_bytes(rng.integers(0, 256, 400).astype(np.uint8).tobytes())
    whole = Path(paths["good0.png"]).read_bytes()
    (tmp_path / "truncated.png").write_bytes(whole[: len(whole) // 2])
    for name in ("empty.png", "random.png", "truncated.png", "absent.png"):
        paths[name] = str(tmp_path / name)
    paths["mask.png"] = str(write_png(np.zeros((16, 16), np.uint8), tmp_path / "mask.png"))  # a valid empty mask
    return paths


def _items(files: dict[str, str]) -> list[dict]:
    order = ["good0.png", "empty.png", "good1.png", "random.png", "truncated.png", "good2.png", "absent.png"]
    return [{"image": files[name], "patient": name} for name in order]


@pytest.fixture(params=["fake", "real"])
def loader(request: pytest.FixtureRequest):
    return FakeLoader() if request.param == "fake" else LoadRadiograph()


@pytest.mark.parametrize("num_workers", [0, 2])
def test_bad_files_are_skipped_and_reported(files: dict, loader, num_workers: int, tmp_path: Path) -> None:
    items = _items(files)
    kept, report = screen_datalist(items, loader=loader, num_workers=num_workers, progress=False,
                                   report_path=tmp_path / "out" / "skipped.json")  # fmt: skip
    assert [Path(i["image"]).name for i in kept] == ["good0.png", "good1.png", "good2.png"]
    assert kept[0] is items[0]
    assert report.checked == 7
    assert [(Path(s.path).name, s.key, s.kind) for s in report.skipped] == [
        (name, "image", kind) for name, kind in EXPECTED_KINDS.items()
    ]
    assert all(s.reason for s in report.skipped)
    content = json.loads((tmp_path / "out" / "skipped.json").read_text())
    assert content["checked"] == 7 and content["num_skipped"] == 4
    assert content["counts"] == {"empty": 1, "unsupported_format": 1, "truncated": 1, "missing": 1}
    assert content["skipped"][0] == {"path": files["empty.png"], "key": "image", "kind": "empty",
                                     "reason": report.skipped[0].reason}  # fmt: skip
    assert SkipReport.from_json(tmp_path / "out" / "skipped.json") == report


def test_strict_raises_at_the_first_bad_file(files: dict, loader) -> None:
    with pytest.raises(RadiographReadError) as info:
        screen_datalist(_items(files), loader=loader, strict=True, progress=False)
    assert info.value.kind == "empty" and info.value.path == files["empty.png"]


def test_each_file_is_read_once_and_other_keys(files: dict) -> None:
    loader = FakeLoader()
    items = [
        {"image": files["good0.png"], "mask": files["mask.png"]},
        {"image": files["good0.png"], "mask": files["truncated.png"]},
        {"image": [files["good1.png"], files["random.png"]]},  # multi-channel input: every file is checked
        {"image": files["good2.png"]},  # no mask key: not checked for it
    ]
    kept, report = screen_datalist(items, keys=("image", "mask"), loader=loader, progress=False)
    assert kept == [items[0], items[3]]
    assert sorted(loader.calls) == sorted([files[n] for n in ("good0.png", "mask.png", "truncated.png", "good1.png",
                                                              "random.png", "good2.png")])  # fmt: skip
    assert [(Path(s.path).name, s.key) for s in report.skipped] == [("truncated.png", "mask"), ("random.png", "image")]


def test_default_loader_accepts_empty_masks(files: dict) -> None:
    items = [{"image": files["good0.png"], "mask": files["mask.png"]}, {"image": files["mask.png"]}]
    kept, report = screen_datalist(items, keys=("image", "mask"), progress=False)
    assert kept == [items[0]]  # a constant *image* is invalid, a constant mask is fine
    assert [(s.key, s.kind) for s in report.skipped] == [("image", "invalid_pixels")]


def test_other_reader_exceptions_are_wrapped(files: dict) -> None:
    def flaky(path: str) -> None:
        if path.endswith("good1.png"):
            raise ValueError("decoder exploded")

    kept, report = screen_datalist([{"image": files[f"good{k}.png"]} for k in range(3)], loader=flaky, progress=False)
    assert len(kept) == 2
    (skipped,) = report.skipped
    assert skipped.kind == "unreadable" and skipped.reason == "ValueError: decoder exploded"
    with pytest.raises(ValueError, match="no loader for keys \\['mask'\\]"):
        screen_datalist([], keys=("image", "mask"), loader={"image": flaky})


def test_report_logging(files: dict, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="radlas_monai.data.screening"):
        _, report = screen_datalist(_items(files), loader=FakeLoader(), progress=True)
    messages = [r.getMessage() for r in caplog.records]
    summary = "checked 7 files: 3 readable, 4 skipped (empty: 1, unsupported_format: 1, truncated: 1, missing: 1)"
    assert summary == report.summary() and summary in messages
    assert sum(m.startswith("skipped ") for m in messages) == 4
    assert any(files["random.png"] in m and "unsupported_format" in m for m in messages)


# ----------------------------------------------------------------------------------------------------------------------
# SkipBadFiles


def _dataset(files: dict, names: list[str]) -> Dataset:
    return Dataset([{"image": files[n]} for n in names], transform=LoadRadiographd(keys="image"))


def test_skip_bad_files_returns_the_next_good_item(files: dict) -> None:
    names = ["good0.png", "empty.png", "random.png", "good1.png", "truncated.png"]
    dataset = SkipBadFiles(_dataset(files, names))
    assert len(dataset) == 5
    first = dataset[1]["image"]
    assert torch.equal(first, dataset[3]["image"]) and torch.equal(dataset[2]["image"], first)
    assert torch.equal(dataset[4]["image"], dataset[0]["image"])  # wraps around to the start
    assert dataset.bad_indices == {1, 2, 4}
    assert [(Path(s.path).name, s.key, s.kind) for s in dataset.report.skipped] == [
        ("empty.png", "image", "empty"), ("random.png", "image", "unsupported_format"),
        ("truncated.png", "image", "truncated"),
    ]  # fmt: skip
    assert dataset[1]["image"].shape == (1, 16, 16) and len(dataset.report.skipped) == 3  # recorded once
    batches = list(DataLoader(dataset, batch_size=2, num_workers=0))
    assert [b["image"].shape[0] for b in batches] == [2, 2, 1]
    assert len(dataset[1:3]) == 2


def test_skip_bad_files_raises_when_all_are_bad(files: dict) -> None:
    dataset = SkipBadFiles(_dataset(files, ["empty.png", "random.png"]))
    with pytest.raises(RuntimeError, match="all 2 items of Dataset failed to load"):
        dataset[0]
    with pytest.raises(IndexError):
        dataset[2]


def test_skip_bad_files_lets_other_errors_through(files: dict) -> None:
    def broken(item: dict) -> dict:
        raise KeyError("label")

    dataset = SkipBadFiles(Dataset([{"image": files["good0.png"]}], transform=broken))
    with pytest.raises(RuntimeError, match="applying transform") as info:  # MONAI's wrapper, not swallowed
        dataset[0]
    assert isinstance(info.value.__cause__, KeyError) and not dataset.report.skipped


def test_find_read_error_walks_the_chain() -> None:
    inner = TruncatedFileError("a.png", "short")
    try:
        try:
            raise inner
        except TruncatedFileError as err:
            raise RuntimeError("applying transform") from err
    except RuntimeError as outer:
        assert find_read_error(outer) is inner
    assert find_read_error(ValueError("x")) is None
