"""`bench recipe`: designs x recipes over seeds; the summary is a pure function of the stored file."""

import json
from dataclasses import replace

from conftest import run_cli
import pytest

from search.bench.recipe import design_names, designs, recipes, summary, variant_labels
from search.errors import UserError
from space import PRESETS, count_params
from space.recipe import Recipe


def record(design, label, seed, val, test):
    return {"design": design, "recipe_label": label, "seed": seed, "val": [90.0, val], "test": [90.0, test],
            "recipe": {"schedule": "step"}}


def test_the_variants_change_only_the_training_not_the_augmentation():
    base = Recipe(batch_size=64, rotate=5.0, scale=0.1)
    training = {label: v for label, v in recipes(base).items() if not label.startswith("aug-")}
    for label, (r, _) in training.items():  # the batch size: the design's own, but in -bs32
        assert (r.rotate, r.scale, r.epochs) == (5.0, 0.1, 15), label
        assert r.batch_size == (32 if label.endswith("bs32") else 64), label
    assert {(r.optimizer, r.schedule, kd > 0) for r, kd in training.values()} == {
        ("sgd", "step", False), ("adam", "step", False), ("sgd", "onecycle", False), ("adam", "onecycle", False),
        ("sgd", "step", True)}
    assert recipes(base)["sgd-step-kd"][0] == base
    # the averaging variant is adam-onecycle's training, with the weights' average scored
    assert replace(recipes(base)["adam-onecycle-ema"][0], ema=0.0) == recipes(base)["adam-onecycle"][0]
    assert recipes(base)["adam-onecycle-ema"][0].ema > 0
    assert replace(recipes(base)["adam-onecycle-bs32"][0], batch_size=64) == recipes(base)["adam-onecycle"][0]
    assert variant_labels("sgd-step, sgd-step-kd") == ["sgd-step", "sgd-step-kd"]
    with pytest.raises(UserError, match="choose from"):
        variant_labels("sgd-step,adam-twostep")


def test_the_augmentation_variants_change_only_the_augmentation():
    from dataclasses import fields

    base = Recipe(batch_size=64, optimizer="adam", schedule="onecycle", lr=0.01, rotate=5.0, scale=0.1)
    augmentation = {"rotate", "scale", "translate", "crop_pad", "hflip", "erase"}
    variants = {label[4:]: r for label, (r, kd) in recipes(base).items() if label.startswith("aug-") and not kd}
    assert set(variants) == {"none", "flip", "flip-erase", "crop-flip", "crop-flip-erase"}
    for name, r in variants.items():
        changed = {f.name for f in fields(r) if getattr(r, f.name) != getattr(base, f.name)}
        assert changed and changed <= augmentation, name
    warp = lambda r: (r.rotate, r.scale, r.translate)  # noqa: E731
    assert warp(variants["none"]) == (0, 0, 0) and (variants["none"].hflip, variants["none"].erase) == (0, 0)
    assert warp(variants["flip"]) == warp(base) and variants["flip"].hflip == 0.5  # the own warp, mirrored
    assert warp(variants["crop-flip"]) == (0, 0, 0) and variants["crop-flip"].crop_pad > 0
    assert variants["crop-flip-erase"].erase > 0 and variants["flip-erase"].erase > 0


def test_the_designs_fit_the_budget_and_include_a_headless_end():
    ds = designs(8000)
    assert all(count_params(spec) <= 8000 for spec, _ in ds.values())
    assert ds["headless"][0].head == "gap"
    small = designs(4000)  # seed-004 fitted to the budget; the head-less design does not fit
    assert set(small) == {"seed-004-fitted", "seed-004-sep", "seed-000-sep"}
    assert all(count_params(spec) <= 4000 for spec, _ in small.values())
    assert small["seed-000-sep"][1] == PRESETS["seed-000"][1]  # seed-000's own recipe, as its start point
    assert design_names("seed-000-sep", 4000) == ["seed-000-sep"] and design_names(None, 4000) is None
    with pytest.raises(UserError, match="--names 'headless': choose from"):
        design_names("headless", 4000)


def test_the_refinements_of_adam_onecycle_are_paired_with_it_on_the_same_seeds():
    """-ema against its own runs' last step (the same training); -bs32 against adam-onecycle's runs,
    or against an averaging run's last step where that seed has no plain run."""
    records = [{**record("d", "adam-onecycle-ema", s, val, test), "last_val": lv, "last_test": lt}
               for s, (val, test, lv, lt) in enumerate([(99.3, 99.4, 99.2, 99.35), (99.4, 99.5, 99.3, 99.4)])]
    records += [record("d", "adam-onecycle", 1, 99.1, 99.2),
                record("d", "adam-onecycle-bs32", 0, 99.3, 99.45), record("d", "adam-onecycle-bs32", 1, 99.3, 99.3)]
    rows = {line.split()[1]: line for line in summary(records).splitlines() if "/" in line}
    assert rows["adam-onecycle-ema"].split()[:5] == ["d", "adam-onecycle-ema", "2", "99.350/", "99.250"]
    assert "+0.100 (+0.10..+0.10)" in rows["adam-onecycle-ema"] and "+0.075 (" in rows["adam-onecycle-ema"]
    # seed 0 pairs with the averaging run's last step (99.2 / 99.35), seed 1 with the plain run (99.1 / 99.2)
    assert rows["adam-onecycle-bs32"].split()[3:7] == ["99.300/", "99.150", "99.375/", "99.275"]


def test_the_summary_pairs_each_recipe_with_sgd_step_on_the_same_seeds(tmp_path):
    records = [record("d", "sgd-step", 0, 99.0, 99.1), record("d", "sgd-step", 1, 99.2, 99.3),
               record("d", "adam-step", 0, 99.3, 99.2), record("d", "adam-step", 1, 99.3, 99.4)]
    text = summary(records)
    adam = next(line for line in text.splitlines() if "adam-step" in line).split()
    assert adam[2:5] == ["2", "99.300", "99.300"] and adam[5] == "+0.200"
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"records": records}))
    proc = run_cli("bench", "recipe", "--analyse", str(path), cwd=tmp_path, check=True)
    assert proc.stdout.strip() == text


def test_the_summary_replays_the_pruner_against_sgd_step_and_against_its_own_kind():
    """A OneCycle run that starts slow: stopped at epoch 2 against its StepLR twin, later (or never)
    once judged from its peak, and never against another seed of its own kind that rose alike."""
    step = [98.0, 98.8, 99.0, 99.1, 99.2, 99.3, 99.3, 99.3, 99.3, 99.4, 99.4, 99.4, 99.4, 99.4, 99.4]
    slow = [94.0, 96.0, 97.0, 97.5, 98.0, 98.5, 99.0, 99.2, 99.3, 99.35, 99.4, 99.4, 99.45, 99.45, 99.45]
    records = [{"design": "d", "recipe_label": label, "seed": s, "val": curve, "test": curve,
                "recipe": {"schedule": "step" if label == "sgd-step" else "onecycle"}}
               for s in (0, 1) for label, curve in (("sgd-step", step), ("sgd-onecycle", slow))]
    row = next(line for line in summary(records).splitlines() if "sgd-onecycle" in line)
    assert row.split()[-2:] == ["2/5/-", "2/5/-"]


def test_an_averaging_run_also_records_its_last_steps_accuracy(data_dir, tmp_path):
    """One epoch of the real bench: the averaged weights are scored in the curves, the last step's
    weights in last_val / last_test, and the summary pairs the two."""
    from search.bench.recipe import run

    out = tmp_path / "r.json"
    records = run(out=out, seeds=1, epochs=1, data_dir=str(data_dir), device="cpu", budget=4000,
                  names=["seed-000-sep"], variants=["adam-onecycle-ema"], log=lambda _: None, subset=8000)
    (rec,) = records
    assert rec["recipe"]["ema"] > 0 and len(rec["val"]) == 1
    assert 50 < rec["last_val"] <= 100 and 50 < rec["last_test"] <= 100
    assert json.loads(out.read_text())["records"] == records
    assert any(line.split()[:3] == ["seed-000-sep", "adam-onecycle-ema", "1"] and "/" in line
               for line in summary(records).splitlines())
