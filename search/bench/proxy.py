"""`python -m search bench proxy`: does a whole recipe compressed to E epochs rank designs as 15 do?

    python -m search bench proxy --budget 8000 --designs 14 --proxies 1,2,3,5   # train, then analyse
    python -m search bench proxy --analyse studies/proxy-b8000.json            # re-read, train nothing
    python -m search bench proxy --analyse studies/proxy-b8000.json,studies/proxy-b4000.json  # one default for both

The designs are the search's own at the budget: its start points (the presets, fitted and
separable, under the start recipe) and random draws from the default space (recipes included).
Each trains once per proxy length E (`Recipe.compressed`: OneCycle over E epochs, a StepLR step
scaled to E, on all 50,000 training images; seed PROXY_SEED) and at the protocol's 15 epochs over
TRUTH_SEEDS (confirmation's seeds, so no proxy shares an initialisation with the truth). After
every run the JSON file is rewritten, so a stopped run goes on where it stopped, on any machine
that has the file; a run with more --proxies adds the new lengths' runs to every design in it.

The analysis (pure, from the file) ranks designs by their proxy's final validation accuracy
against the mean final validation accuracy of the 15-epoch seeds: Spearman and Kendall, and what
confirmation needs: over bootstrap draws of the designs in random orders, with the median pruner
(`--pruner median`) replayed on the proxy curves as the search would judge them, how often the
truth's top 2 both finish among the proxy's top k, and how many points the best of those k trails
the truth's best by (what the choice costs once confirmation finds the best of its k). Every row comes again
unpruned, so the pruner's share of a miss shows apart from the ranking's. "15 (one seed)" scores
one truth seed against the other: the ceiling any proxy can reach at this seed noise. The cost
is the proxy's time over the 15-epoch runs', per design, times the share of its epochs the
replayed pruner lets train: CPU seconds on a CPU (one thread per run, so other work on the
machine does not move it), wall seconds on a GPU; a design whose runs were split between the two
is left out of the cost, so a file begun on a CPU can be finished on a GPU. The choice weighs
the search and confirmation together: a cheap proxy that needs a larger top k pays for it in
confirmation's 15-epoch seeds.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from search.bench.common import mixed_designs, spearman, stored_file
from search.config import SearchConfig
from search.errors import UserError
from search.job.pruner import first_judged, replay_epochs, rule_for, stops

PROXY_SEED = 100
TRUTH_SEEDS = (1000, 1001)
PROXIES = (1, 2, 3, 5)
TOP_KS = (2, 3, 4, 5)
ORDERS = 2000  # bootstrap draws of the designs, each in a random order
MIN_DESIGNS = 4  # designs with every run before the analysis ranks anything
RECALL_GOAL = 0.9  # the top 2 must be among the confirmed in this share of the orders
SEARCH_TRIALS = 100  # the trials of the main command, priced in the table
CONFIRM_SEEDS = SearchConfig.confirm_seeds  # confirmation's first-round seeds, priced too


# --- designs and runs ---------------------------------------------------------------------------

def run_keys(proxies: Sequence[int]) -> list[str]:
    """The runs of one design, cheapest first: e<E> per proxy, then s<seed> at the protocol."""
    return [f"e{e}" for e in proxies] + [f"s{s}" for s in TRUTH_SEEDS]


def train_run(key: str, spec, recipe, data, precision: str) -> dict:
    from trainers import train

    epochs, seed = run_epochs(key, recipe.epochs), PROXY_SEED if key[0] == "e" else int(key[1:])
    t0, c0 = time.perf_counter(), time.process_time()
    result = train(spec, data.train, recipe.compressed(epochs), evals={"val": data.val},
                   norm=(data.mean, data.std), seed=seed, precision=precision)
    # CPU seconds as well: with one thread per run they measure the work even when other
    # processes share the cores (or the run is paused), which wall seconds do not
    return {"val": [round(e.val_acc, 4) for e in result.epochs], "wall": round(time.perf_counter() - t0, 2),
            "cpu": round(time.process_time() - c0, 2), "device": data.train.x.device.type}


def run_seconds(run: dict) -> float:
    """What a run cost: CPU seconds on a CPU (one thread per run, so other work does not move
    them), wall seconds on a GPU (where the host's CPU time says little). Runs stored before
    the device was kept ran on a CPU."""
    return run["wall"] if run.get("device", "cpu") == "cuda" else run["cpu"]


def run_epochs(key: str, epochs: int) -> int:
    """Epochs of run `key`: e<E> trains E, s<seed> the protocol's `epochs`."""
    return int(key[1:]) if key[0] == "e" else epochs


def epoch_seconds(records: list[dict], label: str, macs: int, epochs: int) -> float | None:
    """What one epoch of design `label` is expected to cost (run_seconds): its own stored runs'
    mean, else its MACs times the file's median seconds per epoch and MAC; None with no runs."""
    from space import ArchSpec, count_macs

    def per_epoch(run: dict, key: str) -> float:
        return run_seconds(run) / run_epochs(key, epochs)

    own = [per_epoch(run, k) for r in records if r["label"] == label for k, run in r["runs"].items()]
    if own:
        return statistics.fmean(own)
    rates = [per_epoch(run, k) / count_macs(ArchSpec.from_dict(r["spec"])) for r in records
             for k, run in r["runs"].items()]
    return statistics.median(rates) * macs if rates else None


def next_run(pending: list[tuple[str, str, int]], records: list[dict], epochs: int,
             left: float | None) -> tuple[str, str, int] | None:
    """The first pending (label, key, macs) expected to end within `left` seconds (None: no limit,
    the first): near the end of a session the cheap runs of later designs fill the time a long
    run would have been cut short in."""
    if left is None:
        return pending[0] if pending else None
    for label, key, macs in pending:
        per = epoch_seconds(records, label, macs, epochs)
        if per is None or per * run_epochs(key, epochs) <= left:
            return label, key, macs
    return None


def run_proxy(*, designs: int, budget: int, epochs: int, seed: int, proxies: Sequence[int], out: Path,
              data_dir: str, device, precision: str = "auto", workers: int = 1, worker: int = 0,
              hours: float | None = None, log: Callable[[str], None] = print) -> list[dict]:
    """Train every run not yet in `out` (resumable, design by design); return all records. With
    `workers`, this process takes every workers-th design from `worker` on, and each run is
    merged into the file under a lock, so several processes (on a GPU, or one per core) share it.
    With `hours`, only runs expected to end within that many hours of the start are begun."""
    from space import count_macs, count_params
    from trainers import load_data

    deadline = time.monotonic() + hours * 3600 if hours is not None else None
    header = _header(budget, epochs, seed, designs, precision)
    keys = run_keys(proxies)
    have = {r["label"]: set(r["runs"]) for r in _stored(out, header)[0]}
    # each worker's share is fixed by the designs' order, not by what is left, so a resumed
    # run's workers never leave a design to nobody
    mine = {d[0]: d for i, d in enumerate(mixed_designs(designs, budget, epochs, seed)) if i % workers == worker}
    pending = [(label, key, count_macs(spec)) for label, (_, spec, _) in mine.items()
               for key in keys if key not in have.get(label, set())]
    if pending:
        data = load_data("mnist", data_dir, device, val_size=10_000, log=log)
    done = 0
    while pending:
        left = deadline - time.monotonic() if deadline is not None else None
        pick = next_run(pending, _stored(out, header)[0], epochs, left)
        if pick is None:
            log(f"{len(pending)} runs left; none is expected to end within the {hours:g} hours: "
                "run the same command to go on")
            break
        pending.remove(pick)
        label, key, macs = pick
        _, spec, recipe = mine[label]
        run = train_run(key, spec, recipe, data, precision)
        fresh = {"label": label, "spec": spec.to_dict(), "recipe": recipe.to_dict(),
                 "params": count_params(spec), "runs": {}}
        with _locked(out):
            stored, lengths = _stored(out, header)
            rec = next((r for r in stored if r["label"] == label), None)
            if rec is None:
                stored.append(rec := fresh)
            rec["runs"][key] = run
            out.write_text(json.dumps({**header, "proxies": sorted({*lengths, *proxies}), "device": str(device),
                                       "records": stored}, indent=1))
        done += 1
        log(f"[{done}/{done + len(pending)}] {label} {key}: val {run['val'][-1]:.2f}% ({run['wall']:.0f} s)")
    return _stored(out, header)[0]


def _header(budget: int, epochs: int, seed: int, designs: int, precision: str) -> dict:
    """What every run of a file must share; the proxy lengths are not in it (they only add runs)."""
    return {"budget": budget, "epochs": epochs, "seed": seed, "draws": designs,
            "truth_seeds": list(TRUTH_SEEDS), "proxy_seed": PROXY_SEED, "precision": precision}


@contextlib.contextmanager
def _locked(out: Path):
    """Hold an exclusive lock on `out`'s lock file (beside it) while reading and rewriting `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_name(out.name + ".lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _worker(kw: dict) -> None:
    from search.process import setup_process

    setup_process()
    torch_threads = kw.pop("threads")
    if torch_threads:
        import torch

        torch.set_num_threads(torch_threads)
    run_proxy(**kw, log=lambda line: print(f"worker {kw['worker']}: {line}", flush=True))


def run_workers(workers: int, **kw) -> None:
    """`workers` processes over the designs (one thread each on CPU; they share a GPU)."""
    from search.process import worker_context

    ctx = worker_context()
    threads = 1 if kw["device"].type == "cpu" else 0
    procs = [ctx.Process(target=_worker, args=({**kw, "workers": workers, "worker": w, "threads": threads},))
             for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    failed = [p.exitcode for p in procs if p.exitcode]
    if failed:
        raise UserError(f"bench proxy: worker exit codes {failed}; run the same command to go on")


def _stored(out: Path, header: dict) -> tuple[list[dict], list[int]]:
    """The file's records and the proxy lengths it has run, after checking it shares `header`."""

    stored = stored_file(out, "proxy")
    if stored is None:
        return [], []
    differ = sorted(k for k, v in header.items() if stored.get(k) != v)
    if differ:
        raise UserError(f"{out} was made with other settings ({', '.join(differ)}); pick another --out")
    return stored["records"], stored.get("proxies", [])


# --- analysis (pure) ----------------------------------------------------------------------------

def kendall(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b (ties in either ranking counted as neither concordant nor discordant)."""
    conc = disc = ties_a = ties_b = 0
    for i in range(len(a)):
        for j in range(i + 1, len(a)):
            da, db = a[i] - a[j], b[i] - b[j]
            if da == 0 and db == 0:
                continue
            if da == 0:
                ties_a += 1
            elif db == 0:
                ties_b += 1
            elif (da > 0) == (db > 0):
                conc += 1
            else:
                disc += 1
    denom = ((conc + disc + ties_a) * (conc + disc + ties_b)) ** 0.5
    return (conc - disc) / denom if denom else float("nan")


def trained_epochs(curves: Sequence[Sequence[float]], schedules: Sequence[str], order: Sequence[int]) -> dict[int, int]:
    """Epochs each design trains when the search's median pruner judges them in `order`: its
    whole curve if it finishes, else up to the epoch it is stopped at. Each curve is judged against
    the finished curves of its own schedule, from the first epoch it is judged."""
    done: dict[str, list[Sequence[float]]] = {}
    out = {}
    for i in order:
        c, sched = curves[i], schedules[i]
        base = rule_for(len(c))  # as make_pruner judges a search of this many epochs
        rule = replace(base, warmup=first_judged(base, len(c), sched))
        mine = done.setdefault(sched, [])
        out[i] = next((e for e in replay_epochs(len(c))
                       if stops(rule, e, len(c), max(c[:e]), [d[e - 1] for d in mine if len(d) >= e])), len(c))
        if out[i] == len(c):
            mine.append(c)
    return out


def survivors(curves: Sequence[Sequence[float]], schedules: Sequence[str], order: Sequence[int]) -> list[int]:
    """The designs that finish (the pruner never stops a trial at its last epoch), in `order`."""
    return [i for i, e in trained_epochs(curves, schedules, order).items() if e == len(curves[i])]


def top2_recall(proxy: Sequence[Sequence[float]], truth: Sequence[float], schedules: Sequence[str],
                ks: Sequence[int] = TOP_KS, orders: int = ORDERS, seed: int = 0,
                prune: bool = True, full_s: Sequence[float] | None = None) -> dict[str, dict[int, float]]:
    """What confirming the proxy's top k (the survivors of the replayed pruner, or every design
    with prune=False, ranked by their proxy finals) keeps, over bootstrap orders of the designs: "recall", k -> share of orders in
    which the truth's top 2 both are among them; "loss", k -> mean accuracy points between the
    truth's best design and the best of them by the truth (what picking by the proxy costs when
    confirmation then finds the best of its k); "spent": the share of the proxy's epochs the
    designs train, the pruner's saving taken off; "confirm_s", k -> mean seconds of one 15-epoch
    run of each of the k (`full_s`, per design; 0 without it), what one confirmation seed costs."""
    rng = random.Random(seed)
    hits = dict.fromkeys(ks, 0)
    lost = dict.fromkeys(ks, 0.0)
    confirm = dict.fromkeys(ks, 0.0)
    spent = 0.0
    n = len(truth)
    for _ in range(orders):
        order = list(dict.fromkeys(rng.choices(range(n), k=n)))  # a bootstrap draw, in random order
        best2 = sorted(order, key=lambda i: truth[i], reverse=True)[:2]
        epochs = trained_epochs(proxy, schedules, order) if prune else {i: len(proxy[i]) for i in order}
        kept = [i for i in order if epochs[i] == len(proxy[i])]
        spent += sum(epochs.values()) / sum(len(proxy[i]) for i in order)
        ranked = sorted(kept, key=lambda i: proxy[i][-1], reverse=True)
        for k in ks:
            hits[k] += set(best2) <= set(ranked[:k])
            lost[k] += truth[best2[0]] - max(truth[i] for i in ranked[:k])
            confirm[k] += sum(full_s[i] for i in ranked[:k]) if full_s else 0.0
    return {"recall": {k: h / orders for k, h in hits.items()}, "loss": {k: v / orders for k, v in lost.items()},
            "confirm_s": {k: v / orders for k, v in confirm.items()}, "spent": spent / orders}


def complete(records: list[dict], keys: Sequence[str]) -> list[dict]:
    return [r for r in records if set(keys) <= set(r["runs"])]


def analyse(records: list[dict], proxies: Sequence[int], orders: int = ORDERS) -> dict:
    """One row per proxy (and the one-seed ceiling) over the designs with every run, judged by the
    search's pruner, then each again unpruned (what the pruner costs, apart from the ranking)."""

    recs = complete(records, run_keys(proxies))
    if len(recs) < MIN_DESIGNS:  # no ranking to speak of yet: say how far the runs are
        return {"designs": len(recs), "of": len(records), "full_cpu_s": 0.0, "rows": [], "choice": None}
    truth_keys = [f"s{s}" for s in TRUTH_SEEDS]
    truth = [statistics.fmean(r["runs"][k]["val"][-1] for k in truth_keys) for r in recs]
    full_cpu = [statistics.fmean(run_seconds(r["runs"][k]) for k in truth_keys) for r in recs]
    device = [{r["runs"][k].get("device", "cpu") for k in truth_keys} for r in recs]
    schedules = [r["recipe"]["schedule"] for r in recs]
    rows = []
    ceiling = ("15 (one seed)", truth_keys[0], [r["runs"][truth_keys[1]]["val"][-1] for r in recs])
    for (label, key, against), prune in [(row, prune) for prune in (True, False)
                                         for row in [*((f"{e}", f"e{e}", truth) for e in proxies), ceiling]]:
        curves = [r["runs"][key]["val"] for r in recs]
        finals = [c[-1] for c in curves]
        # a cost compares runs on one kind of device: a design whose runs were split is left out
        same = [(r, c) for r, c, d in zip(recs, full_cpu, device) if d == {r["runs"][key].get("device", "cpu")}]
        cost = statistics.fmean(run_seconds(r["runs"][key]) / c for r, c in same) if same else float("nan")
        seconds = statistics.fmean(run_seconds(r["runs"][key]) for r, _ in same) if same else float("nan")
        kept = top2_recall(curves, against, schedules, orders=orders, prune=prune, full_s=full_cpu)
        # what a search pays: the whole proxy run, less the epochs the pruner saves; then what
        # confirmation's first round pays for the proxy's top k
        rows.append({"proxy": label + ("" if prune else ", unpruned"), "ceiling": key == truth_keys[0],
                     "epochs": len(curves[0]), "pruned": prune,
                     "spearman": spearman(finals, against), "kendall": kendall(finals, against),
                     "cost": cost * kept["spent"], "search_h": SEARCH_TRIALS * seconds * kept["spent"] / 3600,
                     "confirm_h": {k: CONFIRM_SEEDS * v / 3600 for k, v in kept["confirm_s"].items()}, **kept})
    return {"designs": len(recs), "of": len(records), "full_cpu_s": statistics.fmean(full_cpu),
            "rows": rows, "choice": choose(rows)}


@dataclass(frozen=True)
class Choice:
    """A search fidelity that keeps the 15-epoch top 2 among the confirmed, with what it costs."""

    epochs: int  # --search-epochs
    pruned: bool  # True: --pruner median replayed on the proxy curves; False: --pruner none
    top_k: int  # --top-k
    search_h: float  # SEARCH_TRIALS trials at this fidelity, hours of one thread (or of the device)
    confirm_h: float  # confirmation's first round of the top k, the same hours

    @property
    def flags(self) -> str:
        # the pruner named either way, so the line reads the same whichever is the search's default
        return f"--search-epochs {self.epochs} --top-k {self.top_k} --pruner {'median' if self.pruned else 'none'}"


def smallest_k(row: dict) -> int | None:
    """The smallest top k that keeps the 15-epoch top 2 in RECALL_GOAL of orders; None: no k does."""
    return next((k for k, share in sorted(row["recall"].items()) if share >= RECALL_GOAL), None)


def fits(*tables: list[dict]) -> list[Choice]:
    """Every proxy (the ceiling aside) keeping the top 2 in RECALL_GOAL of orders in each table
    (one per budget analysed), with the largest of the smallest top ks they need, cheapest first:
    the search and confirmation's first round together, summed over the tables, since a cheaper
    proxy that needs a larger k pays for it in 15-epoch seeds."""
    keyed = [{(r["epochs"], r["pruned"]): r for r in rows if not r["ceiling"]} for rows in tables]
    out: list[Choice] = []
    for key in keyed[0] if keyed else ():
        rows = [t.get(key) for t in keyed]
        ks = [smallest_k(r) for r in rows if r is not None]
        if len(ks) < len(rows) or None in ks:
            continue
        k = max(ks)
        c = Choice(*key, k, sum(r["search_h"] for r in rows), sum(r["confirm_h"][k] for r in rows))
        # where the pruner stops nothing (one epoch), the unpruned row is the same search
        if replace(c, pruned=True) not in out:
            out.append(c)
    return sorted(out, key=lambda c: (c.search_h + c.confirm_h, c.top_k, not c.pruned))


def choose(*tables: list[dict]) -> Choice | None:
    """The cheapest fidelity, search and confirmation together, that keeps the top 2 in
    RECALL_GOAL of orders in every table."""
    return next(iter(fits(*tables)), None)


def format_analysis(a: dict) -> str:
    if not a["rows"]:
        return (f"{a['designs']} designs with every run (of {a['of']} begun): too few to rank (at least "
                f"{MIN_DESIGNS}); run the same command to go on")
    lines = [f"{a['designs']} designs with every run (of {a['of']}); 15-epoch run {a['full_cpu_s']:.0f} s on average",
             f"{'epochs':>24} {'spearman':>8} {'kendall':>7} " + " ".join(f"{'top2<=' + str(k):>8}" for k in TOP_KS)
             + " " + " ".join(f"{'lost@' + str(k):>7}" for k in TOP_KS) + f" {'cost':>6} {'search h':>8}"]
    for r in a["rows"]:
        lines.append(f"{r['proxy']:>24} {r['spearman']:8.2f} {r['kendall']:7.2f} "
                     + " ".join(f"{r['recall'][k]:8.2f}" for k in TOP_KS) + " "
                     + " ".join(f"{r['loss'][k]:7.3f}" for k in TOP_KS) + f" {r['cost']:6.2f} {r['search_h']:8.1f}")
    lines.append("top2<=k: share of orders whose 15-epoch top 2 are both among the proxy's top k; lost@k: mean "
                 "points between the 15-epoch best and the best of the proxy's top k; cost: the search's seconds "
                 "per design (pruned epochs left out) over a 15-epoch run's; search h: "
                 f"{SEARCH_TRIALS} such trials of these designs, hours of one thread (on a CPU) or of the device")
    return "\n".join(lines + format_fits(fits(a["rows"])))


def format_fits(choices: list[Choice], where: str = "") -> list[str]:
    """The options meeting the goal, cheapest first, and the choice; `where` names the budgets
    when the options must meet it at several."""
    if not choices:
        return [f"no proxy keeps the top 2 in >= {RECALL_GOAL:.0%} of orders{where}: keep the protocol's epochs"]
    return [f"keeping the top 2 in >= {RECALL_GOAL:.0%} of orders{where}, with what the search and confirmation's "
            f"first round ({CONFIRM_SEEDS} seeds of the top k) cost in hours of one thread:",
            *(f"{c.flags:>46}  search {c.search_h:5.1f} + confirmation {c.confirm_h:5.1f} = "
              f"{c.search_h + c.confirm_h:5.1f}" for c in choices),
            f"cheapest{where}: {choices[0].flags}"]


def analyse_files(paths: Sequence[Path]) -> str:
    """Each stored file's analysis; with several (one per budget), then the options that meet the
    goal in all of them, priced as the sum: what one default for every budget costs."""
    analyses = []
    for path in paths:
        try:
            stored = json.loads(path.read_text())
            analyses.append((stored.get("budget"), analyse(stored["records"], stored["proxies"])))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UserError(f"--analyse {path}: not a bench proxy file ({e.__class__.__name__}: {e})") from None
    parts = [(f"budget {b:,}: " if len(paths) > 1 and b else "") + format_analysis(a) for b, a in analyses]
    if len(analyses) > 1:
        budgets = " and ".join(f"{b:,}" if b else "?" for b, _ in analyses)
        parts.append("\n".join(format_fits(fits(*(a["rows"] for _, a in analyses)), f" at {budgets} alike")))
    return "\n\n".join(parts)


def parse_proxies(text: str | None) -> list[int]:
    if not text:
        return list(PROXIES)
    try:
        values = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise UserError(f"--proxies takes a comma list of epoch counts, got {text!r}") from None
    if not values or values[0] < 1:
        raise UserError(f"--proxies takes epoch counts >= 1, got {text!r}")
    return values


def bench_proxy(*, designs: int, budget: int, epochs: int, seed: int, out: Path | None, data_dir: str,
                device: str, proxies: str | None = None, workers: int = 1, **kw) -> int:
    from search.config import check_budget
    from trainers.loop import resolve_device
    from trainers.precision import resolve_precision

    if kw.get("analyse") is not None:
        print(analyse_files([Path(x) for x in kw["analyse"].split(",") if x.strip()]))
        return 0
    check_budget(budget)
    wanted = parse_proxies(proxies)
    if kw.get("hours") is not None and not kw["hours"] > 0:
        raise UserError(f"--hours must be > 0, got {kw['hours']}")
    if designs < 0 or wanted[-1] >= epochs or workers < 1:
        raise UserError(f"--designs must be >= 0, --proxies shorter than --epochs {epochs} and --workers >= 1, "
                        f"got {designs}, {proxies} and {workers}")
    out = out or Path(f"studies/proxy-b{budget}.json")
    dev = resolve_device(device)
    # one precision for every run of a file, whichever machine goes on with it: the file's own,
    # else what auto picks here (fp32 on CUDA and on CPUs without bf16)
    stored = stored_file(out, "proxy")
    precision = stored.get("precision", "fp32") if stored else resolve_precision("auto", dev.type)
    print(f"proxy: the start points at budget {budget:,} and {designs} random draws, each at {wanted} epochs "
          f"and at {epochs} epochs over seeds {list(TRUTH_SEEDS)}, device {dev}, {precision}; raw curves -> {out}")
    kw = dict(designs=designs, budget=budget, epochs=epochs, seed=seed, proxies=wanted, out=out,
              data_dir=data_dir, device=dev, precision=precision, hours=kw.get("hours"))
    if workers > 1:
        run_workers(workers, **kw)
        records = _stored(out, _header(budget, epochs, seed, designs, precision))[0]
    else:
        records = run_proxy(**kw)
    print(format_analysis(analyse(records, wanted)))
    return 0
