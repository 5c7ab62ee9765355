"""Study archives: a whole study as an Optuna journal file, a text file that outlives the machine.

A search works on SQLite or PostgreSQL: heartbeats, the atomic claim of enqueued trials and the
records confirmation adds to finished trials need an RDB storage (a journal cannot change a
finished trial). The archive is a snapshot of that study in Optuna's journal format, one
operation a line: the study's attributes (config, search clock, verdict), then each trial created
whole from its final state (params, curve, user attributes, confirmation and refit records), in
trial order, so a restored study has the same trial numbers. `optuna-dashboard PATH` opens it.

- `python -m search archive --study NAME` writes it (default `studies/NAME.jsonl`);
- a search run with `--storage journal:PATH` keeps PATH current (after each finished trial and
  after confirmation and refit), and when its SQLite file lacks the study but PATH has it,
  restores it first: commit PATH, and the same command goes on in a fresh clone;
- every command that reads a study takes `--storage journal:PATH`, and reads a recorded study
  (`studies/archive/NAME.jsonl`) by itself when the user's own SQLite file is absent.

A trial still running when the snapshot is taken is archived as failed (a restored study has no
worker for it, as after Ctrl-C); enqueued ones stay waiting. An archive over COMPRESS_ABOVE bytes
is written gzipped (`.jsonl.gz`; `gunzip -k` it for optuna-dashboard).
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import gzip
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from search.errors import UserError, first_line
from search.store.records import FAIL_REASON

COMPRESS_ABOVE = 4 << 20  # bytes; smaller archives stay plain text, diffable and dashboard-ready
WRITER = "budgetnas-archive"  # the writer id of every archived operation (see _one_writer)


# --- copying a study between storages -----------------------------------------------------------

def copy_study(src: optuna.storages.BaseStorage, dst: optuna.storages.BaseStorage, name: str) -> int:
    """Copy study `name` from `src` into `dst` (where it must not exist): attributes, then every
    trial whole, in order. Returns the number of trials."""
    sid = src.get_study_id_from_name(name)
    did = dst.create_new_study(src.get_study_directions(sid), name)
    for key, value in src.get_study_system_attrs(sid).items():
        dst.set_study_system_attr(did, key, value)
    for key, value in src.get_study_user_attrs(sid).items():
        dst.set_study_user_attr(did, key, value)
    trials = src.get_all_trials(sid, deepcopy=False)
    for t in trials:
        dst.create_new_trial(did, template_trial=_settled(t))
    return len(trials)


def _settled(t: FrozenTrial) -> FrozenTrial:
    """A running trial as failed (no worker will finish it); every other trial as it is."""
    if t.state != TrialState.RUNNING:
        return t
    settled = copy.deepcopy(t)  # through the trial's public setters: the storage gives it its own id
    settled.state, settled.datetime_complete = TrialState.FAIL, datetime.now()
    settled.set_user_attr(FAIL_REASON, "running when the study was archived")
    return settled


# --- writing and reading archives ---------------------------------------------------------------

def write_archive(storage: optuna.storages.BaseStorage, name: str, path: Path) -> Path:
    """Snapshot study `name` into `path` (.jsonl; .jsonl.gz when large), replacing it atomically,
    so a reader or a crash never sees half a file. Returns the file written."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)  # the journal backend creates its file itself
        try:
            copy_study(storage, JournalStorage(JournalFileBackend(tmp)), name)
            _one_writer(Path(tmp))
            plain = path.with_name(path.name.removesuffix(".gz"))
            packed = plain.with_name(plain.name + ".gz")
            if os.path.getsize(tmp) > COMPRESS_ABOVE:
                with open(tmp, "rb") as f, gzip.open(f"{tmp}.gz", "wb", compresslevel=6) as g:
                    shutil.copyfileobj(f, g)
                os.replace(f"{tmp}.gz", packed)
                stale, out = plain, packed
            else:
                os.replace(tmp, plain)
                stale, out = packed, plain
            stale.unlink(missing_ok=True)  # one archive per study: the other form is now stale
            return out
        finally:
            for leftover in (tmp, f"{tmp}.gz", f"{tmp}.lock"):
                with contextlib.suppress(OSError):
                    os.unlink(leftover)
    except OSError as e:
        raise UserError(f"archive {path}: {e.strerror or e}") from None


def _one_writer(journal: Path) -> None:
    """Give every operation the same writer id. Optuna stamps each with its process's random id,
    which would change every line of a committed archive each time it is rewritten; a reader only
    compares the ids with its own, and never issues these."""
    lines = [json.loads(line) for line in journal.read_text().splitlines() if line]
    journal.write_text("".join(json.dumps({**op, "worker_id": WRITER}, separators=(",", ":")) + "\n"
                               for op in lines))


def read_archive(path: Path) -> JournalStorage:
    """The archive as a journal storage over a private copy (the archive itself is never opened
    for writing, nor locked)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no study archive at {path}")
    tmp = Path(tempfile.mkdtemp(prefix="budgetnas-archive-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    copy = tmp / "study.jsonl"
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as g, open(copy, "wb") as f:
                shutil.copyfileobj(g, f)
        else:
            shutil.copyfile(path, copy)
        storage = JournalStorage(JournalFileBackend(str(copy)))
    except (OSError, ValueError, KeyError, TypeError, AssertionError) as e:
        raise UserError(f"{path} is not a study archive (an Optuna journal file): {first_line(e)}") from None
    if not storage.get_all_studies():
        raise UserError(f"{path} holds no study: not a study archive (an Optuna journal file)")
    return storage


def restore(path: Path, storage: optuna.storages.BaseStorage, name: str) -> int:
    """Copy study `name` from the archive at `path` into `storage`; the number of trials."""
    src = read_archive(path)
    try:
        src.get_study_id_from_name(name)
    except KeyError:
        names = ", ".join(s.study_name for s in src.get_all_studies()) or "none"
        raise UserError(f"archive {path} holds no study {name!r} (it holds: {names})") from None
    return copy_study(src, storage, name)


class Keeper:
    """Keeps one study's archive current: rewritten when a trial it has not seen finishes (the
    search's trial callbacks see a trial many times, and a resumed search's relay every trial
    finished before it: `seen` holds those, so they cost no rewrite) and whenever `write` is
    called. With no path (a config made in code, not by the CLI) it keeps none."""

    def __init__(self, storage: optuna.storages.BaseStorage, name: str, path: Path | str,
                 seen: Iterable[int] = ()) -> None:
        self.storage, self.name, self.path = storage, name, Path(path) if path else None
        self.seen: set[int] = set(seen)

    def trial(self, t: FrozenTrial) -> None:
        if t.state.is_finished() and t.number not in self.seen:
            self.seen.add(t.number)
            self.write()

    def write(self) -> Path | None:
        return write_archive(self.storage, self.name, self.path) if self.path else None
