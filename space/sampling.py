"""Define-by-run sampling of an architecture and a recipe under a hard parameter budget.

How the budget is kept: the trial draws the *shape* of a network (depth, relative widths,
transitions, head) and a target share `use` of the budget; `fit_widths` then scales all widths
by the largest factor whose exact count stays <= use * budget. Why this and not rejection or
ad-hoc shrinking:

- every draw of a shape that can fit at all yields a trainable candidate (no wasted trials);
- the spec is a pure function of the trial's params, so TPE learns from what was trained;
- `use` lets the search trade size for accuracy on purpose (the Pareto front), while most
  candidates still use most of the budget.

A shape whose feature map would shrink below 1x1 gets padding on its last blocks. A shape whose
narrowest member (every width 4) is over budget raises `Infeasible`; the search records it without training it and it does
not count towards --trials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna

from space.count import WIDTH_MIN, count_params
from space.recipe import Recipe
from space.spec import ArchSpec, Block, SpecError

NOMINAL_SCALE = 8.0  # "as drawn" scale: relative width 1.0 -> 8 channels
USE_RANGE = (0.6, 1.0)  # share of the budget a candidate aims to use


class Infeasible(Exception):
    """The drawn shape has no member within the budget (or no valid geometry)."""


@dataclass(frozen=True)
class Shape:
    """A network up to a common width scale: widths are relative (1.0 = NOMINAL_SCALE channels)."""

    blocks: tuple[tuple[tuple[float, ...], int, float], ...]  # (relative widths, padding, transition ratio)
    options: dict[str, Any]  # ArchSpec fields that do not scale (bn, dropout, head, ...)


def scaled(shape: Shape, scale: float, in_channels: int, in_size: int, num_classes: int) -> ArchSpec:
    blocks = []
    last = len(shape.blocks) - 1
    for i, (rel, padding, t_ratio) in enumerate(shape.blocks):
        widths = tuple(max(WIDTH_MIN, round(scale * r)) for r in rel)
        transition = max(WIDTH_MIN, round(t_ratio * widths[-1])) if t_ratio > 0 else 0
        blocks.append(Block(widths, padding=padding, transition=transition, pool=i < last))
    return ArchSpec(
        blocks=tuple(blocks), in_channels=in_channels, in_size=in_size,
        num_classes=num_classes, **shape.options,
    )


def fit_widths(shape: Shape, cap: int, **io: int) -> ArchSpec:
    """The widest scaling of `shape` with count_params <= cap (bisection; count is monotone)."""
    low_spec = scaled(shape, 0.0, **io)
    if count_params(low_spec) > cap:
        raise Infeasible(
            f"narrowest member has {count_params(low_spec)} params > {cap}"
        )
    lo, hi = 0.0, 1.0
    while count_params(scaled(shape, hi, **io)) <= cap and hi < 4096:
        lo, hi = hi, hi * 2
    for _ in range(40):
        mid = (lo + hi) / 2
        if count_params(scaled(shape, mid, **io)) <= cap:
            lo = mid
        else:
            hi = mid
    return scaled(shape, lo, **io)


def sample_shape(trial: optuna.trial.BaseTrial) -> Shape:
    blocks = []
    n_blocks = trial.suggest_int("n_blocks", 2, 3)
    for i in range(n_blocks):
        n = trial.suggest_int(f"b{i}_convs", 1, 3)
        rel = tuple(trial.suggest_float(f"b{i}_w{j}", 0.5, 3.0) for j in range(n))
        pad = trial.suggest_int(f"b{i}_pad", 0, 1)
        t_ratio = trial.suggest_float(f"b{i}_transition", 0.3, 1.0) if (
            i < n_blocks - 1 and trial.suggest_categorical(f"b{i}_has_transition", [False, True])
        ) else 0.0
        blocks.append((rel, pad, t_ratio))
    head = trial.suggest_categorical("head", ["conv_gap", "gap_conv"])
    hidden = trial.suggest_categorical("head_hidden", [0, 16, 32]) if head == "gap_conv" else 0
    options = dict(
        bn="affine",
        bn_after_relu=trial.suggest_categorical("bn_after_relu", [False, True]),
        dropout=trial.suggest_float("dropout", 0.0, 0.15),
        dropout_at=trial.suggest_categorical("dropout_at", ["conv", "pool"]),
        head=head,
        head_hidden=hidden,
        head_relu=hidden > 0,
    )
    return Shape(tuple(blocks), options)


def sample_recipe(trial: optuna.trial.BaseTrial, epochs: int) -> Recipe:
    schedule = trial.suggest_categorical("schedule", ["step", "onecycle"])
    return Recipe(
        epochs=epochs,
        batch_size=trial.suggest_categorical("batch_size", [64, 128, 256]),
        lr=trial.suggest_float("lr", 0.005, 0.3, log=True),
        momentum=trial.suggest_float("momentum", 0.8, 0.95),
        nesterov=trial.suggest_categorical("nesterov", [False, True]),
        weight_decay=trial.suggest_categorical("weight_decay", [0.0, 1e-5, 1e-4]),
        label_smoothing=trial.suggest_categorical("label_smoothing", [0.0, 0.05, 0.1]),
        schedule=schedule,
        step_size=trial.suggest_int("step_size", 2, max(2, epochs)) if schedule == "step" else 8,
        gamma=trial.suggest_float("gamma", 0.05, 0.5) if schedule == "step" else 0.1,
        rotate=trial.suggest_float("rotate", 0.0, 12.0),
        scale=trial.suggest_float("scale", 0.0, 0.15),
        translate=trial.suggest_float("translate", 0.0, 0.15),
    )


@dataclass(frozen=True)
class Draw:
    spec: ArchSpec  # the candidate, count_params(spec) <= budget guaranteed
    recipe: Recipe
    drawn_params: int | None  # count of the shape at NOMINAL_SCALE ("as drawn"); None if invalid


def pad_to_fit(shape: Shape, io: dict[str, int]) -> Shape:
    """If the feature map would shrink below 1x1, pad blocks (last first) until it does not.

    Geometry does not depend on widths, so this is decided once per shape, deterministically.
    """
    blocks = list(shape.blocks)
    for i in range(len(blocks), -1, -1):
        candidate = Shape(tuple(blocks), shape.options)
        try:
            scaled(candidate, NOMINAL_SCALE, **io)
            return candidate
        except SpecError:
            if i > 0:
                rel, _, t_ratio = blocks[i - 1]
                blocks[i - 1] = (rel, 1, t_ratio)
    return Shape(tuple(blocks), shape.options)


def sample(
    trial: optuna.trial.BaseTrial,
    budget: int,
    epochs: int,
    *,
    in_channels: int = 1,
    in_size: int = 28,
    num_classes: int = 10,
) -> Draw:
    """Draw a candidate with count_params <= budget, or raise Infeasible (nothing to train)."""
    shape = sample_shape(trial)
    use = trial.suggest_float("budget_use", *USE_RANGE)
    recipe = sample_recipe(trial, epochs)
    io = dict(in_channels=in_channels, in_size=in_size, num_classes=num_classes)
    shape = pad_to_fit(shape, io)
    try:
        drawn: int | None = count_params(scaled(shape, NOMINAL_SCALE, **io))
        spec = fit_widths(shape, max(int(use * budget), 1), **io)
    except SpecError as e:
        raise Infeasible(f"invalid geometry: {e}") from None
    except Infeasible:
        try:  # the aim `use` was too low for this shape; the hard budget may still hold
            spec = fit_widths(shape, budget, **io)
        except SpecError as e:
            raise Infeasible(f"invalid geometry: {e}") from None
    assert count_params(spec) <= budget
    return Draw(spec, recipe, drawn)
