"""The confirmation race, the verdict's statistics, and your own design as a baseline."""

import json
import math
import shutil

import numpy as np
import optuna
import pytest
from scipy import stats

from conftest import ROOT, run_cli
from search.store.selection import ranked
from search.verdict import call, compare, diff_interval, format_line, mcnemar, pack, race_round, unpack

# --- the race ----------------------------------------------------------------------------------


def run_race(means: dict[int, float], std: float, first: int, cap: int, seed: int = 0) -> dict[int, int]:
    """Seeds each contender gets when its validation finals are draws around `means`."""
    rng = np.random.default_rng(seed)
    finals = {d: list(rng.normal(m, std, first)) for d, m in means.items()}
    out: set[int] = set()
    while more := race_round(finals, out, cap):
        for d in more:
            finals[d].append(float(rng.normal(means[d], std)))
    return {d: len(v) for d, v in finals.items()}


def test_a_clearly_worse_contender_stops_after_the_first_round():
    seeds = run_race({0: 99.40, 1: 99.38, 2: 98.90}, std=0.05, first=3, cap=6)
    assert seeds[2] == 3  # 0.5 points behind: out at once
    assert seeds[0] == seeds[1] == 6  # the two close ones race to the cap


def test_two_equal_designs_both_reach_the_cap_and_the_cap_holds():
    for seed in range(5):
        seeds = run_race({0: 99.40, 1: 99.40}, std=0.06, first=3, cap=5, seed=seed)
        assert max(seeds.values()) <= 5
        assert seeds[0] == seeds[1]  # nobody stops while the other goes on alone


def test_the_leader_keeps_at_least_as_many_seeds_as_any_rival():
    finals = {0: [99.4, 99.5, 99.45], 1: [99.1, 99.0, 99.05], 2: [99.44, 99.41, 99.47]}
    out: set[int] = set()
    assert race_round(finals, out, cap=6) == [0, 2] and out == {1}
    assert race_round({0: [99.4, 99.5]}, set(), cap=6) == []  # alone: nothing to race


# --- the verdict's figures ---------------------------------------------------------------------


def test_the_interval_is_welchs_computed_by_hand():
    a, b = [99.40, 99.50, 99.45], [99.30, 99.36, 99.41, 99.33]
    diff, lo, hi = diff_interval(a, b)
    va, vb = np.var(a, ddof=1) / 3, np.var(b, ddof=1) / 4
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 3)  # Welch-Satterthwaite
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert diff == pytest.approx(np.mean(a) - np.mean(b))
    assert (lo, hi) == pytest.approx((diff - half, diff + half))
    assert math.isnan(diff_interval([99.4], b)[1])  # one seed: no interval


def test_mcnemar_pools_seed_matched_discordant_images_into_an_exact_test():
    a = [np.array([1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1], bool)] * 2
    b = [np.array([1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1], bool)] * 2
    m = mcnemar(a, b)
    assert (m["only_a"], m["only_b"], m["pairs"]) == (8, 2, 2)
    assert m["p"] == pytest.approx(2 * (1 + 10 + 45) / 1024)  # two-sided, P(X <= 2 | n = 10, 1/2)
    assert mcnemar(a, a)["p"] == 1.0


def test_the_call_needs_both_the_interval_and_the_paired_test():
    assert call((0.01, 0.2), 0.01) == "a measurable lead"
    assert call((-0.2, -0.01), 0.01) == "measurably behind"
    assert call((-0.02, 0.14), 0.01) == "not a measurable difference"
    assert call((0.01, 0.2), 0.31) == "not a measurable difference"


def test_compare_and_its_line():
    rng = np.random.default_rng(1)
    masks = [rng.random(1000) < 0.99 for _ in range(3)]
    a = {"val_acc": [[99.4], [99.5], [99.45]], "test_acc": [[99.5], [99.4], [99.45]],
         "test_correct": [pack(m) for m in masks]}
    b = {"val_acc": [[99.3], [99.35], [99.4]], "test_acc": [[99.4], [99.3], [99.35]],
         "test_correct": [pack(m) for m in masks]}
    v = {**compare(a, b), "a_label": "winner (trial 7)", "b_label": "seed-004"}
    assert v["test_diff"] == pytest.approx(0.1) and v["seeds"] == [3, 3]
    assert v["mcnemar"]["p"] == 1.0 and v["call"] == "not a measurable difference"
    line = format_line(v)
    assert line.startswith("winner (trial 7) vs seed-004: +0.10 test (95% CI ")
    assert "McNemar p=1 over 3 seed pairs): not a measurable difference" in line
    assert all((unpack(pack(m)) == m).all() for m in masks)
    one = {**compare({**a, "val_acc": a["val_acc"][:1], "test_acc": a["test_acc"][:1]}, b),
           "a_label": "winner (trial 7)", "b_label": "seed-004"}
    assert "(no interval with one seed a side, McNemar p=" in format_line(one) and "nan" not in format_line(one)


# --- your design as the baseline, end to end ---------------------------------------------------

ARGS = ["--budget", "8000", "--epochs", "1", "--subset", "1500", "--sampler", "random", "--seed", "3",
        "--top-k", "1", "--confirm-seeds", "2", "--confirm-cap", "3", "--refit", "none", "--no-baselines"]


def headless_design(path, **over):
    """A spec file as `export` writes it, of a design outside the sampled space (a head-less end)."""
    spec = {"blocks": [{"widths": [8, 12], "transition": 8, "pool": True}, {"widths": [12, 16, 10]}],
            "head": "gap", "bn_after_relu": True, **over}
    recipe = {"batch_size": 64, "lr": 0.01, "optimizer": "adam", "rotate": 5.0}
    path.write_text(json.dumps({"spec": spec, "recipe": recipe}))
    return path


def test_a_user_design_is_trained_confirmed_and_compared_like_a_preset(tmp_path, data_dir):
    mine = headless_design(tmp_path / "mine.json")
    proc = run_cli(*ARGS, "--trials", "4", "--data-dir", str(data_dir), "--study-name", "own",
                   "--baseline", str(mine), cwd=tmp_path, check=True)
    study = optuna.load_study(study_name="own", storage=f"sqlite:///{tmp_path}/studies/own.db")
    first = study.trials[0]
    assert first.user_attrs["baseline"] == "mine" and first.params == {}  # outside the space: as it is
    assert first.user_attrs["spec"]["head"] == "gap" and first.user_attrs["recipe"]["optimizer"] == "adam"
    assert len(first.user_attrs["confirm"]["test_correct"]) == first.user_attrs["confirm"]["seeds"] >= 2
    lines = study.user_attrs["verdict"]  # the winner (or, if mine wins, the best searched design) vs mine
    assert " vs mine: " in lines[-1] and "McNemar p=" in lines[-1]
    assert study.user_attrs["verdict_data"][-1]["b"] == 0
    board = run_cli("leaderboard", "--study", "own", cwd=tmp_path, check=True).stdout
    assert all(line in proc.stdout and line in board for line in lines) and "mine (" in board
    # the set of baselines is part of the study's identity
    again = run_cli(*ARGS, "--trials", "4", "--data-dir", str(data_dir), "--study-name", "own", cwd=tmp_path)
    assert again.returncode == 2 and "baseline_keys" in again.stderr
    assert len(optuna.load_study(study_name="own", storage=f"sqlite:///{tmp_path}/studies/own.db").trials) == \
        len(study.trials)


def test_a_preset_named_as_baseline_is_enqueued_with_its_params(tmp_path):
    from search.baselines import resolve
    from search.job.starts import start_points
    from space.sampling import design_params

    own = resolve(("seed-004",), 8000, 15)
    points = start_points(8000, 15, presets=False, own=own)
    assert points == [(design_params(own[0].spec, own[0].recipe), {"baseline": "seed-004"})]


BAD_FILES = [
    (lambda p: p.write_text("{not json") and p, "not valid JSON"),
    (lambda p: headless_design(p, head="wrong"), "head: expected one of"),
    (lambda p: headless_design(p, num_classes=7, blocks=[{"widths": [8], "pool": True}, {"widths": [7]}]),
     "made for other images"),
    (lambda p: p.with_name("missing.json"), "cannot read it"),
]


@pytest.mark.parametrize("make, words", BAD_FILES)
def test_a_bad_baseline_file_is_refused_in_one_line(tmp_path, make, words):
    from search.baselines import IMAGE_IO, resolve
    from search.errors import UserError

    with pytest.raises(UserError, match=words) as e:
        resolve((str(make(tmp_path / "bad.json")),), 8000, 15, IMAGE_IO)
    assert "\n" not in str(e.value)


def test_an_over_budget_baseline_exits_2_before_anything_is_trained(tmp_path):
    path = headless_design(tmp_path / "big.json", blocks=[{"widths": [64, 64], "pool": True}, {"widths": [64, 64, 10]}])
    proc = run_cli(*ARGS, "--trials", "2", "--data-dir", str(tmp_path / "nodata"), "--baseline", str(path),
                   cwd=tmp_path)
    assert proc.returncode == 2 and "params > 8,000 (the budget)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "studies").exists() and not (tmp_path / "nodata").exists()


def test_bench_race_prints_the_race_against_fixed_seeds(tmp_path):
    proc = run_cli("bench", "race", "--races", "40", cwd=tmp_path, check=True)
    rows = [line.split() for line in proc.stdout.splitlines() if line[:4].replace(".", "").isdigit()]
    assert [r[0] for r in rows] == ["0.00", "0.03", "0.05", "0.10", "0.20", "0.30"]
    assert float(rows[-1][1].rstrip("%")) > 95 and 6 <= float(rows[-1][4]) < 12  # a clear gap: decided early
    bad = run_cli("bench", "race", "--seeds", "1", cwd=tmp_path)
    assert bad.returncode == 2 and "--seeds must be >= 2" in bad.stderr


def test_where_no_baseline_fits_the_winner_is_compared_with_the_runner_up(tmp_path):
    from search.job.confirm import study_verdicts
    from search.store.archive import read_archive
    from search.store.records import is_confirmed
    from search.store.study import verdict_lines

    # the recorded 4,000 run: no preset fits, three drawn designs confirmed over 6 seeds each
    copy = tmp_path / "mnist-b4000.jsonl"
    shutil.copy(ROOT / "studies" / "archive" / "mnist-b4000.jsonl", copy)
    study = optuna.load_study(study_name="mnist-b4000", storage=read_archive(copy))
    confirmed = [t for t in ranked(study) if is_confirmed(t)]
    [v] = study_verdicts(study)
    assert (v["a"], v["b"]) == (confirmed[0].number, confirmed[1].number)
    assert v["line"].startswith(f"winner (trial {v['a']}) vs runner-up (trial {v['b']}): ")
    assert v["seeds"] == [6, 6] and v["mcnemar"]["pairs"] == 6
    assert verdict_lines(study) == [v["line"]]  # what the run stored is what it computes
