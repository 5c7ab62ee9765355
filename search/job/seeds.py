"""The seed runs of confirmation and the refit: in this process, or spread over worker processes.

Every seed of a confirmed or refit design is an independent run, so a round of them (the first
round's designs x seeds, one race round, the refit's designs x seeds) can train side by side, on
--workers processes as the search's trials do. That pays where one process leaves the device
idle: on a GPU, 4 search workers finished 1.97x the trials per hour of one (`bench gpu`). On a
2-core CPU one two-thread process already keeps both cores busy (`bench workers`: 1.00x), so
there the workers change nothing but the order the seeds finish in.

A run's result is a plain record (`SeedResult`), the same from either runner; the caller folds
the results into the trial's record in seed order, whatever order they finish in.
"""

from __future__ import annotations

import io
import multiprocessing as mp
import queue
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from tqdm import tqdm

from search.errors import SearchFailed
from search.process import setup_process, stop_workers, worker_context
from search.store.records import CONFIRM_SEED_BASE
from search.verdict import pack
from space import ArchSpec, Recipe
from trainers.data import DeviceData
from trainers.loop import EpochStats, retrain

POLL_S = 0.5


@dataclass(frozen=True)
class SeedJob:
    """One seed run: `trial`'s design, its `index`-th seed (CONFIRM_SEED_BASE + index)."""

    trial: int
    index: int
    spec: ArchSpec
    recipe: Recipe
    full: bool  # train + val (the refit) instead of the training split (confirmation)
    what: str  # "confirm" | "refit": the progress bar's word

    @property
    def label(self) -> str:
        return f"{self.what} trial {self.trial} seed {self.index}"


@dataclass(frozen=True)
class SeedResult:
    curves: dict[str, list[float]]  # split -> accuracy (%) after every epoch
    correct: str | None  # which test images the final model gets right (verdict.pack); refit: None
    seconds: float  # training time, evaluation excluded
    state: bytes | None  # the final weights (torch.save), kept for seed 0 only


def run_seed(job: SeedJob, data: DeviceData, precision: str,
             report: Callable[[EpochStats], object] | None = None) -> SeedResult:
    def tick(stats: EpochStats) -> bool:
        if report:
            report(stats)
        return False  # never stop early: every seed trains the whole protocol

    run = retrain(job.spec, job.recipe, data, seed=CONFIRM_SEED_BASE + job.index, full=job.full,
                  precision=precision, report=tick)
    state = None
    if job.index == 0:
        buf = io.BytesIO()
        torch.save(run.state_dict, buf)
        state = buf.getvalue()
    return SeedResult(
        curves={split: [round(a, 4) for a in run.result.curve(split)] for split in run.result.epochs[-1].evals},
        correct=None if job.full else pack(run.test_correct.numpy()),
        seconds=round(sum(e.seconds for e in run.result.epochs), 2), state=state)


def weights(result: SeedResult) -> dict[str, torch.Tensor]:
    return torch.load(io.BytesIO(result.state), weights_only=True)


def _postfix(stats: EpochStats) -> str:
    return " ".join(f"{k} {stats.acc(k):.2f}%" for k in stats.evals)


class InProcess:
    """Runs the jobs one after another in this process, a progress bar each."""

    def __init__(self, data: DeviceData, precision: str) -> None:
        self.data, self.precision = data, precision

    def run(self, jobs: Sequence[SeedJob]) -> Iterator[tuple[SeedJob, SeedResult]]:
        for job in jobs:
            bar = tqdm(total=job.recipe.epochs, desc=job.label, unit="ep", leave=False)

            def tick(stats: EpochStats, bar: tqdm = bar) -> None:
                bar.set_postfix_str(_postfix(stats))
                bar.update(1)

            try:
                result = run_seed(job, self.data, self.precision, tick)
            finally:
                bar.close()
            yield job, result

    def close(self) -> None:
        pass


def _worker(data_args: dict, device: str, precision: str, jobs: mp.Queue, results: mp.Queue) -> None:
    """One worker process: load the study's data once, then train jobs until the None sentinel."""
    from trainers.data import load_data

    setup_process()
    if device == "cpu":
        torch.set_num_threads(1)  # N one-thread workers beat one N-thread process on CPU
    try:
        data = load_data(**data_args, device=device, log=lambda *a, **k: None)
        while (job := jobs.get()) is not None:
            try:
                def tick(stats: EpochStats, job: SeedJob = job) -> None:
                    results.put(("tick", job, _postfix(stats)))

                results.put(("done", job, run_seed(job, data, precision, tick)))
            except Exception as e:  # the parent stops the run with this line; the worker goes on to its sentinel
                results.put(("error", job, f"{type(e).__name__}: {e}"))
    except KeyboardInterrupt:
        sys.exit(130)


class Workers:
    """Runs the jobs on `n` worker processes, each with its own copy of the study's data (loaded
    again from `data_args`, so it is the same split). Started at the first jobs, so a resumed
    study with nothing left to train starts none."""

    def __init__(self, n: int, data_args: dict, device: str, precision: str) -> None:
        self.n, self.data_args, self.device, self.precision = n, data_args, device, precision
        self.procs: list = []

    def _start(self) -> None:
        ctx = worker_context()
        self.jobs, self.results = ctx.Queue(), ctx.Queue()
        self.procs = [ctx.Process(target=_worker, args=(self.data_args, self.device, self.precision,
                                                        self.jobs, self.results), daemon=True)
                      for _ in range(self.n)]
        for p in self.procs:
            p.start()

    def run(self, jobs: Sequence[SeedJob]) -> Iterator[tuple[SeedJob, SeedResult]]:
        if not jobs:
            return
        if not self.procs:
            self._start()
        for job in jobs:
            self.jobs.put(job)
        bars: dict[str, tqdm] = {}  # by job label: a job comes back from a worker as a copy
        left = len(jobs)
        try:
            while left:
                try:
                    kind, job, payload = self.results.get(timeout=POLL_S)
                except queue.Empty:
                    if not all(p.is_alive() for p in self.procs):
                        codes = [p.exitcode for p in self.procs]
                        raise SearchFailed(f"a seed worker died (exit codes {codes}); run the same command to go on")
                    continue
                if kind == "tick":
                    if job.label not in bars:
                        bars[job.label] = tqdm(total=job.recipe.epochs, desc=job.label, unit="ep", leave=False)
                    bar = bars[job.label]
                    bar.set_postfix_str(payload)
                    bar.update(1)
                    continue
                if job.label in bars:
                    bars.pop(job.label).close()
                if kind == "error":
                    raise SearchFailed(f"{job.label}: {payload}")
                left -= 1
                yield job, payload
        except BaseException:
            for bar in bars.values():
                bar.close()
            stop_workers(self.procs)
            self.procs = []
            raise

    def close(self) -> None:
        if not self.procs:
            return
        for _ in self.procs:
            self.jobs.put(None)
        for p in self.procs:
            p.join(timeout=60)
            if p.is_alive():
                p.terminate()
        self.procs = []
