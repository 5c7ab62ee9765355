"""Storage URLs -> Optuna RDB storages, with the checks that keep bad input from touching data.

SQLite (default) is opened in WAL mode with a 60 s busy timeout, so several worker processes on
one machine can share one file without "database is locked" failures: WAL lets readers run
beside the single writer, and the timeout makes a writer wait its turn instead of failing.
We stay on RDB storage (rather than Optuna's journal file) because heartbeats need it and
optuna-dashboard opens the same `sqlite:///` URL. PostgreSQL (`postgresql://...`, via the
psycopg driver) is the path to many machines.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path

import optuna
import sqlalchemy
from sqlalchemy.engine import make_url

from search.errors import UserError

SQLITE_MAGIC = b"SQLite format 3\x00"
SQLITE_BUSY_TIMEOUT_S = 60
SCHEMA_RACE_RETRIES = 5


def normalize_url(url: str) -> str:
    """Validate a storage URL; pick the psycopg driver for plain postgresql:// URLs."""
    try:
        parsed = make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        raise UserError(
            f"malformed storage URL {url!r}: expected sqlite:///path.db or "
            "postgresql://user:pass@host/db"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed.render_as_string(hide_password=False)
    if backend != "sqlite":
        raise UserError(f"unsupported storage {backend!r}: use sqlite:/// or postgresql://")
    if not parsed.database or parsed.database == ":memory:":
        raise UserError("storage: an in-memory SQLite database cannot be shared or resumed; give a file")
    return url


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    return Path(parsed.database) if parsed.get_backend_name() == "sqlite" else None


def check_sqlite_file(path: Path, create: bool) -> None:
    """The file must be an SQLite database (or absent, when creating) in a writable folder."""
    if path.exists():
        if path.is_dir():
            raise UserError(f"storage: {path} is a directory, not a database file")
        with open(path, "rb") as fh:
            head = fh.read(16)
        if head and head != SQLITE_MAGIC:
            raise UserError(f"storage: {path} is not an SQLite database; refusing to touch it")
    elif not create:
        raise UserError(f"no study database at {path} (run a search first, or pass --storage)")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as e:
        raise UserError(f"studies directory {folder} is not writable: {e.strerror or e}") from None
    with sqlite3.connect(path) as con:  # WAL persists in the file: set once, readers never block
        try:
            con.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as e:
            raise UserError(f"storage: {path}: {e}") from None


class AnnotatingStorage(optuna.storages.RDBStorage):
    """An RDB storage that may add attributes to *finished* trials.

    Optuna freezes a trial once it finishes; confirmation results and exported artifacts come
    later, and belong on that trial. Used only by confirm/export, only to set attributes.
    """

    def check_trial_is_updatable(self, trial_id: int, trial_state: optuna.trial.TrialState) -> None:
        return None


def open_storage(
    url: str,
    *,
    create: bool = True,
    heartbeat: int | None = None,
    annotate: bool = False,
) -> optuna.storages.RDBStorage:
    url = normalize_url(url)
    path = sqlite_path(url)
    kwargs: dict = {}
    if path is not None:
        check_sqlite_file(path, create)
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    else:
        kwargs["engine_kwargs"] = {"pool_pre_ping": True}
    if heartbeat:
        kwargs.update(
            heartbeat_interval=heartbeat,
            grace_period=3 * heartbeat,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3),
        )
    cls = AnnotatingStorage if annotate else optuna.storages.RDBStorage
    try:
        for attempt in range(SCHEMA_RACE_RETRIES):
            try:
                return cls(url, **kwargs)
            except sqlalchemy.exc.IntegrityError:
                # another process is creating the same fresh schema right now: let it finish
                if attempt == SCHEMA_RACE_RETRIES - 1:
                    raise
                time.sleep(0.5 * (attempt + 1))
    except ModuleNotFoundError as e:
        raise UserError(
            f"storage driver missing ({e.name}); for PostgreSQL: pip install 'budgetnas[postgres]'"
        ) from None
    except (sqlalchemy.exc.SQLAlchemyError, RuntimeError) as e:
        raise UserError(f"cannot open storage {make_url(url).render_as_string()}: {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]

