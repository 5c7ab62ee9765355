"""The data on the training device: each split as one uint8 tensor, normalized per batch.

Validation is the last `val_size` training images; all selection uses it. The test set is
touched only by final reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from trainers.datasets import DATASETS
from trainers.fetch import DataError, ensure_dataset


# --- on the device ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Split:
    x: torch.Tensor  # uint8 [N, 1, H, W] on the training device
    y: torch.Tensor  # int64 [N] on the training device

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class DeviceData:
    name: str
    train: Split  # what candidates and confirmation fit on
    val: Split  # what all selection uses (held out from the training set)
    test: Split  # touched only by final reports
    mean: float
    std: float
    train_index: torch.Tensor  # indices of `train` in the 60,000 training images
    val_index: torch.Tensor  # indices of `val` in the 60,000 training images

    def full_train(self) -> Split:
        """train + val, every training image: what the refit (and `train --fit-on all`) fits on."""
        return Split(torch.cat([self.train.x, self.val.x]), torch.cat([self.train.y, self.val.y]))


def read_raw(folder: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from torchvision.datasets.mnist import read_image_file, read_label_file

    return (
        read_image_file(str(folder / "train-images-idx3-ubyte")),
        read_label_file(str(folder / "train-labels-idx1-ubyte")),
        read_image_file(str(folder / "t10k-images-idx3-ubyte")),
        read_label_file(str(folder / "t10k-labels-idx1-ubyte")),
    )


def split_indices(n: int, val_size: int, subset: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Validation = the last `val_size` training images; --subset draws a seeded sample of each."""
    if not 0 < val_size < n:
        raise DataError(f"validation size must be between 1 and {n - 1}, got {val_size}")
    train_idx, val_idx = torch.arange(n - val_size), torch.arange(n - val_size, n)
    if subset is not None:
        g = torch.Generator().manual_seed(seed)
        train_idx = train_idx[torch.randperm(len(train_idx), generator=g)[: min(subset, len(train_idx))]]
        n_val = max(1, min(len(val_idx), subset // 5))
        val_idx = val_idx[torch.randperm(len(val_idx), generator=g)[:n_val]]
    return train_idx.sort().values, val_idx.sort().values


def load_data(
    name: str,
    data_dir: Path | str,
    device: torch.device | str = "cpu",
    *,
    val_size: int = 10_000,
    subset: int | None = None,
    seed: int = 0,
    log: Callable[[str], None] = lambda msg: None,
) -> DeviceData:
    """Each split as one uint8 tensor on `device`. With `subset`, test is cut to subset // 5 too."""
    folder = ensure_dataset(name, data_dir, log=log)
    tr_x, tr_y, te_x, te_y = read_raw(folder)
    train_idx, val_idx = split_indices(len(tr_y), val_size, subset, seed)
    if subset is not None:
        g = torch.Generator().manual_seed(seed + 1)
        keep = torch.randperm(len(te_y), generator=g)[: max(1, min(len(te_y), subset // 5))]
        te_x, te_y = te_x[keep], te_y[keep]

    def put(x: torch.Tensor, y: torch.Tensor) -> Split:
        return Split(x.unsqueeze(1).contiguous().to(device), y.long().to(device))

    info = DATASETS[name]
    return DeviceData(
        name, put(tr_x[train_idx], tr_y[train_idx]), put(tr_x[val_idx], tr_y[val_idx]),
        put(te_x, te_y), info.mean, info.std, train_idx, val_idx,
    )
