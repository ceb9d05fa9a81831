"""The augmentation (fashion_transfer/augmentation.py), each change on a picture whose right
answer is known: an item of known shape and place, changed by a known amount."""

import math

import numpy as np
import pytest
import torch

from fashion_transfer.augmentation import augment, photo_distortions
from fashion_transfer.params import AugmentationParams
from fashion_transfer.training import images_to_tensor

NONE = {"crop_padding": 0, "horizontal_flip": False}


def _square(count: int = 8, side: int = 16, value: float = 1.0) -> torch.Tensor:
    """`count` images of a centred square of `side` pixels at `value` on black."""
    images = torch.zeros(count, 1, 28, 28)
    start = (28 - side) // 2
    images[:, :, start : start + side, start : start + side] = value
    return images


def _distort(images: torch.Tensor, seed: int = 0, **changes) -> torch.Tensor:
    config = AugmentationParams(**NONE, photo_probability=1.0, **changes)
    return photo_distortions(images, config, torch.Generator().manual_seed(seed))


def _extent(image: torch.Tensor, threshold: float = 0.5) -> tuple[int, int]:
    rows = torch.nonzero(image[0].amax(dim=1) > threshold).flatten()
    columns = torch.nonzero(image[0].amax(dim=0) > threshold).flatten()
    return int(rows[-1] - rows[0] + 1), int(columns[-1] - columns[0] + 1)


def test_shifts_flips_and_erasing_keep_shape_and_change_images_per_sample():
    images = images_to_tensor(np.full((64, 28, 28), 200, np.uint8))
    images[:, :, 10:18, 4:8] = 1.0
    config = AugmentationParams(crop_padding=2, horizontal_flip=True, erasing_probability=1.0)
    out = augment(images, config, torch.Generator().manual_seed(0))
    assert out.shape == images.shape
    distinct = {tuple(image.flatten().tolist()) for image in out}
    assert len(distinct) > 32  # parameters are drawn per image, not once per batch
    assert (out == 0).any(dim=(1, 2, 3)).all()  # erasing or the shift's zero padding


@pytest.mark.parametrize("scale", [0.5, 0.75])
def test_scale_shrinks_the_item_by_that_factor_about_the_centre(scale):
    out = _distort(_square(side=16), scale=(scale, scale))
    for image in out:
        height, width = _extent(image)
        assert abs(height - 16 * scale) <= 1 and abs(width - 16 * scale) <= 1
        centre = torch.nonzero(image[0] > 0.5).float().mean(dim=0)
        assert torch.allclose(centre, torch.tensor([13.5, 13.5]), atol=0.6)


def test_translate_moves_the_item_within_its_range_and_differently_per_image():
    out = _distort(_square(count=32, side=8), translate=0.2)
    centres = torch.stack([torch.nonzero(image[0] > 0.5).float().mean(dim=0) for image in out])
    offsets = centres - 13.5
    assert offsets.abs().max() <= 0.2 * 28 + 0.6
    assert offsets.abs().max() > 2  # it does move
    assert len({tuple(offset.round().tolist()) for offset in offsets}) > 8


def test_rotation_turns_a_bar_by_at_most_its_angle():
    bars = torch.zeros(32, 1, 28, 28)
    bars[:, :, 2:26, 13:15] = 1.0  # vertical
    out = _distort(bars, rotation=15.0)
    angles = []
    for image in out:
        points = torch.nonzero(image[0] > 0.5).float()
        points -= points.mean(dim=0)
        _, _, vectors = torch.linalg.svd(points, full_matrices=False)
        row, column = vectors[0]
        angles.append(math.degrees(math.atan2(abs(column), abs(row))))
    assert max(angles) <= 15.0 + 2.0
    assert max(angles) > 5.0  # it does turn


def test_contrast_and_gamma_set_the_levels():
    images = _square(value=0.5)
    assert torch.allclose(_distort(images, contrast=(0.6, 0.6)).max(), torch.tensor(0.3))
    assert torch.allclose(_distort(images, gamma=(2.0, 2.0)).max(), torch.tensor(0.25))


def test_the_residual_background_is_faint_and_lifts_the_black():
    out = _distort(_square(count=32), background=0.1)
    corners = out[:, 0, 0, 0]
    assert (corners >= 0).all() and corners.max() <= 0.1 * 1.5 + 1e-6
    assert (out[:, 0].amin(dim=(1, 2)) > 0).float().mean() > 0.5  # the black is lifted


def test_blur_spreads_an_edge_and_keeps_the_item_s_mass():
    images = _square(count=16)
    out = _distort(images, blur=2.0)
    assert torch.allclose(out.sum(dim=(1, 2, 3)), images.sum(dim=(1, 2, 3)), rtol=0.02)
    assert (out[:, 0, 14, 5] > 0).float().mean() > 0.5  # light beside the square's edge


def test_noise_has_at_most_its_deviation():
    images = torch.full((16, 1, 28, 28), 0.5)
    out = _distort(images, noise=0.05)
    deviations = (out - images).std(dim=(1, 2, 3))
    assert deviations.max() <= 0.05 * 1.1 and deviations.max() > 0.01


def test_photo_probability_chooses_which_images_change_and_the_seed_repeats_them():
    images = _square(count=200)
    config = AugmentationParams(**NONE, photo_probability=0.3, contrast=(0.5, 0.5))
    out = augment(images, config, torch.Generator().manual_seed(0))
    changed = (out != images).any(dim=(1, 2, 3)).float().mean()
    assert 0.2 < changed < 0.4
    again = augment(images, config, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_no_photo_distortion_without_a_strength():
    assert not AugmentationParams(photo_probability=1.0).photo
    assert not AugmentationParams(rotation=10.0).photo  # probability 0
    assert AugmentationParams(photo_probability=0.5, noise=0.01).photo
