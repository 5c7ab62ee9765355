"""The accuracy-for-budget frontier, read from one study per budget: a table and a plotly figure.

Each point is a design confirmed in its study (mean test accuracy ± std over its seeds against its
exact parameter count, or its MACs per image); the winners, the hand designs and their fitted start
points are marked.
Test accuracy is reported here, as everywhere: it chose nothing (validation did, in each study).
"""

from __future__ import annotations

from pathlib import Path

import optuna

from search.store import records
from search.store.selection import ranked
from search.store.study import study_config
from space.budget import mega


def frontier_points(studies: list[optuna.Study]) -> list[dict]:
    """Every confirmed design of every study, with what it is: winner, baseline, start point, searched."""
    points = []
    for study in studies:
        budget = study_config(study).budget
        confirmed = [t for t in ranked(study) if records.is_confirmed(t)]
        for i, t in enumerate(confirmed):
            c, label = records.confirm_record(t), records.start_label(t.user_attrs)
            kind = "winner" if i == 0 else "hand design" if records.is_baseline(t) else \
                "start point" if label else "searched"
            points.append({"budget": budget, "study": study.study_name, "trial": t.number, "params": records.params(t),
                           "macs": records.macs(t),
                           "kind": kind, "label": label or f"trial {t.number}", "seeds": c["seeds"],
                           "val": c["val_acc_mean"], "test": c["test_acc_mean"], "test_std": c["test_acc_std"],
                           "test_min": c["test_acc_min"]})
    return points


def smallest_at(points: list[dict], target: float, by: str = "params") -> dict | None:
    """The smallest confirmed design (fewest params, or MACs with by="macs") whose mean test
    accuracy over its seeds reaches `target`."""
    held = [p for p in points if p["test"] >= target and p.get(by) is not None]
    return min(held, key=lambda p: (p[by], -p["test"])) if held else None


def format_frontier(points: list[dict], target: float) -> str:
    head = (f"{'budget':>7} {'design':<30} {'params':>7} {'MACs':>6} {'seeds':>5} {'val %':>7} {'test % (mean±std)':>18} "
            f"{'min':>6}")
    lines = [head, "-" * len(head)]
    for p in sorted(points, key=lambda p: (p["budget"], p["kind"] != "winner", -p["val"])):
        name = f"{p['label']}{' (winner)' if p['kind'] == 'winner' and not p['label'].startswith('trial') else ''}"
        name = f"{name}{'*' if p['kind'] == 'winner' else ''}"
        lines.append(f"{p['budget']:>7,} {name:<30} {p['params']:>7,} {mega(p.get('macs')):>6} {p['seeds']:>5} {p['val']:>7.2f} "
                     f"{p['test']:>11.2f} ± {p['test_std']:.2f} {p['test_min']:>6.2f}")
    lines.append("* the study's winner (best mean validation over the most seeds); test is reported, never used to choose")
    lines.append(_smallest_text(smallest_at(points, target), target))
    return "\n".join(lines)


def _smallest_text(best: dict | None, target: float, by: str = "params") -> str:
    size = f"{best['params']:,} params" if best and by == "params" else f"{best['macs']:,} MACs" if best else ""
    return f"{'smallest' if by == 'params' else 'cheapest'} design at >= {target:g}% mean test: " + (
        f"{best['label']} of {best['study']}, {size}, {best['test']:.2f}% ± "
        f"{best['test_std']:.2f} over {best['seeds']} seeds" if best else "none of these")


X_AXES = {"params": "parameters", "macs": "MACs per image"}


def write_frontier_figure(points: list[dict], target: float, out: Path, x: str = "params") -> Path:
    """Accuracy against parameters (x="params", the budgets drawn) or MACs per image (x="macs")."""
    import plotly.graph_objects as go

    points = [p for p in points if p.get(x) is not None]
    fig = go.Figure()
    for kind, symbol in (("winner", "star"), ("hand design", "square"), ("start point", "diamond"),
                         ("searched", "circle")):
        ps = [p for p in points if p["kind"] == kind]
        if ps:
            fig.add_trace(go.Scatter(
                x=[p[x] for p in ps], y=[p["test"] for p in ps], mode="markers", name=kind,
                marker={"symbol": symbol, "size": 12 if kind == "winner" else 9},
                error_y={"type": "data", "array": [p["test_std"] for p in ps]},
                text=[f"{p['label']} ({p['study']}): {p['seeds']} seeds, val {p['val']:.2f}%" for p in ps]))
    # labelled at the left: the largest budget, at the right, holds the points nearest the target
    fig.add_hline(y=target, line_dash="dash", annotation_text=f"target {target:g}%", annotation_position="top left")
    best = smallest_at(points, target, x)
    if best:  # ringed: the fewest parameters (or MACs) that hold the target as a mean over seeds
        fig.add_trace(go.Scatter(x=[best[x]], y=[best["test"]], mode="markers", name=_smallest_text(best, target, x),
                                 marker={"symbol": "circle-open", "size": 22, "line": {"width": 2}}))
    for budget in sorted({p["budget"] for p in points}) if x == "params" else ():
        fig.add_vline(x=budget, line_dash="dot", line_color="grey")
    fig.update_layout(title=f"Accuracy for {'budget' if x == 'params' else 'MACs'}: confirmed designs, mean test "
                      "accuracy ± std over seeds", xaxis_title=X_AXES[x], yaxis_title="test accuracy (%)",
                      # below the axes: the ringed design's long name would squeeze the plot
                      legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0})
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(out), include_plotlyjs="inline")
    return out
