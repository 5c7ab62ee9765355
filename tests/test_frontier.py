"""`frontier`: one study per budget on one data load, then the table, the figure and the links."""

import optuna

from conftest import run_cli
from search.commands.frontier import format_frontier, smallest_at, write_frontier_figure

ARGS = ["--trials", "3", "--epochs", "1", "--subset", "1000", "--sampler", "random", "--top-k", "1",
        "--confirm-seeds", "2", "--confirm-cap", "2", "--refit", "none"]


def point(budget, params, test, kind="searched", val=99.0):
    return {"budget": budget, "study": f"s{budget}", "trial": 1, "params": params, "kind": kind,
            "label": f"trial {params}", "seeds": 3, "val": val, "test": test, "test_std": 0.05, "test_min": test - 0.1}


def test_the_smallest_design_that_holds_the_target():
    points = [point(8000, 7900, 99.45, "winner"), point(4000, 3900, 99.41), point(4000, 3500, 99.38, "winner")]
    assert smallest_at(points, 99.4)["params"] == 3900
    assert smallest_at(points, 99.5) is None
    text = format_frontier(points, 99.4)
    assert "smallest design at >= 99.4% mean test: trial 3900 of s4000, 3,900 params" in text


def test_the_figure_rings_the_smallest_design_that_holds_the_target(tmp_path):
    points = [point(8000, 7900, 99.45, "winner"), point(4000, 3900, 99.41), point(4000, 3500, 99.38, "winner")]
    html = write_frontier_figure(points, 99.4, tmp_path / "f.html").read_text()
    assert "smallest design at " in html and "mean test: trial 3900 of s4000, 3,900 params" in html
    assert "smallest design" not in write_frontier_figure(points, 99.5, tmp_path / "g.html").read_text()


def test_frontier_runs_one_study_per_budget_and_links_them(tmp_path, data_dir):
    proc = run_cli("frontier", "--budgets", "6000,3000", *ARGS, "--data-dir", str(data_dir), cwd=tmp_path, check=True)
    assert proc.stdout.count("mnist: ") <= 1  # the data is loaded (and checked) once
    names = ["mnist-b3000", "mnist-b6000"]
    studies = [optuna.load_study(study_name=n, storage=f"sqlite:///{tmp_path}/studies/{n}.db") for n in names]
    figure = tmp_path / "studies" / "frontier-mnist.html"
    assert figure.exists() and "plotly" in figure.read_text()[:5_000_000]
    for s in studies:
        assert s.user_attrs["frontier"] == str(figure)
        assert len([t for t in s.trials if t.state.is_finished()]) >= 3
    table = proc.stdout[proc.stdout.index(" budget design"):]
    assert "  3,000 " in table and "  6,000 " in table and "smallest design at >= 99.4% mean test" in table
    run_cli("report", "--study", "mnist-b3000", cwd=tmp_path, check=True)
    assert figure.as_uri() in (tmp_path / "studies" / "mnist-b3000-report.html").read_text()
    again = run_cli("frontier", "--budgets", "3000,6000", *ARGS, "--data-dir", str(data_dir), cwd=tmp_path, check=True)
    assert [len(optuna.load_study(study_name=n, storage=f"sqlite:///{tmp_path}/studies/{n}.db").trials)
            for n in names] == [len(s.trials) for s in studies]  # resumed: nothing more to train
    assert "smallest design" in again.stdout


def test_each_frontier_names_its_figure_after_its_studies(tmp_path):
    from search.cli import _search_parser
    from search.config import frontier_configs
    from search.job.run import frontier_figure_path

    def figure(*args):
        parsed = _search_parser("python -m search frontier", frontier=True).parse_args(["--budgets", "2000,4000", *args])
        return frontier_figure_path(frontier_configs(parsed)).as_posix()

    assert figure() == "studies/frontier-mnist.html"
    assert figure("--study-name", "mnist-recipes") == "studies/frontier-mnist-recipes.html"
    assert figure("--dataset", f"folder:{tmp_path / 'digits'}") == "studies/frontier-digits.html"


def test_a_bad_budget_list_exits_2_before_anything(tmp_path):
    proc = run_cli("frontier", "--budgets", "3000,10", "--trials", "2", "--data-dir", str(tmp_path / "d"), cwd=tmp_path)
    assert proc.returncode == 2 and "below the smallest design" in proc.stderr
    assert not (tmp_path / "studies").exists() and not (tmp_path / "d").exists()
