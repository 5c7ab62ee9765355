"""The data on the training device: each split as one uint8 tensor, normalized per batch.

Validation is held out from the training images (at most a fifth of them): for MNIST and
Fashion-MNIST the last `val_size`, for your own data (trainers/sources.py) a seeded, stratified
draw. All selection uses it. The test set is touched only by final reports.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from trainers import sources
from trainers.datasets import DATASETS, TEN_CLASSES
from trainers.fetch import DataError, ensure_dataset


# --- on the device ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Split:
    x: torch.Tensor  # uint8 [N, C, H, W] on the training device
    y: torch.Tensor  # int64 [N] on the training device

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class DeviceData:
    name: str
    train: Split  # what candidates and confirmation fit on
    val: Split  # what all selection uses (held out from the training set)
    test: Split  # touched only by final reports
    mean: tuple[float, ...]  # per channel, of the training images in [0, 1]
    std: tuple[float, ...]
    train_index: torch.Tensor  # indices of `train` in all training images
    val_index: torch.Tensor  # indices of `val` in all training images
    classes: tuple[str, ...] = TEN_CLASSES  # class names, index = label

    @property
    def io(self) -> dict[str, int]:
        """What a network for this data takes and gives: ArchSpec's in_channels, in_size, num_classes."""
        _, c, h, _ = self.train.x.shape
        return {"in_channels": c, "in_size": h, "num_classes": len(self.classes)}

    def full_train(self) -> Split:
        """train + val, every training image: what the refit (and `train --fit-on all`) fits on."""
        return Split(torch.cat([self.train.x, self.val.x]), torch.cat([self.train.y, self.val.y]))


def read_idx(path: Path, ndim: int) -> torch.Tensor:
    """One uint8 IDX file (MNIST's format: two zero bytes, type 0x08, the number of dimensions,
    each size as a big-endian int32, then the data). Read here rather than with torchvision's
    reader, whose import (all of torchvision) cost every training command about two seconds."""
    raw = bytearray(path.read_bytes())  # writable, so the tensor can share it without a copy
    head = 4 + 4 * ndim
    if len(raw) < head or raw[:4] != bytes((0, 0, 0x08, ndim)):
        raise DataError(f"{path} is not a uint8 IDX file with {ndim} dimension(s)")
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    if len(raw) - head != math.prod(shape):
        raise DataError(f"{path} holds {len(raw) - head} bytes of data, its header says {shape}")
    return torch.frombuffer(raw, dtype=torch.uint8, offset=head).reshape(shape)


def read_raw(folder: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    return (
        read_idx(folder / "train-images-idx3-ubyte", 3),
        read_idx(folder / "train-labels-idx1-ubyte", 1),
        read_idx(folder / "t10k-images-idx3-ubyte", 3),
        read_idx(folder / "t10k-labels-idx1-ubyte", 1),
    )


def split_indices(n: int, val_size: int, subset: int | None, seed: int,
                  labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Validation = the last `val_size` training images, or with `labels` a seeded stratified draw
    of that many; --subset draws a seeded sample of each."""
    if not 0 < val_size < n:
        raise DataError(f"validation size must be between 1 and {n - 1}, got {val_size}")
    if labels is None:
        train_idx, val_idx = torch.arange(n - val_size), torch.arange(n - val_size, n)
    else:
        val_idx = sources.stratified(labels, val_size / n, seed)
        keep = torch.ones(n, dtype=torch.bool)
        keep[val_idx] = False
        train_idx = torch.nonzero(keep).flatten()
    if subset is not None:
        g = torch.Generator().manual_seed(seed)
        train_idx = train_idx[torch.randperm(len(train_idx), generator=g)[: min(subset, len(train_idx))]]
        n_val = max(1, min(len(val_idx), subset // 5))
        val_idx = val_idx[torch.randperm(len(val_idx), generator=g)[:n_val]]
    return train_idx.sort().values, val_idx.sort().values


def read_source(name: str, data_dir: Path | str, image_size: int | None, seed: int, log) -> sources.Raw:
    """Any --dataset as uint8 [N, C, H, W] tensors with int64 labels."""
    k = sources.kind(name)
    if k in DATASETS:
        tr_x, tr_y, te_x, te_y = read_raw(ensure_dataset(name, data_dir, log=log))
        return sources.Raw(tr_x[:, None], tr_y.long(), te_x[:, None], te_y.long(), DATASETS[k].classes)
    if k == "folder":
        return sources.read_folder(sources.path_of(name), image_size, Path(data_dir) / "folders", seed, log)
    if k == "npz":
        return sources.read_npz(sources.path_of(name))
    if k == "cifar10":
        return sources.read_cifar10(Path(data_dir))
    raise DataError(f"unknown dataset {name!r}")


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images, in [0, 1] units."""
    f = x.double().div(255).transpose(0, 1).reshape(x.shape[1], -1)
    return tuple(f.mean(1).tolist()), tuple(f.std(1).clamp_min(1e-6).tolist())


def load_data(
    name: str,
    data_dir: Path | str,
    device: torch.device | str = "cpu",
    *,
    val_size: int = 10_000,
    subset: int | None = None,
    seed: int = 0,
    image_size: int | None = None,
    log: Callable[[str], None] = lambda msg: None,
) -> DeviceData:
    """Each split as one uint8 tensor on `device`. With `subset`, test is cut to subset // 5 too."""
    raw = read_source(name, data_dir, image_size, seed, log)
    if raw.note:
        log(raw.note)
    known = sources.kind(name) in DATASETS
    n = len(raw.train_y)
    val_size = val_size if known else min(val_size, max(1, n // 5))  # your data: at most a fifth
    train_idx, val_idx = split_indices(n, val_size, subset, seed, None if known else raw.train_y)
    te_x, te_y = raw.test_x, raw.test_y
    if subset is not None:
        g = torch.Generator().manual_seed(seed + 1)
        keep = torch.randperm(len(te_y), generator=g)[: max(1, min(len(te_y), subset // 5))]
        te_x, te_y = te_x[keep], te_y[keep]

    def put(x: torch.Tensor, y: torch.Tensor) -> Split:
        return Split(x.contiguous().to(device), y.long().to(device))

    if known:  # the widely used constants, so results stay comparable with the notebooks'
        mean, std = (DATASETS[name].mean,), (DATASETS[name].std,)
    else:
        mean, std = channel_stats(raw.train_x[train_idx])
    return DeviceData(
        name, put(raw.train_x[train_idx], raw.train_y[train_idx]), put(raw.train_x[val_idx], raw.train_y[val_idx]),
        put(te_x, te_y), mean, std, train_idx, val_idx, raw.classes,
    )
