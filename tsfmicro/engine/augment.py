"""Turn cached uint8 face crops into model inputs on the device, with paired augmentation.

The whole prepared dataset lives on the device as uint8 ``(N, H, W, 3)`` tensors. Each batch
is converted, resized and normalised there, then augmented with ONE random geometric
transform per clip applied to onset and apex alike: the temporal branch sees apex - onset,
so moving one frame and not the other would create fake motion.

Augmentation follows the authors' scripts (flip, rotation, padded random crop, applied to the
ImageNet-normalised tensors, so padding and rotated-in corners are 0 = the mean colour), done
as one ``affine_grid``/``grid_sample`` per batch. Differences: bilinear instead of nearest
sampling for the rotation (a crop shift alone lands on pixel centres and stays exact).

The random numbers come from a CPU ``torch.Generator``, so a run draws the same augmentation
on every device and the generator's state is easy to checkpoint.

The authors' optional training-time re-selection of an (onset+i, apex-j) pair that maximises
the frame difference (paper.md, off by default) is not an augmentation here: the pair is chosen
once per clip when the cache is built (``prepare(..., reselect_frames=True)``) and training
reads it when ``RunConfig.frame_reselection`` is on (see tsfmicro.engine.loso.DeviceData).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tsfmicro.engine.recipes import Recipe

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_model_input(frames: torch.Tensor, image_size: int) -> torch.Tensor:
    """uint8 ``(B, H, W, 3)`` -> ImageNet-normalised float ``(B, 3, S, S)``, S = ``image_size``."""
    images = frames.permute(0, 3, 1, 2).float().div_(255)  # (B, 3, H, W) in [0, 1]
    if images.shape[-2:] != (image_size, image_size):
        images = F.interpolate(images, size=(image_size, image_size), mode="bilinear", antialias=True)
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images - mean) / std


def random_transforms(batch: int, recipe: Recipe, image_size: int, generator: torch.Generator) -> torch.Tensor:
    """One random flip/rotation/crop per clip as ``affine_grid`` matrices, ``(B, 2, 3)`` on the CPU.

    An output pixel p (normalised coordinates, image centre at 0) reads the input at
    ``flip @ rotation^-1 @ (p + shift)``: the crop shift is applied last, as in torchvision's
    Compose([RandomHorizontalFlip, RandomRotation, RandomCrop(padding)]).
    """
    padding = recipe.padding_at(image_size)
    flip = torch.rand(batch, generator=generator) < recipe.flip_probability
    angle = (torch.rand(batch, generator=generator) * 2 - 1) * math.radians(recipe.rotation_degrees)
    # RandomCrop with padding p picks an integer offset in [0, 2p]: a shift of -p..p pixels.
    shift_pixels = torch.randint(-padding, padding + 1, (batch, 2), generator=generator).float()
    shift = shift_pixels * 2 / image_size  # (B, 2) as (x, y) in normalised units

    cos, sin = torch.cos(angle), torch.sin(angle)
    inverse_rotation = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)  # (B, 2, 2)
    mirror = torch.ones(batch, 2, 1)
    mirror[flip, 0] = -1  # flipping negates the x coordinate read from the input
    linear = mirror * inverse_rotation  # (B, 2, 2): rows scaled = flip @ rotation^-1
    offset = linear @ shift.unsqueeze(-1)  # (B, 2, 1)
    return torch.cat([linear, offset], dim=-1)  # (B, 2, 3)


def paired_augment(onset: torch.Tensor, apex: torch.Tensor, transforms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply each clip's transform to its onset and apex together.

    onset, apex: ``(B, 3, S, S)`` normalised; transforms: ``(B, 2, 3)`` from :func:`random_transforms`.
    """
    return augment_together((onset, apex), transforms)


def augment_together(images: tuple[torch.Tensor, ...], transforms: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Apply each clip's transform to all of a network's inputs (``(B, C, S, S)`` each) together."""
    stacked = torch.cat(images, dim=1)  # (B, sum C, S, S): one warp moves every input identically
    grid = F.affine_grid(transforms.to(stacked.device, stacked.dtype), list(stacked.shape), align_corners=False)
    warped = F.grid_sample(stacked, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return tuple(warped.split([image.shape[1] for image in images], dim=1))
