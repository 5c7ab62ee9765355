"""The search space: architecture specs, exact counting, presets, building and sampling.

Imports torch.nn and Optuna's trial interface only; nothing from trainers/ or search/.
"""

from space.build import Net, build
from space.count import (
    RFRow,
    count_macs,
    count_params,
    final_receptive_field,
    receptive_field,
)
from space.presets import PRESETS, preset
from space.recipe import Recipe
from space.sample import Draw, Infeasible, family_min_params, sample
from space.spec import ArchSpec, Block, SpecError

__all__ = [
    "ArchSpec", "Block", "SpecError", "Recipe", "Net", "build", "RFRow", "count_params",
    "count_macs", "receptive_field", "final_receptive_field", "PRESETS", "preset", "sample",
    "Draw", "Infeasible", "family_min_params",
]
