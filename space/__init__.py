"""The search space: architecture specs, exact counting, presets, building and sampling.

Imports torch.nn and Optuna's trial interface only; nothing from trainers/ or search/.
Pure parts (spec, counting, presets) load without torch, so the CLI can check input at once;
`build`/`Net` (torch) and `sample` (optuna) load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from space.budget import Budget
from space.count import (
    RFRow,
    count_macs,
    count_params,
    count_ram,
    family_min_macs,
    family_min_params,
    family_min_ram,
    final_receptive_field,
    receptive_field,
)
from space.errors import InputError
from space.presets import PRESETS
from space.recipe import Recipe, RecipeError
from space.spec import ArchSpec, Block, SpecError

_LAZY = {
    "Net": "space.model", "build": "space.model",
    "Draw": "space.sampling", "Infeasible": "space.sampling",
    "sample": "space.sampling",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'space' has no attribute {name!r}")


__all__ = [
    "ArchSpec", "Block", "InputError", "SpecError", "Recipe", "RecipeError", "Net", "build", "RFRow", "count_params",
    "count_macs", "receptive_field", "final_receptive_field", "PRESETS", "sample",
    "Draw", "Infeasible", "family_min_params", "Budget", "count_ram", "family_min_macs", "family_min_ram",
]
