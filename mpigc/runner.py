"""Running commands and ``mpigc train`` jobs from Python (the demo, the benchmarks, the tests).

A command runs in its own session, tagged (:data:`mpigc.runtime.launch.JOB_TAG` in its
environment, inherited by every rank), and all its processes are killed at its timeout or
when the caller is interrupted, so a hung rank can never hang the caller.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Optional

from mpigc.runtime import launch
from mpigc.schemes import SCHEMES
from mpigc.sim.replay import read_run


class JobFailed(RuntimeError):
    """A command exited with an error or ran past its timeout."""


def start(cmd: Sequence, env: Optional[dict] = None, cwd=None) -> subprocess.Popen:
    """Start ``cmd`` in its own session, stdout and stderr piped as text.

    The environment is this process's plus ``env``, with Python's output unbuffered so
    that a killed job still shows what it printed. ``proc.tag`` finds every process of the
    job (:func:`mpigc.runtime.launch.job_pids`).
    """
    tag = uuid.uuid4().hex
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    full_env[launch.JOB_TAG] = tag
    proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=full_env, cwd=cwd,
                            start_new_session=True)
    proc.tag = tag
    return proc


def run(cmd: Sequence, timeout: float, env: Optional[dict] = None, cwd=None,
        check: bool = True) -> subprocess.CompletedProcess:
    """Run ``cmd`` (see :func:`start`); kill all its processes at ``timeout`` seconds.

    Raises :class:`JobFailed` at the timeout (with the output so far) and, when ``check``,
    on a non-zero exit status. The result's ``leftover`` lists the job's processes still
    there after the command ended (killed then; see :func:`leftover`).
    """
    cmd = [str(c) for c in cmd]
    proc = start(cmd, env=env, cwd=cwd)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        launch.kill_job(proc.tag)
        out, err = proc.communicate()
        raise JobFailed(f"timed out after {timeout} s: {' '.join(cmd)}\n--- stdout\n"
                        f"{out[-4000:]}\n--- stderr\n{err[-4000:]}") from None
    except BaseException:
        # an interrupt (Ctrl-C, pytest-timeout) must not leave mpiexec running
        launch.kill_job(proc.tag)
        proc.wait()
        raise
    left = leftover(proc.tag)
    if check and proc.returncode != 0:
        raise JobFailed(f"failed with status {proc.returncode}: {' '.join(cmd)}\n"
                        f"{out[-2000:]}{err[-4000:]}")
    res = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    res.leftover = left
    return res


def leftover(tag, grace: float = 3.0) -> list:
    """``(pid, command line)`` of the processes of the job ``tag`` still there ``grace``
    seconds after its launcher ended (killed then): a rank may take a moment to exit.
    """
    deadline = time.monotonic() + grace
    while launch.job_pids(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [(pid, _command_line(pid)) for pid in launch.kill_job(tag)]


def _command_line(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")[:200]
    except OSError:
        return "?"


def default_launcher() -> str:
    """The mpiexec beside this interpreter, as a launcher with ``{n}`` for the rank count."""
    return " ".join(map(shlex.quote, launch.mpiexec_command(0)[:-1])) + " {n}"


def train_args(scheme: str, load: Optional[int] = None, **options) -> list:
    """``mpigc train`` arguments: ``--scheme``, then ``--NAME VALUE`` for every option
    (underscores become dashes; True gives a bare flag), then ``--load`` where it applies.

    ``load`` is left out for the unit-load schemes, which hold one chunk per worker and
    refuse any other load, so one call serves every scheme.
    """
    args = ["--scheme", scheme]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        args += [flag] if value is True else [flag, value]
    if load is not None and not SCHEMES[scheme].unit_load:
        args += ["--load", load]
    return args


def mpigc_command(n_ranks: int, *args, launcher: Optional[str] = None) -> list:
    """``LAUNCHER python -m mpigc ARGS`` on ``n_ranks`` ranks, as a list for :func:`run`.

    ``launcher`` is a command prefix with ``{n}`` for the rank count (default:
    :func:`default_launcher`).
    """
    launcher = launcher or default_launcher()
    return shlex.split(launcher.format(n=n_ranks)) + [sys.executable, "-m", "mpigc",
                                                      *map(str, args)]


def train(n_ranks: int, args: Sequence, out, timeout: float,
          launcher: Optional[str] = None) -> tuple[dict, list]:
    """``mpigc train ARGS --out OUT`` on ``n_ranks`` ranks; returns (summary, records).

    ``launcher`` is a command prefix with ``{n}`` for the rank count (default:
    :func:`default_launcher`).
    """
    cmd = mpigc_command(n_ranks, "train", launcher=launcher)
    run(cmd + list(args) + ["--out", out, "--quiet"], timeout)
    return read_run(out)
