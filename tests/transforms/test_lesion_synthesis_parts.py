"""Tests for the building blocks of the lesion synthesizer: shapes, patches, lung regions and family helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from radlas_monai.transforms.lesion_synthesis.families import (
    LESION_FAMILIES,
    family_probabilities,
)
from radlas_monai.transforms.lesion_synthesis.families.base import log_uniform, screen_density, uniform
from radlas_monai.transforms.lesion_synthesis.patches import LesionCanvas, PatchIndex
from radlas_monai.transforms.lesion_synthesis.regions import (
    LungFields,
    default_lung_fields,
    lung_patches,
    soft_lung,
)
from radlas_monai.transforms.lesion_synthesis.shapes import (
    box_mean,
    interpolation_matrix,
    rotated_coords,
    sample_field,
    smooth_noise,
    smoothstep,
    sphere_profile,
)


def test_smoothstep_and_sphere_profile() -> None:
    x = torch.tensor([-1.0, 0.0, 0.25, 0.5, 1.0, 2.0])
    expected = torch.tensor([0.0, 0.0, 0.15625, 0.5, 1.0, 1.0])
    assert torch.allclose(smoothstep(x), expected)
    rho = torch.tensor([0.0, 0.6, 1.0, 1.5])
    assert torch.allclose(sphere_profile(rho, 0.5), torch.tensor([1.0, 0.8, 0.0, 0.0]))


@pytest.mark.parametrize("size,scale", [[8, 1.0], [16, 1.5], [5, 2.0]])
def test_interpolation_matrix_reproduces_constants_and_ramps(size: int, scale: float) -> None:
    coords = np.linspace(-scale, scale, 37)[None]
    weights = interpolation_matrix(coords, size, scale)
    assert weights.shape == (1, 37, size) and weights.dtype == np.float32
    assert np.allclose(weights.sum(-1), 1.0, atol=1e-6)
    position = ((coords / scale + 1) * size - 1) / 2  # a ramp is reproduced exactly between the outer nodes
    inside = (position >= 1) & (position <= size - 2)
    assert np.allclose((weights @ np.arange(size))[inside], position[inside], atol=1e-4)


def test_sample_field_matches_grid_sample_on_a_smooth_field() -> None:
    field = torch.linspace(0, 1, 16)[None, None, None, :].expand(2, 1, 16, 16).contiguous()
    cols, rows = np.linspace(-0.8, 0.8, 9), np.linspace(-0.8, 0.8, 7)
    weights_x = torch.from_numpy(interpolation_matrix(np.tile(cols, (2, 1)), 16, 1.0))
    weights_y = torch.from_numpy(interpolation_matrix(np.tile(rows, (2, 1)), 16, 1.0))
    grid = torch.stack(torch.meshgrid(torch.tensor(rows), torch.tensor(cols), indexing="ij")[::-1], dim=-1)
    expected = torch.nn.functional.grid_sample(field, grid[None].expand(2, -1, -1, -1).float(), align_corners=False)
    assert torch.allclose(sample_field(field, weights_y, weights_x), expected, atol=1e-5)


def test_smooth_noise_uses_only_the_generator() -> None:
    a = smooth_noise(3, 16, torch.Generator().manual_seed(1), "cpu", channels=2)
    b = smooth_noise(3, 16, torch.Generator().manual_seed(1), "cpu", channels=2)
    assert a.shape == (3, 2, 16, 16) and torch.equal(a, b)
    assert 0.3 < float(a.std()) < 1.5
    with pytest.raises(ValueError, match="octaves"):
        smooth_noise(1, 2, torch.Generator(), "cpu", octaves=3)


def test_rotated_coords() -> None:
    dy = torch.tensor([0.0, 2.0]).view(1, 1, 2, 1)
    dx = torch.tensor([0.0, 4.0]).view(1, 1, 1, 2)
    frame = torch.tensor([1 / 4, 0.0, 1 / 2, 0.0]).view(1, 4, 1, 1)  # angle 0, semi-axes 4 (x) and 2 (y)
    u, v = rotated_coords(dy, dx, frame)
    assert torch.allclose(u[0, 0], torch.tensor([[0.0, 1.0], [0.0, 1.0]]))
    assert torch.allclose(v[0, 0], torch.tensor([[0.0, 0.0], [1.0, 1.0]]))


@pytest.mark.parametrize("radius", [1, 3])
def test_box_mean_matches_a_reference(radius: int) -> None:
    x = (torch.rand(2, 1, 20, 17, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    expected = ndimage.uniform_filter(x.numpy(), size=(1, 1, 2 * radius + 1, 2 * radius + 1), mode="constant")
    assert np.allclose(box_mean(x, radius).numpy(), expected, atol=1e-6)


def test_patch_index_stays_inside_and_gathers_windows() -> None:
    images = torch.arange(2 * 3 * 10 * 12, dtype=torch.float32).view(2, 3, 10, 12)
    centre = np.array([[0.2, 0.4], [9.9, 11.5], [5.0, 6.0]])
    index = PatchIndex.around(np.array([0, 1, 1]), centre, (5, 7), (10, 12), "cpu")
    assert index.top.tolist() == [0, 5, 3] and index.left.tolist() == [0, 5, 3]
    patches = index.gather(images)
    assert patches.shape == (3, 3, 5, 7)
    assert torch.equal(patches[2], images[1, :, 3:8, 3:10])
    assert torch.equal(images[:, 0].reshape(-1)[index.pixels()[2]], images[1, 0, 3:8, 3:10])
    assert PatchIndex.around(np.array([0]), centre[:1], (31, 31), (10, 12), "cpu").size == (10, 12)


def test_canvas_adds_overlaps_and_keeps_the_largest_opacity() -> None:
    healthy = torch.full((1, 1, 4, 4), 0.5)
    canvas = LesionCanvas((1, 1, 4, 4), "cpu")
    index = PatchIndex(np.array([0]), np.array([0]), np.array([0]), (2, 2), (4, 4), torch.device("cpu"))
    patch = healthy[:, :, :2, :2]
    canvas.add(index, torch.tensor([[[[0.5, 0.0], [0.2, 0.0]]]]), torch.ones(1, 1, 2, 2), patch, 1)
    canvas.add(index, torch.tensor([[[[0.4, 0.0], [0.0, 0.0]]]]), torch.zeros(1, 1, 2, 2), patch, 3)
    image, mask, family = canvas.compose(healthy)
    assert torch.allclose(image[0, 0, 0, 0], torch.tensor(0.5 + 0.5 * 0.5 - 0.4 * 0.5))
    assert torch.allclose(image[0, 0, 1, 0], torch.tensor(0.5 + 0.2 * 0.5))
    assert torch.equal(image[mask == 0], healthy[mask == 0])
    assert mask[0, 0, 0, 0] == 0.5 and family[0, 0, 0, 0] == 1 and family[0, 0, 1, 0] == 1
    assert int((family > 0).sum()) == 2


def test_default_lung_fields_are_two_symmetric_ellipses() -> None:
    lung = default_lung_fields(64, 80, "cpu")[0, 0]
    assert lung.dtype == torch.bool and 0.1 < float(lung.float().mean()) < 0.4
    assert torch.equal(lung, lung.flip(-1))
    assert not bool(lung[:, 40].any())  # the mediastinum
    labels, count = ndimage.label(lung.numpy())
    assert count == 2


def test_lung_fields_sample_lung_pixels_and_boxes() -> None:
    lung = torch.zeros(2, 1, 64, 64)
    lung[0, :, 10:30, 5:20] = 1
    lung[0, :, 12:40, 40:60] = 1
    lung[1, :, 20:25, 20:50] = 1  # thin: one row of cell centres (row 22) is lung
    fields = LungFields(lung, cell=4)
    u = np.random.default_rng(0).random((500, 3))
    batch = np.arange(500) % 2
    centre = fields.sample(batch, u).astype(np.int64)
    assert bool((lung[batch, 0, centre[:, 0], centre[:, 1]] > 0).all())
    boxes = fields.side_boxes()
    # boxes of the cells whose centre pixel (2 + 4k) is lung, i.e. at the grid's resolution
    assert boxes[0, 0].tolist() == [8.0, 28.0, 4.0, 20.0] and boxes[0, 1].tolist() == [12.0, 40.0, 40.0, 60.0]
    assert not bool(fields.empty.any())
    thin = torch.zeros(1, 1, 64, 64)
    thin[..., 20:22, :] = 1  # between the cell centres: treated as empty (the transform then uses the default)
    assert bool(LungFields(thin, cell=4).empty.all())


def test_soft_lung_and_lung_patches() -> None:
    lung = torch.zeros(1, 1, 40, 40)
    lung[:, :, 10:30, 10:30] = 1
    soft = soft_lung(lung, 2)
    assert bool((soft[lung > 0] == 1).all())
    far = torch.as_tensor(~ndimage.binary_dilation(lung.numpy() > 0, np.ones((1, 1, 9, 9))))
    assert float(soft[far].max()) == 0.0 and 0 < float(soft[0, 0, 20, 32]) < 1
    index = PatchIndex.around(np.array([0, 0]), np.array([[12.0, 12.0], [35.0, 20.0]]), (9, 9), (40, 40), "cpu")
    core, patch_soft = lung_patches(index, lung, 2)
    assert torch.equal(core, index.gather(lung))
    assert torch.allclose(patch_soft, index.gather(soft))
    assert torch.equal(lung_patches(index, lung, 2, soft)[1], index.gather(soft))


def test_family_helpers() -> None:
    probs = family_probabilities({"nodule": 3.0, "effusion": 1.0})
    assert probs.tolist() == [0.75, 0.0, 0.0, 0.25, 0.0] and len(probs) == len(LESION_FAMILIES)
    u = np.array([0.0, 0.5, 1.0])
    assert np.allclose(uniform(u, (2.0, 4.0)), [2.0, 3.0, 4.0])
    assert np.allclose(log_uniform(u, (5.0, 20.0)), [5.0, 10.0, 20.0])
    h = torch.tensor([0.0, 0.5, 1.0])
    assert torch.allclose(screen_density(h, torch.tensor(0.5)), torch.tensor([0.5, 0.75, 1.0]))


# ---------------------------------------------------------------------------------------------------------------
# gradient-domain blending


def test_dirichlet_poisson_solver_inverts_the_laplacian() -> None:
    from radlas_monai.transforms.lesion_synthesis.poisson import laplacian, solve_dirichlet_poisson

    field = torch.randn(2, 1, 17, 23, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(solve_dirichlet_poisson(laplacian(field, "zeros")), field, atol=1e-9, rtol=0)


def test_dst1_matches_its_definition() -> None:
    from radlas_monai.transforms.lesion_synthesis.poisson import dst1

    x = torch.randn(7, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    n = x.shape[0]
    j, k = torch.meshgrid(*(torch.arange(1, n + 1, dtype=torch.float64),) * 2, indexing="ij")
    expected = (torch.sin(torch.pi * j * k / (n + 1)) * x[None]).sum(1)
    torch.testing.assert_close(dst1(x), expected)


def test_poisson_blend_keeps_donor_structure_and_drops_its_level() -> None:
    from radlas_monai.transforms.lesion_synthesis.poisson import laplacian, poisson_blend

    g = torch.Generator().manual_seed(2)
    healthy = torch.full((1, 1, 40, 40), 0.3)
    texture = 0.05 * torch.randn(1, 1, 40, 40, generator=g)
    donor = 0.9 + texture  # bright donor with structure
    blended = poisson_blend(healthy, donor)
    inner = (..., slice(1, -1), slice(1, -1))
    torch.testing.assert_close(laplacian(blended)[inner], laplacian(donor)[inner], atol=1e-5, rtol=0)
    assert abs(float(blended.mean()) - 0.3) < 0.05  # the donor's level (0.9) does not come along
    with pytest.raises(ValueError, match="one shape"):
        poisson_blend(healthy, donor[..., :20])
