"""Running commands and ``mpigc train`` jobs from Python (the demo, the benchmarks, the tests).

A command runs in its own process group and the whole group is killed at its timeout or
when the caller is interrupted, so a hung rank can never hang the caller.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Optional

from mpigc.runtime import launch
from mpigc.schemes import SCHEMES
from mpigc.sim.replay import read_run


class JobFailed(RuntimeError):
    """A command exited with an error or ran past its timeout."""


def start(cmd: Sequence, env: Optional[dict] = None, cwd=None) -> subprocess.Popen:
    """Start ``cmd`` in its own process group, stdout and stderr piped as text.

    The environment is this process's plus ``env``, with Python's output unbuffered so
    that a killed job still shows what it printed.
    """
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=full_env, cwd=cwd,
                            start_new_session=True)


def run(cmd: Sequence, timeout: float, env: Optional[dict] = None, cwd=None,
        check: bool = True) -> subprocess.CompletedProcess:
    """Run ``cmd`` (see :func:`start`); kill its process group at ``timeout`` seconds.

    Raises :class:`JobFailed` at the timeout (with the output so far) and, when ``check``,
    on a non-zero exit status.
    """
    cmd = [str(c) for c in cmd]
    proc = start(cmd, env=env, cwd=cwd)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise JobFailed(f"timed out after {timeout} s: {' '.join(cmd)}\n--- stdout\n"
                        f"{out[-4000:]}\n--- stderr\n{err[-4000:]}") from None
    except BaseException:
        # an interrupt (Ctrl-C, pytest-timeout) must not leave mpiexec running
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    if check and proc.returncode != 0:
        raise JobFailed(f"failed with status {proc.returncode}: {' '.join(cmd)}\n"
                        f"{out[-2000:]}{err[-4000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def default_launcher() -> str:
    """The mpiexec beside this interpreter, as a launcher with ``{n}`` for the rank count."""
    return f"{shlex.quote(launch.mpiexec_path())} -n {{n}}"


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


def train(n_ranks: int, args: Sequence, out, timeout: float,
          launcher: Optional[str] = None) -> tuple[dict, list]:
    """``mpigc train ARGS --out OUT`` on ``n_ranks`` ranks; returns (summary, records).

    ``launcher`` is a command prefix with ``{n}`` for the rank count (default:
    :func:`default_launcher`).
    """
    launcher = launcher or default_launcher()
    cmd = shlex.split(launcher.format(n=n_ranks)) + [sys.executable, "-m", "mpigc", "train"]
    run(cmd + list(args) + ["--out", out, "--quiet"], timeout)
    return read_run(out)
