"""Data and training: takes a model (or spec) and a recipe, returns a result.

Imports from space/ (specs, recipes, build) and nothing from search/. Names load on first use,
so `trainers.datasets` (the table the CLI validates against) comes without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "DeviceData": "trainers.data", "Split": "trainers.data", "load_data": "trainers.data",
    "DATASETS": "trainers.datasets", "target_accuracy": "trainers.datasets",
    "DataError": "trainers.fetch", "ensure_dataset": "trainers.fetch",
    **{name: "trainers.loop" for name in (
        "DeviceError", "EpochStats", "NonFiniteLoss", "Retrained", "TrainResult", "consistency",
        "evaluate", "first_epoch_at", "logits_of", "resolve_device", "retrain", "train",
    )},
    "Distill": "trainers.distill", "Teacher": "trainers.teacher", "teacher_for": "trainers.teacher",
    "PRECISIONS": "trainers.precision", "resolve_precision": "trainers.precision",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'trainers' has no attribute {name!r}")


__all__ = sorted(_LAZY)
