"""Run commands under mpiexec with a hard timeout (a failure must never become a hang)."""

import os
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


def run(cmd, timeout=120, env=None, cwd=None):
    """Run ``cmd`` in its own process group; kill the whole group on timeout.

    Returns a CompletedProcess; a timeout raises AssertionError with the output so far.
    """
    full_env = dict(os.environ)
    full_env.setdefault("NUMBA_CACHE_DIR", str(REPO / ".numba_cache"))
    full_env["PYTHONUNBUFFERED"] = "1"
    if env:
        full_env.update(env)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=full_env, cwd=cwd, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"timed out after {timeout}s: {' '.join(map(str, cmd))}\n"
                             f"--- stdout\n{out[-4000:]}\n--- stderr\n{err[-4000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def run_mpi(nprocs, args, timeout=120, env=None, cwd=None):
    """``mpiexec -n nprocs <args>``; args[0] may be 'mpigc' or a Python script path."""
    args = [str(a) for a in args]
    if args and args[0] == "mpigc":
        args = [sys.executable, "-m", "mpigc"] + args[1:]
    elif args and args[0].endswith(".py"):
        args = [sys.executable] + args
    return run([mpiexec(), "-n", str(nprocs)] + args, timeout=timeout, env=env, cwd=cwd)


def run_mpi_script(nprocs, name, timeout=60):
    """Run tests/mpi/<name>.py under mpiexec; each script aborts the job when a rank fails."""
    return run_mpi(nprocs, [MPI_SCRIPTS / f"{name}.py"], timeout=timeout)


def run_cli(args, timeout=120, env=None, cwd=None):
    """``python -m mpigc <args>`` without mpiexec (a single process)."""
    return run([sys.executable, "-m", "mpigc"] + [str(a) for a in args],
               timeout=timeout, env=env, cwd=cwd)
