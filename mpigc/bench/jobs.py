"""Running ``mpigc train`` jobs from Python (the main job and the benchmarks).

A job runs in its own process group and the whole group is killed at its timeout, so a
hung rank can never hang the caller.
"""

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from mpigc.runtime import launch


class JobFailed(RuntimeError):
    """A training job exited with an error or ran past its timeout."""


def run(cmd, timeout):
    """Run ``cmd`` in its own process group; kill the group on timeout. Returns stderr."""
    proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise JobFailed(f"timed out after {timeout} s: {' '.join(map(str, cmd))}") from None
    if proc.returncode != 0:
        raise JobFailed(f"failed with status {proc.returncode}: {' '.join(map(str, cmd))}\n"
                        f"{out[-2000:]}{err[-4000:]}")
    return err


def train(n_ranks, args, out, timeout, launcher=None):
    """``mpigc train ARGS --out OUT`` on ``n_ranks`` ranks; returns (summary, records).

    ``launcher`` is a command prefix with ``{n}`` for the rank count (default: the
    mpiexec beside this interpreter).
    """
    launcher = launcher or f"{shlex.quote(launch.mpiexec_path())} -n {{n}}"
    cmd = shlex.split(launcher.format(n=n_ranks)) + [sys.executable, "-m", "mpigc", "train"]
    run(cmd + [str(a) for a in args] + ["--out", str(out), "--quiet"], timeout)
    out = Path(out)
    summary = json.loads((out / "summary.json").read_text())
    records = [json.loads(line) for line in (out / "iterations.jsonl").read_text().splitlines()]
    return summary, records
