"""Whole-batch augmentation on the training device: one affine warp per image, no PIL.

Works on [0, 1] images before normalization, so the zero padding the warp brings in is the
true background (the seed notebooks rotated after normalizing, padding with a grey of 0.42).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _uniform(n: int, bound: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return (torch.rand(n, generator=generator, device=device) * 2 - 1) * bound


def random_affine(
    x: torch.Tensor,
    generator: torch.Generator,
    rotate: float = 0.0,
    scale: float = 0.0,
    translate: float = 0.0,
) -> torch.Tensor:
    """Rotate by U(-rotate, rotate) degrees, zoom by U(1-scale, 1+scale), shift by U(-t, t).

    x: float [B, C, H, W]. Returns a new tensor of the same shape and dtype; x itself when all
    three ranges are zero (rotation 0 is the identity, and costs nothing).
    """
    if rotate == 0 and scale == 0 and translate == 0:
        return x
    n, dev = x.shape[0], x.device
    angle = _uniform(n, math.radians(rotate), generator, dev)
    zoom = 1 + _uniform(n, scale, generator, dev)
    # affine_grid maps output to input coords in [-1, 1]: a shift of t image widths is 2t there
    shift = torch.stack([_uniform(n, 2 * translate, generator, dev) for _ in range(2)], dim=1)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    ).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def to_unit(x_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 batch -> float in [0, 1]."""
    return x_uint8.float().div_(255.0)


def norm_tensors(mean, std, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A number or one value per channel -> tensors that broadcast over [B, C, H, W]."""
    return tuple(torch.as_tensor(v, dtype=torch.float32, device=device).reshape(1, -1, 1, 1) for v in (mean, std))


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """In place; mean and std are numbers or tensors from `norm_tensors`."""
    return x.sub_(mean).div_(std)


def random_crop(x: torch.Tensor, generator: torch.Generator, pad: int) -> torch.Tensor:
    """Pad by `pad` zero pixels on each side, then crop back to the size at a random offset per
    image (the natural-image shift). x itself when pad is 0."""
    if pad == 0:
        return x
    n, _, h, w = x.shape
    dev = x.device
    padded = F.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=dev)
    ox = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=dev)
    rows = (oy[:, None] + torch.arange(h, device=dev))[:, :, None]  # [n, h, 1]
    cols = (ox[:, None] + torch.arange(w, device=dev))[:, None, :]  # [n, 1, w]
    batch = torch.arange(n, device=dev)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


def random_flip(x: torch.Tensor, generator: torch.Generator, p: float) -> torch.Tensor:
    """Mirror each image left-right with probability p. x itself when p is 0."""
    if p == 0:
        return x
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < p
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def random_erase(x: torch.Tensor, generator: torch.Generator, p: float) -> torch.Tensor:
    """With probability p per image, set one random rectangle to 0: the data's mean once x is
    normalized (torchvision's default value). Its area is U(2%, 33%) of the image and its aspect
    ratio log-uniform in [0.3, 3.3], as in random erasing's paper. x itself when p is 0.

    An occluded garment is still the same garment: the erase teaches the net to use all of it,
    not the one patch that happens to separate the classes on the training set."""
    if p == 0:
        return x
    n, _, h, w = x.shape
    dev = x.device

    def u(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=generator, device=dev)

    area = u(0.02, 0.33) * h * w
    ratio = torch.exp(u(math.log(0.3), math.log(3.3)))
    eh = torch.sqrt(area * ratio).round().clamp(1, h)
    ew = torch.sqrt(area / ratio).round().clamp(1, w)
    y0 = (u(0, 1) * (h - eh + 1)).floor()
    x0 = (u(0, 1) * (w - ew + 1)).floor()
    on = u(0, 1) < p
    rows = torch.arange(h, device=dev)[None, :, None]
    cols = torch.arange(w, device=dev)[None, None, :]
    mask = ((rows >= y0[:, None, None]) & (rows < (y0 + eh)[:, None, None])
            & (cols >= x0[:, None, None]) & (cols < (x0 + ew)[:, None, None]) & on[:, None, None])
    return x.masked_fill(mask[:, None], 0.0)
