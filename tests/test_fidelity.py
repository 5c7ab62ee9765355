"""bench fidelity: rank statistics, pruning replays and the analysis of stored curves (no training)."""

import json

import pytest

from conftest import run_cli
from search import fidelity as F


def test_spearman_and_ranks():
    assert F.ranks([3, 1, 3, 2]) == [3.5, 1.0, 3.5, 2.0]
    assert F.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert F.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert F.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)


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
    assert none["epoch_share"] == 1.0 and none["best_kept"] == 1.0
    path = tmp_path / "fidelity.json"
    path.write_text(json.dumps({"records": records}))
    proc = run_cli("bench", "fidelity", "--analyse", str(path), cwd=tmp_path, check=True)
    assert "6 designs" in proc.stdout and "val@1" in proc.stdout and "median, warm-up 3" in proc.stdout
