"""Running ``mpigc train`` jobs from Python (the main job and the benchmarks).

A job runs in its own process group and the whole group is killed at its timeout, so a
hung rank can never hang the caller.
"""

import os
import shlex
import signal
import subprocess
import sys

from mpigc.runtime import launch
from mpigc.sim.replay import read_run
from mpigc.schemes import SCHEMES


class JobFailed(RuntimeError):
    """A training job exited with an error or ran past its timeout."""


def run(cmd, timeout):
    """Run ``cmd`` in its own process group; kill the group on timeout. Returns stderr."""
    cmd = [str(c) for c in cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise JobFailed(f"timed out after {timeout} s: {' '.join(cmd)}") from None
    if proc.returncode != 0:
        raise JobFailed(f"failed with status {proc.returncode}: {' '.join(cmd)}\n"
                        f"{out[-2000:]}{err[-4000:]}")
    return err


def default_launcher():
    """The mpiexec beside this interpreter, as a launcher with ``{n}`` for the rank count."""
    return f"{shlex.quote(launch.mpiexec_path())} -n {{n}}"


def train_args(scheme, load=None, **options):
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


def train(n_ranks, args, out, timeout, launcher=None):
    """``mpigc train ARGS --out OUT`` on ``n_ranks`` ranks; returns (summary, records).

    ``launcher`` is a command prefix with ``{n}`` for the rank count (default:
    :func:`default_launcher`).
    """
    launcher = launcher or default_launcher()
    cmd = shlex.split(launcher.format(n=n_ranks)) + [sys.executable, "-m", "mpigc", "train"]
    run(cmd + list(args) + ["--out", out, "--quiet"], timeout)
    return read_run(out)
