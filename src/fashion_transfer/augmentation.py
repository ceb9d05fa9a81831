"""Random changes to a batch of training images, per image and vectorised over the batch
(torchvision's v2 transforms draw one set of parameters per call, so per-image variety from
them would need a Python loop over the batch, which costs about a third of an epoch):

- shifts (a random crop of the zero-padded image), mirror flips and the erasing of one
  rectangle;
- the photo distortions: what converting a phone photo (served_model/pictures.py) leaves
  behind, that the training images never show: the item a little rotated, smaller or larger,
  off-centre; other levels (contrast, gamma); a faint residual background (a level and a
  gradient); blur and sensor noise.

Every draw comes from the given generator, on the images' device."""

from __future__ import annotations

import math

import torch
from torch import nn

from fashion_transfer.params import AugmentationParams


def augment(images: torch.Tensor, config: AugmentationParams, generator) -> torch.Tensor:
    """A (N, 1, H, W) batch in [0, 1], changed at random as `config` says."""
    n, _, height, width = images.shape
    device = images.device

    def rand(*size: int) -> torch.Tensor:
        return _uniform(size, generator, device)

    if config.crop_padding:
        pad = config.crop_padding
        padded = nn.functional.pad(images, (pad, pad, pad, pad))
        rows = (rand(n) * (2 * pad + 1)).long()[:, None] + torch.arange(height, device=device)
        cols = (rand(n) * (2 * pad + 1)).long()[:, None] + torch.arange(width, device=device)
        index = torch.arange(n, device=device)[:, None, None]
        images = padded[index, 0, rows[:, :, None], cols[:, None, :]].unsqueeze(1)
    if config.horizontal_flip:
        flip = rand(n) < 0.5
        images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    if config.erasing_probability:
        side = (rand(2, n) * (config.erasing_max_side - 2) + 2).long()  # 2..max side pixels
        top = (rand(n) * (height - side[0])).long()
        left = (rand(n) * (width - side[1])).long()
        ys = torch.arange(height, device=device)[None, :, None]
        xs = torch.arange(width, device=device)[None, None, :]
        box = (
            (ys >= top[:, None, None])
            & (ys < (top + side[0])[:, None, None])
            & (xs >= left[:, None, None])
            & (xs < (left + side[1])[:, None, None])
            & (rand(n) < config.erasing_probability)[:, None, None]
        )
        images = images.masked_fill(box[:, None], 0.0)
    if config.photo:
        chosen = rand(n) < config.photo_probability
        distorted = photo_distortions(images, config, generator)
        images = torch.where(chosen[:, None, None, None], distorted, images)
    return images


def _uniform(size: tuple[int, ...], generator: torch.Generator, device) -> torch.Tensor:
    """Uniform numbers in [0, 1) from `generator` (drawn on its device), on `device`."""
    return torch.rand(*size, generator=generator, device=generator.device).to(device)


def photo_distortions(
    images: torch.Tensor, config: AugmentationParams, generator: torch.Generator
) -> torch.Tensor:
    """Every image of the batch distorted as `config` says, by amounts drawn per image."""
    n = len(images)

    def between(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * _uniform((n,), generator, images.device)

    # Geometry: one affine map per image (rotation, scale, shift), sampled bilinearly.
    angle = between(-config.rotation, config.rotation) * (math.pi / 180)
    scale = between(*config.scale)
    shift = [between(-config.translate, config.translate) for _ in range(2)]
    # affine_grid maps output coordinates to input ones: the inverse of the item's motion.
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos, -sin, -2 * shift[0]], dim=1),
            torch.stack([sin, cos, -2 * shift[1]], dim=1),
        ],
        dim=1,
    )
    grid = nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
    images = nn.functional.grid_sample(images, grid, padding_mode="zeros", align_corners=False)
    # Levels: gamma, then the brightest level.
    images = images.clamp(0, 1) ** between(*config.gamma)[:, None, None, None]
    images = images * between(*config.contrast)[:, None, None, None]
    # A faint residual background: a level and a gradient in a random direction.
    if config.background:
        height, width = images.shape[-2:]
        direction = between(0, 2 * math.pi)
        ys = torch.linspace(-0.5, 0.5, height, device=images.device)[None, :, None]
        xs = torch.linspace(-0.5, 0.5, width, device=images.device)[None, None, :]
        ramp = torch.cos(direction)[:, None, None] * xs + torch.sin(direction)[:, None, None] * ys
        level = between(0, config.background)[:, None, None]
        images = images + (level * (1 + ramp)).unsqueeze(1)
    if config.blur:
        images = _blur(images, between(0, config.blur))
    if config.noise:
        deviation = between(0, config.noise)[:, None, None, None]
        noise = torch.randn(images.shape, generator=generator, device=generator.device)
        images = images + deviation * noise.to(images.device)
    return images.clamp(0, 1)


def _blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Each image blurred by a Gaussian of its own sigma (pixels; 0 leaves it as it is), one
    grouped convolution for the batch."""
    radius = 3
    offsets = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    spread = sigma.clamp_min(1e-3)[:, None]
    kernel = torch.exp(-(offsets[None, :] ** 2) / (2 * spread**2))
    kernel = kernel / kernel.sum(dim=1, keepdim=True)  # (N, 7), separable
    n, _, height, width = images.shape
    flat = images.reshape(1, n, height, width)
    flat = nn.functional.conv2d(flat, kernel[:, None, None, :], padding=(0, radius), groups=n)
    flat = nn.functional.conv2d(flat, kernel[:, None, :, None], padding=(radius, 0), groups=n)
    return flat.reshape(n, 1, height, width)
