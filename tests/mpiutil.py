"""Run commands under mpiexec with a hard timeout (a failure must never become a hang),
and the checks of their results that the tests share."""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from mpigc.runtime import launch

REPO = Path(__file__).resolve().parents[1]
MPI_SCRIPTS = Path(__file__).resolve().parent / "mpi"


def mpiexec():
    """The mpiexec next to this interpreter (the mpich wheel's), else $MPIEXEC or PATH's."""
    return launch.mpiexec_path()


def start(cmd, env=None, cwd=None):
    """Start ``cmd`` in its own process group, with stdout and stderr piped as text.

    The environment is this process's plus ``env``; Numba's cache defaults to the
    repository's and Python's output is unbuffered, so that a killed job still shows it.
    """
    full_env = dict(os.environ)
    full_env.setdefault("NUMBA_CACHE_DIR", str(REPO / ".numba_cache"))
    full_env["PYTHONUNBUFFERED"] = "1"
    if env:
        full_env.update(env)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=full_env, cwd=cwd, start_new_session=True)


def run(cmd, timeout=120, env=None, cwd=None):
    """Run ``cmd`` in its own process group; kill the whole group on timeout.

    Returns a CompletedProcess; a timeout raises AssertionError with the output so far.
    """
    proc = start(cmd, env=env, cwd=cwd)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"timed out after {timeout}s: {' '.join(map(str, cmd))}\n"
                             f"--- stdout\n{out[-4000:]}\n--- stderr\n{err[-4000:]}")
    except BaseException:
        # pytest-timeout (or Ctrl-C) interrupts communicate too: never leave mpiexec running
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def mpi_command(nprocs, args):
    """``mpiexec -n nprocs <args>``; args[0] may be 'mpigc' or a Python script path."""
    args = [str(a) for a in args]
    if args and args[0] == "mpigc":
        args = [sys.executable, "-m", "mpigc"] + args[1:]
    elif args and args[0].endswith(".py"):
        args = [sys.executable] + args
    return [mpiexec(), "-n", str(nprocs)] + args


def run_mpi(nprocs, args, timeout=120, env=None, cwd=None):
    """Run :func:`mpi_command` (see there for ``args``) with :func:`run`."""
    return run(mpi_command(nprocs, args), timeout=timeout, env=env, cwd=cwd)


def run_mpi_script(nprocs, name, timeout=60):
    """Run tests/mpi/<name>.py under mpiexec; each script aborts the job when a rank fails."""
    return run_mpi(nprocs, [MPI_SCRIPTS / f"{name}.py"], timeout=timeout)


def run_cli(args, timeout=120, env=None, cwd=None):
    """``python -m mpigc <args>`` without mpiexec (a single process)."""
    return run([sys.executable, "-m", "mpigc"] + [str(a) for a in args],
               timeout=timeout, env=env, cwd=cwd)


# -- checks of a finished command ----------------------------------------------------------
def tails(res):
    """The ends of a CompletedProcess's stdout and stderr, for assertion messages."""
    return f"\n--- stdout\n{res.stdout[-3000:]}\n--- stderr\n{res.stderr[-5000:]}"


def assert_ok(res):
    """Assert exit status 0 (showing the output otherwise); return ``res``."""
    assert res.returncode == 0, tails(res)
    return res


def assert_usage_error(res, *fragments, pattern=None):
    """Assert exit status 2 and a stderr of exactly one line ``mpigc: error: ...``.

    The line must contain every string in ``fragments`` and match the regular expression
    ``pattern`` (``re.search``), when given. Returns the line.
    """
    assert res.returncode == 2, tails(res)
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and res.stderr.endswith("\n"), tails(res)
    line = lines[0]
    assert line.startswith("mpigc: error: "), line
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    if pattern is not None:
        assert re.search(pattern, line), f"{pattern!r} not in {line!r}"
    return line


# -- mpigc train under mpiexec -------------------------------------------------------------
def read_run(out):
    """(summary dict, list of iteration records) of a run's --out directory."""
    out = Path(out)
    summary = json.loads((out / "summary.json").read_text())
    records = [json.loads(line) for line in (out / "iterations.jsonl").read_text().splitlines()]
    return summary, records


def train(workers, args, out, timeout=90, script=None):
    """``mpiexec -n workers+1 mpigc train ARGS --out OUT --quiet``; asserts exit status 0.

    ``script``: a tests/mpi script that takes the mpigc command line instead of ``mpigc``.
    """
    head = [MPI_SCRIPTS / script] if script else ["mpigc"]
    assert_ok(run_mpi(workers + 1, head + ["train", *map(str, args), "--out", out, "--quiet"],
                      timeout=timeout))
    return read_run(out)
