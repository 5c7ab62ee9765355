"""Your own data: image folders, NumPy arrays and CIFAR-10, as uint8 tensors [N, C, H, W].

    --dataset folder:PATH   PATH/train/<class>/* and PATH/test/<class>/* (any format Pillow reads),
                            or PATH/<class>/* with a seeded, stratified test split (TEST_SHARE)
    --dataset npz:PATH      arrays x_train, y_train, x_test, y_test: uint8, or float in [0, 1];
                            NHW, NHWC or NCHW
    --dataset cifar10       torchvision's CIFAR-10 (python version) under the data dir

Channels, image size and the number of classes come from the data. A folder is decoded once and
cached under the data dir with a fingerprint of its files (names, sizes, modification times) and
the requested size, so a changed folder is read again and an unchanged one is not. Everything
that makes data unusable is a DataError (one line, exit 2) before any study is touched.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainers.fetch import DataError

TEST_SHARE = 0.2  # of each class, when a folder has no train/ and test/ split
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


@dataclass(frozen=True)
class Raw:
    train_x: torch.Tensor  # uint8 [N, C, H, W]
    train_y: torch.Tensor  # int64 [N]
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]  # class names, index = label
    note: str = ""  # what the loader decided that the user should know (a test split it made)


def kind(name: str) -> str:
    """mnist | fashion-mnist | cifar10 | folder | npz (the part before ':')."""
    return name.split(":", 1)[0] if ":" in name else name


def path_of(name: str) -> Path:
    return Path(name.split(":", 1)[1]).expanduser()


def check(raw: Raw, where: str) -> Raw:
    """The checks every source passes through: classes, labels, the test split's classes."""
    n = len(raw.classes)
    if n < 2:
        raise DataError(f"{where}: {n} class; a classifier needs at least two")
    for split, x, y in (("train", raw.train_x, raw.train_y), ("test", raw.test_x, raw.test_y)):
        if len(x) != len(y):
            raise DataError(f"{where}: {len(x)} {split} images but {len(y)} labels")
        if len(y) == 0:
            raise DataError(f"{where}: the {split} split is empty")
        if int(y.min()) < 0 or int(y.max()) >= n:
            raise DataError(f"{where}: {split} labels must be 0..{n - 1}, found {int(y.min())}..{int(y.max())}")
    missing = sorted(set(raw.test_y.tolist()) - set(raw.train_y.tolist()))
    if missing:
        names = ", ".join(raw.classes[i] for i in missing)
        raise DataError(f"{where}: the test split has class(es) the training split lacks: {names}")
    if raw.train_x.shape[1:] != raw.test_x.shape[1:]:
        raise DataError(f"{where}: train images are {tuple(raw.train_x.shape[1:])}, test {tuple(raw.test_x.shape[1:])}")
    return raw


# --- npz ----------------------------------------------------------------------------------------

def _to_nchw(a: np.ndarray, where: str, key: str) -> np.ndarray:
    if a.ndim == 3:
        return a[:, None]
    if a.ndim == 4 and a.shape[-1] in (1, 3, 4) and a.shape[1] not in (1, 3, 4):
        return a.transpose(0, 3, 1, 2)  # NHWC
    if a.ndim == 4:
        return a  # NCHW
    raise DataError(f"{where}: {key} has shape {a.shape}; expected NHW, NHWC or NCHW")


def _to_uint8(a: np.ndarray, where: str, key: str) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    if np.issubdtype(a.dtype, np.floating):
        if np.isnan(a).any():
            raise DataError(f"{where}: {key} has NaN values")
        if a.min() < 0 or a.max() > 1:
            raise DataError(f"{where}: float {key} must lie in [0, 1], found {a.min():g}..{a.max():g}")
        return np.round(a * 255).astype(np.uint8)
    raise DataError(f"{where}: {key} is {a.dtype}; expected uint8 or float in [0, 1]")


def read_npz(path: Path) -> Raw:
    where = f"npz:{path}"
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test") if k in z}
    except (OSError, ValueError) as e:
        raise DataError(f"{where}: not a readable .npz file ({e})") from None
    missing = sorted({"x_train", "y_train", "x_test", "y_test"} - set(arrays))
    if missing:
        raise DataError(f"{where}: missing array(s) {', '.join(missing)}")
    xs = {k: torch.from_numpy(np.ascontiguousarray(_to_uint8(_to_nchw(arrays[k], where, k), where, k)))
          for k in ("x_train", "x_test")}
    ys = {}
    for k in ("y_train", "y_test"):
        y = arrays[k]
        if not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{where}: {k} must hold integer labels, got {y.dtype}")
        ys[k] = torch.from_numpy(y.astype(np.int64).reshape(-1))
    n = int(max(ys["y_train"].max(), ys["y_test"].max())) + 1 if len(ys["y_train"]) else 0
    return check(Raw(xs["x_train"], ys["y_train"], xs["x_test"], ys["y_test"], tuple(map(str, range(n)))), where)


# --- folders ------------------------------------------------------------------------------------

def _class_dirs(root: Path) -> list[Path]:
    return sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))


def _files(d: Path) -> list[Path]:
    return sorted(f for f in d.rglob("*") if f.is_file() and not f.name.startswith("."))


def _fingerprint(files: list[Path], image_size: int | None) -> str:
    h = hashlib.sha256(f"size={image_size}".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _decode(files: list[Path], image_size: int | None, where: str) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    arrays, sizes = [], set()
    for f in files:
        if f.stat().st_size == 0:
            raise DataError(f"{where}: {f} is empty")
        try:
            with Image.open(f) as im:
                im.load()
                mode = "L" if im.mode in ("1", "L", "I", "I;16", "F", "LA") else "RGB"
                im = im.convert(mode)
                if image_size:
                    im = im.resize((image_size, image_size), Image.BILINEAR)
                a = np.asarray(im, dtype=np.uint8)
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise DataError(f"{where}: {f} is not a readable image ({type(e).__name__})") from None
        if a.size == 0:
            raise DataError(f"{where}: {f} is empty (0 pixels)")
        arrays.append(a)
        sizes.add(a.shape)
    if len({s[:2] for s in sizes}) > 1:
        raise DataError(f"{where}: images of {len({s[:2] for s in sizes})} sizes "
                        f"({', '.join(sorted({f'{s[1]}x{s[0]}' for s in sizes})[:4])}); pass --image-size N to resize them")
    if len({len(s) for s in sizes}) > 1:  # some grey, some colour: all as colour
        arrays = [np.repeat(a[..., None], 3, -1) if a.ndim == 2 else a for a in arrays]
    x = np.stack(arrays)
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(x))


def _labelled(root: Path, classes: list[str], where: str) -> tuple[list[Path], list[int]]:
    files, labels = [], []
    for i, c in enumerate(classes):
        d = root / c
        fs = _files(d) if d.is_dir() else []
        files += fs
        labels += [i] * len(fs)
    return files, labels


def read_folder(path: Path, image_size: int | None, cache_dir: Path, seed: int = 0,
                log=lambda msg: None) -> Raw:
    where = f"folder:{path}"
    if not path.is_dir():
        raise DataError(f"{where}: not a folder")
    split = (path / "train").is_dir() and (path / "test").is_dir()
    classes = [d.name for d in _class_dirs(path / "train" if split else path)]
    if split:
        extra = sorted({d.name for d in _class_dirs(path / "test")} - set(classes))
        if extra:
            raise DataError(f"{where}: the test split has class(es) the training split lacks: {', '.join(extra)}")
    if len(classes) < 2:
        raise DataError(f"{where}: {len(classes)} class folder(s); a classifier needs at least two")
    if split:
        tr_files, tr_y = _labelled(path / "train", classes, where)
        te_files, te_y = _labelled(path / "test", classes, where)
    else:
        tr_files, tr_y = _labelled(path, classes, where)
        te_files, te_y = [], []
    empty = [c for c in classes if c not in {classes[i] for i in tr_y}]
    if empty:
        raise DataError(f"{where}: class folder(s) with no image: {', '.join(empty)}")
    files = tr_files + te_files
    cache = cache_dir / f"{path.name}-{_fingerprint(files, image_size)}.pt"
    if cache.exists():
        x = torch.load(cache, weights_only=True)
    else:
        log(f"{where}: decoding {len(files):,} images once (cached as {cache})")
        x = _decode(files, image_size, where)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        torch.save(x, tmp)
        tmp.replace(cache)
    y = torch.tensor(tr_y + te_y, dtype=torch.int64)
    if split:
        n = len(tr_files)
        return check(Raw(x[:n], y[:n], x[n:], y[n:], tuple(classes)), where)
    test = stratified(y, TEST_SHARE, seed)
    train = torch.ones(len(y), dtype=torch.bool)
    train[test] = False
    note = (f"{where}: no train/ and test/ folders, so a seeded stratified {TEST_SHARE:.0%} of each class "
            f"({len(test):,} images, seed {seed}) is the test set")
    return check(Raw(x[train], y[train], x[test], y[test], tuple(classes), note), where)


def stratified(y: torch.Tensor, share: float, seed: int) -> torch.Tensor:
    """Sorted indices of a seeded draw of round(share * len(y)) images, split over the classes in
    proportion to their sizes (largest remainders first); every class keeps at least one image."""
    g = torch.Generator().manual_seed(seed)
    classes = torch.unique(y).tolist()
    idx = {c: torch.nonzero(y == c).flatten() for c in classes}
    exact = {c: share * len(idx[c]) for c in classes}
    take = {c: min(int(exact[c]), len(idx[c]) - 1) for c in classes}
    for c in sorted(classes, key=lambda c: exact[c] - int(exact[c]), reverse=True):
        if sum(take.values()) >= round(share * len(y)):
            break
        if take[c] < len(idx[c]) - 1:
            take[c] += 1
    return torch.cat([idx[c][torch.randperm(len(idx[c]), generator=g)[: take[c]]] for c in classes]).sort().values


# --- CIFAR-10 -----------------------------------------------------------------------------------

def read_cifar10(data_dir: Path) -> Raw:
    """torchvision's CIFAR-10 files (downloaded and verified by torchvision where the internet is
    reachable); otherwise a one-line error naming what to download and where to put it."""
    folder = Path(data_dir) / CIFAR_FOLDER
    if not all((folder / f).is_file() for f in CIFAR_FILES):
        missing = DataError(f"cifar10: the files are not under {folder} and could not be downloaded; download "
                            f"{CIFAR_URL} and unpack it into {Path(data_dir)}")
        if os.environ.get("BUDGETNAS_OFFLINE") == "1":  # files already present only, as for MNIST
            raise missing
        try:
            from torchvision.datasets import CIFAR10

            CIFAR10(str(data_dir), train=True, download=True)
        except Exception:  # no network, a mirror down: say what to do instead
            raise missing from None
    batches = []
    for f in CIFAR_FILES:
        try:
            with open(folder / f, "rb") as fh:
                batches.append(pickle.load(fh, encoding="latin1"))  # torchvision's own format and reader
        except (OSError, pickle.UnpicklingError, EOFError) as e:
            raise DataError(f"cifar10: {folder / f} is not a CIFAR-10 batch ({type(e).__name__})") from None
    try:
        with open(folder / "batches.meta", "rb") as fh:
            classes = tuple(pickle.load(fh, encoding="latin1")["label_names"])
    except OSError:
        classes = tuple(map(str, range(10)))

    def stack(bs: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        x = np.concatenate([np.asarray(b["data"], np.uint8).reshape(-1, 3, 32, 32) for b in bs])
        y = np.concatenate([np.asarray(b["labels"], np.int64) for b in bs])
        return torch.from_numpy(x), torch.from_numpy(y)

    tr_x, tr_y = stack(batches[:5])
    te_x, te_y = stack(batches[5:])
    return check(Raw(tr_x, tr_y, te_x, te_y, classes), "cifar10")
