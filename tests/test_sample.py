from dataclasses import replace

import optuna
import pytest

from conftest import run_cli
from space import (
    Budget, Infeasible, count_macs, count_params, count_ram, family_min_macs, family_min_params, family_min_ram, sample,
)
from space import PRESETS
from space.sampling import AUGMENT_PARAMS, AUGMENTS, DIGITS, FILL_RANGE, augment_kind, design_params

optuna.logging.set_verbosity(optuna.logging.ERROR)


def draws(budget: int | Budget, n: int, seed: int = 0, **space: bool):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        try:
            out.append(sample(trial, budget, 15, **space))
        except Infeasible as e:
            out.append(e)
        study.tell(trial, 0.0)
    return out


@pytest.mark.parametrize("budget", [300, 1500, 8000, 20000])
def test_every_draw_is_within_budget(budget):
    results = draws(budget, 200, seed=budget)
    feasible = [d for d in results if not isinstance(d, Infeasible)]
    assert feasible, "no feasible draw at all"
    assert all(count_params(d.spec) <= budget for d in feasible)


SEED_004_MACS = 1_069_104  # seed-004's own cost: a device cap its notebook design just meets


@pytest.mark.parametrize("cap", [Budget(8000, macs=SEED_004_MACS), Budget(8000, ram=8 * 1024),
                                 Budget(8000, macs=400_000, ram=6 * 1024)])
def test_every_draw_keeps_every_device_cap(cap):
    """The caps are as hard as the parameter budget: every draw fits all of them, and draws the
    caps bind are scaled down to them rather than refused (so most draws still train)."""
    results = draws(cap, 150, seed=1, separable=True)
    feasible = [d for d in results if not isinstance(d, Infeasible)]
    assert len(feasible) >= 0.5 * len(results)
    assert all(cap.fits(d.spec) for d in feasible)
    assert all(count_params(d.spec) <= 8000 for d in feasible)
    if cap.macs:  # the cap binds: uncapped, many of the same draws cost more
        uncapped = [d for d in draws(8000, 150, seed=1, separable=True) if not isinstance(d, Infeasible)]
        assert sum(count_macs(d.spec) > cap.macs for d in uncapped) >= 10
        assert max(count_macs(d.spec) for d in feasible) >= 0.9 * cap.macs  # fitted up to it, not far below
    if cap.ram:
        assert max(count_ram(d.spec) for d in feasible) >= 0.8 * cap.ram


def test_infeasible_draws_say_which_cap():
    results = draws(Budget(8000, ram=family_min_ram(separable=True) + 200), 60, seed=2, separable=True)
    reasons = [str(r) for r in results if isinstance(r, Infeasible)]
    assert reasons and any("peak RAM" in r for r in reasons)


@pytest.mark.parametrize("separable", [False, True])
def test_the_cheapest_and_leanest_designs_the_cap_checks_allow_are_drawn(separable):
    """family_min_macs and family_min_ram are met by a design the sampler draws (the smallest shape,
    its head after the pool); one MAC or byte less and that shape is infeasible."""
    params = {"n_blocks": 2, "b0_convs": 1, "b0_pad": 0, "b0_has_transition": False, "b1_convs": 1,
              "head_in": 12, "b1_pad": 0, "b0_w0": 4, "head": "gap_conv", "head_hidden": 0, "bn": "plain",
              "bn_after_relu": False, "conv_bias": False, "dropout": 0.0, "dropout_at": "conv", "fit": "fill",
              "fill": 1.0, "batch_size": 128, "lr": 0.05, "momentum": 0.9, "step_size": 8, "gamma": 0.1,
              "rotate": 0.0, "scale": 0.0, "translate": 0.0}
    if separable:
        params.update(b0_separable=False, b1_separable=True)
    macs, ram = family_min_macs(separable=separable), family_min_ram(separable=separable)
    d = sample(optuna.trial.FixedTrial(params), Budget(8000, macs=macs, ram=ram), 15, separable=separable)
    assert (count_macs(d.spec), count_ram(d.spec)) == (macs, ram)
    for cap in (Budget(8000, macs=macs - 1), Budget(8000, ram=ram - 1)):
        with pytest.raises(Infeasible):
            sample(optuna.trial.FixedTrial(params), cap, 15, separable=separable)


def test_draws_use_most_of_the_budget():
    feasible = [d for d in draws(8000, 300) if not isinstance(d, Infeasible)]
    uses = sorted(count_params(d.spec) / 8000 for d in feasible)
    assert len(feasible) >= 0.85 * 300
    assert uses[len(uses) // 2] >= 0.7  # median
    assert uses[len(uses) // 4] >= FILL_RANGE[0] - 0.1  # "as drawn" widths may be small; most fill


def test_spec_is_a_pure_function_of_the_params():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    t = study.ask()
    d = sample(t, 8000, 15)
    fixed = optuna.trial.FixedTrial(t.params)
    assert sample(fixed, 8000, 15).spec == d.spec


@pytest.mark.parametrize("separable", [False, True])
def test_the_smallest_design_the_budget_check_allows_is_one_the_sampler_draws(separable):
    """family_min_params is exactly the sampler's smallest member: a budget check below it would
    refuse budgets the space can fill, one above it would start a search of infeasible draws."""
    smallest = family_min_params(separable=separable)
    params = {"n_blocks": 2, "b0_convs": 1, "b0_pad": 0, "b0_has_transition": False, "b1_convs": 1,
              "head_in": 12, "b1_pad": 0, "b0_w0": 4, "head": "conv_gap", "bn": "plain", "bn_after_relu": False,
              "conv_bias": False, "dropout": 0.0, "dropout_at": "conv", "fit": "fill", "fill": 1.0,
              "batch_size": 128, "lr": 0.05, "momentum": 0.9, "step_size": 8, "gamma": 0.1, "rotate": 0.0,
              "scale": 0.0, "translate": 0.0}
    if separable:
        params.update(b0_separable=False, b1_separable=True)
    d = sample(optuna.trial.FixedTrial(params), smallest, 15, separable=separable)
    assert count_params(d.spec) == smallest
    with pytest.raises(Infeasible):
        sample(optuna.trial.FixedTrial(params), smallest - 1, 15, separable=separable)
    if separable:
        assert smallest < family_min_params(separable=False)


def test_tiny_budget_is_infeasible_not_over():
    results = draws(family_min_params(), 100)
    assert any(isinstance(r, Infeasible) for r in results)
    assert all(count_params(r.spec) <= family_min_params() for r in results if not isinstance(r, Infeasible))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_preset_is_a_point_of_the_sampled_space(name):
    """The preset's params, fed through the sampler, give back the identical spec, count and recipe."""
    from dataclasses import replace

    from space.sampling import drawn_recipe

    spec, recipe = PRESETS[name]
    recipe = replace(recipe, epochs=15)
    for separable in (False, True):  # the default space, and the one widened by --separable
        params = design_params(spec, recipe, separable)
        d = sample(optuna.trial.FixedTrial(params), count_params(spec), 15, separable=separable)
        assert d.spec == spec and count_params(d.spec) == count_params(spec)
        assert d.recipe == drawn_recipe(recipe)
        # and through a real study: enqueued with those params, TPE sees an ordinary trial
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
        study.enqueue_trial(params)
        trial = study.ask()
        assert sample(trial, count_params(spec), 15, separable=separable).spec == spec and trial.params == params


def test_fill_draws_grow_and_as_drawn_draws_keep_their_widths():
    feasible = [d for d in draws(8000, 300) if not isinstance(d, Infeasible)]
    assert any(d.drawn_params is not None and count_params(d.spec) > d.drawn_params for d in feasible)  # grown
    assert any(d.drawn_params is not None and count_params(d.spec) < d.drawn_params for d in feasible)  # shrunk


def test_the_conv_feeding_the_head_is_never_a_bottleneck():
    from dataclasses import replace

    from space.sampling import HEAD_IN_MIN, design_params

    spec, recipe = PRESETS["seed-004"]
    last = spec.blocks[-1]
    narrow = replace(spec, blocks=(*spec.blocks[:-1], replace(last, widths=(*last.widths[:-1], 4))))
    with pytest.raises(ValueError, match="narrower"):
        design_params(narrow, recipe)
    for seed in range(60):
        trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed)).ask()
        draw = sample(trial, 8000, 15)
        assert trial.params["head_in"] >= HEAD_IN_MIN
        if trial.params["fit"] == "as_drawn" and draw.drawn_params <= 8000:
            assert draw.spec.blocks[-1].widths[-1] == trial.params["head_in"]


def test_the_search_holds_the_measured_recipe_fields_fixed():
    """Every draw trains StepLR without Nesterov, weight decay or label smoothing; a recipe that
    needs another value is reported as outside the family rather than silently changed."""
    from dataclasses import replace

    from space.sampling import FIXED_RECIPE, design_params

    for seed in range(20):
        trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed)).ask()
        recipe = sample(trial, 8000, 15).recipe
        assert {k: getattr(recipe, k) for k in FIXED_RECIPE} == FIXED_RECIPE
        assert not set(FIXED_RECIPE) & set(trial.params)
    spec, recipe = PRESETS["seed-004"]
    with pytest.raises(ValueError, match="schedule"):
        design_params(spec, replace(recipe, schedule="onecycle"))


def test_a_block_stacks_up_to_four_convs_and_no_more():
    """A thin 4-conv stack after the pool (the public sub-8k designs) is a point of the space, its
    count exact; a fifth conv is outside the family. Random draws reach 4 convs too."""
    from dataclasses import replace


    spec, recipe = PRESETS["seed-004"]
    deep = replace(spec, blocks=(spec.blocks[0], replace(spec.blocks[1], widths=(10, 12, 14, 16))))
    d = sample(optuna.trial.FixedTrial(design_params(deep, replace(recipe, epochs=15))), 8000, 15)
    assert d.spec == deep and count_params(d.spec) == count_params(deep) <= 8000
    with pytest.raises(ValueError, match="convs per block"):
        design_params(replace(deep, blocks=(spec.blocks[0], replace(spec.blocks[1], widths=(8,) * 4 + (12,)))), recipe)
    drawn = set()
    for seed in range(40):
        trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed)).ask()
        sample(trial, 8000, 15)
        drawn |= {trial.params[k] for k in trial.params if k.endswith("_convs")}
    assert drawn == {1, 2, 3, 4}


def test_separable_blocks_are_drawn_only_when_asked_and_widen_the_network():
    """With separable=True the sampler draws separable blocks, and at the same budget their widths
    grow past the full ones; by default it never does, and a separable spec is outside that space."""
    from dataclasses import replace


    spec, recipe = PRESETS["seed-004"]
    params = {**design_params(spec, replace(recipe, epochs=15), separable=True), "fit": "fill", "fill": 1.0}
    full = sample(optuna.trial.FixedTrial(params), 4000, 15, separable=True).spec
    sep = sample(optuna.trial.FixedTrial({**params, "b1_separable": True}), 4000, 15, separable=True).spec
    assert sep.blocks[1].separable and not full.blocks[1].separable
    assert count_params(sep) <= 4000 and count_params(full) <= 4000
    assert sum(sep.blocks[1].widths) > 1.5 * sum(full.blocks[1].widths)
    assert design_params(sep, replace(recipe, epochs=15), separable=True)["b1_separable"] is True
    with pytest.raises(ValueError, match="separable"):
        design_params(sep, replace(recipe, epochs=15))
    for separable, want in ((True, {False, True}), (False, set())):
        drawn = set()
        for seed in range(20):
            trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed)).ask()
            d = sample(trial, 8000, 15, separable=separable)
            drawn |= {trial.params[k] for k in trial.params if k.endswith("_separable")}
            assert separable or not any(b.separable for b in d.spec.blocks)
        assert drawn == want


@pytest.mark.parametrize("flag, space", [("--separable", "the space with separable blocks"),
                                         ("--no-separable", "the plain space")])
def test_bench_space_draws_at_the_asked_budget_from_the_asked_space(tmp_path, flag, space):
    proc = run_cli("bench", "space", "--budget", "6000", flag, cwd=tmp_path, check=True)
    assert f"budget 6,000 from {space}" in proc.stdout
    assert "trainable after width fitting (never over budget):         100.0%" in proc.stdout


@pytest.mark.parametrize("io", [dict(in_channels=3, in_size=32, num_classes=10), dict(in_channels=1, in_size=8, num_classes=10),
                                dict(in_channels=3, in_size=64, num_classes=100), dict(in_channels=1, in_size=20, num_classes=2)])
def test_draws_follow_the_datas_channels_size_and_classes(io):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    drawn = []
    for _ in range(60):
        trial = study.ask()
        try:
            drawn.append(sample(trial, 8000, 15, separable=True, **io))
        except Infeasible:
            pass
        study.tell(trial, 0.0)
    assert len(drawn) > 30
    for d in drawn:
        assert count_params(d.spec) <= 8000
        assert (d.spec.in_channels, d.spec.in_size, d.spec.num_classes) == tuple(io.values())


@pytest.mark.parametrize("kinds,mirror", [(AUGMENTS, True), (AUGMENTS, False), (DIGITS, False)])
def test_the_augmentation_family_draws_one_kind_and_the_mirror_only_where_it_keeps_labels(kinds, mirror):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    seen, flips = set(), set()
    for _ in range(60):
        trial = study.ask()
        try:
            d = sample(trial, 8000, 15, separable=True, recipes=True, augment=kinds, mirror=mirror)
        except Infeasible:
            study.tell(trial, 0.0)
            continue
        study.tell(trial, 0.0)
        kind = augment_kind(d.recipe)  # raises where a draw warps and crops at once
        seen.add(kind)
        flips.add(d.recipe.hflip)
        assert d.recipe.erase == 0
        assert ("augment" in trial.params) == (len(kinds) > 1) and ("hflip" in trial.params) == mirror
        if kind == "crop":
            assert 1 <= d.recipe.crop_pad <= 4
        # every draw is a point of the family: its params give it back
        params = design_params(PRESETS["seed-004"][0], d.recipe, separable=True, recipes=True, augment=kinds, mirror=mirror)
        drawn = {k: v for k, v in trial.params.items() if k in AUGMENT_PARAMS}
        assert {k: v for k, v in params.items() if k in AUGMENT_PARAMS} == drawn
        again = sample(optuna.trial.FixedTrial(params), 8000, 15, separable=True, recipes=True, augment=kinds, mirror=mirror)
        assert again.recipe == d.recipe
    assert seen == set(kinds)
    assert flips == ({0.0, 0.5} if mirror else {0.0})


def test_the_digits_family_draws_what_every_recorded_mnist_study_drew():
    """MNIST's space keeps its params: the warp's three, no kind, no mirror (its studies resume as they are)."""
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    sample(trial, 8000, 15)
    assert {"rotate", "scale", "translate"} <= set(trial.params)
    assert not {"augment", "crop_pad", "hflip"} & set(trial.params)
    no_aug = replace(PRESETS["seed-004"][1], rotate=0.0, scale=0.0, translate=0.0)  # the warp at zero there
    assert design_params(PRESETS["seed-004"][0], no_aug)["rotate"] == 0.0


def test_recipes_outside_the_family_are_named():
    spec, recipe = PRESETS["seed-004"]
    plain = replace(recipe, rotate=0.0, scale=0.0, translate=0.0)
    for bad, augment, mirror, words in [
            (replace(recipe, hflip=0.5), AUGMENTS, False, "mirror"),
            (replace(recipe, crop_pad=2), AUGMENTS, True, "not both"),
            (replace(plain, crop_pad=8), AUGMENTS, True, "pads by 1-4"),
            (replace(recipe, erase=0.5), AUGMENTS, True, "erasing"),
            (replace(plain, crop_pad=2), DIGITS, False, "draws warp, not crop")]:
        with pytest.raises(ValueError, match=words):
            design_params(spec, bad, augment=augment, mirror=mirror)


def test_the_headless_and_recipe_switches_widen_the_space_and_keep_the_presets_in_it():

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=4))
    seen = set()
    for _ in range(150):
        trial = study.ask()
        try:
            d = sample(trial, 8000, 15, separable=True, headless=True, recipes=True)
        except Infeasible:
            study.tell(trial, 0.0)
            continue
        study.tell(trial, 0.0)
        assert count_params(d.spec) <= 8000
        if d.spec.head == "gap":
            assert d.spec.blocks[-1].widths[-1] == 10 and "head_in" not in trial.params
        seen.add((d.spec.head == "gap", d.recipe.optimizer, d.recipe.schedule))
        assert (d.recipe.optimizer == "adam") == ("adam_lr" in trial.params)
    assert {g for g, _, _ in seen} == {False, True}
    assert {(o, s) for _, o, s in seen} == {("sgd", "step"), ("sgd", "onecycle"), ("adam", "step"), ("adam", "onecycle")}
    for name, (spec, recipe) in PRESETS.items():  # every hand design is still a point of the wider space
        params = design_params(spec, recipe, separable=True, headless=True, recipes=True)
        d = sample(optuna.trial.FixedTrial(params), 10**6, 15, separable=True, headless=True, recipes=True)
        assert d.spec == spec, name
