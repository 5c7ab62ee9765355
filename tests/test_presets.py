"""The presets reproduce the seed notebooks' printed torchsummary tables layer for layer."""

import pytest
import torch
from torch import nn

from space import PRESETS, build, count_params, receptive_field

# (layer type, output shape [C, H, W] or [C], params) per parametrized layer, from the notebooks
SEED_000 = [
    ("Conv2d", [4, 28, 28], 36), ("BatchNorm2d", [4, 28, 28], 8),
    ("Conv2d", [8, 28, 28], 288), ("BatchNorm2d", [8, 28, 28], 16), ("MaxPool2d", [8, 14, 14], 0),
    ("Conv2d", [16, 12, 12], 1152), ("BatchNorm2d", [16, 12, 12], 32),
    ("Conv2d", [20, 10, 10], 2880), ("BatchNorm2d", [20, 10, 10], 40),
    ("Conv2d", [24, 8, 8], 4320), ("BatchNorm2d", [24, 8, 8], 48),
    ("Conv2d", [10, 8, 8], 240),
]
SEED_002 = [  # the notebook prints convs and pools; its batch norm is functional (0 params)
    ("Conv2d", [4, 28, 28], 40), ("Conv2d", [8, 28, 28], 296), ("MaxPool2d", [8, 14, 14], 0),
    ("Conv2d", [16, 14, 14], 1168), ("Conv2d", [32, 14, 14], 4640), ("MaxPool2d", [32, 7, 7], 0),
    ("Conv2d", [64, 5, 5], 18496), ("Conv2d", [10, 5, 5], 650),
]
SEED_004 = [
    ("Conv2d", [8, 26, 26], 72), ("BatchNorm2d", [8, 26, 26], 16),
    ("Conv2d", [14, 24, 24], 1008), ("BatchNorm2d", [14, 24, 24], 28),
    ("Conv2d", [10, 24, 24], 140), ("MaxPool2d", [10, 12, 12], 0),
    ("Conv2d", [14, 10, 10], 1260), ("BatchNorm2d", [14, 10, 10], 28),
    ("Conv2d", [16, 8, 8], 2016), ("BatchNorm2d", [16, 8, 8], 32),
    ("Conv2d", [20, 6, 6], 2880), ("BatchNorm2d", [20, 6, 6], 40),
    ("Conv2d", [16, 1, 1], 320), ("Conv2d", [10, 1, 1], 160),
]
EXPECTED = {"seed-000": (9060, SEED_000), "seed-002": (25290, SEED_002), "seed-004": (8000, SEED_004)}


def layer_table(model: nn.Module, kinds: tuple[str, ...]) -> list[tuple[str, list[int], int]]:
    rows = []
    hooks = [
        m.register_forward_hook(
            lambda mod, inp, out: rows.append(
                (type(mod).__name__, list(out.shape[1:]), sum(p.numel() for p in mod.parameters()))
            )
        )
        for m in model.modules()
        if type(m).__name__ in kinds
    ]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(2, 1, 28, 28))
    for h in hooks:
        h.remove()
    return rows


@pytest.mark.parametrize("name", list(EXPECTED))
def test_preset_matches_seed_summary(name):
    total, table = EXPECTED[name]
    spec, _ = PRESETS[name]
    assert count_params(spec) == total
    model = build(spec)
    assert sum(p.numel() for p in model.parameters()) == total
    kinds = ("Conv2d", "MaxPool2d") if name == "seed-002" else ("Conv2d", "BatchNorm2d", "MaxPool2d")
    assert layer_table(model, kinds) == table


def test_seed_004_receptive_field_table():
    # the notebook's table: 3, 5, 5 (1x1), 6 (pool), 10, 14, 18, then GAP covers 28
    spec, _ = PRESETS["seed-004"]
    assert [r.rf for r in receptive_field(spec)][:8] == [3, 5, 5, 6, 10, 14, 18, 28]
