"""The trials a study starts from: the hand designs as baselines, the rest as start points."""

from __future__ import annotations

from dataclasses import replace

import optuna
from optuna.trial import TrialState

from search.baselines import IMAGE_IO, Baseline, resolve
from search.config import SearchConfig
from search.job.policy import make_pruner, make_sampler
from search.store import records
from search.store.records import start_label
from search.store.study import open_or_create
from space.budget import Budget
from space.count import count_params
from space.presets import PRESETS
from space.sampling import AUGMENT_PARAMS, CONVS_RANGE, DIGITS, HEAD_IN, design_params


# With `--recipes all` the start points (never the baselines: they are the user's designs as they
# are) train under Adam + OneCycle at a peak learning rate of 0.01, their batch size and
# augmentation kept: on the frontier's winners at 4,000, 6,000 and 8,000, on seed-004 and on a
# head-less design it ended above the seeds' SGD + StepLR in validation, paired over seeds, in
# every one (RESULTS.md, "Adam + OneCycle on the frontier's winners").
START_RECIPE = dict(optimizer="adam", schedule="onecycle", lr=0.01)


def start_points(budget: int | Budget, epochs: int, separable: bool = False, presets: bool = True,
                 own: list[Baseline] | tuple = (), io: dict[str, int] | None = None, *, headless: bool = False,
                 recipes: bool = False, augment: tuple[str, ...] = DIGITS, mirror: bool = False) -> list[tuple[dict, dict]]:
    """(params, user_attrs) of the trials a study starts from.

    A preset that fits the budget (every cap of it) is enqueued as drawn: a baseline, always confirmed. Every other
    one is enqueued with `fit="fill"` at the whole budget, so the sampler scales its widths to fit:
    a start point TPE learns from, ranked like any sampled design. Least scaled first. With
    `separable`, each preset also starts a separable variant (`separable_variant`), and with
    `headless` a head-less one (`headless_variant`), last. With `recipes` every start point
    trains under START_RECIPE. The user's own baselines (`own`, already checked against the
    budget) come right after the preset baselines (`own_baseline`). The presets are MNIST designs: on other images (`io`) every one
    is a fitted start point, and on data that draws the whole augmentation family (`augment`) the
    sampler draws a start point's augmentation (a baseline keeps its own).
    """
    io = io or IMAGE_IO
    limits = budget if isinstance(budget, Budget) else Budget(budget)
    space = dict(separable=separable, headless=headless, recipes=recipes, augment=augment, mirror=mirror)
    baselines, fitted, separated = [], [], []
    for name, (spec, recipe) in sorted(PRESETS.items(), key=lambda kv: count_params(kv[1][0])) if presets else []:
        recipe = replace(recipe, epochs=epochs)
        start = replace(recipe, **START_RECIPE) if recipes else recipe
        params = _drawn_augmentation(design_params(spec, start, **space), augment)
        if io == IMAGE_IO and limits.fits(spec):
            baselines.append((design_params(spec, recipe, **space), {records.BASELINE: name}))
        else:
            fitted.append(({**params, "fit": "fill", "fill": 1.0}, {records.START: f"{name} fitted"}))
        if separable:
            separated.append((separable_variant(params, len(spec.blocks)), {records.START: f"{name} separable"}))
        if headless and (variant := headless_variant(params, len(spec.blocks))):
            separated.append((variant, {records.START: f"{name} headless"}))
    named = {a[records.BASELINE] for _, a in baselines}
    mine = [own_baseline(b, space) for b in own if b.label not in named]
    return baselines + mine + fitted + separated


def _drawn_augmentation(params: dict, augment: tuple[str, ...]) -> dict:
    """A start point without its augmentation where the data draws more than the digits' warp: the
    presets' warp was chosen for digits, so there the sampler draws it."""
    return params if augment == DIGITS else {k: v for k, v in params.items() if k not in AUGMENT_PARAMS}


def own_baseline(b: Baseline, space: dict) -> tuple[dict, dict]:
    """A user's design as a baseline: with its params where it is a point of the sampled space (TPE
    then models it like any trial); else with the design itself on the trial, which the objective
    trains as it is (records.FIXED_DESIGN)."""
    try:
        return design_params(b.spec, b.recipe, **space), {records.BASELINE: b.label}
    except ValueError:
        return {}, {records.BASELINE: b.label, records.FIXED_DESIGN: {"spec": b.spec.to_dict(), "recipe": b.recipe.to_dict()}}


def separable_variant(params: dict, n_blocks: int) -> dict:
    """A preset's params with every block after the first separable, fitted to the whole budget.

    Random separable draws are mostly odd shapes that get pruned, so TPE learns little about
    separable blocks from them; the hand designs with this one switch are the strong ones
    (RESULTS.md, "Separable blocks")."""
    return {**params, **{f"b{i}_separable": True for i in range(1, n_blocks)}, "fit": "fill", "fill": 1.0}


def headless_variant(params: dict, n_blocks: int) -> dict | None:
    """A preset's params ending head-less: the conv that fed its 1x1 head is followed by the
    classifier conv and the global pool, fitted to the whole budget; None where the last block
    has no room for one more conv."""
    last = n_blocks - 1
    convs = params[f"b{last}_convs"]
    if convs + 1 > CONVS_RANGE[1]:
        return None
    head = ("head", "head_hidden", "head_relu", HEAD_IN)
    return {**{k: v for k, v in params.items() if k not in head}, "headless": True, f"b{last}_convs": convs + 1,
            f"b{last}_w{convs - 1}": params[HEAD_IN], "fit": "fill", "fill": 1.0}


def enqueue_missing_starts(study: optuna.Study, budget: int | Budget, epochs: int, separable: bool = False,
                           presets: bool = True, own: list[Baseline] | tuple = (),
                           io: dict[str, int] | None = None, **space) -> list[str]:
    """Enqueue each start point (baselines first) unless a trial of it finished, runs or waits.

    A baseline interrupted by Ctrl-C was closed as failed; a resume enqueues it again (after any
    start points still waiting), so the study does not lose the design it must beat. Duplicates
    from racing processes step aside at run time (objective._refuse_duplicate_start).
    """
    alive = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    have = {start_label(t.user_attrs) for t in study.get_trials(deepcopy=False, states=alive)}
    missing = [(p, a) for p, a in start_points(budget, epochs, separable, presets, own, io, **space)
               if start_label(a) not in have]
    for params, attrs in missing:
        study.enqueue_trial(params, user_attrs=attrs)
    return [start_label(a) for _, a in missing]


def create_or_resume(storage, cfg: SearchConfig, io: dict[str, int] | None = None) -> optuna.Study:
    """Open (or create) the study for a search with its sampler and pruner; enqueue the start
    points it lacks. `io`: the data's channels, image size and classes."""
    study = open_or_create(storage, cfg, make_sampler(cfg.sampler, cfg.seed, cfg.trials),
                           make_pruner(cfg.pruner, cfg.trial_epochs))
    space = cfg.space()
    enqueue_missing_starts(study, cfg.limits, cfg.epochs, space.pop("separable"), cfg.baselines,
                           resolve(cfg.baseline, cfg.limits, cfg.epochs, io), io, **space)
    return study
