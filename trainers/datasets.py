"""The data sets budgetnas knows: file names, pinned hashes, normalization and accuracy target.

Imports nothing heavy, so the CLI can validate `--dataset` before torch loads.
"""

from __future__ import annotations

from dataclasses import dataclass

RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


TEN_CLASSES = tuple(map(str, range(10)))  # MNIST's labels: the digits
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")  # the data set's README, by label


@dataclass(frozen=True)
class DatasetInfo:
    folder: str  # torchvision's folder name under the data dir
    mean: float  # pixel mean over the training set, for normalization
    std: float  # pixel std over the training set
    sha256: dict[str, str]  # of each uncompressed raw idx file (the widely pinned values)
    torchvision_class: str  # torchvision.datasets class that downloads it
    target: float  # test accuracy (%) a tiny model should reach and hold ("first epoch at target")
    mirror: bool  # a left-right mirror keeps the label (a mirrored shirt is a shirt; a mirrored 3 is not a digit)
    classes: tuple[str, ...]  # class names, index = label


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
        99.4,  # the seed notebooks' goal
        False,
        TEN_CLASSES,
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
        90.0,  # what small CNNs of a few thousand parameters reach in ~15 epochs
        True,
        FASHION_CLASSES,
    ),
}


# "first epoch at target" for data without a table entry: an informational column (--target sets it)
OTHER_TARGETS = {"cifar10": 70.0, "folder": 90.0, "npz": 90.0}
USER_DATA = ("folder", "npz")  # --dataset folder:PATH, npz:PATH: the user says whether a mirror keeps the label


def target_accuracy(dataset: str, override: float | None = None) -> float:
    """The accuracy target of `dataset` (%), or `override` when the user gave one."""
    if override is not None:
        return override
    if dataset in DATASETS:
        return DATASETS[dataset].target
    return OTHER_TARGETS.get(dataset.split(":", 1)[0], 90.0)


def mirror_keeps_label(dataset: str, given: bool = False) -> bool:
    """Whether a left-right mirror keeps `dataset`'s labels: the built-in data sets know (CIFAR-10's
    animals and vehicles: yes); for your own data (folder:, npz:) it is `given` (--mirror), off by
    default, because a mirrored letter or digit is another symbol or none."""
    kind = dataset.split(":", 1)[0]
    if kind in DATASETS:
        return DATASETS[kind].mirror
    return True if kind == "cifar10" else given
