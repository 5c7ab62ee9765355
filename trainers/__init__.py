"""Data and training: takes a model (or spec) and a recipe, returns a result.

Imports from space/ (specs, recipes, build) and nothing from search/.
"""

from trainers.data import DATASETS, DataError, DeviceData, Split, ensure_dataset, load_data
from trainers.train import (
    EpochStats,
    NonFiniteLoss,
    TrainResult,
    consistency,
    evaluate,
    first_epoch_at,
    resolve_device,
    train,
)

__all__ = [
    "DATASETS", "DataError", "DeviceData", "Split", "ensure_dataset", "load_data", "EpochStats",
    "NonFiniteLoss", "TrainResult", "consistency", "evaluate", "first_epoch_at", "resolve_device",
    "train",
]
