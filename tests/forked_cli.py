"""`python -m search ARGS` for the tests, in a fresh process forked from one that has already
imported torch, torch._dynamo (which the first optimizer imports), SciPy, Optuna and SQLAlchemy.

Those imports take 4-5 s per process on the 2-core CI machine, more than most of the CLI runs the
suite makes, and the suite makes a few hundred. Each run here is still its own process: our code
is imported fresh in it, it has the caller's working directory, environment, argv and sys.path as
`python -m search` would, its stdout and stderr go to files, and its exit status is the one Python
would give. What it skips is only the interpreter's start and those third-party imports. Tests
whose subject is the process itself (signals, a killed worker, a child's PYTHONPATH) start real
`python -m search` processes, as do the search's own workers (spawned).

Set BUDGETNAS_TEST_SUBPROCESS=1 to run every CLI call as a real subprocess instead.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

PRELOAD = ["torch", "torch._dynamo", "torch.optim", "scipy.stats", "optuna", "sqlalchemy", "numpy", "tqdm",
           "forked_cli"]
_ctx = None


def _context():
    global _ctx
    if _ctx is None:
        _ctx = mp.get_context("forkserver")
        _ctx.set_forkserver_preload(PRELOAD)
    return _ctx


def _exit_code(e: SystemExit) -> int:
    """What `sys.exit(x)` gives the shell: None 0, an int itself, anything else printed and 1."""
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code
    print(e.code, file=sys.stderr)
    return 1


def _child(args: list[str], cwd: str, env: dict[str, str], out: str, err: str, patch: str) -> None:
    import runpy

    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    # as `python -m` sets it: the working directory first, then PYTHONPATH, then the site folders
    extra = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    tests = str(Path(__file__).resolve().parent)
    sys.path[:] = [cwd, *extra, *(p for p in sys.path if p not in ("", tests, *extra))]
    warnings.resetwarnings()
    if env.get("PYTHONWARNINGS") == "ignore":
        warnings.simplefilter("ignore")
    for fd, path in ((1, out), (2, err)):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    sys.argv = ["-m", *args]
    code = 0
    try:
        if patch:
            exec(compile(patch, "<patch>", "exec"), {"__name__": "__patch__"})
        runpy.run_module("search", run_name="__main__", alter_sys=True)
    except SystemExit as e:
        code = _exit_code(e)
    except BaseException:
        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()  # as an interpreter that ends does; multiprocessing's children skip them
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run(args: list[str], cwd: Path, env: dict[str, str], timeout: float, patch: str = "") -> subprocess.CompletedProcess:
    """The CLI as `subprocess.run([python, -m, search, *args], capture_output=True, text=True)`."""
    if os.environ.get("BUDGETNAS_TEST_SUBPROCESS") == "1":
        cmd = ([sys.executable, "-c", f"{patch}import sys\nfrom search.cli import main; sys.exit(main(sys.argv[1:]))\n"]
               if patch else [sys.executable, "-m", "search"])
        return subprocess.run([*cmd, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    with tempfile.TemporaryDirectory(prefix="cli-") as tmp:
        out, err = os.path.join(tmp, "out"), os.path.join(tmp, "err")
        p = _context().Process(target=_child, args=(list(args), str(cwd), dict(env), out, err, patch))
        p.start()
        p.join(timeout)
        if p.is_alive():
            p.kill()
            p.join()
            raise subprocess.TimeoutExpired(["python", "-m", "search", *args], timeout)
        return subprocess.CompletedProcess(["python", "-m", "search", *args], p.exitcode,
                                           Path(out).read_text(errors="replace"), Path(err).read_text(errors="replace"))
