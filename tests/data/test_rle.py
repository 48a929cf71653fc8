"""Tests of radlas_monai.data.rle against a hand-made mask and the SIIM challenge's reference algorithm."""

from __future__ import annotations

import numpy as np
import pytest

from radlas_monai.data.rle import EMPTY_RLE, rle_decode, rle_encode

# rows = y, columns = x; column-major flat order: col 0 = 0 1 1 0, col 1 = 0 0 0 1, col 2 = 1 1 0 0
HAND_MASK = np.array(
    [
        [0, 0, 1],
        [1, 0, 1],
        [1, 0, 0],
        [0, 1, 0],
    ],
    dtype=np.uint8,
)
# runs at flat 1..2 and 7..9 -> "gap 1, length 2", then "gap 7 - 3 = 4, length 3"
HAND_RLE = "1 2 4 3"


def reference_rle2mask(rle: str, width: int, height: int) -> np.ndarray:
    """The algorithm of the challenge's ``mask_functions.rle2mask`` (returns the width x height array)."""
    flat = np.zeros(width * height)
    values = [int(v) for v in rle.split()]
    position = 0
    for start, length in zip(values[0::2], values[1::2]):
        position += start
        flat[position : position + length] = 255
        position += length
    return flat.reshape(width, height)


def reference_mask2rle(img: np.ndarray, width: int, height: int) -> str:
    """The algorithm of the challenge's ``mask_functions.mask2rle`` (``img[x][y]``, 255 = foreground)."""
    out, last, current, run_start, run_length = [], 0, 0, -1, 0
    for x in range(width):
        for y in range(height):
            color = img[x][y]
            if color != last:
                if color == 255:
                    run_start, run_length = current, 1
                else:
                    out += [str(run_start), str(run_length)]
                    run_start, run_length, current = -1, 0, 0
            elif run_start > -1:
                run_length += 1
            last = color
            current += 1
    return " ".join(out)


def test_decode_hand_made() -> None:
    decoded = rle_decode(HAND_RLE, height=4, width=3)
    assert decoded.shape == (4, 3) and decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, HAND_MASK)


def test_encode_hand_made() -> None:
    assert rle_encode(HAND_MASK) == HAND_RLE
    assert rle_encode(HAND_MASK * 255) == HAND_RLE  # nonzero = foreground


@pytest.mark.parametrize("rle", [EMPTY_RLE, " -1", ""])
def test_empty(rle: str) -> None:
    np.testing.assert_array_equal(rle_decode(rle, 4, 3), np.zeros((4, 3), np.uint8))
    assert rle_encode(np.zeros((4, 3))) == EMPTY_RLE


@pytest.mark.parametrize("seed, height, width", [(0, 16, 16), (1, 9, 13), (2, 32, 7)])
def test_matches_reference_algorithm(seed: int, height: int, width: int) -> None:
    rng = np.random.default_rng(seed)
    mask = (rng.random((height, width)) > 0.6).astype(np.uint8)
    mask[-1, -1] = 0  # the reference encoder drops a run that ends on the last pixel
    rle = rle_encode(mask)
    assert rle == reference_mask2rle((mask * 255).T, width, height)
    np.testing.assert_array_equal(rle_decode(rle, height, width), reference_rle2mask(rle, width, height).T > 0)
    np.testing.assert_array_equal(rle_decode(rle, height, width), mask)


def test_encode_keeps_a_run_on_the_last_pixel() -> None:
    mask = np.zeros((3, 3), np.uint8)
    mask[1:, 2] = 1  # flat 7, 8
    assert rle_encode(mask) == "7 2"
    np.testing.assert_array_equal(rle_decode("7 2", 3, 3), mask)


@pytest.mark.parametrize(
    "rle, match",
    [("1 2 3", "pairs"), ("1 -2", "negative"), ("10 5", "past the 4 x 3 image"), ("1 x", "non-integer")],
)
def test_decode_rejects_malformed(rle: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rle_decode(rle, 4, 3)


def test_encode_rejects_non_2d() -> None:
    with pytest.raises(ValueError, match="H x W"):
        rle_encode(np.zeros((2, 2, 2)))
