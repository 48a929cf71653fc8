"""Lesion-map overlays: transparent where the map is low, hot where it is high."""

from __future__ import annotations

import numpy as np
import pytest

from radlas_monai.interpret.overlay import hot_colormap, overlay_heatmap


def test_hot_colormap_endpoints():
    np.testing.assert_allclose(hot_colormap(np.array([0.0, 1.0])), [[0, 0, 0], [1, 1, 1]])
    np.testing.assert_allclose(hot_colormap(np.array([1 / 3])), [[1, 0, 0]], atol=1e-6)


def test_overlay_keeps_the_radiograph_where_the_map_is_low():
    image = np.full((4, 4), 0.5, np.float32)
    heat = np.zeros((4, 4), np.float32)
    heat[0, 0] = 0.5  # hot colormap: (1, 0.5, 0)
    rgb = overlay_heatmap(image, heat, alpha=0.6, floor=0.1)
    assert rgb.dtype == np.uint8 and rgb.shape == (4, 4, 3)
    assert (rgb[1:, 1:] == 128).all()
    assert rgb[0, 0, 0] > rgb[0, 0, 2] and rgb[0, 0, 0] > 128


@pytest.mark.parametrize("shapes", [((4, 4), (4, 5)), ((1, 4, 4), (1, 4, 4))])
def test_overlay_rejects_bad_shapes(shapes):
    with pytest.raises(ValueError, match="same shape"):
        overlay_heatmap(np.zeros(shapes[0]), np.zeros(shapes[1]))
