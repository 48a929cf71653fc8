"""Validation image panels: input | restored | lesion map | synthetic mask, one row per image.

:class:`ImageLogHandler` is attached to the validation evaluator. At the first iteration of every
validation run it takes the first ``max_images`` images of each column from the step output (or
the batch), and at the end of the run writes ``<output_dir>/<name>_epoch<NNNN>.png`` and logs it
to MLflow through a :class:`~radlas_monai.handlers.tracking.RadLASMLFlowHandler` (``images/``).

Columns are ``{label: source}``; a source is a key looked up in ``engine.state.output`` (a dict,
or MONAI's decollated list of per-item dicts) and then in ``engine.state.batch``, or a callable
applied to ``engine.state.output`` (e.g. ``monai.handlers.from_engine(["pred"])``) returning a
``(B, C, H, W)`` tensor/array or a list of ``(C, H, W)`` items. A column whose source is absent is
left out (logged once at DEBUG). Multi-channel maps are shown as their channel-wise maximum.
Images in the project's [0, 1] convention are shown as is; other ranges are stretched per tile.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from radlas_monai.interpret.overlay import hot_colormap

if TYPE_CHECKING:
    from ignite.engine import Engine

    from radlas_monai.handlers.tracking import RadLASMLFlowHandler

__all__ = ["DEFAULT_COLUMNS", "ImageLogHandler", "render_panel"]

logger = logging.getLogger(__name__)

DEFAULT_COLUMNS: dict[str, str] = {
    "input": "image",
    "restored": "restored",
    "lesion map": "lesion_map",
    "synthetic mask": "lesion_mask",
}
"""Default ``{column label: output/batch key}``; override the keys to match the network's output."""

_HEADER = 14


def _to_unit(tile: np.ndarray) -> np.ndarray:
    tile = np.nan_to_num(tile.astype(np.float32))
    low, high = float(tile.min()), float(tile.max())
    if low < 0.0 or high > 1.0:
        tile = (tile - low) / ((high - low) or 1.0)
    return tile


def render_panel(
    columns: Mapping[str, np.ndarray], colormaps: Mapping[str, str] | None = None, tile_size: int = 256
) -> np.ndarray:
    """Render a labelled grid: one column per entry, one row per image.

    Args:
        columns: ``{label: array (N, H, W)}``; rows = the smallest N; tiles are resized to the first
            column's aspect ratio with the longer side at most ``tile_size``.
        colormaps: ``{label: "gray" | "hot"}`` (default gray).
        tile_size: longest tile side in pixels.

    Returns:
        the panel as uint8 RGB, shape ``(header + rows * tile_h, n_columns * tile_w, 3)``.

    Raises:
        ValueError: no columns, or an array that is not (N, H, W).
    """
    from PIL import Image, ImageDraw

    if not columns:
        raise ValueError("render_panel needs at least one column")
    for label, array in columns.items():
        if np.ndim(array) != 3:
            raise ValueError(f"column {label!r} must be (N, H, W), got shape {np.shape(array)}")
    colormaps = dict(colormaps or {})
    first = next(iter(columns.values()))
    scale = min(1.0, tile_size / max(first.shape[1:]))
    tile_h, tile_w = max(1, round(first.shape[1] * scale)), max(1, round(first.shape[2] * scale))
    rows = min(len(a) for a in columns.values())
    panel = np.zeros((_HEADER + rows * tile_h, len(columns) * tile_w, 3), dtype=np.uint8)
    for col, (label, array) in enumerate(columns.items()):
        for row in range(rows):
            unit = np.asarray(Image.fromarray(_to_unit(array[row])).resize((tile_w, tile_h), Image.Resampling.BILINEAR))
            rgb = hot_colormap(unit) if colormaps.get(label) == "hot" else np.repeat(unit[..., None], 3, axis=-1)
            y0, x0 = _HEADER + row * tile_h, col * tile_w
            panel[y0 : y0 + tile_h, x0 : x0 + tile_w] = np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    image = Image.fromarray(panel)
    draw = ImageDraw.Draw(image)
    for col, label in enumerate(columns):
        draw.text((col * tile_w + 3, 1), label, fill=(255, 255, 255))
    return np.asarray(image)


def _lookup(container: Any, key: str) -> Any:
    if isinstance(container, Mapping):
        return container.get(key)
    if isinstance(container, (list, tuple)) and container and isinstance(container[0], Mapping):
        items = [item.get(key) for item in container]
        return None if any(i is None for i in items) else items
    return None


def _as_nhw(value: Any, max_images: int) -> np.ndarray:
    """(B, C, H, W) tensor/array or a list of (C, H, W) items -> float array (N, H, W)."""
    if isinstance(value, (list, tuple)):
        items = [np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v) for v in value[:max_images]]
        array = np.stack(items)
    else:
        array = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value)[:max_images]
    if array.ndim == 4:
        array = array.max(axis=1)
    if array.ndim != 3:
        raise ValueError(f"expected (B, C, H, W) or (B, H, W) images, got shape {array.shape}")
    return array.astype(np.float32)


class ImageLogHandler:
    """Write and log a validation panel at the end of every validation run.

    Args:
        output_dir: folder for the PNG panels.
        tracking: the job's MLflow handler (``None``: only write the PNGs).
        columns: ``{label: key or callable}``, see the module docstring; default
            :data:`DEFAULT_COLUMNS`.
        colormaps: ``{label: "gray" | "hot"}``; default ``{"lesion map": "hot"}``.
        max_images: rows of the panel (first images of the first batch).
        tile_size: longest tile side in pixels.
        name: file stem of the panels.

    Raises:
        ValueError: ``max_images`` < 1.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        tracking: RadLASMLFlowHandler | None = None,
        columns: Mapping[str, str | Callable[[Any], Any]] | None = None,
        colormaps: Mapping[str, str] | None = None,
        max_images: int = 4,
        tile_size: int = 256,
        name: str = "validation_panel",
    ) -> None:
        if int(max_images) < 1:
            raise ValueError(f"max_images must be >= 1, got {max_images}")
        self.output_dir = Path(output_dir)
        self.tracking = tracking
        self.columns = dict(columns if columns is not None else DEFAULT_COLUMNS)
        self.colormaps = dict(colormaps if colormaps is not None else {"lesion map": "hot"})
        self.max_images = int(max_images)
        self.tile_size = int(tile_size)
        self.name = name
        self._captured: dict[str, np.ndarray] | None = None
        self._missing_reported: set[str] = set()

    def attach(self, engine: Engine) -> None:
        """Capture at the first iteration of each run of ``engine``; write at its epoch end."""
        from ignite.engine import Events

        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._capture)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._write)

    def _reset(self, engine: Engine) -> None:
        self._captured = None

    def _capture(self, engine: Engine) -> None:
        if self._captured is not None:
            return
        captured: dict[str, np.ndarray] = {}
        for label, source in self.columns.items():
            if callable(source):
                value = source(engine.state.output)
            else:
                value = _lookup(engine.state.output, source)
                value = _lookup(engine.state.batch, source) if value is None else value
            if value is None:
                if label not in self._missing_reported:
                    self._missing_reported.add(label)
                    logger.debug("panel column %r: %r is in neither the output nor the batch", label, source)
                continue
            captured[label] = _as_nhw(value, self.max_images)
        self._captured = captured

    def _write(self, engine: Engine) -> Path | None:
        if not self._captured:
            return None
        step = self.tracking.trainer_epoch if self.tracking is not None and self.tracking.trainer_epoch else None
        step = int(step if step is not None else engine.state.epoch)
        panel = render_panel(self._captured, self.colormaps, self.tile_size)
        from PIL import Image

        self.output_dir.mkdir(parents=True, exist_ok=True)
        path = self.output_dir / f"{self.name}_epoch{step:04d}.png"
        Image.fromarray(panel).save(path)
        if self.tracking is not None:
            self.tracking.log_image(path, self.name, step)
        self._captured = None
        return path
