"""`python -m search report`: one self-contained HTML file (plotly.js inlined; works offline)."""

from __future__ import annotations

import html
from pathlib import Path

import optuna
import plotly.graph_objects as go
import plotly.io as pio

from search.commands import report_data as rd
from search.commands.leaderboard import time_line
from search.store.study import FRONTIER_ATTR, load_existing, search_runs, study_config, verdict_lines
from search.store.records import completed
from trainers.datasets import target_accuracy

# Below this, Optuna can only say "all equal" (it warns that there are too few trials).
MIN_TRIALS_FOR_IMPORTANCE = 5

# Any script error is written into the page, so a browser test (and a reader) can see it.
ERROR_TRAP = """<script>window.__errors=[];window.addEventListener('error',function(e){
var el=document.getElementById('js-errors');el.textContent+=e.message+'\\n';});</script>"""


def fig_history(trials) -> go.Figure:
    h = rd.history(trials)
    fig = go.Figure([
        go.Scatter(x=[p["number"] for p in h], y=[p["value"] for p in h], mode="markers", name="trial"),
        go.Scatter(x=[p["number"] for p in h], y=[p["best"] for p in h], mode="lines", name="best so far"),
    ])
    return fig.update_layout(title="Optimization history", xaxis_title="trial", yaxis_title="validation accuracy (%)")


AXES = {"params": "parameters", "macs": "MACs per image", "ram": "peak int8 activation memory (bytes)"}


def fig_pareto(trials, cap: int | None, cost: str = "params") -> go.Figure:
    """Validation accuracy against a cost (params, macs or ram), the cap drawn where there is one."""
    d = rd.cost_vs_accuracy(trials, cost)
    pts, front = d["points"], d["front"]
    fig = go.Figure([
        go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="markers", name="trials",
                   text=[f"trial {p[2]}" for p in pts]),
        go.Scatter(x=[p[0] for p in front], y=[p[1] for p in front], mode="lines+markers", name="Pareto front",
                   line={"shape": "hv"}),
    ])
    if cap is not None:
        fig.add_vline(x=cap, line_dash="dash", annotation_text=f"cap {cap:,}")
    return fig.update_layout(title=f"{AXES[cost][0].upper()}{AXES[cost][1:]} vs validation accuracy", xaxis_title=AXES[cost],
                             yaxis_title="validation accuracy (%)")


def fig_importance(study: optuna.Study) -> go.Figure:
    imp = {}
    if len(completed(study.get_trials(deepcopy=False))) >= MIN_TRIALS_FOR_IMPORTANCE:
        try:
            imp = optuna.importance.get_param_importances(study)
        except (RuntimeError, ValueError, ZeroDivisionError):
            pass
    names = list(imp)[::-1]
    fig = go.Figure([go.Bar(x=[imp[n] for n in names], y=names, orientation="h")])
    note = "" if imp else f" (fewer than {MIN_TRIALS_FOR_IMPORTANCE} completed trials)"
    title = "Hyperparameter importances" + note
    return fig.update_layout(title=title, xaxis_title="importance (PED-ANOVA, Optuna 5's default evaluator)")


def fig_curves(trials) -> go.Figure:
    fig = go.Figure()
    for c in rd.curves(trials):
        fig.add_trace(go.Scatter(x=c["epochs"], y=c["values"], mode="lines+markers", name=f"trial {c['number']} ({c['state']})",
                                 line={"dash": "dot" if c["state"] == "pruned" else "solid"}))
    return fig.update_layout(title="Per-epoch validation accuracy (pruned trials dotted)", xaxis_title="epoch",
                             yaxis_title="validation accuracy (%)")


def fig_parallel(trials) -> go.Figure:
    d = rd.numeric_params(trials)
    dims = [{"label": n, "values": v} for n, v in d["columns"].items()]
    dims.append({"label": "val acc", "values": d["value"]})
    return go.Figure(go.Parcoords(line={"color": d["value"], "colorscale": "Viridis"}, dimensions=dims)).update_layout(
        title="Parallel coordinates (completed trials)")


def fig_anytime(trials, runs=()) -> go.Figure:
    a = rd.anytime(trials, runs)
    searched = bool(a) and a[0]["clock"] == "search"
    fig = go.Figure([go.Scatter(x=[p["seconds"] / 60 for p in a], y=[p["best"] for p in a], mode="lines+markers",
                                line={"shape": "hv"}, text=[f"trial {p['number']}" for p in a], name="best so far")])
    return fig.update_layout(
        title=f"Anytime: best validation accuracy against {'the search clock' if searched else 'wall time'}",
        xaxis_title="minutes of search (pauses between runs left out)" if searched
        else "minutes since the first trial started", yaxis_title="validation accuracy (%)")


def fig_confirmed(trials, target: float) -> go.Figure:
    fig = go.Figure()
    for c in rd.confirmed(trials):
        fig.add_trace(go.Scatter(y=c["test_acc"], x=list(range(1, len(c["test_acc"]) + 1)), mode="lines+markers",
                                 line={"dash": "dot" if c["stage"] == "refit" else "solid"},
                                 name=f"{c['stage']} trial {c['number']} seed {c['seed']} ({c['params']} params, "
                                      f"{c['images']} images)"))
    fig.add_hline(y=target, line_dash="dash", annotation_text=f"{target:g}%")
    return fig.update_layout(title="Confirmed and refit designs: test accuracy per epoch (refit dotted)", xaxis_title="epoch",
                             yaxis_title="test accuracy (%)")


def build_html(study: optuna.Study) -> str:
    trials = study.get_trials(deepcopy=False)
    cfg = study_config(study)
    figs = [fig_history(trials), fig_anytime(trials, search_runs(study)), fig_pareto(trials, cfg.budget),
            fig_pareto(trials, cfg.max_macs, "macs"), fig_pareto(trials, cfg.max_ram, "ram"), fig_importance(study),
            fig_curves(trials), fig_parallel(trials), fig_confirmed(trials, target_accuracy(cfg.dataset, cfg.target))]
    parts = [pio.to_html(f, full_html=False, include_plotlyjs="inline" if i == 0 else False, div_id=f"plot{i}")
             for i, f in enumerate(figs)]
    n = len(rd.trained(trials))
    lines = verdict_lines(study)
    verdict = ("<h2>Verdict</h2><ul>" + "".join(f"<li>{html.escape(v)}</li>" for v in lines) + "</ul>") if lines else ""
    if FRONTIER_ATTR in study.user_attrs:
        link = Path(study.user_attrs[FRONTIER_ATTR]).as_uri()
        verdict += f'<p>Part of the frontier <a href="{html.escape(link)}">{html.escape(link)}</a>.</p>'
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(study.study_name)}</title>
{ERROR_TRAP}</head><body style="font-family:sans-serif;max-width:1100px;margin:auto">
<h1>Study {html.escape(study.study_name)}</h1>
<p>budget {html.escape(str(cfg.limits))}, {cfg.dataset}, {cfg.trial_epochs} epochs per trial ({cfg.epochs} in confirmation), {n} trained trials.</p>
<p>{html.escape(time_line(study))}</p>
{verdict}
<pre id="js-errors" style="color:red"></pre>
{''.join(f'<div class="plot">{p}</div>' for p in parts)}
</body></html>"""


def write_report(study_name: str, storage: str | None, out: Path | None) -> int:
    study = load_existing(study_name, storage)
    out = Path(out) if out else Path("studies") / f"{study_name}-report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(build_html(study), encoding="utf-8")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, self-contained)")
    return 0
