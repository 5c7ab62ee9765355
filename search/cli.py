"""Command line of budgetnas.

    python -m search --budget 8000 --trials 100            # the search (default command)
    python -m search --budget 8000 --trials 12 --workers 2 --subset 5000 --epochs 3
    python -m search data [--dataset fashion-mnist]        # fetch + verify the data set
    python -m search show --preset seed-004                # summary, receptive field, params, MACs
    python -m search train --preset seed-004 --epochs 15   # one design on all 60k images, tested
    python -m search leaderboard --study mnist-b8000
    python -m search export --study mnist-b8000 --best --out studies/winner
    python -m search predict --model studies/winner digit.png
    python -m search report --study mnist-b8000
    python -m search bench data|train|space|workers|fidelity|proxy|recipe

Heavy imports (torch, optuna) happen inside each command, so `--help` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from search.config import SEARCH_EPOCHS, SearchConfig

DEFAULT_STUDY = "mnist-b8000"


def _budgets(text: str) -> list[int]:
    try:
        budgets = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated parameter counts, got {text!r}") from None
    if not budgets:
        raise argparse.ArgumentTypeError("expected at least one budget")
    return budgets


def _search_parser(prog: str = "python -m search", frontier: bool = False) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description=("One study per budget, each searched and confirmed as the search does, then the accuracy-for-"
                     "budget frontier as a table and a plotly figure (resumable: run it again)." if frontier else
                     "Find the most accurate small CNN within a hard parameter budget "
                     "(Optuna study, persisted to SQLite by default; re-run the same command to resume)."),
        epilog="other commands: data, show, train, leaderboard, export, predict, archive, report, frontier, importance, noise, "
        "bench (python -m search COMMAND --help)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = p.add_argument_group("search")
    if frontier:
        g.add_argument("--budgets", type=_budgets, required=True,
                       help="comma-separated budgets, e.g. 2000,4000,6000,8000; --trials and --timeout apply to each")
    else:
        g.add_argument("--budget", type=int, required=True, help="hard parameter budget; no candidate above it is trained")
    g.add_argument("--max-macs", default=None, metavar="N",
                   help="hard cap on multiply-accumulates per image (like 1070000 or 1.07M): a draw over it is "
                   "scaled down to fit or recorded as infeasible, never trained")
    g.add_argument("--max-ram", default=None, metavar="KB",
                   help="hard cap on peak activation memory of an int8 inference, in KB of 1,024 bytes: the largest "
                   "input + output feature maps of any conv or pool, one byte an element (shown by `show`)")
    g.add_argument("--trials", type=int, default=100, help="finished (complete or pruned) trials the study should hold")
    g.add_argument("--epochs", type=int, default=15, help="the protocol: epochs every confirmed and refit design trains, and every "
                   "search trial too unless --search-epochs")
    g.add_argument("--search-epochs", type=int, default=argparse.SUPPRESS, metavar="E",  # not given: SEARCH_EPOCHS
                   help="epochs each search trial trains: its whole recipe compressed to E (OneCycle over E, a StepLR "
                        "step scaled to E) on every training image; default: "
                        + (f"{SEARCH_EPOCHS} (the whole --epochs where that is as short), measured to rank designs as "
                           "15 epochs do (studies/RESULTS.md)" if SEARCH_EPOCHS else "--epochs, until `bench proxy` "
                           "has measured a cheaper length") + "; confirmation and refit train --epochs. Part of the "
                        "study's identity")
    g.add_argument("--sampler", default="tpe", help="tpe | random")
    g.add_argument("--pruner", default=argparse.SUPPRESS,  # not given: config.default_pruner
                   help="median (of finished trials at the same epoch, minus a tolerance closing from 1 point to a "
                        "0.15 floor by the last epoch) | hyperband | none; default: none where --search-epochs is "
                        "shorter than --epochs (there the median rule stops designs that end among the best), else "
                        "median")
    g.add_argument("--seed", type=int, default=0, help="sampler seed and base training seed")
    g.add_argument("--timeout", type=float, default=None,
                   help="stop starting trials once the study has searched this many seconds, summed over its runs "
                        "(run the same command again to go on after a stop; raise it to search longer)")
    g.add_argument("--no-baselines", action="store_true",
                   help="do not enqueue the seed presets (baselines where they fit, fitted start points where not)")
    g.add_argument("--baseline", action="append", default=None, metavar="FILE|PRESET",
                   help="your design as a baseline, repeatable: a spec JSON as `export` writes it (architecture "
                        "plus recipe) or a preset name; trained, confirmed and compared with the winner like the "
                        "presets that fit the budget; part of the study's identity")
    g.add_argument("--target", type=float, default=None,
                   help="test accuracy (%%) for the 'first epoch at target' column; default: the data set's (MNIST 99.4)")
    g.add_argument("--separable", action=argparse.BooleanOptionalAction, default=True,
                   help="also draw depthwise-separable blocks (depthwise 3x3 + pointwise 1x1: wider networks per "
                        "parameter, more MACs, ~2x the CPU time) and start from separable variants of the presets "
                        "(default: on); part of the study's identity")
    g.add_argument("--headless", action=argparse.BooleanOptionalAction, default=False,
                   help="also draw the head-less end: the last 3x3 conv as wide as the classes, straight into the "
                        "global average pool (no 1x1 head); part of the study's identity")
    g.add_argument("--recipes", default="all",
                   help="all (default): draw the optimizer (SGD or Adam), the schedule (StepLR or OneCycle) and label "
                        "smoothing, and train the start points (not the baselines) under Adam + OneCycle at lr 0.01 | "
                        "sgd-step: SGD + StepLR only, the seeds' recipe; part of the study's identity")
    g = p.add_argument_group("data")
    _data_args(g)
    g.add_argument("--mirror", action="store_true",
                   help="your own data (folder:, npz:): a left-right mirror keeps the labels (photos of parts, "
                        "clothes, animals), so the search may mirror half the training images; off by default, as "
                        "a mirrored letter or digit is another symbol. The built-in data sets say it themselves "
                        "(MNIST no, Fashion-MNIST and CIFAR-10 yes); part of the study's identity")
    g.add_argument("--subset", type=int, default=None, help="train on a seeded sample of N images (quick runs)")
    g.add_argument("--val-size", type=int, default=10_000, help="validation images held out from the training set")
    g = p.add_argument_group("storage")
    g.add_argument("--study-name", default=None, help="default: <dataset>-b<budget> (frontier: <name>-b<budget>)")
    g.add_argument("--storage", default=None, help="default: sqlite:///studies/<study-name>.db; or postgresql://...; "
                   "or journal:PATH, a run that must go on across machines: PATH (an Optuna journal file) is kept "
                   "current and the study is restored from it where the search's SQLite file (PATH's name, .db, "
                   "beside it) lacks it; commit PATH and the same command goes on in a fresh clone. frontier: "
                   "journal:DIR/ keeps one archive per budget. The recorded studies under studies/archive/ are "
                   "read-only evidence: a search never writes there unless named so")
    g = p.add_argument_group("confirmation")
    g.add_argument("--top-k", type=int, default=SearchConfig.top_k,
                   help="best searched designs retrained with --confirm-seeds seeds (the baselines always are, besides)")
    g.add_argument("--confirm-seeds", type=int, default=3,
                   help="first-round seeds per confirmed design (the refit uses the same seeds)")
    g.add_argument("--confirm-cap", type=int, default=0,
                   help="most seeds per design (0: twice --confirm-seeds): after the first round only designs "
                        "still in contention on validation (one-sided Welch p >= 0.05 against the leader) get "
                        "more, one per round; a cap at --confirm-seeds or below races nothing")
    g.add_argument("--refit", default="winner",
                   help="after confirmation, train again with the same seeds on train + val (every training "
                        "image): winner (the confirmed winner and the baselines it is compared with) | all "
                        "(every confirmed design) | none. Chooses nothing; export ships the refit weights")
    g = p.add_argument_group("execution")
    g.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    g.add_argument("--workers", type=int, default=1, help="worker processes: they share the study's trials, "
                   "then train confirmation's and the refit's seeds side by side")
    g.add_argument("--max-failures", type=int, default=5, help="stop after this many consecutive failed trials")
    g.add_argument("--heartbeat", type=int, default=10, help="seconds between trial heartbeats (stale after 3x)")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile each candidate: 1.5x per epoch on a GPU, 0.56x on CPU (bench train); slow start")
    g.add_argument("--precision", default="auto", help="auto | fp32 | bf16 (auto: bf16 on CPUs with AMX or AVX-512-BF16, "
                   "else fp32; fp32 on CUDA, where it measured faster for nets this small)")
    return p


def _data_args(g) -> None:  # a parser or one of its argument groups
    g.add_argument("--dataset", default="mnist",
                   help="mnist | fashion-mnist | cifar10 | folder:PATH (PATH/train/<class>/*, PATH/test/<class>/* "
                        "or PATH/<class>/*) | npz:PATH (x_train, y_train, x_test, y_test)")
    g.add_argument("--data-dir", default="data", help="where raw files live (torchvision layout) and decoded "
                   "folders are cached")
    g.add_argument("--image-size", type=int, default=None,
                   help="resize every image to N x N on load (needed where a folder mixes sizes)")


def _study_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("study")
    g.add_argument("--study", default=DEFAULT_STUDY, help="study name")
    g.add_argument("--storage", default=None, help="default: sqlite:///studies/<study>.db (your own study), or where that "
                   "file is absent the recorded study studies/archive/<study>.jsonl; journal:PATH reads any archive")


def _design_args(p: argparse.ArgumentParser, with_trial: bool) -> None:
    g = p.add_argument_group("design (one of)")
    g.add_argument("--preset", default=None, help="seed-000 | seed-002 | seed-004")
    g.add_argument("--spec", type=Path, default=None, help="architecture spec JSON file")
    if with_trial:
        g.add_argument("--trial", type=int, default=None, help="trial number in --study")


def _sub(name: str, help_: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=f"python -m search {name}", description=help_,
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)


# --- commands -----------------------------------------------------------------------------------

def cmd_search(argv: list[str]) -> int:
    a = _search_parser().parse_args(argv)
    from search.baselines import with_keys
    from search.config import validate

    cfg = SearchConfig.from_args(a)
    validate(cfg)  # before torch/optuna load: bad input is answered at once
    cfg = with_keys(cfg)  # each --baseline read and checked, before any data
    from search.job.run import run_search

    return run_search(cfg)


def cmd_frontier(argv: list[str]) -> int:
    a = _search_parser("python -m search frontier", frontier=True).parse_args(argv)
    from search.baselines import with_keys
    from search.config import frontier_configs, validate

    cfgs = frontier_configs(a)
    for cfg in cfgs:
        validate(cfg)  # every budget checked before any data or study is touched
    cfgs = [with_keys(cfg) for cfg in cfgs]
    from search.job.run import run_frontier

    return run_frontier(cfgs)


def cmd_data(argv: list[str]) -> int:
    p = _sub("data", "Fetch the data set into --data-dir and verify every raw file's sha256; read your own "
             "data (folder:, npz:) once, check it and cache it.")
    _data_args(p)
    a = p.parse_args(argv)
    from search.config import absolute_dataset, check_dataset

    check_dataset(a.dataset)
    from trainers.datasets import DATASETS

    if a.dataset in DATASETS:
        from trainers.fetch import ensure_dataset

        folder = ensure_dataset(a.dataset, a.data_dir, log=print)
        print(f"{a.dataset}: verified raw files in {folder}")
        return 0
    from trainers.data import read_source

    raw = read_source(absolute_dataset(a.dataset), a.data_dir, a.image_size, 0, print)
    _, c, h, w = raw.train_x.shape
    print(f"{a.dataset}: {len(raw.train_y):,} training and {len(raw.test_y):,} test images, {c} channel(s), "
          f"{h}x{w}, {len(raw.classes)} classes ({', '.join(raw.classes[:10])}{', ...' if len(raw.classes) > 10 else ''})")
    return 0


def cmd_show(argv: list[str]) -> int:
    p = _sub("show", "Print a design's torchsummary table, receptive-field table, params and MACs.")
    _design_args(p, with_trial=True)
    _study_args(p)
    a = p.parse_args(argv)
    from search.commands.describe import describe_design
    from search.commands.designs import pick_design

    spec, recipe, label = pick_design(preset=a.preset, spec=a.spec, trial=a.trial, study=a.study, storage=a.storage)
    print(describe_design(spec, recipe, label))
    return 0


def cmd_train(argv: list[str]) -> int:
    p = _sub("train", "Train one design and report test accuracy per epoch (default: on all training images).")
    _design_args(p, with_trial=True)
    _study_args(p)
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=15)
    g.add_argument("--seed", type=int, default=0, help="training seed")
    g.add_argument("--device", default="auto")
    g.add_argument("--compile", action="store_true")
    g.add_argument("--precision", default="auto", help="auto | fp32 | bf16")
    g.add_argument("--fit-on", choices=["all", "train"], default="all",
                   help="all: train + validation images; train: the training split only, as confirmation does")
    g.add_argument("--target", type=float, default=None, help="test accuracy (%%) to report the first epoch at")
    g = p.add_argument_group("data")
    _data_args(g)
    g.add_argument("--subset", type=int, default=None, help="use a seeded sample of N images (quick check)")
    g.add_argument("--data-seed", type=int, default=None, help="seed of the --subset sample (default: --seed)")
    g.add_argument("--val-size", type=int, default=10_000, help="validation images held out (with --fit-on train)")
    p.add_argument("--out", type=Path, default=None, help="where to save weights + results (default studies/train-<label>)")
    a = p.parse_args(argv)
    from search.commands.designs import pick_design, train_design

    spec, recipe, label = pick_design(preset=a.preset, spec=a.spec, trial=a.trial, study=a.study, storage=a.storage)
    return train_design(spec, recipe, label, epochs=a.epochs, seed=a.seed, device=a.device, dataset=a.dataset,
                        data_dir=a.data_dir, subset=a.subset, out=a.out, compile=a.compile, target=a.target,
                        precision=a.precision, fit_on=a.fit_on, data_seed=a.data_seed, val_size=a.val_size,
                        image_size=a.image_size)


def cmd_leaderboard(argv: list[str]) -> int:
    p = _sub("leaderboard", "Print a study's leaderboard from storage.")
    _study_args(p)
    p.add_argument("--limit", type=int, default=10)
    a = p.parse_args(argv)
    from search.commands.leaderboard import summary_lines
    from search.store.study import load_existing

    for line in summary_lines(load_existing(a.study, a.storage), a.limit):
        print(line)
    return 0


def cmd_export(argv: list[str]) -> int:
    p = _sub("export", "Export a trial of a study, or a design trained by `train`: spec, weights, torch.export, "
             "TorchScript, float32 and int8 ONNX, and a model card with both ONNX models' test accuracy as "
             "onnxruntime runs them (the int8 model is calibrated on training images only).")
    _study_args(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--trial", type=int, default=None, help="trial number")
    g.add_argument("--best", action="store_true", help="the leaderboard's winner (default)")
    g.add_argument("--trained", type=Path, default=None, metavar="FOLDER",
                   help="instead of a study: the --out folder of `python -m search train` (its result.json and weights)")
    p.add_argument("--out", type=Path, default=None, help="default: studies/<study>-trial<N> (--trained: <FOLDER>-export)")
    p.add_argument("--data-dir", default=None, help="the data: the test set to measure on, training images to calibrate "
                   "int8 on, and to train weights if the trial has none (default: the study's)")
    p.add_argument("--device", default="auto")
    a = p.parse_args(argv)
    from search.commands.export import export_trained, export_trial

    if a.trained is not None:
        return export_trained(a.trained, a.out, a.data_dir)
    return export_trial(study=a.study, storage=a.storage, trial=a.trial, out=a.out, data_dir=a.data_dir,
                        device=a.device)


def cmd_predict(argv: list[str]) -> int:
    p = _sub("predict", "Classify images (PNG/JPEG, any size) with an exported model.")
    p.add_argument("--model", type=Path, required=True, help="an export folder")
    p.add_argument("--int8", action="store_true", help="classify with the export's int8 ONNX model in onnxruntime "
                   "(default: the float32 weights in PyTorch)")
    p.add_argument("images", type=Path, nargs="+")
    a = p.parse_args(argv)
    from search.commands.predict import predict_files

    return predict_files(a.model, a.images, use_int8=a.int8)


def cmd_archive(argv: list[str]) -> int:
    p = _sub("archive", "Write a whole study (trials, curves, records, verdict) as an Optuna journal file, one "
             "operation a line: commit it, open it with optuna-dashboard, read it with --storage journal:PATH, and "
             "a search of the same study restores it on a machine that lacks the study and goes on.")
    _study_args(p)
    p.add_argument("--out", type=Path, default=None,
                   help="default: studies/archive/<study>.jsonl (gzipped as .jsonl.gz when over 4 MiB)")
    a = p.parse_args(argv)
    from search.commands.archive import archive_study

    return archive_study(a.study, a.storage, a.out)


def cmd_report(argv: list[str]) -> int:
    p = _sub("report", "Write one self-contained HTML report (plotly inlined, works offline).")
    _study_args(p)
    p.add_argument("--out", type=Path, default=None, help="default: studies/<study>-report.html")
    a = p.parse_args(argv)
    from search.commands.report import write_report

    return write_report(a.study, a.storage, a.out)


def cmd_bench(argv: list[str]) -> int:
    p = _sub("bench", "Benchmarks: print figures and ratios measured in one run.")
    from search.bench import BENCHES

    p.add_argument("what", choices=list(BENCHES))
    p.add_argument("--seconds", type=float, default=20.0, help="time per measured pipeline")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--device", default="auto")
    g = p.add_argument_group("drawn designs (space, fidelity)")
    g.add_argument("--budget", type=int, default=8000, help="budget the designs are drawn at (recipe: seed-004 fitted to it)")
    g.add_argument("--separable", action=argparse.BooleanOptionalAction, default=True,
                   help="draw from the search's default space with separable blocks (--no-separable: the plain space)")
    g = p.add_argument_group("fidelity, proxy, recipe")
    g.add_argument("--designs", type=int, default=24, help="fidelity, proxy, layout, dropout: random designs drawn at --budget (the search's start points there are added)")
    g.add_argument("--workers", type=int, default=1, help="proxy: processes sharing the designs (one thread each on "
                   "CPU; on a GPU they share it), all writing the one resumable file")
    g.add_argument("--hours", type=float, default=None, help="proxy: begin only the runs expected to end within "
                   "this many hours (cheap runs of later designs fill the end); the same command goes on")
    g.add_argument("--proxies", default=None, help="proxy: comma list of search epochs to rank designs with, "
                   "each a whole recipe compressed to that length (default 1,2,3,5; more lengths than a file has add their runs to it)")
    g.add_argument("--variants", default=None, help="recipe: comma list of sgd-step, adam-step, sgd-onecycle, "
                   "adam-onecycle, adam-onecycle-ema (weights averaged), adam-onecycle-bs32 (batches of 32), "
                   "sgd-step-kd (distilled from a teacher trained once), and the augmentation family on the "
                   "design's own recipe: aug-none, aug-flip, aug-flip-erase (the own warp plus a mirror, an erase), "
                   "aug-crop-flip, aug-crop-flip-erase (a padded crop instead of the warp); default all")
    g.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"],
                   help="recipe: the data set every run trains and is scored on")
    g.add_argument("--names", default=None, help="recipe: comma list of its designs at --budget (seed-004 or "
                   "seed-004-fitted, seed-004-sep, headless, seed-000-sep); default all")
    g.add_argument("--seeds", type=int, default=None, help="recipe: training seeds per design and recipe "
                   "(default 2); race: first-round seeds (default 3, the search's --confirm-seeds)")
    g.add_argument("--study", default=None, help="recipe: take the designs from this recorded study (with --trials); "
                   "its confirmation seeds count as each design's own-recipe runs")
    g.add_argument("--storage", default=None, help="recipe: storage of --study (default sqlite:///studies/<study>.db)")
    g.add_argument("--trials", default=None, help="recipe: comma list of trial numbers of --study")
    g.add_argument("--scale-to", type=int, default=None, metavar="PARAMS",
                   help="recipe: each trial of --study with its drawn widths fitted to this budget instead, "
                   "as the search fits a draw (how the design scales with params)")
    g = p.add_argument_group("race")
    g.add_argument("--std", type=float, default=0.07, help="seed std of validation accuracy, points")
    g.add_argument("--races", type=int, default=2000, help="simulated races per gap")
    g.add_argument("--epochs", type=int, default=15, help="full fidelity: epochs per design")
    g.add_argument("--seed", type=int, default=0, help="fidelity: draw and training seed")
    g.add_argument("--out", type=Path, default=None,
                   help="raw curves, resumable (default studies/fidelity.json, studies/recipe.json)")
    g.add_argument("--analyse", default=None, metavar="FILE[,FILE]",
                   help="only analyse these stored JSON files, trains nothing; proxy: with one file per budget, "
                        "also the options that meet the goal at all of them")
    a = p.parse_args(argv)
    from search.bench import run_bench

    return run_bench(a.what, **{k: v for k, v in vars(a).items() if k != "what"})


def cmd_importance(argv: list[str]) -> int:
    p = _sub("importance", "Which params matter: PED-ANOVA importances of validation accuracy at one epoch, "
             "over every finished trial that reached it (pruned ones too), pooled over stored studies.")
    p.add_argument("storages", nargs="+", help="SQLite files or storage URLs; every study in each is pooled")
    p.add_argument("--epoch", type=int, default=3, help="score trials by validation accuracy after this epoch")
    p.add_argument("--late", type=int, default=8, help="count the seconds of trials pruned at or after this epoch")
    a = p.parse_args(argv)
    from search.bench.importance import print_importance

    return print_importance(a.storages, a.epoch, a.late)


def cmd_noise(argv: list[str]) -> int:
    p = _sub("noise", "Seed-to-seed spread of confirmed designs, and how often the median pruner would cut a "
             "design against another seed of itself (per tolerance floor).")
    p.add_argument("storages", nargs="+", help="SQLite files or storage URLs; every study in each is pooled")
    p.add_argument("--floors", type=float, nargs="+", default=[0.0, 0.1, 0.15, 0.2],
                   help="lower bounds on the pruner's tolerance to replay, accuracy points (0 = no floor; --pruner median's is 0.15)")
    a = p.parse_args(argv)
    from search.bench.noise import print_noise

    return print_noise(a.storages, a.floors)


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "data": cmd_data, "show": cmd_show, "train": cmd_train, "leaderboard": cmd_leaderboard,
    "export": cmd_export, "predict": cmd_predict, "archive": cmd_archive, "report": cmd_report, "bench": cmd_bench,
    "importance": cmd_importance, "noise": cmd_noise, "search": cmd_search, "frontier": cmd_frontier,
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from search.process import setup_process

    setup_process()
    command = COMMANDS.get(argv[0], None) if argv else None
    run = command if command is not None else cmd_search
    args = argv[1:] if command is not None else argv
    try:
        return run(args)
    except KeyboardInterrupt:
        return _interrupted("")
    except BrokenPipeError:  # the reader went away (`... | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by it
    except Exception as e:  # known error types become one line; anything else is a bug: traceback
        if _raised_while_interrupted(e):
            # Ctrl-C landed inside a storage write, and a clean-up that writes too (closing the
            # trial, storing the search clock) then failed: still an interrupt, not a bug
            from search.errors import first_line

            return _interrupted(f"; closing up failed: {type(e).__name__}: {first_line(e)}")
        code = _exit_code(e)
        if code is None:
            raise
        print(f"error: {e}", file=sys.stderr)
        return code


def _interrupted(detail: str) -> int:
    from search.errors import EXIT_INTERRUPTED

    print("interrupted: finished trials and seeds are kept, a trial in training is closed as failed; "
          f"run the same command to resume{detail}", file=sys.stderr)
    return EXIT_INTERRUPTED


def _raised_while_interrupted(e: BaseException) -> bool:
    """True when `e` was raised while a KeyboardInterrupt was unwinding (in a `finally` or an
    `except` block that ran because of it)."""
    seen: set[int] = set()
    cause = e.__context__
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__context__
    return False


def _exit_code(e: Exception) -> int | None:
    """2 for bad input, 1 for a search that stopped, None for a bug (which keeps its traceback)."""
    from search.errors import InputError, SearchFailed

    if isinstance(e, (InputError, FileNotFoundError, IsADirectoryError)):
        return 2
    if isinstance(e, SearchFailed):
        return 1
    return None
