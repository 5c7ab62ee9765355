"""Report: pure extraction functions, and the HTML rendered by a real headless Chromium."""

import re
import shutil
import subprocess

from optuna.trial import TrialState, create_trial

from conftest import require, run_cli
from search.commands import report_data as rd


def test_pareto_front_keeps_only_undominated_points():
    pts = [(5000, 98.0, 1), (6000, 97.0, 2), (7000, 99.0, 3), (4000, 96.0, 4), (7000, 98.5, 5), (8000, 99.0, 6)]
    assert rd.pareto_front(pts) == [(4000, 96.0, 4), (5000, 98.0, 1), (7000, 99.0, 3)]


def _trial(number, value, state=TrialState.COMPLETE, params=1000, inter=None, **attrs):
    t = create_trial(state=state, value=value if state == TrialState.COMPLETE else None,
                     user_attrs={"params": params, **attrs}, intermediate_values=inter or {})
    t.number = number
    return t


def test_history_curves_and_confirmed():
    trials = [_trial(0, 97.0, inter={1: 90.0, 2: 97.0}), _trial(1, None, TrialState.PRUNED, inter={1: 50.0}),
              _trial(2, 96.0), _trial(3, 98.0, confirm={"test_acc": [[98.0, 99.0], [97.5, 99.1]]},
                                      refit={"test_acc": [[98.2, 99.2]], "train_images": 60000}),
              _trial(4, None, TrialState.PRUNED, infeasible="too small")]
    assert [h["best"] for h in rd.history(trials)] == [97.0, 97.0, 98.0]
    curves = rd.curves(trials)
    assert [(c["number"], c["state"], c["values"]) for c in curves] == [(0, "complete", [90.0, 97.0]), (1, "pruned", [50.0])]
    assert [(c["number"], c["seed"], c["stage"]) for c in rd.confirmed(trials)] == [
        (3, 0, "confirm"), (3, 1, "confirm"), (3, 0, "refit")]
    assert len(rd.trained(trials)) == 4


def test_anytime_leaves_out_the_pauses_between_search_runs():
    """Two search runs an hour apart: a trial that ended 10 minutes into the second run is 30 + 10
    minutes into the search, not 100; a trial outside the recorded runs puts the curve on wall time."""
    from datetime import datetime, timedelta

    t0 = datetime(2026, 1, 1, 12, 0)
    runs = [(t0, t0 + timedelta(minutes=30)), (t0 + timedelta(minutes=90), t0 + timedelta(minutes=120))]

    def at(number, value, start_min, end_min):
        t = _trial(number, value)
        t.datetime_start, t.datetime_complete = t0 + timedelta(minutes=start_min), t0 + timedelta(minutes=end_min)
        return t

    trials = [at(0, 98.0, 0, 10), at(1, 97.0, 10, 25), at(2, 99.0, 90, 100)]
    assert [(p["seconds"] / 60, p["best"], p["number"], p["clock"]) for p in rd.anytime(trials, runs)] == [
        (10, 98.0, 0, "search"), (40, 99.0, 2, "search")]
    assert rd.search_clock(t0 + timedelta(minutes=60), runs) is None  # between the runs
    late = trials + [at(3, 99.5, 125, 130)]  # a run still going: not recorded yet
    assert [(p["seconds"] / 60, p["clock"]) for p in rd.anytime(late, runs)] == [(10, "wall"), (100, "wall"), (130, "wall")]
    assert [p["clock"] for p in rd.anytime(trials)] == ["wall", "wall"]  # no runs recorded


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    require(bool(exe), "Chromium is not installed (apt-get install chromium); the browser test needs it")
    return exe


def headless(exe, *args, user_dir):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={user_dir}",
             "--virtual-time-budget=15000"]
    return subprocess.run([exe, *flags, *args], capture_output=True, text=True, timeout=120)


def test_report_renders_in_headless_chromium(tmp_path, data_dir):
    exe = chromium()
    run_cli("--budget", "8000", "--trials", "4", "--epochs", "2", "--subset", "800", "--top-k", "1",
            "--confirm-seeds", "1", "--confirm-cap", "1", "--data-dir", str(data_dir), "--study-name", "rep", cwd=tmp_path, check=True)
    out = tmp_path / "report.html"
    run_cli("report", "--study", "rep", "--out", str(out), cwd=tmp_path, check=True)
    text = out.read_text()
    assert "<script src=" not in text  # plotly.js is inlined: the file works offline
    board = run_cli("leaderboard", "--study", "rep", cwd=tmp_path, check=True).stdout
    (wall,) = [line for line in board.splitlines() if line.startswith("wall time: search ")]
    assert f"<p>{wall}</p>" in text  # the job's split, as the leaderboard prints it
    for title in ("Parameters vs validation accuracy", "MACs per image vs validation accuracy",
                  "Peak int8 activation memory (bytes) vs validation accuracy"):
        assert title in text, title
    dom = headless(exe, "--dump-dom", out.as_uri(), user_dir=tmp_path / "chrome").stdout
    errors = re.search(r'<pre id="js-errors"[^>]*>(.*?)</pre>', dom, re.S)
    assert errors is not None and errors.group(1).strip() == "", errors.group(1) if errors else dom[:500]
    n_plots = text.count('<div class="plot">')
    assert n_plots == 9
    for i in range(n_plots):  # every plot div was turned into a plotly graph with its SVG
        div = re.search(rf'<div[^>]*id="plot{i}"[^>]*>', dom)
        assert div is not None and "js-plotly-plot" in div.group(0), f"plot{i} was not rendered"
    assert dom.count('class="main-svg"') >= n_plots
    shot = tmp_path / "report-screenshot.png"
    headless(exe, f"--screenshot={shot}", "--window-size=1200,2400", out.as_uri(), user_dir=tmp_path / "chrome")
    assert shot.exists() and shot.stat().st_size > 20_000


def test_importances_wait_for_enough_completed_trials():
    import optuna

    from search.commands.report import MIN_TRIALS_FOR_IMPORTANCE, fig_importance

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    objective = lambda t: t.suggest_float("lr", 0.01, 0.3) * 100 + t.suggest_int("w", 4, 8) * 0.01  # noqa: E731
    study.optimize(objective, n_trials=MIN_TRIALS_FOR_IMPORTANCE - 1)
    assert "fewer than" in fig_importance(study).layout.title.text
    study.optimize(objective, n_trials=20)
    fig = fig_importance(study)
    assert "fewer than" not in fig.layout.title.text and set(fig.data[0].y) == {"lr", "w"}
