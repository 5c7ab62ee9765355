"""Define-by-run sampling of an architecture and a recipe under a hard budget (parameters, and
optionally MACs and peak memory: `space.budget.Budget`).

The trial draws every width as an integer, the structure (blocks, padding, 1x1 transitions, batch
norm, bias, dropout, head; with `separable=True` also depthwise-separable blocks) and the recipe. Then the budget is kept by scaling all widths by one
common factor:

- over budget: the largest factor < 1 whose exact counts fit (bisection: every count grows with
  the widths);
- `fit="fill"`: the largest factor whose parameter count stays <= fill * budget (and within the
  other caps), growing an under-sized draw as well as shrinking an over-sized one, so most
  candidates use most of the budget;
- `fit="as_drawn"` and within budget: the widths exactly as drawn.

So each hand design is a point of the space (its widths drawn as they are, fit "as_drawn"), the
baselines are enqueued with their params and TPE models them like any other trial, and the spec
stays a pure function of the trial's params. A shape whose feature map would shrink below 1x1
gets padding on its last blocks. A shape whose narrowest member (every width 4) is over any cap
raises `Infeasible`; the search records it without training it and it does not count.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import optuna

from space.budget import Budget
from space.count import WIDTH_MIN, count_params
from space.recipe import Recipe
from space.spec import ArchSpec, Block, SpecError

WIDTH_MAX = 64  # widest 3x3 conv a trial draws (before fitting)
# Share of the budget a "fill" candidate is scaled to: a wider range let TPE settle on designs that
# left a quarter of the budget unused (RESULTS.md, "Search space choices").
FILL_RANGE = (0.9, 1.0)
HEAD_HIDDEN = (0, 8, 12, 16, 24, 32)
# The last 3x3 conv feeds the head; drawn at least 12 wide, because narrower ones bottleneck ten
# classes (RESULTS.md, "Search space choices"). Its own param name keeps each name's range the
# same in every trial.
HEAD_IN, HEAD_IN_MIN = "head_in", 12
# 3x3 convs per block: up to 4, because the best finished designs sat at a bound of 3 and public
# sub-8k MNIST designs stack 4-5 thin convs after the pool (RESULTS.md, "Search space choices").
CONVS_RANGE = (1, 4)


class Infeasible(Exception):
    """The drawn shape has no member within the budget (or no valid geometry)."""


@dataclass(frozen=True)
class Shape:
    """A network up to a common width scale: the widths as drawn, scaled by `scaled(shape, s)`."""

    blocks: tuple[tuple[tuple[int, ...], int, int, bool], ...]  # (widths, padding, transition or 0, separable)
    options: dict[str, Any]  # ArchSpec fields that do not scale (bn, dropout, head, ...)


def scaled(shape: Shape, scale: float, in_channels: int, in_size: int, num_classes: int) -> ArchSpec:
    def w(x: int) -> int:
        return x if scale == 1.0 else max(WIDTH_MIN, round(scale * x))

    last = len(shape.blocks) - 1
    # a head-less end: the last 3x3 conv is the classifier, num_classes wide whatever the scale
    end = (num_classes,) if shape.options.get("head") == "gap" else ()
    blocks = tuple(
        Block(tuple(w(x) for x in widths) + (end if i == last else ()), padding=padding,
              transition=w(t) if t else 0, pool=i < last, separable=separable)
        for i, (widths, padding, t, separable) in enumerate(shape.blocks)
    )
    return ArchSpec(blocks=blocks, in_channels=in_channels, in_size=in_size, num_classes=num_classes,
                    **shape.options)


def fit_widths(shape: Shape, cap: Budget, *, grow: bool, **io: int) -> ArchSpec:
    """The widest scaling of `shape` within every cap of `cap` (bisection; each count is monotone).

    grow=False never scales above the widths as drawn."""
    over = cap.over(scaled(shape, 0.0, **io))
    if over:
        raise Infeasible(f"narrowest member over the budget: {'; '.join(over)}")
    if not grow and cap.fits(scaled(shape, 1.0, **io)):
        return scaled(shape, 1.0, **io)
    lo, hi = 0.0, 1.0
    while grow and cap.fits(scaled(shape, hi, **io)) and hi < 4096:
        lo, hi = hi, hi * 2
    for _ in range(40):
        mid = (lo + hi) / 2
        if cap.fits(scaled(shape, mid, **io)):
            lo = mid
        else:
            hi = mid
    return scaled(shape, lo, **io)


def _width_names(block: int, convs: int, last: bool, headless: bool = False) -> list[str]:
    """Param names of a block's drawn 3x3 widths: the conv feeding a 1x1 head is `head_in`; with
    a head-less end the last conv is the classifier and is not drawn."""
    names = [f"b{block}_w{j}" for j in range(convs)]
    if not last:
        return names
    return names[:-1] if headless else names[:-1] + [HEAD_IN]


def _width(trial: optuna.trial.BaseTrial, name: str) -> int:
    return trial.suggest_int(name, HEAD_IN_MIN if name == HEAD_IN else WIDTH_MIN, WIDTH_MAX, log=True)


def sample_shape(trial: optuna.trial.BaseTrial, separable: bool = False, headless: bool = False) -> Shape:
    """separable=True also draws, per block, whether its 3x3 convs are depthwise-separable;
    headless=True also draws the head-less end (head "gap"), decided first because it decides
    whether the last conv is drawn."""
    blocks = []
    gap = headless and trial.suggest_categorical("headless", [False, True])
    n_blocks = trial.suggest_int("n_blocks", 2, 3)
    for i in range(n_blocks):
        n = trial.suggest_int(f"b{i}_convs", *CONVS_RANGE)
        widths = tuple(_width(trial, name) for name in _width_names(i, n, i == n_blocks - 1, gap))
        pad = trial.suggest_int(f"b{i}_pad", 0, 1)
        sep = separable and trial.suggest_categorical(f"b{i}_separable", [False, True])
        has_t = i < n_blocks - 1 and trial.suggest_categorical(f"b{i}_has_transition", [False, True])
        blocks.append((widths, pad, _width(trial, f"b{i}_transition") if has_t else 0, sep))
    head = "gap" if gap else trial.suggest_categorical("head", ["conv_gap", "gap_conv"])
    hidden = trial.suggest_categorical("head_hidden", list(HEAD_HIDDEN)) if head == "gap_conv" else 0
    options = dict(
        # no "none": every draw without batch norm in bench fidelity stayed at chance for 15 epochs
        bn=trial.suggest_categorical("bn", ["affine", "plain"]),
        bn_after_relu=trial.suggest_categorical("bn_after_relu", [False, True]),
        conv_bias=trial.suggest_categorical("conv_bias", [False, True]),
        dropout=trial.suggest_float("dropout", 0.0, 0.15),
        dropout_at=trial.suggest_categorical("dropout_at", ["conv", "pool"]),
        head=head,
        head_hidden=hidden,
        head_relu=hidden > 0 and trial.suggest_categorical("head_relu", [False, True]),
    )
    return Shape(tuple(blocks), options)


# Recipe fields the search holds at the seeds' values (`Recipe` defaults): StepLR, no Nesterov, no
# weight decay, no label smoothing. Drawn, they ranked last by importance and no good trial used
# another value (RESULTS.md, "Search space choices"; the optimizer and schedule: "Recipes").
FIXED_RECIPE = dict(optimizer="sgd", schedule="step", nesterov=False, weight_decay=0.0, label_smoothing=0.0)


def step_range(epochs: int) -> tuple[int, int]:
    """StepLR step sizes a trial draws: 40-67% of the run (6-10 of 15 epochs); shorter and longer
    steps rarely finished and paid most of the late-pruned seconds (RESULTS.md, "Search space
    choices")."""
    lo = max(1, round(0.4 * epochs))
    return lo, max(lo, round(epochs * 2 / 3))


# The augmentation family, one for every data set: each trial draws one kind (no augmentation, the
# seeds' warp: rotation, zoom and shift, or a random crop of the zero-padded image) and, where a
# left-right mirror keeps the labels (`mirror`), whether to mirror half the images. Random erasing
# is not drawn: on Fashion-MNIST at 8,000 params it lowered validation at 15 epochs and at the
# search's 2 (RESULTS.md, "Augmentation on Fashion-MNIST"). MNIST draws the warp alone, as every
# recorded MNIST study did (DIGITS).
AUGMENTS = ("none", "warp", "crop")
DIGITS = ("warp",)
CROP_PAD = (1, 4)  # pixels of zero padding a crop draws (of 28: up to a seventh of the image)
AUGMENT_PARAMS = ("augment", "rotate", "scale", "translate", "crop_pad", "hflip")  # the trial params it draws


def sample_augmentation(trial: optuna.trial.BaseTrial, kinds: tuple[str, ...] = DIGITS,
                        mirror: bool = False) -> dict[str, Any]:
    """One kind of `kinds` (drawn as `augment` where there are several) and its strength; with
    `mirror`, the mirror's probability (0 or 0.5)."""
    kind = trial.suggest_categorical("augment", list(kinds)) if len(kinds) > 1 else kinds[0]
    out: dict[str, Any] = dict(rotate=0.0)
    if kind == "warp":
        out.update(rotate=trial.suggest_float("rotate", 0.0, 12.0), scale=trial.suggest_float("scale", 0.0, 0.15),
                   translate=trial.suggest_float("translate", 0.0, 0.15))
    elif kind == "crop":
        out.update(crop_pad=trial.suggest_int("crop_pad", *CROP_PAD))
    if mirror:
        out.update(hflip=trial.suggest_categorical("hflip", [0.0, 0.5]))
    return out


def augment_kind(recipe: Recipe) -> str:
    """The family's kind of a recipe's augmentation; ValueError where it is none of them."""
    warp, crop = (recipe.rotate, recipe.scale, recipe.translate) != (0, 0, 0), recipe.crop_pad > 0
    if warp and crop:
        raise ValueError("outside the family: a warp or a crop, not both")
    return "warp" if warp else "crop" if crop else "none"


LABEL_SMOOTHING = (0.0, 0.02)  # the public tiny designs' 0.02, or none


def sample_recipe(trial: optuna.trial.BaseTrial, epochs: int, recipes: bool = False, augment: tuple[str, ...] = DIGITS,
                  mirror: bool = False) -> Recipe:
    """The training recipe. recipes=True also draws the optimizer (SGD or Adam, each with its own
    learning-rate range under its own param name), the schedule (StepLR or OneCycle) and label
    smoothing; by default they are held at the seeds' SGD + StepLR (FIXED_RECIPE). The
    augmentation: `sample_augmentation(trial, augment, mirror)`."""
    batch_size = trial.suggest_categorical("batch_size", [64, 128, 256])
    fixed = dict(FIXED_RECIPE)
    if recipes:
        fixed["optimizer"] = trial.suggest_categorical("optimizer", ["sgd", "adam"])
        fixed["schedule"] = trial.suggest_categorical("schedule", ["step", "onecycle"])
        fixed["label_smoothing"] = trial.suggest_categorical("label_smoothing", list(LABEL_SMOOTHING))
    if fixed.get("optimizer", "sgd") == "adam":
        opt = dict(lr=trial.suggest_float("adam_lr", 0.001, 0.03, log=True))
    else:  # the seeds use 0.01; fidelity draws at 0.005-0.016 crawled
        opt = dict(lr=trial.suggest_float("lr", 0.01, 0.3, log=True), momentum=trial.suggest_float("momentum", 0.8, 0.95))
    if fixed["schedule"] == "step":
        opt.update(step_size=trial.suggest_int("step_size", *step_range(epochs)), gamma=trial.suggest_float("gamma", 0.05, 1.0))
    return Recipe(epochs=epochs, batch_size=batch_size, **opt, **sample_augmentation(trial, augment, mirror), **fixed)


@dataclass(frozen=True)
class Draw:
    spec: ArchSpec  # the candidate, within every cap of the budget (guaranteed)
    recipe: Recipe
    drawn_params: int | None  # count of the widths as drawn; None if that geometry is invalid


def pad_to_fit(shape: Shape, io: dict[str, int]) -> Shape:
    """If the feature map would shrink below 1x1, pad blocks (last first) until it does not.

    Geometry does not depend on widths, so this is decided once per shape, deterministically.
    """
    blocks = list(shape.blocks)
    for i in range(len(blocks), -1, -1):
        candidate = Shape(tuple(blocks), shape.options)
        try:
            scaled(candidate, 1.0, **io)
            return candidate
        except SpecError:
            if i > 0:
                widths, _, t, separable = blocks[i - 1]
                blocks[i - 1] = (widths, 1, t, separable)
    return Shape(tuple(blocks), shape.options)


def sample(
    trial: optuna.trial.BaseTrial,
    budget: int | Budget,
    epochs: int,
    *,
    separable: bool = False,
    headless: bool = False,
    recipes: bool = False,
    augment: tuple[str, ...] = DIGITS,
    mirror: bool = False,
    in_channels: int = 1,
    in_size: int = 28,
    num_classes: int = 10,
) -> Draw:
    """Draw a candidate within the budget (a parameter count, or a `Budget` with device caps), or
    raise Infeasible (nothing to train).
    separable=True widens the space with depthwise-separable blocks (`--separable`), headless=True
    with the head-less end (`--headless`), recipes=True with the optimizer, schedule and label
    smoothing (`--recipes all`). `augment` names the augmentation kinds drawn (AUGMENTS, or MNIST's
    DIGITS) and `mirror` whether a mirror keeps the labels."""
    shape = sample_shape(trial, separable, headless)
    fit = trial.suggest_categorical("fit", ["fill", "as_drawn"])
    fill = trial.suggest_float("fill", *FILL_RANGE) if fit == "fill" else 1.0
    recipe = sample_recipe(trial, epochs, recipes=recipes, augment=augment, mirror=mirror)
    io = dict(in_channels=in_channels, in_size=in_size, num_classes=num_classes)
    shape = pad_to_fit(shape, io)
    limits = budget if isinstance(budget, Budget) else Budget(budget)
    try:
        drawn: int | None = count_params(scaled(shape, 1.0, **io))
        try:
            spec = fit_widths(shape, limits.with_params(max(int(fill * limits.params), 1)), grow=fit == "fill", **io)
        except Infeasible:  # the aim `fill` was too low for this shape; the hard budget may still hold
            spec = fit_widths(shape, limits, grow=False, **io)
    except SpecError as e:
        raise Infeasible(f"invalid geometry: {e}") from None
    assert limits.fits(spec)
    return Draw(spec, recipe, drawn)


def design_params(spec: ArchSpec, recipe: Recipe, separable: bool = False, headless: bool = False,
                  recipes: bool = False, augment: tuple[str, ...] = DIGITS, mirror: bool = False) -> dict[str, Any]:
    """The trial params under which `sample(...)` with the same flags draws exactly this spec and
    recipe ("as drawn").

    Raises ValueError for a design outside the family (the presets' test checks they are in it).
    """
    return {**_shape_params(spec, separable, headless), "fit": "as_drawn", **_recipe_params(recipe, recipes),
            **_augment_params(recipe, augment, mirror)}


def _shape_params(spec: ArchSpec, separable: bool, headless: bool) -> dict[str, Any]:
    if not separable and any(b.separable for b in spec.blocks):
        raise ValueError("outside the family: separable blocks are drawn only with separable=True")
    gap = spec.head == "gap"
    if gap and not headless:
        raise ValueError("outside the family: the head-less end is drawn only with headless=True")
    if not 2 <= len(spec.blocks) <= 3 or any(b.pool != (i < len(spec.blocks) - 1) for i, b in enumerate(spec.blocks)):
        raise ValueError("outside the family: 2-3 blocks, a pool after every block but the last")
    if any(not CONVS_RANGE[0] <= len(b.widths) <= CONVS_RANGE[1] for b in spec.blocks):
        raise ValueError(f"outside the family: {CONVS_RANGE[0]}-{CONVS_RANGE[1]} 3x3 convs per block")
    if not gap and spec.blocks[-1].widths[-1] < HEAD_IN_MIN:
        raise ValueError(f"outside the family: the conv feeding the head is narrower than {HEAD_IN_MIN}")
    p: dict[str, Any] = {"headless": gap} if headless else {}
    p["n_blocks"] = len(spec.blocks)
    for i, b in enumerate(spec.blocks):
        p[f"b{i}_convs"] = len(b.widths)
        p.update(zip(_width_names(i, len(b.widths), i == len(spec.blocks) - 1, gap), b.widths))
        p[f"b{i}_pad"] = b.padding
        if separable:
            p[f"b{i}_separable"] = b.separable
        if i < len(spec.blocks) - 1:
            p[f"b{i}_has_transition"] = b.transition > 0
            if b.transition:
                p[f"b{i}_transition"] = b.transition
    if not gap:
        p["head"] = spec.head
    p.update(bn=spec.bn, bn_after_relu=spec.bn_after_relu, conv_bias=spec.conv_bias, dropout=spec.dropout,
             dropout_at=spec.dropout_at)
    if spec.head == "gap_conv":
        p["head_hidden"] = spec.head_hidden
        if spec.head_hidden:
            p["head_relu"] = spec.head_relu
    return p


def _recipe_params(recipe: Recipe, recipes: bool) -> dict[str, Any]:
    held = {k: v for k, v in FIXED_RECIPE.items() if not recipes or k in ("nesterov", "weight_decay")}
    off = [k for k, v in held.items() if getattr(recipe, k) != v]
    if off:
        raise ValueError(f"outside the family: the search holds {', '.join(off)} at {held}")
    p: dict[str, Any] = {"batch_size": recipe.batch_size}
    if recipes:
        if recipe.optimizer not in ("sgd", "adam") or recipe.label_smoothing not in LABEL_SMOOTHING:
            raise ValueError("outside the family: optimizer sgd or adam, label smoothing 0 or 0.02")
        p.update(optimizer=recipe.optimizer, schedule=recipe.schedule, label_smoothing=recipe.label_smoothing)
    p.update(adam_lr=recipe.lr) if recipe.optimizer == "adam" else p.update(lr=recipe.lr, momentum=recipe.momentum)
    if recipe.schedule == "step":
        p.update(step_size=drawn_recipe(recipe).step_size, gamma=recipe.gamma)
    return p


def _augment_params(recipe: Recipe, kinds: tuple[str, ...], mirror: bool) -> dict[str, Any]:
    kind = augment_kind(recipe)
    if kind == "none" and "none" not in kinds and "warp" in kinds:
        kind = "warp"  # the warp at zero strength: MNIST's family holds no augmentation this way
    if kind not in kinds:
        raise ValueError(f"outside the family: this data draws {' or '.join(kinds)}, not {kind}")
    if kind == "crop" and not CROP_PAD[0] <= recipe.crop_pad <= CROP_PAD[1]:
        raise ValueError(f"outside the family: a crop pads by {CROP_PAD[0]}-{CROP_PAD[1]} pixels")
    if recipe.hflip not in ((0.0, 0.5) if mirror else (0.0,)):
        raise ValueError("outside the family: a mirror of probability 0 or 0.5, where it keeps the labels")
    if recipe.erase:
        raise ValueError("outside the family: random erasing is not drawn")
    p: dict[str, Any] = {"augment": kind} if len(kinds) > 1 else {}
    if kind == "warp":
        p.update(rotate=recipe.rotate, scale=recipe.scale, translate=recipe.translate)
    elif kind == "crop":
        p.update(crop_pad=recipe.crop_pad)
    if mirror:
        p.update(hflip=recipe.hflip)
    return p


def drawn_recipe(recipe: Recipe) -> Recipe:
    """The recipe `sample` draws from `design_params(spec, recipe)`: the step moved into
    `step_range`. With gamma 1 (seed-002: no decay) every step is the same schedule; seeds 000 and
    004 step at 8 of 15 epochs, inside the range. At other epoch counts a step outside the range is
    moved to its nearest end (so a short run's baseline decays its learning rate once)."""
    lo, hi = step_range(recipe.epochs)
    return replace(recipe, step_size=hi if recipe.gamma == 1.0 else min(max(recipe.step_size, lo), hi))
