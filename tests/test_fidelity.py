"""bench fidelity: rank statistics, pruning replays and the analysis of stored curves (no training)."""

import json

import pytest

from conftest import run_cli
from search.bench import fidelity as F
from search.bench.common import draw_designs, ranks, spearman


def test_spearman_and_ranks():
    assert ranks([3, 1, 3, 2]) == [3.5, 1.0, 3.5, 2.0]
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)


GOOD = [[90.0, 95.0, 99.0]] * 3


def test_median_replay_prunes_a_poor_curve_at_the_warm_up_epoch():
    bad = [50.0, 60.0, 70.0]
    spent, done = F.replay([*GOOD, bad], F.Policy("m", "percentile", keep=0.5, warmup=2), [0, 1, 2, 3])
    assert done == [0, 1, 2] and spent == 3 * 3 + 2
    spent, done = F.replay([*GOOD, bad], F.Policy("m", "percentile", keep=0.5, warmup=1), [3, 0, 1, 2])
    assert done == [3, 0, 1, 2] and spent == 12  # fewer than 3 completed trials before it: no pruning


def test_halving_replay_promotes_the_top_third_at_each_rung():
    curves = [[float(v), float(v) + 1, float(v) + 2] for v in (70, 80, 90, 60, 95, 85)]
    policy = F.Policy("h", "halving", min_resource=1, eta=3)
    spent, done = F.replay(curves, policy, list(range(6)))
    # rung 1 sees 70, 80, 90, 60, 95, 85 in turn: promoted while among the top 1/3 seen so far
    assert done == [0, 1, 2, 4]
    assert spent == 4 * 3 + 2 * 1


def _record(label, curve, subset, synflow):
    return {"label": label, "params": 5000, "epochs": [{"val_acc": v, "train_loss": 1 / v, "wall": 10.0} for v in curve],
            "subset": {"val_acc": subset, "wall": 5.0}, "synflow": {"log10": synflow, "wall": 0.1}}


def test_analysis_of_stored_curves_through_the_cli(tmp_path):
    records = [_record(f"d{i}", [80 + i, 85 + i, 90 + i, 91 + i, 92 + i, 93 + i], 70 + i, 5 - i) for i in range(6)]
    a = F.analyse(records)
    by = {row["signal"]: row for row in a["signals"]}
    assert by["val@1"]["spearman"] == pytest.approx(1.0) and by["synflow"]["spearman"] == pytest.approx(-1.0)
    assert by["val@2"]["cost_share"] == pytest.approx(2 / 6)
    assert {p["policy"] for p in a["policies"]} == {p.name for p in F.POLICIES}
    none = next(p for p in a["policies"] if p["policy"] == "none")
    assert none["epoch_share"] == 1.0 and none["best_kept"] == 1.0 and none["top2_kept"] == 1.0
    # the curves never cross: the second best is below the median of 3+ completed only if most of
    # them are the best one, which cannot be, so the plain median keeps both
    med = next(p for p in a["policies"] if p["policy"] == "median, warm-up 1")
    assert med["best_kept"] == 1.0 and med["top2_kept"] == 1.0 and med["epoch_share"] < 1.0
    path = tmp_path / "fidelity.json"
    path.write_text(json.dumps({"records": records}))
    proc = run_cli("bench", "fidelity", "--analyse", str(path), cwd=tmp_path, check=True)
    assert "6 designs" in proc.stdout and "val@1" in proc.stdout and "median, warm-up 3" in proc.stdout


def test_default_pruner_replay_tolerates_early_lag_and_prunes_late():
    policy = next(p for p in F.POLICIES if p.kind == "tolerant")
    base = [97.0, 98.0, 98.5, 99.0, 99.2, 99.3]
    slow_starter = [96.0, 97.5, 98.2, 98.9, 99.1, 99.4]  # within the closing tolerance all along
    laggard = [96.0, 97.2, 98.0, 98.3, 98.6, 98.8]  # falls behind by more than the tolerance later
    spent, done = F.replay([base, slow_starter, laggard], policy, [0, 1, 2])
    assert done == [0, 1]
    # median of the two completed at epoch e less max(floor, 1 - e/6): pruned at the first epoch below it
    first_below = next(e for e in range(policy.warmup, 6)
                       if max(laggard[:e]) < (base[e - 1] + slow_starter[e - 1]) / 2
                       - max(policy.floor, 1 - e / 6))
    assert spent == 6 + 6 + first_below
    plain = F.Policy("m", "percentile", keep=0.5, warmup=2, startup=1)
    assert F.replay([base, slow_starter], plain, [0, 1])[1] == [0]  # the plain median stops the slow starter


@pytest.mark.parametrize("separable", [False, True])
def test_draws_come_from_the_searched_space_within_budget(separable):
    from space import count_params
    from search.job.starts import start_points

    designs = draw_designs(12, 4000, 15, seed=3, separable=separable)
    starts = len(start_points(4000, 15, separable))
    assert len(designs) == starts + 12 and all(count_params(spec) <= 4000 for _, spec, _ in designs)
    has_sep = any(b.separable for _, spec, _ in designs[starts:] for b in spec.blocks)
    assert has_sep == separable


def test_the_designs_start_with_the_searchs_start_points():
    # at 8,000 seed-004 fits and is trained as it is; seed-000 (9,060) only fitted to the budget
    from space import PRESETS

    labels = {label: spec for label, spec, _ in draw_designs(0, 8000, 15, seed=0, separable=True)}
    assert labels["seed-004"] == PRESETS["seed-004"][0]
    assert {"seed-000 fitted", "seed-002 fitted", "seed-004 separable"} <= set(labels)
    assert "seed-000" not in labels


def test_resume_with_other_settings_is_refused_in_one_line(tmp_path):
    path = tmp_path / "fid.json"
    stored = {"budget": 8000, "epochs": 15, "seed": 0, "records": [_record("d0", [90.0, 95.0], 80.0, 1.0)]}
    path.write_text(json.dumps(stored))  # written before --separable existed: the plain space
    proc = run_cli("bench", "fidelity", "--out", str(path), "--designs", "1", cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "separable=False (asked True)" in proc.stderr
    assert json.loads(path.read_text()) == stored  # nothing lost
    path.write_text(json.dumps({**stored, "separable": True}))  # the presets as they are, not fitted
    proc = run_cli("bench", "fidelity", "--out", str(path), "--designs", "1", cwd=tmp_path)
    assert proc.returncode != 0 and proc.stderr.strip().count("\n") == 0
    assert "not the search's start points" in proc.stderr
    path.write_text("not json")
    proc = run_cli("bench", "fidelity", "--out", str(path), cwd=tmp_path)
    assert proc.returncode != 0 and "not a fidelity file" in proc.stderr
