"""bench proxy: rank agreement, the top-2 recall under the replayed pruner, the choice of a search
fidelity, and the designs it trains (no training here: the runs are hours on this CPU)."""

import json
import random

import pytest
from scipy import stats

from conftest import run_cli
from search.bench import proxy as P
from search.bench.common import mixed_designs


def test_kendall_matches_scipys_tau_b_with_ties():
    rng = random.Random(0)
    for _ in range(20):
        a = [rng.choice([1.0, 2.0, 3.0, 4.0]) for _ in range(9)]
        b = [rng.choice([1.0, 2.0, 5.0]) for _ in range(9)]
        assert P.kendall(a, b) == pytest.approx(stats.kendalltau(a, b).statistic)


def _record(label, truth, proxy, schedule="onecycle"):
    """A design whose 15-epoch seeds end at `truth` (+-0.02) and whose proxies end at `proxy`."""
    runs = {f"e{e}": {"val": [proxy - 1.0] * (e - 1) + [proxy], "wall": 1.0, "cpu": e} for e in P.PROXIES}
    runs.update({f"s{s}": {"val": [truth - 1.0] * 14 + [truth + d], "wall": 1.0, "cpu": 15}
                 for s, d in zip(P.TRUTH_SEEDS, (0.02, -0.02))})
    return {"label": label, "recipe": {"schedule": schedule}, "params": 5000, "runs": runs}


def test_a_proxy_that_ranks_as_the_truth_keeps_the_top_two_and_is_chosen():
    records = [_record(f"d{i}", 98.0 + i / 10, 97.0 + i / 10) for i in range(10)]
    a = P.analyse(records, P.PROXIES, orders=200)
    rows = {r["proxy"]: r for r in a["rows"]}
    assert rows["2"]["spearman"] == pytest.approx(1.0) and rows["2"]["kendall"] == pytest.approx(1.0)
    assert rows["2"]["recall"][2] == 1.0 and rows["2, unpruned"]["cost"] == pytest.approx(2 / 15)
    assert rows["2, unpruned"]["search_h"] == pytest.approx(P.SEARCH_TRIALS * 2 / 3600)  # 2 s a design here
    # the worst designs are stopped early in some orders: the search pays for fewer epochs
    assert 0 < rows["2"]["spent"] < 1 and rows["2"]["cost"] == pytest.approx(2 / 15 * rows["2"]["spent"])
    assert rows["2"]["loss"] == dict.fromkeys(P.TOP_KS, 0.0)  # its top k always hold the truth's best
    # the cheapest proxy, with the smallest top-k, priced with confirmation's first round of it
    assert (a["choice"].epochs, a["choice"].pruned, a["choice"].top_k) == (min(P.PROXIES), True, 2)
    assert a["choice"].confirm_h == pytest.approx(P.CONFIRM_SEEDS * 2 * 15 / 3600)  # two designs, 15 s a run
    assert "cheapest: --search-epochs 1 --top-k 2" in P.format_analysis(a)


def test_the_cost_is_cpu_time_on_a_cpu_wall_time_on_a_gpu_and_never_mixes_the_two():
    records = [_record(f"d{i}", 98.0 + i / 10, 97.0 + i / 10) for i in range(6)]
    for r in records[3:]:  # on a GPU: CPU time says little there, wall time is what it cost
        for run in r["runs"].values():
            run.update(device="cuda", wall=run["cpu"] / 10, cpu=1.0)
    records[0]["runs"]["e2"].update(device="cuda", wall=99.0)  # its truth ran on a CPU: not compared
    rows = {r["proxy"]: r for r in P.analyse(records, P.PROXIES, orders=10)["rows"]}
    assert rows["2, unpruned"]["cost"] == pytest.approx(2 / 15) and rows["5, unpruned"]["cost"] == pytest.approx(5 / 15)


def test_a_proxy_that_reverses_the_ranking_is_never_chosen():
    records = [_record(f"d{i}", 98.0 + i / 10, 99.0 - i / 10) for i in range(10)]
    a = P.analyse(records, P.PROXIES, orders=200)
    assert all(r["recall"][5] < P.RECALL_GOAL for r in a["rows"] if r["proxy"].isdigit())
    # the proxy's favourites are the truth's worst: picking among them loses points, fewer with k
    loss = next(r for r in a["rows"] if r["proxy"] == "2")["loss"]
    assert loss[2] > loss[5] > 0.1
    assert a["choice"] is None and "keep the protocol's epochs" in P.format_analysis(a)


def test_the_unpruned_rows_show_what_the_pruner_alone_loses():
    records = [_record(f"d{i}", 98.0 + i / 10, 97.0 + i / 10) for i in range(10)]
    for r in records[-2:]:  # the truth's top 2 rank first on the proxy too, after terrible early epochs
        r["runs"]["e3"]["val"][:2] = [50.0, 50.0]
    rows = {r["proxy"]: r for r in P.analyse(records, P.PROXIES, orders=200)["rows"]}
    assert rows["3"]["recall"][2] < 0.5 and rows["3, unpruned"]["recall"][2] == 1.0
    assert rows["3"]["spearman"] == rows["3, unpruned"]["spearman"]  # the ranking itself is the same
    assert rows["2"]["recall"] == rows["2, unpruned"]["recall"]  # nothing for the pruner to drop there


def test_the_pruner_replay_drops_a_design_from_the_confirmed():
    # a design whose proxy curve trails the finished ones by far at the judged epoch is pruned
    curves = [[95.0, 97.0, 98.0]] * 3 + [[60.0, 70.0, 99.5]]
    assert P.survivors(curves, ["step"] * 4, [0, 1, 2, 3]) == [0, 1, 2]
    assert P.survivors(curves, ["step"] * 3 + ["onecycle"], [0, 1, 2, 3]) == [0, 1, 2, 3]  # like with like


def test_only_designs_with_every_run_are_analysed():
    records = [_record(f"d{i}", 98.0 + i / 10, 97.0 + i / 10) for i in range(4)]
    del records[0]["runs"]["s1001"]
    assert P.analyse(records, P.PROXIES, orders=10)["designs"] == 3


def test_designs_are_the_start_points_and_draws_of_the_default_space_alternated():
    from space import count_params

    designs = mixed_designs(4, 4000, 15, seed=0)
    labels = [d[0] for d in designs]
    assert labels[1].startswith("draw-") and not labels[0].startswith("draw-")
    assert sum(x.startswith("draw-") for x in labels) == 4
    assert all(count_params(spec) <= 4000 for _, spec, _ in designs)
    assert {recipe.schedule for _, _, recipe in designs} >= {"onecycle"}  # every recipe is drawn


def test_analysis_through_the_cli(tmp_path):
    records = [_record(f"d{i}", 98.0 + i / 10, 97.0 + i / 10) for i in range(6)]
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"proxies": list(P.PROXIES), "records": records}))
    out = run_cli("bench", "proxy", "--analyse", str(path), cwd=tmp_path, check=True).stdout
    assert "6 designs with every run" in out and "15 (one seed)" in out


@pytest.mark.parametrize("bad", [["--proxies", "two"], ["--proxies", "0"], ["--proxies", "15"], ["--hours", "0"],
                                 ["--hours", "-1"]])
def test_bad_proxies_get_one_line_and_exit_2_before_any_data(tmp_path, monkeypatch, capsys, bad):
    from search.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["bench", "proxy", *bad]) == 2
    err = capsys.readouterr().err
    assert bad[0] in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "data").exists() and not (tmp_path / "studies").exists()


def test_workers_share_the_designs_and_merge_every_run_into_one_file(tmp_path, monkeypatch):
    # the training is replaced by a stand-in here: this checks the split and the merge, the
    # runs themselves are the trainer's (tests/test_train.py)
    import trainers

    calls = []

    def fake_run(key, spec, recipe, data, precision):
        calls.append(key)
        return {"val": [99.0], "wall": 1.0, "cpu": 1.0}

    monkeypatch.setattr(P, "train_run", fake_run)
    monkeypatch.setattr(trainers, "load_data", lambda *a, **k: None)
    out = tmp_path / "p.json"
    kw = dict(designs=2, budget=4000, epochs=15, seed=0, proxies=[2], out=out, data_dir="data", device="cpu",
              workers=2, log=lambda line: None)
    P.run_proxy(**kw, worker=0)
    first = len(calls)
    records = P.run_proxy(**kw, worker=1)
    designs = mixed_designs(2, 4000, 15, 0)
    assert 0 < first < len(calls) == len(designs) * 3  # e2 and two truth seeds per design, each once
    assert sorted(r["label"] for r in records) == sorted(d[0] for d in designs)
    assert all(set(r["runs"]) == {"e2", "s1000", "s1001"} for r in records)
    assert P.run_proxy(**kw, worker=0) == records and len(calls) == len(designs) * 3  # nothing left to run
    assert json.loads(out.read_text())["proxies"] == [2]
    # a longer list of proxies adds only the new lengths' runs, to every design, in the same file
    records = P.run_proxy(**{**kw, "proxies": [1, 2], "workers": 1}, worker=0)
    assert calls[len(designs) * 3:] == ["e1"] * len(designs)
    assert all(set(r["runs"]) == {"e1", "e2", "s1000", "s1001"} for r in records)
    assert json.loads(out.read_text())["proxies"] == [1, 2]
    P.run_proxy(**{**kw, "proxies": [2], "workers": 1}, worker=0)  # fewer lengths: nothing to run, none lost
    assert len(calls) == len(designs) * 4 and json.loads(out.read_text())["proxies"] == [1, 2]


def test_too_few_finished_designs_are_reported_not_ranked():
    records = [_record(f"d{i}", 98.0 + i / 10, 97.0 + i / 10) for i in range(P.MIN_DESIGNS)]
    del records[0]["runs"]["e2"]
    a = P.analyse(records, P.PROXIES)
    assert a["rows"] == [] and a["choice"] is None
    assert "too few to rank" in P.format_analysis(a) and f"(of {P.MIN_DESIGNS} begun)" in P.format_analysis(a)


def _row(epochs, recall, search_h, pruned=True, ceiling=False, run_h=0.1):
    """An analysis row: `recall` for k = 2..5, confirmation priced at `run_h` per design and seed."""
    return {"epochs": epochs, "pruned": pruned, "ceiling": ceiling, "search_h": search_h,
            "recall": dict(zip(P.TOP_KS, recall)), "confirm_h": {k: P.CONFIRM_SEEDS * k * run_h for k in P.TOP_KS}}


def test_the_choice_may_be_unpruned_but_never_the_ceiling():
    rows = [_row(2, (0.5, 0.5, 0.5, 0.5), 1.0), _row(2, (0.95,) * 4, 1.4, pruned=False),
            _row(3, (0.92,) * 4, 2.0), _row(15, (1.0,) * 4, 0.0, ceiling=True)]
    c = P.choose(rows)
    assert (c.epochs, c.pruned, c.top_k) == (2, False, 2) and c.flags == "--search-epochs 2 --top-k 2 --pruner none"
    assert P.choose(rows[:1] + rows[3:]) is None


def test_a_cheap_proxy_that_needs_a_large_top_k_pays_for_it_in_confirmation():
    cheap_wide = _row(1, (0.5, 0.6, 0.8, 0.95), 1.0, run_h=0.2)  # top 2 kept only within its top 5
    dear_narrow = _row(2, (0.95,) * 4, 2.0, run_h=0.2)
    # 15-epoch seeds dear: 3 extra designs x 3 seeds x 0.2 h outweigh the extra hour of search
    c = P.choose([cheap_wide, dear_narrow] + [_row(15, (1.0,) * 4, 0.0, ceiling=True)])
    assert (c.epochs, c.top_k) == (2, 2)
    for r in (cheap_wide, dear_narrow):
        r["confirm_h"] = {k: P.CONFIRM_SEEDS * k * 0.01 for k in P.TOP_KS}  # seeds cheap: the search decides
    assert (P.choose([cheap_wide, dear_narrow]).epochs, P.choose([cheap_wide, dear_narrow]).top_k) == (1, 5)


def test_where_the_pruner_stops_nothing_the_unpruned_row_is_not_offered_again():
    rows = [_row(1, (0.95,) * 4, 1.0), _row(1, (0.95,) * 4, 1.0, pruned=False)]
    assert [c.pruned for c in P.fits(rows)] == [True]


def test_near_the_end_only_runs_that_fit_are_begun():
    from space import count_macs

    designs = mixed_designs(2, 4000, 15, 0)
    (a, spec_a, _), (b, spec_b, _) = designs[:2]
    # design a has run: 10 CPU seconds an epoch; b has not, so its epochs are priced by MACs
    records = [{"label": a, "spec": spec_a.to_dict(), "runs": {"e2": {"val": [1, 2], "wall": 20.0, "cpu": 20.0}}}]
    assert P.epoch_seconds(records, a, count_macs(spec_a), 15) == 10.0
    assert P.epoch_seconds(records, b, count_macs(spec_b), 15) == pytest.approx(10.0 * count_macs(spec_b) / count_macs(spec_a))
    assert P.epoch_seconds([], b, count_macs(spec_b), 15) is None  # nothing to go by: it runs
    pending = [(a, "s1000", count_macs(spec_a)), (b, "e1", count_macs(spec_b))]
    assert P.next_run(pending, records, 15, None) == pending[0]  # no limit: in order
    assert P.next_run(pending, records, 15, 200.0) == pending[0]  # 150 s fits
    cheap = 10.0 * count_macs(spec_b) / count_macs(spec_a) + 1
    assert P.next_run(pending, records, 15, cheap) == pending[1]  # only b's one epoch fits
    assert P.next_run(pending, records, 15, cheap - 2) is None


def test_one_default_for_several_budgets_needs_the_larger_k_and_sums_the_hours():
    b8000 = [_row(1, (0.5, 0.6, 0.8, 0.85), 1.0), _row(2, (0.95,) * 4, 2.0, pruned=False)]
    b4000 = [_row(1, (0.5, 0.8, 0.95, 0.95), 0.5), _row(2, (0.8, 0.95, 0.95, 0.95), 1.0, pruned=False)]
    assert P.choose(b4000).epochs == 1  # alone, 4,000 would take one epoch
    (c,) = P.fits(b8000, b4000)  # one epoch fails at 8,000, so only two epochs fit both
    assert (c.epochs, c.pruned, c.top_k) == (2, False, 3) and c.search_h == pytest.approx(3.0)
    assert c.confirm_h == pytest.approx(2 * P.CONFIRM_SEEDS * 3 * 0.1)  # both budgets confirm 3 designs
    assert P.choose(b8000[:1], b4000) is None


def test_analysis_of_two_files_through_the_cli_and_a_missing_one(tmp_path):
    for budget, top in ((8000, 98.0), (4000, 97.0)):
        records = [_record(f"d{i}", top + i / 10, top - 1 + i / 10) for i in range(6)]
        (tmp_path / f"p{budget}.json").write_text(json.dumps({"budget": budget, "proxies": list(P.PROXIES),
                                                              "records": records}))
    out = run_cli("bench", "proxy", "--analyse", "p8000.json,p4000.json", cwd=tmp_path, check=True).stdout
    assert "budget 8,000: 6 designs" in out and "budget 4,000: 6 designs" in out
    assert "cheapest at 8,000 and 4,000 alike: --search-epochs 1 --top-k 2" in out
    bad = run_cli("bench", "proxy", "--analyse", "p8000.json,nowhere.json", cwd=tmp_path)
    assert bad.returncode == 2 and "nowhere.json" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
