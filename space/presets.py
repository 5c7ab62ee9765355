"""The hand designs of ../shared/seeds as specs + recipes, layer for layer.

Each reproduces its notebook's printed torchsummary: the same layers, output shapes and
parameter count (tests/test_presets.py checks this).
"""

from __future__ import annotations

from space.recipe import Recipe
from space.spec import ArchSpec, Block

PRESETS: dict[str, tuple[ArchSpec, Recipe]] = {
    # 9,060 params: conv-bn-relu-dropout(0.043), pool after two padded convs, 1x1 head before GAP.
    "seed-000": (
        ArchSpec(
            blocks=(Block((4, 8), padding=1, pool=True), Block((16, 20, 24))),
            bn="affine",
            dropout=0.043,
            head="conv_gap",
        ),
        Recipe(batch_size=64, lr=0.01, momentum=0.9, step_size=8, gamma=0.25, rotate=7.0),
    ),
    # 25,290 params: conv biases, functional batch norm (no parameters), dropout after each pool.
    # The notebook does not print its dropout rate or optimizer; 0.1 and SGD 0.01 are our reading.
    "seed-002": (
        ArchSpec(
            blocks=(
                Block((4, 8), padding=1, pool=True),
                Block((16, 32), padding=1, pool=True),
                Block((64,)),
            ),
            bn="plain",
            conv_bias=True,
            dropout=0.1,
            dropout_at="pool",
            head="conv_gap",
        ),
        Recipe(batch_size=128, lr=0.01, momentum=0.9, step_size=20, gamma=1.0, rotate=0.0),
    ),
    # 8,000 params: conv-relu-bn-dropout, 1x1 transition then pool, GAP then a 20-16-10 head.
    "seed-004": (
        ArchSpec(
            blocks=(Block((8, 14), transition=10, pool=True), Block((14, 16, 20))),
            bn="affine",
            bn_after_relu=True,
            dropout=0.05,
            head="gap_conv",
            head_hidden=16,
        ),
        Recipe(
            batch_size=128, lr=0.1, momentum=0.9, step_size=8, gamma=0.1,
            rotate=7.0, scale=0.1, translate=0.1,
        ),
    ),
}

