"""`python -m search bench fidelity`: how well do cheap signals predict a design's final accuracy?

    python -m search bench fidelity --designs 24                     # train, then analyse
    python -m search bench fidelity --analyse studies/fidelity.json  # re-use stored curves

Each design (random draws from the space at the budget, plus the search's start points: the
presets, fitted to the budget where they exceed it) is trained once at full
fidelity (all epochs, 50k train / 10k val). Per epoch we keep validation accuracy, training loss
and wall seconds (evaluation included), and after each design the JSON file is rewritten, so an
interrupted run resumes where it stopped. Cheap signals scored per design:

- `val@E`: validation accuracy after epoch E of the same run: what a pruner sees at that rung;
- `-loss@1`, `-loss@1..3`: the training loss of epoch 1 / the sum over epochs 1-3;
- `subset`: a separate 3-epoch run on 10,000 training images, validated on the 10,000;
- `synflow`: a zero-cost proxy at initialization (one forward/backward, no data);
- `params`: the parameter count.

The analysis prints each signal's Spearman rank correlation with the final validation accuracy
and its cost, then replays pruning policies (median / percentile with a warm-up, successive
halving) over the stored curves in many random trial orders: the share of epochs each trains and
how often it keeps the best design. All of it is a pure function of the JSON file.
"""

from __future__ import annotations

import json
import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from search.bench.common import draw_designs, spearman, space_name, stored_file
from search.errors import UserError
from search.job.pruner import DEFAULT_RULE, PruneRule, replay_epochs, stops

SUBSET_IMAGES = 10_000
SUBSET_EPOCHS = 3
PREFIX_EPOCHS = (1, 2, 3, 5, 8)
ORDERS = 500  # random trial orders each pruning policy is replayed in
STARTS = "search"  # the designs besides the draws: the search's start points (stored files say which)


# --- pruning replays (pure) ---------------------------------------------------------------------

@dataclass(frozen=True)
class Policy:
    name: str
    kind: str  # percentile | tolerant (--pruner median's rule) | halving | none
    keep: float = 0.5  # percentile: the share of completed trials a trial must be among (0.5 = median)
    warmup: int = 1  # percentile: first epoch at which a trial may be pruned
    startup: int = 3  # percentile: completed trials needed before any pruning
    min_resource: int = 1  # halving: first rung (epochs); rungs at r, r*eta, r*eta^2, ...
    eta: int = 3  # halving: reduction factor
    margin: float = 0.0  # tolerant: points a trial may trail the median by at epoch 0, closing linearly
    floor: float = 0.0  # tolerant: the tolerance never falls below this (points)


def _percentile_prunes(curve: Sequence[float], done: list[Sequence[float]], p: Policy) -> int | None:
    """The epoch at which the median / percentile rule (`search.job.pruner.stops`, the rule the
    search's pruner applies) stops this curve, or None (it completes). Like Optuna, it compares
    the trial's best value so far with the completed trials' values at the same epoch."""
    rule = PruneRule(margin=p.margin, floor=p.floor, warmup=p.warmup, startup=p.startup, keep=p.keep)
    for e in replay_epochs(len(curve)):
        if stops(rule, e, len(curve), max(curve[:e]), [c[e - 1] for c in done]):
            return e
    return None


def _halving_prunes(curve: Sequence[float], rungs: dict[int, list[float]], p: Policy) -> int | None:
    """Optuna's SuccessiveHalvingPruner: at each rung, promoted if in the top 1/eta seen there."""
    e = p.min_resource
    while e < len(curve):
        seen = rungs.setdefault(e, [])
        seen.append(curve[e - 1])
        idx = max(len(seen) // p.eta - 1, 0)
        if curve[e - 1] < sorted(seen, reverse=True)[idx]:
            return e
        e *= p.eta
    return None


def replay(curves: Sequence[Sequence[float]], policy: Policy, order: Sequence[int]) -> tuple[int, list[int]]:
    """Run the designs in `order` under `policy`: (epochs trained, indices that completed)."""
    done: list[Sequence[float]] = []
    rungs: dict[int, list[float]] = {}
    spent, completed = 0, []
    for i in order:
        c = curves[i]
        if policy.kind in ("percentile", "tolerant"):
            stop = _percentile_prunes(c, done, policy)
        elif policy.kind == "halving":
            stop = _halving_prunes(c, rungs, policy)
        else:
            stop = None
        spent += stop if stop is not None else len(c)
        if stop is None:
            done.append(c)
            completed.append(i)
    return spent, completed


def evaluate_policy(curves: Sequence[Sequence[float]], policy: Policy, orders: int = ORDERS, seed: int = 0) -> dict:
    """Mean share of epochs trained, P(the best final design completes), P(the best two both
    complete: what confirmation's default top-2 needs), mean regret (pp)."""
    rng = random.Random(seed)
    finals = [c[-1] for c in curves]
    top = sorted(range(len(curves)), key=lambda i: finals[i], reverse=True)[:2]
    total = sum(len(c) for c in curves)
    shares, kept, kept2, regrets = [], 0, 0, []
    for _ in range(orders):
        order = list(range(len(curves)))
        rng.shuffle(order)
        spent, completed = replay(curves, policy, order)
        shares.append(spent / total)
        kept += top[0] in completed
        kept2 += all(i in completed for i in top)
        regrets.append(finals[top[0]] - max(finals[i] for i in completed))
    return {"policy": policy.name, "epoch_share": statistics.fmean(shares), "best_kept": kept / orders,
            "top2_kept": kept2 / orders, "regret_pp": statistics.fmean(regrets)}


POLICIES = [
    Policy("none", "none"),
    # --pruner median (search/job/policy.py make_pruner): the median less a closing tolerance
    Policy("tolerant median (--pruner median)", "tolerant", warmup=DEFAULT_RULE.warmup, startup=DEFAULT_RULE.startup,
           margin=DEFAULT_RULE.margin, floor=DEFAULT_RULE.floor),
    *[Policy(f"median, warm-up {w}", "percentile", keep=0.5, warmup=w) for w in (1, 2, 3, 5)],
    *[Policy(f"top 75%, warm-up {w}", "percentile", keep=0.75, warmup=w) for w in (1, 3)],
    *[Policy(f"top 25%, warm-up {w}", "percentile", keep=0.25, warmup=w) for w in (1, 3)],
    Policy("halving r=1 eta=3", "halving", min_resource=1, eta=3),
    Policy("halving r=3 eta=3", "halving", min_resource=3, eta=3),
    Policy("halving r=1 eta=2", "halving", min_resource=1, eta=2),
]


# --- signals (pure, from a stored record) -------------------------------------------------------

def signals(rec: dict) -> dict[str, tuple[float, float]]:
    """signal name -> (value, cost in seconds) for one stored design; higher value = predicted better."""
    ep = rec["epochs"]
    cum = [sum(e["wall"] for e in ep[:k]) for k in range(1, len(ep) + 1)]
    out = {f"val@{e}": (ep[e - 1]["val_acc"], cum[e - 1]) for e in PREFIX_EPOCHS if e < len(ep)}
    out["-loss@1"] = (-ep[0]["train_loss"], cum[0])
    out["-loss@1..3"] = (-sum(e["train_loss"] for e in ep[:3]), cum[2])
    out["subset"] = (rec["subset"]["val_acc"], rec["subset"]["wall"])
    out["synflow"] = (rec["synflow"]["log10"], rec["synflow"]["wall"])
    out["params"] = (float(rec["params"]), 0.0)
    return out


def analyse(records: list[dict]) -> dict:
    """Correlations, costs and pruning replays of stored full-fidelity records (pure)."""
    finals = [r["epochs"][-1]["val_acc"] for r in records]
    full_cost = statistics.fmean(sum(e["wall"] for e in r["epochs"]) for r in records)
    table = []
    sigs = [signals(r) for r in records]
    for name in sigs[0]:
        vals = [s[name][0] for s in sigs]
        cost = statistics.fmean(s[name][1] for s in sigs)
        table.append({"signal": name, "spearman": spearman(vals, finals), "cost_s": cost,
                      "cost_share": cost / full_cost})
    curves = [[e["val_acc"] for e in r["epochs"]] for r in records]
    return {"designs": len(records), "full_cost_s": full_cost, "signals": table,
            "policies": [evaluate_policy(curves, p) for p in POLICIES]}


def format_analysis(a: dict) -> str:
    lines = [f"{a['designs']} designs, full fidelity = {a['full_cost_s']:.0f} s per design (mean)", "",
             f"{'signal':<12} {'spearman':>9} {'cost s':>8} {'cost share':>10}"]
    for row in a["signals"]:
        lines.append(f"{row['signal']:<12} {row['spearman']:>9.3f} {row['cost_s']:>8.1f} {row['cost_share']:>10.1%}")
    lines += ["", f"pruning replayed over {ORDERS} random orders of the same designs",
              f"{'policy':<26} {'epochs trained':>14} {'best kept':>9} {'top 2 kept':>10} {'regret pp':>9}"]
    for row in a["policies"]:
        lines.append(f"{row['policy']:<26} {row['epoch_share']:>14.1%} {row['best_kept']:>9.1%} "
                     f"{row['top2_kept']:>10.1%} {row['regret_pp']:>9.3f}")
    return "\n".join(lines)


# --- measurement (trains models) ----------------------------------------------------------------

def synflow(spec) -> float:
    """log10 of the SynFlow score at initialization: sum |theta * dR/dtheta| with R = sum(f(1))."""
    import torch

    from space import build

    torch.manual_seed(0)
    net = build(spec).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    x = torch.ones(1, spec.in_channels, spec.in_size, spec.in_size, dtype=torch.float64)
    net(x).sum().backward()
    score = sum(float((p * p.grad).detach().abs().sum()) for p in net.parameters() if p.grad is not None)
    return math.log10(score) if score > 0 else float("-inf")


def measure(label: str, spec, recipe, data, seed: int) -> dict:
    """One full-fidelity run with per-epoch wall times, plus the subset run and synflow."""
    from space import count_params
    from trainers import Split, train

    marks = [time.perf_counter()]

    def tick(stats) -> bool:
        marks.append(time.perf_counter())
        return False

    result = train(spec, data.train, recipe, evals={"val": data.val}, norm=(data.mean, data.std),
                   seed=seed, report=tick)
    epochs = [{"val_acc": e.val_acc, "train_loss": e.train_loss, "train_s": e.seconds,
               "wall": marks[i + 1] - marks[i]} for i, e in enumerate(result.epochs)]
    t0 = time.perf_counter()
    small = Split(data.train.x[:SUBSET_IMAGES], data.train.y[:SUBSET_IMAGES])
    sub = train(spec, small, replace(recipe, epochs=SUBSET_EPOCHS), evals={"val": data.val},
                norm=(data.mean, data.std), seed=seed)
    sub_wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    sf = synflow(spec)
    return {"label": label, "spec": spec.to_dict(), "recipe": recipe.to_dict(), "params": count_params(spec),
            "seed": seed, "epochs": epochs, "subset": {"val_acc": sub.epochs[-1].val_acc, "wall": sub_wall},
            "synflow": {"log10": sf, "wall": time.perf_counter() - t0}}


def run_fidelity(*, designs: int, budget: int, epochs: int, seed: int, out: Path, data_dir: str,
                 device, separable: bool = True, log: Callable[[str], None] = print) -> list[dict]:
    """Train every design not yet in `out` (resumable); return all records."""
    from trainers import load_data

    header = {"budget": budget, "epochs": epochs, "seed": seed, "separable": separable, "starts": STARTS}
    records = _resumable_records(out, header)
    have = {r["label"] for r in records}
    todo = [d for d in draw_designs(designs, budget, epochs, seed, separable) if d[0] not in have]
    data = load_data("mnist", data_dir, device, val_size=10_000, log=log)
    for k, (label, spec, recipe) in enumerate(todo, 1):
        rec = measure(label, spec, recipe, data, seed)
        records.append(rec)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({**header, "device": str(device), "records": records}, indent=1))
        full = sum(e["wall"] for e in rec["epochs"])
        log(f"[{k}/{len(todo)}] {label}: {rec['params']} params, val {rec['epochs'][-1]['val_acc']:.2f}% "
            f"after {epochs} epochs ({full:.0f} s); subset {rec['subset']['val_acc']:.2f}%")
    return records


def _resumable_records(out: Path, header: dict) -> list[dict]:
    """The records already in `out`, which must have been drawn with the same settings."""
    stored = stored_file(out, "fidelity")
    if stored is None:
        return []
    records = stored["records"]
    # files written before these keys existed drew from the plain space, with the presets as they are
    stored = {"separable": False, "starts": "presets", **stored}
    diff = [f"{k}={stored[k]!r} (asked {v!r})" for k, v in header.items() if k != "starts" and k in stored and stored[k] != v]
    if diff:
        raise UserError(f"{out} was drawn with " + ", ".join(diff) + "; resume it with the same settings or pick another --out")
    if stored["starts"] != header["starts"]:
        raise UserError(f"{out} trained the presets as they are, not the search's start points; "
                        "--analyse still reads it; pick another --out to train")
    return records


def bench_fidelity(*, designs: int, budget: int, epochs: int, seed: int, out: Path | None, data_dir: str,
                   device: str, separable: bool = True, **kw) -> int:
    from search.config import check_budget
    from trainers.loop import resolve_device

    out = out or Path("studies/fidelity.json")
    if kw.get("analyse") is not None:
        records = json.loads(Path(kw["analyse"]).read_text())["records"]
    else:
        check_budget(budget, separable)
        if designs < 0 or epochs < 1:
            raise UserError(f"--designs must be >= 0 and --epochs >= 1, got {designs} and {epochs}")
        dev = resolve_device(device)
        print(f"fidelity: {designs} designs drawn at budget {budget:,} from {space_name(separable)}, plus the "
              f"search's start points there, {epochs} epochs each on 50,000 / 10,000 images, device {dev}; raw curves -> {out}")
        records = run_fidelity(designs=designs, budget=budget, epochs=epochs, seed=seed,
                               out=out, data_dir=data_dir, device=dev, separable=separable)
    print(format_analysis(analyse(records)))
    return 0
